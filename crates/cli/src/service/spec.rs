//! What every platform's service is made of: what to run, the marker
//! that says a file is shoal's, and what install, uninstall and status
//! report.

use std::path::PathBuf;

use super::ServiceError;

/// The service's name everywhere: the systemd unit `shoal-agent.service`,
/// the launchd label, the scheduled task.
#[cfg(any(target_os = "macos", windows, test))]
pub const SERVICE_NAME: &str = "shoal-agent";

/// The line that marks a file (or task) as written by shoal. It must not
/// contain `--` (it sits in XML comments) nor a line break.
pub const MARKER: &str =
    "Written by `shoal agent install`; `shoal agent uninstall` removes it. Edits are lost on the next install.";

/// What the service runs: the same for every platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The absolute path of the shoal binary (the running one).
    pub program: PathBuf,
    /// The arguments after the program: `agent` and the flags given to
    /// `install` (paths made absolute, since a service starts elsewhere).
    pub args: Vec<String>,
    /// Where the service's output goes, when the platform writes it to
    /// files (launchd); `None` where the service manager keeps it (the
    /// systemd journal) or drops it (Task Scheduler).
    pub log_dir: Option<PathBuf>,
}

/// The result of `install`.
#[derive(Debug)]
pub struct Installed {
    /// The file written, or the task's name.
    pub location: String,
    /// Whether the agent was started now (else it starts at next login).
    pub started: bool,
    /// What the customer should know, e.g. how to start it by hand.
    pub note: Option<String>,
}

impl Installed {
    /// The service manager started the agent now.
    pub fn started(location: String) -> Installed {
        Installed {
            location,
            started: true,
            note: None,
        }
    }

    /// Installed, but it starts only at the next login; `note` says why
    /// and how to start it sooner.
    pub fn starts_later(location: String, note: String) -> Installed {
        Installed {
            location,
            started: false,
            note: Some(note),
        }
    }
}

/// The result of `uninstall`.
#[derive(Debug)]
pub enum Removal {
    /// `stopped`: the service manager was reached and stopped it (else
    /// it was not running under one this session can reach).
    Removed {
        location: String,
        stopped: bool,
    },
    NothingInstalled {
        location: String,
    },
}

/// What `status` reports.
#[derive(Debug)]
pub struct Status {
    /// Which kind of service: "systemd user unit", "launchd agent", ...
    pub manager: &'static str,
    pub location: String,
    pub installed: bool,
    /// Installed by shoal (carries the marker); false for a foreign file.
    pub ours: bool,
    /// Starts at login; `None` when the service manager could not say.
    pub enabled: Option<bool>,
    /// Running now; `None` when the service manager could not say.
    pub active: Option<bool>,
    pub note: Option<String>,
}

/// The customer's home folder, from `HOME` (or the platform's record).
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub fn base_dirs() -> Result<directories::BaseDirs, ServiceError> {
    directories::BaseDirs::new().ok_or(ServiceError::NoHome)
}

/// A text value (path, argument) as UTF-8 without control characters,
/// which none of the service file formats can carry safely.
#[cfg(any(target_os = "linux", target_os = "macos", windows, test))]
pub fn plain_text<'a>(
    what: &'static str,
    value: &'a std::ffi::OsStr,
    format: &'static str,
) -> Result<&'a str, ServiceError> {
    let text = value
        .to_str()
        .ok_or_else(|| ServiceError::Unrepresentable {
            what,
            value: value.to_string_lossy().into_owned(),
            format,
            reason: "it is not valid Unicode",
        })?;
    if text.chars().any(char::is_control) {
        return Err(ServiceError::Unrepresentable {
            what,
            value: text.escape_debug().to_string(),
            format,
            reason: "it contains a control character such as a line break",
        });
    }
    Ok(text)
}
