//! Helpers for swarm tests that run real clients side by side on loopback:
//! long-running processes that are killed however a test ends, their output
//! read line by line against deadlines, a local `shoal-tracker`, tracker
//! scrapes, and the libtorrent driver.
//!
//! Every wait here has a deadline, so a stuck client fails its test with
//! the logs of every process in it instead of hanging the suite.

// Each test crate that includes this module uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use bencode::Limits;
use tempfile::TempDir;

/// How much of each log a failed test prints.
const LOG_TAIL_BYTES: usize = 6 * 1024;

/// One test's scratch folder. Processes log into `logs/`; when the test
/// panics, dropping the scene prints every log there, so a failure shows
/// what each client said.
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

/// Every regular file under `root`, as paths relative to it, sorted; for
/// a file, one empty path (`root` itself).
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).expect("under root").to_owned());
            }
        }
    }
    let mut out = Vec::new();
    if root.is_dir() {
        walk(root, root, &mut out);
    } else {
        out.push(PathBuf::new());
    }
    out.sort();
    out
}

/// Whether every file of `expected` (a file or a folder) exists under
/// `actual` with the same bytes. Extra files in `actual` are allowed:
/// clients keep partial files and state of their own next to the data.
pub fn same_content(expected: &Path, actual: &Path) -> bool {
    files_under(expected).iter().all(|relative| {
        let (want, got) = (joined(expected, relative), joined(actual, relative));
        match (fs::read(&want), fs::read(&got)) {
            (Ok(want), Ok(got)) => want == got,
            _ => false,
        }
    })
}

/// Asserts that `actual` holds every file of `expected` byte for byte,
/// naming the first file that differs.
pub fn assert_same_content(expected: &Path, actual: &Path) {
    for relative in files_under(expected) {
        let (want, got) = (joined(expected, &relative), joined(actual, &relative));
        let want_bytes = fs::read(&want).unwrap_or_else(|e| panic!("read {}: {e}", want.display()));
        let got_bytes = fs::read(&got)
            .unwrap_or_else(|e| panic!("downloaded {} is missing: {e}", got.display()));
        assert_eq!(
            want_bytes.len(),
            got_bytes.len(),
            "size of {}",
            got.display()
        );
        if let Some(offset) = want_bytes.iter().zip(&got_bytes).position(|(a, b)| a != b) {
            panic!(
                "{} differs from {} at byte {offset}",
                got.display(),
                want.display()
            );
        }
    }
}

/// `root/relative`, or `root` itself for an empty `relative` (which
/// `Path::join` would turn into `root/`, a directory path).
fn joined(root: &Path, relative: &Path) -> PathBuf {
    if relative.as_os_str().is_empty() {
        root.to_owned()
    } else {
        root.join(relative)
    }
}

/// A `shoal-tracker` serving on a free loopback port.
pub struct LocalTracker {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT/announce`.
    pub announce: String,
}

impl LocalTracker {
    pub fn start(scene: &Scene) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal-tracker"));
        // Every test peer is on 127.0.0.1: lift the per-address limit of
        // sessions per swarm (8 by default), which is for the internet.
        cmd.args([
            "serve",
            "--open",
            "--listen",
            "127.0.0.1:0",
            "--max-sessions-per-ip",
            "64",
        ]);
        let mut proc = scene.spawn("tracker", &mut cmd);
        // It prints `listening on http://ADDR/announce` once bound.
        let announce = proc.next_line(Instant::now() + Duration::from_secs(20), |line| {
            line.strip_prefix("listening on ").map(str::to_owned)
        });
        LocalTracker { proc, announce }
    }

    /// `(complete, incomplete)`: how many seeds and leechers the tracker
    /// lists for `info_hash` (v1, or a v2 hash truncated to 20 bytes).
    pub fn scrape(&self, info_hash: &[u8; 20]) -> (i64, i64) {
        let rest = self
            .announce
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("not an http URL: {}", self.announce));
        let (host, path) = rest.split_once('/').expect("URL has a path");
        let path = path.replace("announce", "scrape");
        let query: String = info_hash.iter().map(|b| format!("%{b:02X}")).collect();
        let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set timeout");
        write!(
            stream,
            "GET /{path}?info_hash={query} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .expect("send scrape");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .expect("read scrape response");
        let body_at = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP body: {}", String::from_utf8_lossy(&response)))
            + 4;
        let body = &response[body_at..];
        let value = bencode::decode(body, Limits::default()).unwrap_or_else(|e| {
            panic!(
                "scrape body is not bencode ({e:?}): {}",
                String::from_utf8_lossy(body)
            )
        });
        let stats = value
            .get("files")
            .and_then(|files| files.as_dict())
            .and_then(|files| files.iter().find(|(key, _)| *key == info_hash.as_slice()))
            .map(|(_, stats)| stats);
        let count = |key| {
            stats
                .and_then(|s| s.get(key))
                .and_then(|v| v.as_int())
                .unwrap_or(0)
        };
        (count("complete"), count("incomplete"))
    }

    /// Waits until the tracker lists at least `seeds` seeds and `leechers`
    /// leechers for `info_hash`, so that the next client's first announce
    /// already names them.
    pub fn wait_for(&self, info_hash: &[u8; 20], seeds: i64, leechers: i64, deadline: Instant) {
        wait_until(
            deadline,
            &format!("the tracker to list {seeds} seed(s) and {leechers} leecher(s)"),
            || {
                let (complete, incomplete) = self.scrape(info_hash);
                complete >= seeds && incomplete >= leechers
            },
        );
    }
}

/// Parses 40 hex digits into a 20-byte info-hash.
pub fn info_hash_v1(hex: &str) -> [u8; 20] {
    assert_eq!(hex.len(), 40, "not a v1 info-hash: {hex}");
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .unwrap_or_else(|e| panic!("not hex: {hex}: {e}"));
    }
    out
}

/// The libtorrent driver, shared with the other interop tests.
pub use super::common::lt_driver;

/// Panics with an install hint unless `program` runs with `--version`.
pub fn require_program(program: &str, package: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "these interop tests need `{program}` (Debian package {package}); \
         run scripts/test.sh, which installs it"
    );
}
