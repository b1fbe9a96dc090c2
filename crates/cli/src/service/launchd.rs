//! macOS: a launchd agent, `~/Library/LaunchAgents/shoal-agent.plist`,
//! loaded into the user's GUI domain (`launchctl bootstrap gui/UID`, or
//! the older `launchctl load` where that fails). `RunAtLoad` starts it at
//! login; `KeepAlive { SuccessfulExit = false }` restarts it when it
//! fails but not when it was asked to stop. Output goes to
//! `~/Library/Logs/shoal/`. See launchd.plist(5).

use super::xml::escape;
use super::{ServiceError, ServiceSpec, SERVICE_NAME};

const FORMAT: &str = "launchd property list";
/// launchd's minimum seconds between two starts (its default is 10).
const THROTTLE_SEC: u32 = 10;

pub fn plist_text(spec: &ServiceSpec) -> Result<String, ServiceError> {
    let mut arguments = String::new();
    let program = super::spec::plain_text("program path", spec.program.as_os_str(), FORMAT)?;
    for arg in std::iter::once(program).chain(spec.args.iter().map(String::as_str)) {
        let arg = super::spec::plain_text("argument", arg.as_ref(), FORMAT)?;
        arguments.push_str(&format!("\t\t<string>{}</string>\n", escape(arg)));
    }
    let mut logs = String::new();
    if let Some(dir) = &spec.log_dir {
        let dir = super::spec::plain_text("log folder", dir.as_os_str(), FORMAT)?;
        for key in ["StandardOutPath", "StandardErrorPath"] {
            logs.push_str(&format!(
                "\t<key>{key}</key>\n\t<string>{}/agent.log</string>\n",
                escape(dir.trim_end_matches('/'))
            ));
        }
    }
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- {marker} -->\n\
         <plist version=\"1.0\">\n\
         <dict>\n\
         \t<key>Label</key>\n\
         \t<string>{SERVICE_NAME}</string>\n\
         \t<key>ProgramArguments</key>\n\
         \t<array>\n\
         {arguments}\
         \t</array>\n\
         \t<key>RunAtLoad</key>\n\
         \t<true/>\n\
         \t<key>KeepAlive</key>\n\
         \t<dict>\n\
         \t\t<key>SuccessfulExit</key>\n\
         \t\t<false/>\n\
         \t</dict>\n\
         \t<key>ThrottleInterval</key>\n\
         \t<integer>{THROTTLE_SEC}</integer>\n\
         \t<key>ProcessType</key>\n\
         \t<string>Background</string>\n\
         {logs}\
         </dict>\n\
         </plist>\n",
        marker = super::MARKER,
    ))
}

#[cfg(target_os = "macos")]
pub use ops::{install, log_dir, status, uninstall};

#[cfg(target_os = "macos")]
mod ops {
    use std::path::PathBuf;

    use super::super::owned_file::{self, Existing};
    use super::super::{tool, Installed, Removal, ServiceError, ServiceSpec, Status, SERVICE_NAME};
    use super::plist_text;

    const HINT: &str = "launchctl comes with macOS; is /bin on PATH?";
    const BOOTSTRAP_TRIES: u32 = 8;

    fn plist_path() -> Result<PathBuf, ServiceError> {
        Ok(super::super::spec::base_dirs()?
            .home_dir()
            .join("Library/LaunchAgents")
            .join(format!("{SERVICE_NAME}.plist")))
    }

    pub fn log_dir() -> Result<PathBuf, ServiceError> {
        Ok(super::super::spec::base_dirs()?
            .home_dir()
            .join("Library/Logs/shoal"))
    }

    /// The user's launchd domain, `gui/UID`.
    fn domain() -> Result<String, ServiceError> {
        let out = tool::run_ok("id", &["-u"], "id comes with macOS; is /usr/bin on PATH?")?;
        Ok(format!(
            "gui/{}",
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }

    pub fn install(spec: &ServiceSpec) -> Result<Installed, ServiceError> {
        let path = plist_path()?;
        if let Some(dir) = &spec.log_dir {
            std::fs::create_dir_all(dir).map_err(|source| ServiceError::Disk {
                action: "create",
                path: dir.clone(),
                source,
            })?;
        }
        owned_file::write(&path, &plist_text(spec)?)?;
        let location = path.display().to_string();
        let path_arg = location.clone();
        let path_arg = path_arg.as_str();
        let domain = domain()?;
        let service = format!("{domain}/{SERVICE_NAME}");
        // Installing again: unload the old definition first (absent is fine).
        let _ = tool::run("launchctl", &["bootout", &service], HINT)?;
        // bootout returns before the old job is gone, and bootstrap fails
        // until it is: a few tries, a quarter second apart.
        let mut bootstrap = tool::run("launchctl", &["bootstrap", &domain, path_arg], HINT)?;
        for _ in 0..BOOTSTRAP_TRIES {
            if bootstrap.status.success() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
            bootstrap = tool::run("launchctl", &["bootstrap", &domain, path_arg], HINT)?;
        }
        if bootstrap.status.success() {
            return Ok(Installed::started(location));
        }
        let load = tool::run("launchctl", &["load", "-w", path_arg], HINT)?;
        if load.status.success() {
            return Ok(Installed::started(location));
        }
        Ok(Installed::starts_later(
            location,
            format!(
                "launchd did not load it now ({}); it starts at your next login, or run \
                 `launchctl bootstrap {domain} {path_arg}` from your desktop session",
                tool::printed(&bootstrap)
            ),
        ))
    }

    pub fn uninstall() -> Result<Removal, ServiceError> {
        let path = plist_path()?;
        let location = path.display().to_string();
        match owned_file::inspect(&path)? {
            Existing::Absent => return Ok(Removal::NothingInstalled { location }),
            Existing::Foreign => return Err(owned_file::not_ours(&path)),
            Existing::Ours => {}
        }
        let service = format!("{}/{SERVICE_NAME}", domain()?);
        let bootout = tool::run("launchctl", &["bootout", &service], HINT)?;
        if !bootout.status.success() {
            // Not loaded, or an older macOS: `unload` covers both.
            let _ = tool::run("launchctl", &["unload", location.as_str()], HINT)?;
        }
        owned_file::remove(&path)?;
        Ok(Removal::Removed {
            location,
            stopped: true,
        })
    }

    pub fn status() -> Result<Status, ServiceError> {
        let path = plist_path()?;
        let existing = owned_file::inspect(&path)?;
        let service = format!("{}/{SERVICE_NAME}", domain()?);
        let print = tool::run("launchctl", &["print", &service], HINT)?;
        let loaded = print.status.success();
        let running = loaded && String::from_utf8_lossy(&print.stdout).contains("state = running");
        Ok(Status {
            manager: "launchd agent",
            location: path.display().to_string(),
            installed: existing != Existing::Absent,
            ours: existing == Existing::Ours,
            enabled: Some(existing != Existing::Absent),
            active: Some(running),
            note: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::xml::read_back::texts;
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_plist_reads_back_as_what_was_asked_for() {
        let spec = ServiceSpec {
            program: PathBuf::from("/Users/a&b/<apps>/shoal"),
            args: vec![
                "agent".into(),
                "--state".into(),
                "/Users/a&b/state \"q\" 'x' ]]>".into(),
            ],
            log_dir: Some(PathBuf::from("/Users/a&b/Library/Logs/shoal")),
        };
        let text = plist_text(&spec).expect("plist");
        let read = texts(&text);
        let marker = format!(" {} ", super::super::MARKER);
        let p = "plist/dict";
        let expected = pairs(&[
            ("#comment", marker.as_str()),
            (&format!("{p}/key"), "Label"),
            (&format!("{p}/string"), SERVICE_NAME),
            (&format!("{p}/key"), "ProgramArguments"),
            (&format!("{p}/array/string"), "/Users/a&b/<apps>/shoal"),
            (&format!("{p}/array/string"), "agent"),
            (&format!("{p}/array/string"), "--state"),
            (
                &format!("{p}/array/string"),
                "/Users/a&b/state \"q\" 'x' ]]>",
            ),
            (&format!("{p}/key"), "RunAtLoad"),
            (&format!("{p}/true"), ""),
            (&format!("{p}/key"), "KeepAlive"),
            (&format!("{p}/dict/key"), "SuccessfulExit"),
            (&format!("{p}/dict/false"), ""),
            (&format!("{p}/key"), "ThrottleInterval"),
            (&format!("{p}/integer"), "10"),
            (&format!("{p}/key"), "ProcessType"),
            (&format!("{p}/string"), "Background"),
            (&format!("{p}/key"), "StandardOutPath"),
            (
                &format!("{p}/string"),
                "/Users/a&b/Library/Logs/shoal/agent.log",
            ),
            (&format!("{p}/key"), "StandardErrorPath"),
            (
                &format!("{p}/string"),
                "/Users/a&b/Library/Logs/shoal/agent.log",
            ),
        ]);
        assert_eq!(read, expected);
    }

    #[test]
    fn a_control_character_in_an_argument_is_refused() {
        let spec = ServiceSpec {
            program: PathBuf::from("/usr/local/bin/shoal"),
            args: vec!["agent".into(), "--state".into(), "/tmp/\u{1}x".into()],
            log_dir: None,
        };
        assert!(matches!(
            plist_text(&spec),
            Err(ServiceError::Unrepresentable { .. })
        ));
    }
}
