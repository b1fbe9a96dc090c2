//! Long-running processes for tests that run real clients side by side on
//! loopback: each is killed however its test ends, and its output is read
//! line by line against deadlines.
//!
//! Every wait here has a deadline, so a stuck client fails its test with
//! the logs of every process in it instead of hanging the suite.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How much of each log a failed test prints.
const LOG_TAIL_BYTES: usize = 6 * 1024;

/// One test's scratch folder. Processes log into `logs/`; when the test
/// panics, dropping the scene prints every log there, so a failure shows
/// what each client said.
#[derive(Debug)]
pub struct Scene {
    tmp: TempDir,
    logs: PathBuf,
}

impl Scene {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("create temporary directory");
        let logs = tmp.path().join("logs");
        fs::create_dir(&logs).expect("create log directory");
        Scene { tmp, logs }
    }

    /// A new empty folder `name` inside the scene.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.logs.join(name)
    }

    /// Starts `cmd` (shoal with `--json`) as the process called `name` and
    /// waits up to 30 s for its `started` event's listening address.
    pub fn spawn_listening(&self, name: &str, cmd: &mut Command) -> (Proc, SocketAddr) {
        let mut proc = self.spawn(name, cmd);
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = proc.next_json(deadline, |event| {
            (event["event"] == "started").then(|| {
                event["listen"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no listen address in {event}"))
            })
        });
        (proc, addr)
    }

    /// Starts `cmd` as the process called `name`: stdin empty, stdout read
    /// line by line (and copied to `logs/NAME.stdout`), stderr to
    /// `logs/NAME.stderr`.
    pub fn spawn(&self, name: &str, cmd: &mut Command) -> Proc {
        let stderr =
            fs::File::create(self.logs.join(format!("{name}.stderr"))).expect("create stderr log");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut copy =
            fs::File::create(self.logs.join(format!("{name}.stdout"))).expect("create stdout log");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(copy, "{line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name: name.to_owned(),
            command: format!("{cmd:?}"),
            child,
            lines,
        }
    }
}

impl Default for Scene {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if !thread::panicking() {
            return;
        }
        let Ok(entries) = fs::read_dir(&self.logs) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let Ok(bytes) = fs::read(&path) else { continue };
            let tail = &bytes[bytes.len().saturating_sub(LOG_TAIL_BYTES)..];
            eprintln!(
                "===== {} ({} bytes{}) =====\n{}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                bytes.len(),
                if tail.len() < bytes.len() {
                    ", tail"
                } else {
                    ""
                },
                String::from_utf8_lossy(tail)
            );
        }
    }
}

/// A child process that is killed (SIGKILL) when dropped still running.
#[derive(Debug)]
pub struct Proc {
    name: String,
    command: String,
    child: Child,
    lines: Receiver<String>,
}

impl Proc {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Reads stdout lines until `pick` returns `Some` for one, panicking
    /// at `deadline` or when the process closes its stdout first.
    pub fn next_line<T>(
        &mut self,
        deadline: Instant,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> T {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(found) = pick(&line) {
                        return found;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: expected output did not come in time", self.name)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Instant::now() + Duration::from_secs(5));
                    panic!(
                        "{}: exited ({status}) without the expected output: {}",
                        self.name, self.command
                    )
                }
            }
        }
    }

    /// Like [`Proc::next_line`] for JSON lines; lines that are not JSON
    /// objects are skipped.
    pub fn next_json<T>(
        &mut self,
        deadline: Instant,
        mut pick: impl FnMut(&serde_json::Value) -> Option<T>,
    ) -> T {
        self.next_line(deadline, |line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            if value.is_object() {
                pick(&value)
            } else {
                None
            }
        })
    }

    /// Waits for shoal's `started` event (`--json`) and returns it.
    pub fn wait_started(&mut self, deadline: Instant) -> serde_json::Value {
        self.next_json(deadline, |event| {
            (event["event"] == "started").then(|| event.clone())
        })
    }

    /// Whether the process has exited, without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("{}: cannot poll: {e}", self.name))
    }

    /// Waits for the process to exit, panicking at `deadline`.
    pub fn wait_exit(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running at its deadline: {}",
                self.name,
                self.command
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM (what service managers send) and waits up to
    /// `grace` for the process to exit; returns how it exited.
    pub fn terminate(&mut self, grace: Duration) -> ExitStatus {
        self.signal("TERM", grace)
    }

    /// Sends the signal called `name` (`TERM`, `INT`, …) and waits up to
    /// `grace` for the process to exit; returns how it exited.
    pub fn signal(&mut self, name: &str, grace: Duration) -> ExitStatus {
        if let Some(status) = self.exited() {
            panic!(
                "{}: exited ({status}) before it was asked to stop",
                self.name
            );
        }
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.id().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(sent.success(), "{}: kill -{name} failed: {sent}", self.name);
        self.wait_exit(Instant::now() + grace)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `done` every 100 ms until it holds, panicking with `what` at
/// `deadline`.
pub fn wait_until(deadline: Instant, what: &str, mut done: impl FnMut() -> bool) {
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for clients that
/// cannot report the port they bound.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}
