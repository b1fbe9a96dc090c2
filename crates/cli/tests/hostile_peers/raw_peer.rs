//! A raw BitTorrent peer for hostile-input tests: blocking loopback sockets
//! that complete a BEP 3 handshake (or half of one) and then send whatever
//! the test wants, plus what the tests read of the shoal process under
//! attack: its open descriptors (`/proc/PID/fd`) and its connection log.
//!
//! Every read has a deadline, so a shoal that neither answers nor closes
//! fails the test instead of hanging it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use wire::{Handshake, Reserved, HANDSHAKE_LEN};

/// Whom to attack and what the torrent looks like.
#[derive(Debug, Clone)]
pub struct RawPeer {
    pub addr: SocketAddr,
    /// The info-hash in handshakes (`engine::wire_info_hash`).
    pub info_hash: [u8; 20],
    pub piece_count: u32,
}

/// Bounds each connect and each read of the handshake.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// A distinct peer id per connection: shoal keeps one connection per peer
/// id, so sharing one would test its twin rule instead.
fn peer_id(n: u32) -> [u8; 20] {
    let mut id = *b"-HP0001-000000000000";
    id[8..].copy_from_slice(format!("{n:012}").as_bytes());
    id
}

/// Connects and exchanges handshakes (no extensions: plain BEP 3).
pub fn handshake(peer: &RawPeer, n: u32) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&peer.addr, STEP_TIMEOUT)?;
    stream.set_read_timeout(Some(STEP_TIMEOUT))?;
    stream.set_write_timeout(Some(STEP_TIMEOUT))?;
    let ours = Handshake {
        reserved: Reserved::default(),
        info_hash: peer.info_hash,
        peer_id: peer_id(n),
    };
    stream.write_all(&ours.encode())?;
    let mut theirs = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut theirs)?;
    Ok(stream)
}

/// Reads and discards until the other side closes (EOF or reset); returns
/// how long that took, or `None` if the connection is still open after
/// `bound`.
pub fn closed_within(stream: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = bound.saturating_sub(start.elapsed());
        if left.is_zero() {
            return None;
        }
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
}

/// Opens `count` connections that send the first 20 bytes of a handshake
/// and stall; returns how long shoal took to close each (the bound is the
/// caller's to assert; a connection still open after 30 s counts as 30 s).
pub fn slow_loris(peer: &RawPeer, count: usize) -> Vec<Duration> {
    let mut open = Vec::new();
    for _ in 0..count {
        let Ok(mut stream) = TcpStream::connect_timeout(&peer.addr, STEP_TIMEOUT) else {
            continue;
        };
        let ours = Handshake {
            reserved: Reserved::default(),
            info_hash: peer.info_hash,
            peer_id: peer_id(u32::MAX),
        };
        let _ = stream.write_all(&ours.encode()[..20]);
        open.push((Instant::now(), stream));
    }
    open.into_iter()
        .map(|(opened, mut stream)| {
            let left = Duration::from_secs(30).saturating_sub(opened.elapsed());
            match closed_within(&mut stream, left) {
                Some(_) => opened.elapsed(),
                None => Duration::from_secs(30),
            }
        })
        .collect()
}

/// Connections of one batch of a silent flood.
pub struct SilentBatch {
    /// Handshaken, then told something (shoal's bitfield): in the peer table.
    pub admitted: Vec<TcpStream>,
    /// Closed by shoal at accept, during the handshake or right after it.
    pub refused: usize,
}

/// Opens `count` connections at once, completes each handshake, and sends
/// nothing more. Shoal's first message (its bitfield) says the connection
/// is in its peer table; a close says it was refused. Refused sockets are
/// dropped here, so the test holds only what shoal holds.
pub fn silent_batch(peer: &RawPeer, first_id: u32, count: usize) -> SilentBatch {
    let mut sent = Vec::new();
    let mut refused = 0;
    for n in 0..count as u32 {
        let ours = Handshake {
            reserved: Reserved::default(),
            info_hash: peer.info_hash,
            peer_id: peer_id(first_id + n),
        };
        match TcpStream::connect_timeout(&peer.addr, STEP_TIMEOUT) {
            Ok(mut stream) => match stream.write_all(&ours.encode()) {
                Ok(()) => sent.push(stream),
                Err(_) => refused += 1,
            },
            Err(_) => refused += 1,
        }
    }
    let mut admitted = Vec::new();
    for mut stream in sent {
        let _ = stream.set_read_timeout(Some(STEP_TIMEOUT));
        let mut theirs = [0u8; HANDSHAKE_LEN];
        let mut first = [0u8; 1];
        let answered =
            stream.read_exact(&mut theirs).is_ok() && stream.read_exact(&mut first).is_ok();
        if answered {
            admitted.push(stream);
        } else {
            refused += 1;
        }
    }
    SilentBatch { admitted, refused }
}

/// Descriptors the process `pid` holds open.
#[cfg(target_os = "linux")]
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("cannot list /proc/{pid}/fd: {e}"))
        .count()
}

/// Without `/proc`, descriptors are not counted; the connection outcomes
/// the tests assert beside this still are.
#[cfg(not(target_os = "linux"))]
pub fn fd_count(_pid: u32) -> usize {
    0
}

/// Waits up to `bound` for `pid` to hold at most `limit` descriptors.
pub fn wait_fd_count_at_most(pid: u32, limit: usize, bound: Duration) {
    let deadline = Instant::now() + bound;
    loop {
        let now = fd_count(pid);
        if now <= limit {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} still holds {now} descriptors {bound:?} later (expected at most {limit}): \
             it let go of the connection but not of the socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a downloader's log (`RUST_LOG=engine=debug`) says about bans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanVerdict {
    /// Pieces that failed their hash check before the liar was banned;
    /// `None` if it never was.
    pub failed_before_ban: Option<usize>,
    /// Ban lines naming one of the honest peers.
    pub honest_banned: Vec<String>,
}

pub fn ban_log(log: &str, liar: SocketAddr, honest: &[SocketAddr]) -> BanVerdict {
    let mut failed = 0;
    let mut failed_before_ban = None;
    let mut honest_banned = Vec::new();
    for line in log.lines().map(strip_ansi) {
        if line.contains("piece failed its hash check") {
            failed += 1;
        } else if line.contains("disconnecting") && line.contains("reason=Banned") {
            if line.contains(&format!("({liar})")) {
                failed_before_ban.get_or_insert(failed);
            }
            if honest.iter().any(|h| line.contains(&format!("({h})"))) {
                honest_banned.push(line.clone());
            }
        }
    }
    BanVerdict {
        failed_before_ban,
        honest_banned,
    }
}

/// The log's text without terminal colour codes (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
