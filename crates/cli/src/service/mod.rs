//! `shoal agent install | uninstall | status`: the agent as a per-user
//! service that starts at login and restarts when it fails, installed
//! without root or an administrator. One back-end per platform, each
//! turning the same [`ServiceSpec`] into the platform's own file:
//!
//! - Linux: a systemd user unit (`systemd.rs`), driven by `systemctl --user`;
//! - macOS: a launchd agent in `~/Library/LaunchAgents` (`launchd.rs`);
//! - Windows: a Task Scheduler task with a logon trigger (`task.rs`).
//!
//! Who can reach this: only the local user running the command, acting on
//! files and services of their own account. The one hazard is clobbering
//! something that is not ours at the same place, so every file (or task)
//! shoal writes carries [`MARKER`], and one without it is never
//! overwritten or removed (`owned_file.rs`). The file names the installed
//! binary by its absolute path, so a self-update that replaces the binary
//! in place and re-executes it keeps the service manager's view intact.

// Elsewhere (FreeBSD, other Unixes) there is no per-user service manager
// to drive, so install, uninstall and status say so and the back-ends'
// shared parts go unused there.
#![cfg_attr(
    not(any(target_os = "linux", target_os = "macos", windows)),
    expect(dead_code, unused_imports)
)]

pub mod command;
mod error;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod owned_file;
mod spec;
#[cfg(any(target_os = "linux", target_os = "macos", windows))]
mod tool;

#[cfg(any(target_os = "macos", test))]
mod launchd;
#[cfg(any(target_os = "linux", test))]
mod systemd;
#[cfg(any(windows, test))]
mod task;
#[cfg(any(target_os = "macos", windows, test))]
mod xml;

pub use error::{Fault, ServiceError};
#[cfg(any(target_os = "macos", windows, test))]
pub use spec::SERVICE_NAME;
pub use spec::{Installed, Removal, ServiceSpec, Status, MARKER};

/// Where the service's output goes on this platform.
pub fn log_dir() -> Result<Option<std::path::PathBuf>, ServiceError> {
    #[cfg(target_os = "macos")]
    return launchd::log_dir().map(Some);
    #[cfg(not(target_os = "macos"))]
    Ok(None)
}

pub fn install(spec: &ServiceSpec) -> Result<Installed, ServiceError> {
    #[cfg(target_os = "linux")]
    return systemd::install(spec);
    #[cfg(target_os = "macos")]
    return launchd::install(spec);
    #[cfg(windows)]
    return task::install(spec);
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        let _ = spec;
        Err(ServiceError::Unsupported {
            os: std::env::consts::OS,
        })
    }
}

pub fn uninstall() -> Result<Removal, ServiceError> {
    #[cfg(target_os = "linux")]
    return systemd::uninstall();
    #[cfg(target_os = "macos")]
    return launchd::uninstall();
    #[cfg(windows)]
    return task::uninstall();
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    Err(ServiceError::Unsupported {
        os: std::env::consts::OS,
    })
}

pub fn status() -> Result<Status, ServiceError> {
    #[cfg(target_os = "linux")]
    return systemd::status();
    #[cfg(target_os = "macos")]
    return launchd::status();
    #[cfg(windows)]
    return task::status();
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    Err(ServiceError::Unsupported {
        os: std::env::consts::OS,
    })
}
