//! Linux: a systemd user unit, `$XDG_CONFIG_HOME/systemd/user/shoal-agent.service`
//! (`~/.config/...` by default), enabled for `default.target` so the user
//! manager starts it at login, and restarted when it fails. See
//! systemd.service(5) and systemd.syntax(7) for the quoting of ExecStart.
//!
//! `systemctl --user enable` works on files alone, so the unit is
//! installed and enabled even where no user manager runs (a container, an
//! SSH session without lingering); only starting it needs the manager,
//! and when it is out of reach the customer is told how to start it.

use std::path::PathBuf;

use super::{ServiceError, ServiceSpec};

const UNIT: &str = "shoal-agent.service";
/// Seconds between a failure and the restart: quick enough that a crash
/// is barely noticed, slow enough not to spin on a broken config.
const RESTART_SEC: u32 = 5;
const FORMAT: &str = "systemd unit";

/// The unit's text. Every word of ExecStart is double-quoted, so paths
/// with spaces, quotes, `%` (a specifier) or `$` (a variable) mean
/// themselves.
pub fn unit_text(spec: &ServiceSpec) -> Result<String, ServiceError> {
    let mut exec = exec_word(super::spec::plain_text(
        "program path",
        spec.program.as_os_str(),
        FORMAT,
    )?);
    for arg in &spec.args {
        exec.push(' ');
        exec.push_str(&exec_word(super::spec::plain_text(
            "argument",
            arg.as_ref(),
            FORMAT,
        )?));
    }
    Ok(format!(
        "# {marker}\n\
         [Unit]\n\
         Description=shoal agent: downloads and shares releases for this user\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exec}\n\
         Restart=on-failure\n\
         RestartSec={RESTART_SEC}\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        marker = super::MARKER,
    ))
}

/// One ExecStart word, quoted (systemd.syntax(7): C escapes inside
/// quotes; `%%` and `$$` stand for a literal `%` and `$`).
fn exec_word(text: &str) -> String {
    let mut word = String::with_capacity(text.len() + 2);
    word.push('"');
    for c in text.chars() {
        match c {
            '\\' => word.push_str("\\\\"),
            '"' => word.push_str("\\\""),
            '%' => word.push_str("%%"),
            '$' => word.push_str("$$"),
            c => word.push(c),
        }
    }
    word.push('"');
    word
}

#[cfg(target_os = "linux")]
pub use ops::{install, status, uninstall};

#[cfg(target_os = "linux")]
mod ops {
    use super::super::owned_file::{self, Existing};
    use super::super::{tool, Installed, Removal, ServiceError, ServiceSpec, Status};
    use super::{unit_path, unit_text, UNIT};

    const HINT: &str =
        "running the agent as a service on Linux needs systemd (its user instance); \
                        on other init systems start `shoal agent` from your session's autostart";

    fn systemctl(args: &[&str]) -> Result<std::process::Output, ServiceError> {
        let mut all = vec!["--user"];
        all.extend_from_slice(args);
        tool::run_ok("systemctl", &all, HINT)
    }

    /// `Ok` when the user's systemd instance answers; else what was said.
    fn manager_reachable() -> Result<(), ServiceError> {
        systemctl(&["show", "--property=Version"]).map(drop)
    }

    pub fn install(spec: &ServiceSpec) -> Result<Installed, ServiceError> {
        let path = unit_path()?;
        owned_file::write(&path, &unit_text(spec)?)?;
        let location = path.display().to_string();
        // Enabling works on the files alone, manager or not.
        systemctl(&["enable", UNIT])?;
        if let Err(reason) = manager_reachable() {
            return Ok(Installed::starts_later(
                location,
                format!(
                    "no systemd user instance is reachable from here ({reason}). The unit is \
                     installed and enabled: it starts at your next login. To start it now, run \
                     `systemctl --user start shoal-agent` in a login session; to keep it \
                     running while you are logged out, run `loginctl enable-linger`."
                ),
            ));
        }
        systemctl(&["daemon-reload"])?;
        // Restart, not start: installing again must run the new unit.
        systemctl(&["restart", UNIT])?;
        Ok(Installed::started(location))
    }

    pub fn uninstall() -> Result<Removal, ServiceError> {
        let path = unit_path()?;
        let location = path.display().to_string();
        match owned_file::inspect(&path)? {
            Existing::Absent => return Ok(Removal::NothingInstalled { location }),
            Existing::Foreign => return Err(owned_file::not_ours(&path)),
            Existing::Ours => {}
        }
        let reachable = manager_reachable().is_ok();
        if reachable {
            systemctl(&["stop", UNIT])?;
        }
        systemctl(&["disable", UNIT])?;
        owned_file::remove(&path)?;
        if reachable {
            systemctl(&["daemon-reload"])?;
        }
        Ok(Removal::Removed {
            location,
            stopped: reachable,
        })
    }

    pub fn status() -> Result<Status, ServiceError> {
        let path = unit_path()?;
        let existing = owned_file::inspect(&path)?;
        let installed = existing != Existing::Absent;
        let mut note = None;
        let enabled = match tool::run("systemctl", &["--user", "is-enabled", UNIT], HINT) {
            Ok(out) => Some(String::from_utf8_lossy(&out.stdout).trim() == "enabled"),
            Err(e) => {
                note = Some(e.to_string());
                None
            }
        };
        let active = match manager_reachable() {
            Ok(()) => {
                let out = tool::run("systemctl", &["--user", "is-active", UNIT], HINT)?;
                Some(String::from_utf8_lossy(&out.stdout).trim() == "active")
            }
            Err(e) => {
                note.get_or_insert_with(|| {
                    format!("no systemd user instance is reachable from here: {e}")
                });
                None
            }
        };
        Ok(Status {
            manager: "systemd user unit",
            location: path.display().to_string(),
            installed,
            ours: existing == Existing::Ours,
            enabled,
            active,
            note,
        })
    }
}

/// `$XDG_CONFIG_HOME/systemd/user/shoal-agent.service`, or under
/// `~/.config` when XDG_CONFIG_HOME is unset (or not absolute).
#[cfg(target_os = "linux")]
fn unit_path() -> Result<PathBuf, ServiceError> {
    Ok(super::spec::base_dirs()?
        .config_dir()
        .join("systemd")
        .join("user")
        .join(UNIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &str, args: &[&str]) -> ServiceSpec {
        ServiceSpec {
            program: PathBuf::from(program),
            args: args.iter().map(|a| a.to_string()).collect(),
            log_dir: None,
        }
    }

    #[test]
    fn the_unit_is_named_after_the_service() {
        assert_eq!(UNIT, format!("{}.service", super::super::SERVICE_NAME));
    }

    #[test]
    fn the_unit_restarts_on_failure_starts_at_login_and_carries_the_marker() {
        let text = unit_text(&spec("/usr/bin/shoal", &["agent"])).expect("unit");
        assert!(text.starts_with(&format!("# {}\n", super::super::MARKER)));
        assert!(text.contains("\nExecStart=\"/usr/bin/shoal\" \"agent\"\n"));
        assert!(text.contains("\nRestart=on-failure\n"));
        assert!(text.contains("\nRestartSec=5\n"));
        assert!(text.contains("\nWantedBy=default.target\n"));
    }

    #[test]
    fn exec_start_words_keep_spaces_quotes_specifiers_and_dollars_literal() {
        let text = unit_text(&spec(
            "/home/a b/bin/shoal",
            &["agent", "--state", r#"/home/a b/50% "x" $HOME\y"#],
        ))
        .expect("unit");
        assert!(text.contains(
            r#"ExecStart="/home/a b/bin/shoal" "agent" "--state" "/home/a b/50%% \"x\" $$HOME\\y""#
        ));
    }

    #[test]
    fn a_line_break_in_a_path_is_refused_not_written() {
        // A newline would end ExecStart and start a directive of its own.
        let result = unit_text(&spec(
            "/usr/bin/shoal",
            &["agent", "--state", "/x\nExecStartPre=/bin/evil"],
        ));
        assert!(matches!(result, Err(ServiceError::Unrepresentable { .. })));
    }
}
