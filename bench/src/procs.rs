//! Processes inside a host's namespace, watched from outside.
//!
//! Each program runs as `ip netns exec NS PROGRAM …`; `ip` execs the program
//! in place, so the child's pid is the program's own and /proc/<pid> holds
//! its CPU time and peak RSS. Every child leads its own process group, so a
//! stop signal reaches it (and its workers, for nginx) and nothing else.
//! Lines from stdout are stamped with `Instant::now()` (CLOCK_MONOTONIC,
//! the same clock in every namespace) as soon as the reader thread gets
//! them, which is when the harness learns of a completion.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cleanup;

/// A running program in a namespace; killed (whole group) on drop.
#[derive(Debug)]
pub struct Proc {
    pub label: String,
    child: Child,
    lines: Receiver<(Instant, String)>,
    stopped: bool,
}

/// CPU seconds and peak RSS of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_s: f64,
    pub peak_rss_kib: u64,
}

impl Proc {
    /// Starts `argv` in namespace `ns`; stdout is read line by line (and
    /// copied to `logs/<label>.out`), stderr goes to `logs/<label>.err`.
    pub fn spawn(ns: &str, argv: &[OsString], logs: &Path, label: &str) -> Result<Proc> {
        Proc::spawn_limited(ns, argv, logs, label, None)
    }

    /// As [`Proc::spawn`], and first into the CPU cgroup whose
    /// `cgroup.procs` file is `cgroup_procs`: a shell writes its own pid
    /// there, outside the namespace (`ip netns exec` mounts its own /sys,
    /// without the cgroup tree), then execs `ip`, which execs the program:
    /// one pid throughout, limited from its first instruction.
    pub fn spawn_limited(
        ns: &str,
        argv: &[OsString],
        logs: &Path,
        label: &str,
        cgroup_procs: Option<&Path>,
    ) -> Result<Proc> {
        let stderr = File::create(logs.join(format!("{label}.err")))?;
        let mut copy = File::create(logs.join(format!("{label}.out")))?;
        let mut command = match cgroup_procs {
            Some(procs) => {
                let mut c = Command::new("/bin/sh");
                c.args(["-c", "echo $$ > \"$0\" && exec \"$@\""])
                    .arg(procs)
                    .arg("ip");
                c
            }
            None => Command::new("ip"),
        };
        let mut child = command
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {label}: {argv:?}"))?;
        cleanup::add_process_group(child.id());
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("read-{label}"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let now = Instant::now();
                    let _ = writeln!(copy, "{line}");
                    if tx.send((now, line)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Proc {
            label: label.to_owned(),
            child,
            lines,
            stopped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line already read, if any; `Err` once stdout closed.
    pub fn try_line(&self) -> Result<Option<(Instant, String)>, ()> {
        match self.lines.try_recv() {
            Ok(line) => Ok(Some(line)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(()),
        }
    }

    /// Waits up to `timeout` for a stdout line satisfying `ready`.
    pub fn wait_for(&mut self, timeout: Duration, ready: impl Fn(&str) -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok((_, line)) if ready(&line) => return Ok(()),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    bail!(
                        "{} exited ({status}) before it was ready; see its log",
                        self.label
                    );
                }
            }
        }
        bail!("{} not ready after {timeout:?}; see its log", self.label)
    }

    /// Whether the program has exited, and with which status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// CPU seconds (user + system, all threads) and peak RSS so far; zero
    /// once the process is gone.
    pub fn usage(&self) -> Usage {
        usage_of(self.pid())
    }

    /// SIGTERM to the group, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pgid = self.pid();
        if self.exited().is_none() {
            cleanup::signal_group(pgid, "TERM");
            let deadline = Instant::now() + grace;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Workers of a group leader that already exited may still linger.
        cleanup::signal_group(pgid, "KILL");
        let _ = self.child.wait();
        cleanup::remove_process_group(pgid);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_millis(200));
    }
}

/// Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux
/// build we run on, asked of getconf once to be sure.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

pub fn usage_of(pid: u32) -> Usage {
    let cpu_s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which may itself hold spaces.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of stat(5), here 11, 12.
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / clock_ticks())
        })
        .unwrap_or(0.0);
    let peak_rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0);
    Usage {
        cpu_s,
        peak_rss_kib,
    }
}

/// Machine-wide CPU counters from /proc/stat: (busy, total) jiffies over
/// all cores. Busy excludes idle and iowait.
pub fn machine_cpu() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// The 1-minute load average, from /proc/loadavg.
pub fn load_avg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Runs a short command to completion; its stdout, or an error with its
/// stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let output = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
