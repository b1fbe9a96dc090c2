//! Loopback swarms of real processes: `shoal-tracker`, `shoal seed` and
//! `shoal get`, driven through their `--json` event lines.
//!
//! * a rate-capped seed and eight leechers that find each other through the
//!   tracker: all finish byte-identical, and most of what they received came
//!   from each other, not from the seed (whose cap is checked too);
//! * a download killed with SIGKILL halfway resumes where it was: nothing
//!   at the final path before completion, little downloaded twice;
//! * a peer that corrupts every block it sends is banned and the download
//!   still completes intact from the honest seed (smart ban, as in
//!   libtorrent's `simulation/test_smart_ban.cpp`).
//!
//! Every wait has a deadline and every child process is killed when its
//! guard drops, so a failing test ends in seconds and leaves nothing behind.

// SIGKILL and a socket sharing its port with a listener (`SO_REUSEPORT`)
// are Unix notions.
#![cfg(unix)]
// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::lying_seed::{Knock, LiarConfig, LyingSeed};
use testkit::release::Release;
use testkit::{field, shoal_tracker, MIB};

// ---------------------------------------------------------------------------
// Child processes and their event lines

/// A line a child printed on stdout, with when we read it.
#[derive(Debug, Clone)]
struct Line {
    at: Instant,
    text: String,
}

/// A `--json` event line.
#[derive(Debug, Clone)]
struct Event {
    at: Instant,
    json: Value,
}

impl Event {
    fn name(&self) -> &str {
        self.json.get("event").and_then(Value::as_str).unwrap_or("")
    }

    fn u64(&self, key: &str) -> u64 {
        field(&self.json, key)
            .as_u64()
            .unwrap_or_else(|| panic!("{key} is not a count in {:#}", self.json))
    }
}

/// A running child process. Dropping it kills it (SIGKILL) and reaps it,
/// so a failed assertion anywhere leaves no process behind.
struct Proc {
    name: String,
    child: Child,
    lines: mpsc::Receiver<Line>,
    /// Every stdout line read so far, for failure reports.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    /// Collects stderr; joined once the process has exited, so that a
    /// report made after the exit holds all of it.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    exited: Option<ExitStatus>,
}

impl Proc {
    fn spawn(name: impl Into<String>, cmd: &mut Command) -> Proc {
        let name = name.into();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines() {
                let Ok(text) = text else { break };
                let line = Line {
                    at: Instant::now(),
                    text,
                };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Proc {
            name,
            child,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
            exited: None,
        }
    }

    /// The next stdout line: `Ok(None)` once stdout has closed (the
    /// process ended), `Err` at `deadline`.
    fn poll_line(&mut self, deadline: Instant) -> Result<Option<Line>, RecvTimeoutError> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                self.seen.push(line.text.clone());
                Ok(Some(line))
            }
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err(RecvTimeoutError::Timeout),
        }
    }

    /// [`Proc::poll_line`], panicking at `deadline`.
    fn next_line(&mut self, deadline: Instant, waiting_for: &str) -> Option<Line> {
        self.poll_line(deadline)
            .unwrap_or_else(|_| panic!("timed out waiting for {waiting_for}\n{}", self.report()))
    }

    /// The next JSON event; panics if the process ends first or prints
    /// something else.
    fn next_event(&mut self, deadline: Instant, waiting_for: &str) -> Event {
        let Some(line) = self.next_line(deadline, waiting_for) else {
            let status = self.wait_exit(Instant::now() + Duration::from_secs(5));
            panic!(
                "{} ended ({status}) while we waited for {waiting_for}\n{}",
                self.name,
                self.report()
            );
        };
        let json = serde_json::from_str(&line.text).unwrap_or_else(|e| {
            panic!(
                "stdout line is not JSON ({e}): {}\n{}",
                line.text,
                self.report()
            )
        });
        Event { at: line.at, json }
    }

    /// Reads events until one named `name`; returns it.
    fn wait_for(&mut self, name: &str, deadline: Instant) -> Event {
        self.try_wait_for(name, deadline)
            .unwrap_or_else(|| panic!("timed out waiting for a {name:?} event\n{}", self.report()))
    }

    /// Like [`Proc::wait_for`], but `None` at `deadline`, so the caller can
    /// report on other processes too.
    fn try_wait_for(&mut self, name: &str, deadline: Instant) -> Option<Event> {
        loop {
            match self.poll_line(deadline) {
                Err(_) => return None,
                Ok(Some(line)) => {
                    let json: Value = serde_json::from_str(&line.text).unwrap_or_else(|e| {
                        panic!(
                            "stdout line is not JSON ({e}): {}\n{}",
                            line.text,
                            self.report()
                        )
                    });
                    if json.get("event").and_then(Value::as_str) == Some(name) {
                        return Some(Event { at: line.at, json });
                    }
                }
                Ok(None) => {
                    let status = self.wait_exit(Instant::now() + Duration::from_secs(5));
                    panic!(
                        "{} ended ({status}) while we waited for a {name:?} event\n{}",
                        self.name,
                        self.report()
                    );
                }
            }
        }
    }

    fn wait_exit(&mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Some(status) = self.exited {
                return status;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited(status);
                return status;
            }
            if Instant::now() >= deadline {
                panic!("{} did not exit in time\n{}", self.name, self.report());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn expect_success(&mut self, deadline: Instant) {
        let status = self.wait_exit(deadline);
        assert!(
            status.success(),
            "{} failed: {status}\n{}",
            self.name,
            self.report()
        );
    }

    /// SIGKILL, as a crash or power loss would end it.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        self.exited(status);
    }

    fn exited(&mut self, status: ExitStatus) {
        self.exited = Some(status);
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What the process printed, trimmed to the last lines, for a panic.
    fn report(&self) -> String {
        let stdout_tail = self.seen[self.seen.len().saturating_sub(15)..].join("\n");
        let stderr = self.stderr();
        let cut = stderr.len().saturating_sub(6000);
        let cut = (cut..=stderr.len())
            .find(|i| stderr.is_char_boundary(*i))
            .unwrap_or(0);
        format!(
            "--- {} stdout (last lines) ---\n{stdout_tail}\n--- {} stderr (tail) ---\n{}",
            self.name,
            self.name,
            &stderr[cut..]
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A process that died on its own is often the real failure.
        let state = match self.exited.or_else(|| self.child.try_wait().ok().flatten()) {
            Some(status) => format!("had exited: {status}"),
            None => "was running; killed".to_owned(),
        };
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("=== {} {state}\n{}", self.name, self.report());
        }
    }
}

// ---------------------------------------------------------------------------
// Fixtures

/// A running `shoal-tracker` on a free loopback port.
struct Tracker {
    _proc: Proc,
    announce: String,
}

fn start_tracker(deadline: Instant) -> Tracker {
    let mut proc = Proc::spawn(
        "tracker",
        shoal_tracker().args(["serve", "--open", "--listen", "127.0.0.1:0"]),
    );
    // "listening on http://127.0.0.1:PORT/announce"
    let line = proc
        .next_line(deadline, "the tracker's address")
        .unwrap_or_else(|| panic!("the tracker ended at once\n{}", proc.report()));
    let announce = line
        .text
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected tracker line {:?}", line.text))
        .to_owned();
    Tracker {
        _proc: proc,
        announce,
    }
}

/// Starts a seed and returns it with the address it listens on.
fn start_seed(release: &Release, extra: &[&str], deadline: Instant) -> (Proc, SocketAddr) {
    let mut seed = Proc::spawn("seed", &mut release.seed(extra));
    let listen = listen_addr(&seed.wait_for("started", deadline));
    (seed, listen)
}

/// The address in a `started` event.
fn listen_addr(started: &Event) -> SocketAddr {
    field(&started.json, "listen")
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no listen address in {:#}", started.json))
}

// ---------------------------------------------------------------------------
// Tests

/// A seed capped at 3 MiB/s and eight leechers that know only the tracker.
/// The seed alone would need 8 × 24 MiB / 3 MiB/s = 64 s; the leechers must
/// trade pieces among themselves.
#[test]
fn eight_leechers_share_through_the_tracker() {
    const LEECHERS: usize = 8;
    const SIZE: u64 = 24 * MIB;
    const SEED_CAP: u64 = 3 * MIB;
    let deadline = Instant::now() + Duration::from_secs(120);
    let tracker = start_tracker(deadline);
    let release = Release::publish("tool-24m.bin", SIZE, 64 * 1024, &tracker.announce, 11);
    let original = std::fs::read(release.original()).unwrap();

    let (mut seed, _) = start_seed(&release, &["--max-up", "3M"], deadline);
    let seed_started = Instant::now();
    let mut leechers: Vec<(Proc, PathBuf)> = (0..LEECHERS)
        .map(|i| {
            let out = release.out_dir(&format!("leecher-{i}"));
            let proc = Proc::spawn(format!("leecher {i}"), &mut release.get(&out, &[]));
            (proc, out)
        })
        .collect();

    // Leechers exit when complete; their `complete` line is their last word.
    let mut completes = Vec::new();
    for (proc, _) in &mut leechers {
        completes.push(proc.wait_for("complete", deadline));
        proc.expect_success(deadline);
    }
    let all_done = Instant::now();
    for (i, (_, out)) in leechers.iter().enumerate() {
        release.assert_downloaded(out, &original, &format!("leecher {i}"));
    }

    // The seed's first report after the last leecher finished counts every
    // byte it ever sent them.
    let seed_uploaded = loop {
        let event = seed.next_event(deadline, "the seed's progress after the leechers finished");
        if event.name() == "progress" && event.at > all_done {
            break event.u64("uploaded");
        }
    };
    let elapsed = all_done.duration_since(seed_started).as_secs_f64();

    let from_peers: Vec<u64> = completes
        .iter()
        .map(|e| e.u64("bytes_from_peers"))
        .collect();
    let uploaded: Vec<u64> = completes.iter().map(|e| e.u64("uploaded")).collect();
    let total_from_peers: u64 = from_peers.iter().sum();
    let total_uploaded: u64 = uploaded.iter().sum();
    let context = format!(
        "size {SIZE}, {elapsed:.1} s, seed uploaded {seed_uploaded}, \
         leechers' bytes_from_peers {from_peers:?}, uploaded {uploaded:?}"
    );
    eprintln!("eight leechers: {context}");

    // The cap held, so the seed could not have served everyone alone.
    assert!(
        (seed_uploaded as f64) <= SEED_CAP as f64 * elapsed * 1.15 + MIB as f64,
        "the seed exceeded its upload cap: {context}"
    );
    assert!(
        total_from_peers >= LEECHERS as u64 * SIZE,
        "leechers report less than they hold: {context}"
    );
    // What the leechers received beyond all the seed sent came from each
    // other: most of it. (The seed alone at its cap would need 64 s; the
    // swarm takes about 9.)
    let between_leechers = total_from_peers.saturating_sub(seed_uploaded);
    assert!(
        between_leechers > total_from_peers / 2,
        "too little moved between leechers ({between_leechers} bytes): {context}"
    );
    // And the leechers' own upload counters agree that they traded.
    assert!(
        total_uploaded >= 2 * SIZE,
        "leechers uploaded too little: {context}"
    );
    let uploaders = uploaded.iter().filter(|u| **u > 0).count();
    assert!(
        uploaders >= 6,
        "only {uploaders} of {LEECHERS} leechers uploaded anything: {context}"
    );
}

/// A download killed with SIGKILL at about half resumes from what it had
/// verified, and the release appears at its final path only when complete.
#[test]
fn sigkill_mid_download_resumes() {
    const SIZE: u64 = 32 * MIB;
    let deadline = Instant::now() + Duration::from_secs(90);
    let tracker = start_tracker(deadline);
    let release = Release::publish("app-32m.bin", SIZE, 64 * 1024, &tracker.announce, 22);
    let original = std::fs::read(release.original()).unwrap();
    let (seed, seed_addr) = start_seed(&release, &[], deadline);
    let seed_addr = seed_addr.to_string();
    let out = release.out_dir("download");
    let final_path = out.join(&release.name);

    // At 4 MiB/s the download takes about 8 s: time to catch it halfway.
    let mut first = Proc::spawn(
        "first get",
        &mut release.get(&out, &["--peer", &seed_addr, "--max-down", "4M"]),
    );
    let at_kill = loop {
        let event = first.next_event(deadline, "the first run to pass 45 %");
        if event.name() == "complete" {
            panic!(
                "the capped download completed before we could kill it: {:#}",
                event.json
            );
        }
        if event.name() == "progress" && event.u64("verified_bytes") >= SIZE * 45 / 100 {
            break event;
        }
    };
    first.kill();
    let killed_verified = at_kill.u64("verified_bytes");
    let first_from_peers = at_kill.u64("bytes_from_peers");
    assert!(
        killed_verified < SIZE * 3 / 4,
        "progress jumped past 75 % before the kill: {:#}",
        at_kill.json
    );
    assert!(
        !final_path.exists(),
        "{} exists after a kill at {killed_verified} of {SIZE} bytes",
        final_path.display()
    );

    let mut second = Proc::spawn(
        "second get",
        &mut release.get(&out, &["--peer", &seed_addr]),
    );
    let resumed = second.wait_for("progress", deadline);
    let resumed_verified = resumed.u64("verified_bytes");
    assert!(
        resumed_verified > 0,
        "the restart began from zero: {:#}\n(killed at {killed_verified} verified bytes)",
        resumed.json
    );
    // Resume state is saved every 200 ms; at 4 MiB/s that loses under 1 MiB.
    assert!(
        resumed_verified + 2 * MIB >= killed_verified,
        "the restart lost too much: resumed at {resumed_verified}, killed at {killed_verified}"
    );
    // Half of 32 MiB over loopback takes a second or two; a stall behind a
    // 30 s reconnect delay is a bug, not slowness.
    let restart_deadline = Instant::now() + Duration::from_secs(15);
    let Some(complete) = second.try_wait_for("complete", restart_deadline) else {
        panic!(
            "the resumed download did not complete within 15 s\n{}\n{}",
            second.report(),
            seed.report()
        );
    };
    second.expect_success(deadline);
    release.assert_downloaded(&out, &original, "the restarted download");

    let second_from_peers = complete.u64("bytes_from_peers");
    eprintln!(
        "sigkill: killed at {killed_verified} verified / {first_from_peers} from peers, \
         resumed at {resumed_verified}, then {second_from_peers} from peers"
    );
    assert!(
        (first_from_peers + second_from_peers) as f64 <= 1.1 * SIZE as f64,
        "downloaded {first_from_peers} + {second_from_peers} bytes for a {SIZE}-byte release"
    );
}

/// An honest seed (capped, so the liar gets its share of requests) and a
/// peer that corrupts every block: the liar is dropped and refused on its
/// return, and the download completes intact.
#[test]
fn lying_peer_is_banned_and_download_completes() {
    const SIZE: u64 = 8 * MIB;
    const PIECE: u64 = 64 * 1024;
    let deadline = Instant::now() + Duration::from_secs(90);
    let tracker = start_tracker(deadline);
    let release = Release::publish("lib-8m.bin", SIZE, PIECE, &tracker.announce, 33);
    let original = std::fs::read(release.original()).unwrap();
    let torrent = meta::read_torrent_file(&release.torrent).unwrap();
    let liar = LyingSeed::start(LiarConfig {
        info_hash: engine::wire_info_hash(&torrent),
        piece_length: torrent.piece_length,
        piece_count: u32::try_from(torrent.piece_count()).unwrap(),
        content: Arc::new(original.clone()),
        corrupt_one_in: 1,
        mute: false,
    });
    let (_seed, seed_addr) = start_seed(&release, &["--max-up", "2M"], deadline);

    let out = release.out_dir("download");
    let mut downloader = Proc::spawn(
        "get",
        &mut release.get(
            &out,
            &[
                "--peer",
                &seed_addr.to_string(),
                "--peer",
                &liar.addr().to_string(),
            ],
        ),
    );
    let started = downloader.wait_for("started", deadline);
    liar.knock_again_at(listen_addr(&started));

    let mut progress = Vec::new();
    let complete = loop {
        let event = downloader.next_event(deadline, "the download to complete");
        match event.name() {
            "complete" => break event,
            "progress" => progress.push(event),
            _ => {}
        }
    };
    downloader.expect_success(deadline);
    release.assert_downloaded(&out, &original, "the download");

    // The knock follows the liar's first disconnection by a few seconds.
    let knock_deadline = Instant::now() + Duration::from_secs(15);
    while liar.knock() == Knock::NotTried && Instant::now() < knock_deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let connections = liar.connections();
    let knock = liar.knock();
    let context = format!(
        "liar connections {connections:#?}\nknock {knock:?}\ncomplete {:#}\n{}",
        complete.json,
        downloader.report()
    );
    let served: u64 = connections.iter().map(|c| c.blocks_served).sum();
    let since_start = |at: Instant| at.duration_since(started.at).as_secs_f64();
    eprintln!(
        "liar: {} connection(s), {served} blocks served, first closed at {:?} s, \
         knock {knock:?}; download complete at {:.1} s",
        connections.len(),
        connections
            .first()
            .and_then(|c| c.closed.as_ref())
            .map(|(at, _)| since_start(*at)),
        since_start(complete.at)
    );
    // Three strikes need at least three bad pieces' worth of blocks.
    let blocks_per_piece = PIECE / (16 * 1024);
    assert!(
        served >= 3 * blocks_per_piece,
        "the liar served only {served} blocks; the test proves nothing: {context}"
    );
    // shoal dialled the liar once and never again (the knock was the liar's
    // own dial, and comes after the first connection closed).
    assert_eq!(connections.len(), 1, "{context}");
    let Some((closed_at, _)) = &connections[0].closed else {
        panic!("the liar is still connected after completion: {context}");
    };
    // Dropped while the download was still going, not at its end.
    let after_drop = progress.iter().find(|p| p.at > *closed_at);
    assert!(
        after_drop.is_some_and(|p| p.u64("verified_bytes") < SIZE),
        "the liar was not dropped before the download finished: {context}"
    );
    // Coming back from the same address, it is refused: banned, not just
    // disconnected.
    assert_eq!(knock, Knock::Refused, "{context}");
}
