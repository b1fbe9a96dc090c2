//! Windows: a Task Scheduler task, `\shoal-agent`, that starts the agent
//! when the current user logs on, with that user's ordinary rights
//! (`LeastPrivilege`, `InteractiveToken`), so no administrator is needed
//! to install it (a Windows service would need one). No time limit
//! (`PT0S`), one instance at a time (`IgnoreNew`), restarted a minute
//! after a failure. Registered with `schtasks /Create /XML`; the XML
//! schema is Microsoft's "Task Scheduler Schema" (version 1.2).
//!
//! Task Scheduler keeps the task's `Description`, so that is where the
//! marker goes: a task named shoal-agent without it is not ours.

use super::xml::escape;
use super::{ServiceError, ServiceSpec, MARKER, SERVICE_NAME};

const FORMAT: &str = "scheduled task";

/// The task's XML. `user` is `DOMAIN\name`, the account it runs as and
/// whose logon starts it; both default to the registering user if absent.
pub fn task_xml(spec: &ServiceSpec, user: Option<&str>) -> Result<String, ServiceError> {
    let command = windows_text("program path", spec.program.as_os_str())?;
    let mut arguments = Vec::with_capacity(spec.args.len());
    for arg in &spec.args {
        arguments.push(command_line_word(windows_text("argument", arg.as_ref())?));
    }
    let user_id = match user {
        Some(user) => format!(
            "<UserId>{}</UserId>",
            escape(super::spec::plain_text("user name", user.as_ref(), FORMAT)?)
        ),
        None => String::new(),
    };
    Ok(format!(
        r#"<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>{marker}</Description>
    <URI>\{SERVICE_NAME}</URI>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>
      {user_id}
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      {user_id}
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>7</Priority>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{command}</Command>
      <Arguments>{arguments}</Arguments>
    </Exec>
  </Actions>
</Task>
"#,
        marker = escape(MARKER),
        command = escape(command),
        arguments = escape(&arguments.join(" ")),
    ))
}

/// Text for a task's command or arguments: Task Scheduler expands
/// `%NAME%` there, with no escape, so a `%` would not mean itself.
fn windows_text<'a>(
    what: &'static str,
    value: &'a std::ffi::OsStr,
) -> Result<&'a str, ServiceError> {
    let text = super::spec::plain_text(what, value, FORMAT)?;
    if text.contains('%') {
        return Err(ServiceError::Unrepresentable {
            what,
            value: text.to_owned(),
            format: FORMAT,
            reason: "Task Scheduler would expand `%...%` in it as an environment variable",
        });
    }
    Ok(text)
}

/// One word of a Windows command line, quoted so that the C runtime's
/// (and Rust's) argument splitting gives it back unchanged: backslashes
/// are literal except before a quote, where they are doubled.
fn command_line_word(text: &str) -> String {
    if !text.is_empty() && !text.contains([' ', '\t', '"']) {
        return text.to_owned();
    }
    let mut word = String::from('"');
    let mut backslashes = 0usize;
    for c in text.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                word.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                word.push('"');
                backslashes = 0;
            }
            c => {
                word.extend(std::iter::repeat_n('\\', backslashes));
                word.push(c);
                backslashes = 0;
            }
        }
    }
    word.extend(std::iter::repeat_n('\\', backslashes * 2));
    word.push('"');
    word
}

#[cfg(windows)]
pub use ops::{install, status, uninstall};

#[cfg(windows)]
mod ops {
    use std::io::Write;

    use super::super::{
        tool, Installed, Removal, ServiceError, ServiceSpec, Status, MARKER, SERVICE_NAME,
    };
    use super::task_xml;

    const HINT: &str = "schtasks comes with Windows; is C:\\Windows\\System32 on PATH?";

    fn what() -> String {
        format!("the scheduled task \\{SERVICE_NAME}")
    }

    /// The registered task's XML, or `None` if there is no such task.
    fn registered() -> Result<Option<String>, ServiceError> {
        let out = tool::run("schtasks", &["/Query", "/TN", SERVICE_NAME, "/XML"], HINT)?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(Some(decode(&out.stdout)))
    }

    /// schtasks prints UTF-16 or the console's code page: either way the
    /// marker is ASCII, which both keep recognisable.
    fn decode(bytes: &[u8]) -> String {
        let zeros = bytes.iter().filter(|b| **b == 0).count();
        if zeros > bytes.len() / 4 {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        } else {
            String::from_utf8_lossy(bytes).into_owned()
        }
    }

    pub fn install(spec: &ServiceSpec) -> Result<Installed, ServiceError> {
        if let Some(existing) = registered()? {
            if !existing.contains(MARKER) {
                return Err(ServiceError::NotOurs { what: what() });
            }
        }
        let user = match (std::env::var("USERDOMAIN"), std::env::var("USERNAME")) {
            (Ok(domain), Ok(name)) if !domain.is_empty() => Some(format!("{domain}\\{name}")),
            (_, Ok(name)) => Some(name),
            _ => None,
        };
        let xml = task_xml(spec, user.as_deref())?;
        let mut file = tempfile::Builder::new()
            .prefix("shoal-agent-task")
            .suffix(".xml")
            .tempfile()
            .map_err(|source| ServiceError::Disk {
                action: "create a temporary file in",
                path: std::env::temp_dir(),
                source,
            })?;
        // schtasks reads the XML as UTF-16, as its declaration says.
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(xml.encode_utf16().flat_map(u16::to_le_bytes));
        file.write_all(&bytes)
            .and_then(|()| file.flush())
            .map_err(|source| ServiceError::Disk {
                action: "write",
                path: file.path().to_owned(),
                source,
            })?;
        let xml_path = file.path().to_string_lossy().into_owned();
        tool::run_ok(
            "schtasks",
            &["/Create", "/XML", &xml_path, "/TN", SERVICE_NAME, "/F"],
            HINT,
        )?;
        match registered()? {
            Some(task) if task.contains(MARKER) => {}
            _ => {
                return Err(ServiceError::Bug(format!(
                    "{} lacks shoal's marker right after creating it",
                    what()
                )))
            }
        }
        // Installing again: stop the old instance so the new one runs.
        let _ = tool::run("schtasks", &["/End", "/TN", SERVICE_NAME], HINT)?;
        let run = tool::run("schtasks", &["/Run", "/TN", SERVICE_NAME], HINT)?;
        let location = what();
        if run.status.success() {
            return Ok(Installed::started(location));
        }
        Ok(Installed::starts_later(
            location,
            format!(
                "the task did not start now ({}); it starts at your next logon",
                tool::printed(&run)
            ),
        ))
    }

    pub fn uninstall() -> Result<Removal, ServiceError> {
        let location = what();
        match registered()? {
            None => return Ok(Removal::NothingInstalled { location }),
            Some(task) if !task.contains(MARKER) => {
                return Err(ServiceError::NotOurs { what: location })
            }
            Some(_) => {}
        }
        let _ = tool::run("schtasks", &["/End", "/TN", SERVICE_NAME], HINT)?;
        tool::run_ok("schtasks", &["/Delete", "/TN", SERVICE_NAME, "/F"], HINT)?;
        Ok(Removal::Removed {
            location,
            stopped: true,
        })
    }

    pub fn status() -> Result<Status, ServiceError> {
        let location = what();
        let Some(task) = registered()? else {
            return Ok(Status {
                manager: "scheduled task",
                location,
                installed: false,
                ours: false,
                enabled: Some(false),
                active: Some(false),
                note: None,
            });
        };
        let settings = task
            .split_once("<Settings>")
            .and_then(|(_, rest)| rest.split_once("</Settings>"))
            .map_or("", |(inside, _)| inside);
        let listed = tool::run(
            "schtasks",
            &["/Query", "/TN", SERVICE_NAME, "/FO", "CSV", "/NH"],
            HINT,
        )?;
        let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
        // The state column is in the system's language; English is read,
        // anything else is reported as unknown rather than guessed.
        let active = if listed.contains("\"Running\"") {
            Some(true)
        } else if listed.contains("\"Ready\"") || listed.contains("\"Disabled\"") {
            Some(false)
        } else {
            None
        };
        Ok(Status {
            manager: "scheduled task",
            location,
            installed: true,
            ours: task.contains(MARKER),
            enabled: Some(!settings.contains("<Enabled>false</Enabled>")),
            active,
            note: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::xml::read_back::texts;
    use super::*;

    /// Splits a command line as the C runtime does (the rules
    /// `command_line_word` writes for), to check the words come back.
    fn split_command_line(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut chars = line.chars().peekable();
        loop {
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            if chars.peek().is_none() {
                return words;
            }
            let mut word = String::new();
            let mut quoted = false;
            let mut backslashes = 0usize;
            for c in chars.by_ref() {
                match c {
                    '\\' => backslashes += 1,
                    '"' => {
                        word.extend(std::iter::repeat_n('\\', backslashes / 2));
                        if backslashes % 2 == 1 {
                            word.push('"');
                        } else {
                            quoted = !quoted;
                        }
                        backslashes = 0;
                    }
                    ' ' | '\t' if !quoted => {
                        word.extend(std::iter::repeat_n('\\', backslashes));
                        backslashes = 0;
                        break;
                    }
                    c => {
                        word.extend(std::iter::repeat_n('\\', backslashes));
                        backslashes = 0;
                        word.push(c);
                    }
                }
            }
            word.extend(std::iter::repeat_n('\\', backslashes));
            words.push(word);
        }
    }

    fn field<'a>(read: &'a [(String, String)], path: &str) -> Vec<&'a str> {
        read.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| t.as_str())
            .collect()
    }

    #[test]
    fn the_task_reads_back_as_a_per_user_logon_task_without_time_limit() {
        let args = vec![
            "agent".to_string(),
            "--state".to_string(),
            r#"C:\Users\A & B\<state> "q" dir\"#.to_string(),
            "--api".to_string(),
            "127.0.0.1:6880".to_string(),
        ];
        let spec = ServiceSpec {
            program: PathBuf::from(r"C:\Program Files\shoal & co\shoal.exe"),
            args: args.clone(),
            log_dir: None,
        };
        let xml = task_xml(&spec, Some(r"WORK\a<b")).expect("task xml");
        let read = texts(&xml);
        assert_eq!(field(&read, "Task/RegistrationInfo/Description"), [MARKER]);
        assert_eq!(
            field(&read, "Task/Triggers/LogonTrigger/UserId"),
            [r"WORK\a<b"]
        );
        assert_eq!(field(&read, "Task/Triggers/LogonTrigger/Enabled"), ["true"]);
        let principal = "Task/Principals/Principal";
        assert_eq!(field(&read, &format!("{principal}/UserId")), [r"WORK\a<b"]);
        assert_eq!(
            field(&read, &format!("{principal}/LogonType")),
            ["InteractiveToken"]
        );
        assert_eq!(
            field(&read, &format!("{principal}/RunLevel")),
            ["LeastPrivilege"]
        );
        let settings = "Task/Settings";
        assert_eq!(
            field(&read, &format!("{settings}/MultipleInstancesPolicy")),
            ["IgnoreNew"]
        );
        assert_eq!(
            field(&read, &format!("{settings}/ExecutionTimeLimit")),
            ["PT0S"]
        );
        assert_eq!(
            field(&read, &format!("{settings}/RestartOnFailure/Interval")),
            ["PT1M"]
        );
        assert_eq!(
            field(&read, &format!("{settings}/RestartOnFailure/Count")),
            ["999"]
        );
        assert_eq!(
            field(&read, "Task/Actions/Exec/Command"),
            [r"C:\Program Files\shoal & co\shoal.exe"]
        );
        let arguments = field(&read, "Task/Actions/Exec/Arguments");
        assert_eq!(arguments.len(), 1);
        assert_eq!(split_command_line(arguments[0]), args);
    }

    #[test]
    fn command_line_words_survive_the_c_runtime_split() {
        let words = [
            "",
            "plain",
            "a b",
            r"trailing\",
            r"C:\a b\",
            r#"q"uote"#,
            r#"\\"x"#,
            "\t",
        ];
        let line: Vec<String> = words.iter().map(|w| command_line_word(w)).collect();
        assert_eq!(split_command_line(&line.join(" ")), words);
    }

    #[test]
    fn a_percent_sign_is_refused_rather_than_expanded() {
        let spec = ServiceSpec {
            program: PathBuf::from(r"C:\shoal\shoal.exe"),
            args: vec!["agent".into(), "--state".into(), r"C:\%APPDATA%\x".into()],
            log_dir: None,
        };
        assert!(matches!(
            task_xml(&spec, None),
            Err(ServiceError::Unrepresentable { .. })
        ));
    }
}
