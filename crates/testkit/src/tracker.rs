//! A real `shoal-tracker` on loopback and its scrape counts, for tests that
//! need clients to find each other through a tracker.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use bencode::Limits;

use crate::bins::shoal_tracker;
use crate::process::{wait_until, Proc, Scene};

/// A `shoal-tracker` serving on a free loopback port.
#[derive(Debug)]
pub struct LocalTracker {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT/announce`.
    pub announce: String,
}

impl LocalTracker {
    pub fn start(scene: &Scene) -> Self {
        Self::start_at(scene, "127.0.0.1", |cmd| cmd)
    }

    /// A tracker inside `namespace`, at its address: what clients that
    /// refuse loopback peers need (see [`crate::netns`]).
    #[cfg(target_os = "linux")]
    pub fn start_in(scene: &Scene, namespace: &crate::netns::Namespace) -> Self {
        Self::start_at(scene, &namespace.inner_addr, |cmd| namespace.wrap(&cmd))
    }

    fn start_at(scene: &Scene, ip: &str, wrap: impl FnOnce(Command) -> Command) -> Self {
        let mut cmd = shoal_tracker();
        // Every test peer is on one address: lift the per-address limit of
        // sessions per swarm (8 by default), which is for the internet.
        cmd.args(["serve", "--open", "--listen"])
            .arg(format!("{ip}:0"))
            .args(["--max-sessions-per-ip", "64"]);
        let mut proc = scene.spawn("tracker", &mut wrap(cmd));
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
