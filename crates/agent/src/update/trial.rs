//! The trial run: before a new build may replace the running one, it
//! runs once as an agent of its own, in a scratch state folder, with its
//! API and peer port on 127.0.0.1 ports of the system's choosing and
//! updates off, and must answer its API with the version it was offered
//! as, within [`TRIAL_LIMIT`]. A build that crashes, hangs, cannot parse
//! today's config format or reports another version is never swapped in.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::version::Version;

/// How long a trial may take, start to answer.
pub const TRIAL_LIMIT: Duration = Duration::from_secs(60);
/// The line `shoal agent` prints once its API listens.
const READY_PREFIX: &str = "agent listening on http://";
/// Longest stdout line read from the trial, and stderr kept for the error.
const MAX_LINE_BYTES: u64 = 4096;
const MAX_STDERR_BYTES: u64 = 2048;

/// Runs `staged` as an agent in `work_dir` (made empty first, removed
/// after) and checks that it reports `expected`; the error says how it
/// failed.
pub async fn run_trial(staged: &Path, work_dir: &Path, expected: &Version) -> Result<(), String> {
    let _ = tokio::fs::remove_dir_all(work_dir).await;
    let result = trial(staged, work_dir, expected).await;
    let _ = tokio::fs::remove_dir_all(work_dir).await;
    result
}

/// The trial agent's config. Paths go through TOML's own string encoding:
/// a profile folder such as `C:\Users\O'Brien` holds both backslashes
/// and quotes.
fn trial_config(state: &Path, downloads: &Path) -> String {
    let quoted = |path: &Path| toml::Value::String(path.display().to_string()).to_string();
    format!(
        "api = \"127.0.0.1:0\"\nlisten = \"127.0.0.1:0\"\nstate_dir = {}\n\
         download_dir = {}\n[update]\nenabled = false\n",
        quoted(state),
        quoted(downloads)
    )
}

async fn trial(staged: &Path, work_dir: &Path, expected: &Version) -> Result<(), String> {
    let state = work_dir.join("state");
    let downloads = work_dir.join("downloads");
    crate::state::create_private_dir(&state).map_err(|e| e.to_string())?;
    let config = work_dir.join("config.toml");
    tokio::fs::write(&config, trial_config(&state, &downloads))
        .await
        .map_err(|e| format!("cannot write its config: {e}"))?;
    let mut child = tokio::process::Command::new(staged)
        .arg("agent")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("it cannot be started: {e}"))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let checked = tokio::time::timeout(TRIAL_LIMIT, async {
        let stdout = stdout.ok_or("no stdout")?;
        let addr = ready_address(stdout).await?;
        let token = crate::token::load(&state).map_err(|e| e.to_string())?;
        let reported = reported_version(&addr, &token).await?;
        if reported != expected.to_string() {
            return Err(format!("it reports version {reported:?}, not {expected}"));
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "it did not answer with its version within {} s",
            TRIAL_LIMIT.as_secs()
        ))
    });
    let _ = child.start_kill();
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    match checked {
        Ok(()) => Ok(()),
        Err(reason) => {
            let mut said = String::new();
            if let Some(stderr) = stderr {
                let mut bytes = Vec::new();
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    stderr.take(MAX_STDERR_BYTES).read_to_end(&mut bytes),
                )
                .await;
                said = String::from_utf8_lossy(&bytes).trim().to_owned();
            }
            let status = match exit {
                Ok(Ok(status)) => format!("; {status}"),
                _ => String::new(),
            };
            Err(if said.is_empty() {
                format!("{reason}{status}")
            } else {
                format!("{reason}{status}; it said: {said}")
            })
        }
    }
}

/// Reads the trial's stdout until its ready line; the API's address.
async fn ready_address(stdout: tokio::process::ChildStdout) -> Result<String, String> {
    let mut lines = BufReader::new(stdout.take(64 * MAX_LINE_BYTES)).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if let Some(addr) = line.strip_prefix(READY_PREFIX) {
                    return Ok(addr.trim().to_owned());
                }
            }
            Ok(None) => return Err("it exited before serving its API".to_owned()),
            Err(e) => return Err(format!("its output is unreadable: {e}")),
        }
    }
}

/// `current_version` from the trial's `GET /v1/update`.
async fn reported_version(addr: &str, token: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(format!("http://{addr}/v1/update"))
        .header(crate::guard::TOKEN_HEADER, token)
        .send()
        .await
        .map_err(|e| format!("its API did not answer: {e}"))?;
    let status = response.status();
    let body = engine::http_body::read_capped(response, 64 * 1024)
        .await
        .map_err(|e| format!("its API's answer: {e}"))?;
    if !status.is_success() {
        return Err(format!("its API answered {status}"));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("its API's answer: {e}"))?;
    value
        .get("current_version")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "its API does not report a version".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_trial_config_keeps_paths_with_quotes_and_backslashes() {
        let state = Path::new(r#"C:\Users\O'Brien\AppData\Local\shoal "x"\state"#);
        let downloads = Path::new("/home/o'brien/it's here");
        let text = trial_config(state, downloads);
        let settings: crate::AgentSettings = toml::from_str(&text).unwrap();
        assert_eq!(settings.state_dir, state);
        assert_eq!(settings.download_dir, downloads);
        assert!(!settings.update.enabled);
    }
}
