//! What `shoal agent install | uninstall | status` print: the thin layer
//! between the parsed flags and the platform back-ends.

use std::process::ExitCode;

use anyhow::Result;

use super::{Fault, Removal, ServiceError, ServiceSpec};

pub fn install(flags: Vec<String>) -> Result<ExitCode> {
    let program = std::env::current_exe().map_err(ServiceError::NoProgramPath)?;
    let mut args = vec!["agent".to_owned()];
    args.extend(flags);
    let spec = ServiceSpec {
        program,
        args,
        log_dir: super::log_dir().map_err(explained)?,
    };
    let installed = super::install(&spec).map_err(explained)?;
    println!("installed {}", installed.location);
    println!("runs: {} {}", spec.program.display(), spec.args.join(" "));
    if let Some(dir) = &spec.log_dir {
        println!("logs: {}", dir.display());
    }
    if installed.started {
        println!("started; it starts again at each login and restarts if it fails");
    }
    if let Some(note) = installed.note {
        println!("{note}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn uninstall() -> Result<ExitCode> {
    match super::uninstall().map_err(explained)? {
        Removal::Removed { location, stopped } => {
            let done = if stopped {
                "stopped and removed"
            } else {
                "removed"
            };
            println!("{done} {location}")
        }
        Removal::NothingInstalled { location } => {
            println!("nothing to remove: no shoal agent service at {location}")
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(json: bool) -> Result<ExitCode> {
    let status = super::status().map_err(explained)?;
    if json {
        let value = serde_json::json!({
            "manager": status.manager,
            "location": status.location,
            "installed": status.installed,
            "ours": status.ours,
            "enabled": status.enabled,
            "active": status.active,
            "note": status.note,
        });
        let text = serde_json::to_string(&value)
            .map_err(|e| explained(ServiceError::Bug(format!("status as JSON: {e}"))))?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let yes_no = |value: Option<bool>| match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    println!("{}: {}", status.manager, status.location);
    let installed = match (status.installed, status.ours) {
        (false, _) => "no",
        (true, true) => "yes",
        (true, false) => "a file not made by shoal is there",
    };
    println!("installed: {installed}");
    println!("enabled at login: {}", yes_no(status.enabled));
    println!("running: {}", yes_no(status.active));
    if let Some(note) = status.note {
        println!("note: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The error with a word on who should act.
fn explained(error: ServiceError) -> anyhow::Error {
    let who = match error.fault() {
        Fault::Environment => "",
        Fault::Shoal => " (this is shoal's fault, not yours)",
    };
    anyhow::Error::new(error).context(format!("the agent service{who}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bug_says_it_is_shoals_fault() {
        let error = super::explained(super::ServiceError::Bug("x".into()));
        assert!(format!("{error:#}").contains("shoal's fault"));
    }
}
