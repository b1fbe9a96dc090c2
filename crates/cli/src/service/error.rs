//! The one error type of `shoal agent install | uninstall | status`,
//! sorted by who can fix it: almost always the customer's environment (a
//! tool missing, a service manager not running, a file in the way), and
//! once in a while shoal itself.

use std::path::PathBuf;

/// Who is at fault, so the message can say who should act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The customer's machine or input: the message names the fix.
    Environment,
    /// A bug in shoal: worth a report.
    Shoal,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    #[error("{tool} not found ({source}); {hint}")]
    ToolMissing {
        tool: &'static str,
        hint: &'static str,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}){}", stderr_suffix(.stderr))]
    ToolFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(
        "{what} exists and was not made by `shoal agent install` (it lacks shoal's marker); \
         shoal leaves it alone: move or remove it yourself, then run the command again"
    )]
    NotOurs { what: String },
    #[error("cannot {action} {path}: {source}")]
    Disk {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[cfg(unix)]
    #[error("cannot find your home folder: set HOME")]
    NoHome,
    #[error("cannot find the running shoal binary's path: {0}")]
    NoProgramPath(std::io::Error),
    #[error(
        "the {what} {value:?} cannot be written into a {format}: {reason}; use a path without it"
    )]
    Unrepresentable {
        what: &'static str,
        value: String,
        format: &'static str,
        reason: &'static str,
    },
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    #[error(
        "running the agent as a service is not supported on {os}; start `shoal agent` with \
         your system's own tools"
    )]
    Unsupported { os: &'static str },
    #[error("bug in shoal: {0}; please report it")]
    Bug(String),
}

impl ServiceError {
    pub fn fault(&self) -> Fault {
        match self {
            ServiceError::Bug(_) => Fault::Shoal,
            _ => Fault::Environment,
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}
