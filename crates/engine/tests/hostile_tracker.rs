//! Hostile trackers (issue 8): a reply of 100 MB or with 1,000,000 peers
//! must end in a clear error or a capped peer list, with memory bounded by
//! the client's caps rather than by what the tracker sends. Servers are
//! raw sockets on 127.0.0.1 so they can lie about and exceed any size.
//!
//! Memory is the process's peak resident set during each announce (Linux:
//! VmHWM after resetting it through /proc/self/clear_refs). The tests take
//! turns so that one test's buffers do not count against another.
#![cfg(target_os = "linux")]

use std::time::Duration;

use engine::tracker_client::{
    announce, parse_announce_response, AnnounceEvent, AnnounceRequest, TrackerError, MAX_PEERS,
    MAX_RESPONSE_BYTES,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

const TIMEOUT: Duration = Duration::from_secs(20);
const HUNDRED_MB: usize = 100 * 1024 * 1024;
const MILLION: usize = 1_000_000;
/// Peak growth allowed while a hostile reply is refused: a few times the
/// 1 MiB body cap, for the HTTP client's own buffers.
const MAX_GROWTH_BYTES: u64 = 16 * 1024 * 1024;

/// One memory measurement at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn request() -> AnnounceRequest {
    AnnounceRequest {
        info_hash: [0x42; 20],
        peer_id: *b"-SH0100-hostiletrack",
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: 1,
        event: Some(AnnounceEvent::Started),
        numwant: None,
        key: 1,
        compact: true,
        origin_bytes: None,
    }
}

/// A one-shot HTTP server: after the request head it sends `head`, then
/// `body` in 64 KiB writes, `repeat` times over, stopping when the client
/// hangs up. Repeating one buffer lets it send 100 MB without holding it.
async fn hostile_server(head: String, body: Vec<u8>, repeat: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..repeat {
            for chunk in body.chunks(64 * 1024) {
                if socket.write_all(chunk).await.is_err() {
                    return;
                }
            }
        }
    });
    format!("http://{addr}/announce")
}

/// `d8:intervali1800e5:peers<N>:<compact peers>e`: `count` distinct IPv4
/// peers, 6 bytes each.
fn compact_reply(count: usize) -> Vec<u8> {
    let mut peers = Vec::with_capacity(count * 6);
    for i in 0..count {
        let [_, a, b, c] = (i as u32).to_be_bytes();
        peers.extend_from_slice(&[10, a, b, c, 0x1a, 0xe1]);
    }
    let mut body = format!("d8:intervali1800e5:peers{}:", peers.len()).into_bytes();
    body.extend_from_slice(&peers);
    body.push(b'e');
    body
}

/// The same peers as BEP 3 dictionaries, about 30 bytes each.
fn dictionary_reply(count: usize) -> Vec<u8> {
    let mut body = b"d8:intervali1800e5:peersl".to_vec();
    for i in 0..count {
        let [_, a, b, c] = (i as u32).to_be_bytes();
        let ip = format!("10.{a}.{b}.{c}");
        body.extend_from_slice(format!("d2:ip{}:{ip}4:porti6881ee", ip.len()).as_bytes());
    }
    body.extend_from_slice(b"ee");
    body
}

fn close_delimited() -> String {
    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_owned()
}

fn declared(length: usize) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n")
}

/// Runs `work` and returns its output with the growth of the peak resident
/// set it caused, in bytes.
async fn peak_growth<T>(work: impl std::future::Future<Output = T>) -> (T, u64) {
    // "5" resets the peak (VmHWM) to the current resident set.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak resident set");
    let before = status_kib("VmRSS");
    let out = work.await;
    let peak = status_kib("VmHWM");
    (out, peak.saturating_sub(before) * 1024)
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

async fn assert_too_large_with_bounded_memory(url: String) {
    let client = reqwest::Client::new();
    let (result, growth) = peak_growth(announce(&client, &url, &request(), TIMEOUT)).await;
    let err = result.expect_err("the reply is over the cap");
    assert!(
        matches!(&err, TrackerError::TooLarge { limit, .. } if *limit == MAX_RESPONSE_BYTES),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&url),
        "the error names the tracker: {message}"
    );
    assert!(
        growth < MAX_GROWTH_BYTES,
        "peak memory grew by {growth} bytes refusing {url}"
    );
}

#[tokio::test]
async fn a_100_mb_reply_without_a_length_is_cut_off_with_bounded_memory() {
    let _turn = SERIAL.lock().await;
    let megabyte = vec![b'x'; 1024 * 1024];
    let url = hostile_server(close_delimited(), megabyte, HUNDRED_MB / (1024 * 1024)).await;
    assert_too_large_with_bounded_memory(url).await;
}

#[tokio::test]
async fn a_100_mb_reply_that_says_so_is_refused_with_bounded_memory() {
    let _turn = SERIAL.lock().await;
    let megabyte = vec![b'x'; 1024 * 1024];
    let url = hostile_server(declared(HUNDRED_MB), megabyte, HUNDRED_MB / (1024 * 1024)).await;
    assert_too_large_with_bounded_memory(url).await;
}

#[tokio::test]
async fn a_million_compact_peers_are_refused_with_bounded_memory() {
    let _turn = SERIAL.lock().await;
    // 6 MB of peers: built before the measurement starts.
    let body = compact_reply(MILLION);
    let url = hostile_server(close_delimited(), body, 1).await;
    assert_too_large_with_bounded_memory(url).await;
}

#[tokio::test]
async fn a_million_dictionary_peers_are_refused_with_bounded_memory() {
    let _turn = SERIAL.lock().await;
    let body = dictionary_reply(MILLION);
    let url = hostile_server(declared(body.len()), body, 1).await;
    assert_too_large_with_bounded_memory(url).await;
}

/// As many peers as fit under the body cap: accepted, but only the first
/// MAX_PEERS are kept.
#[tokio::test]
async fn the_most_peers_a_reply_can_hold_are_cut_to_max_peers() {
    let _turn = SERIAL.lock().await;
    let count = (MAX_RESPONSE_BYTES - 64) / 6;
    let body = compact_reply(count);
    assert!(body.len() <= MAX_RESPONSE_BYTES);
    let url = hostile_server(declared(body.len()), body, 1).await;
    let client = reqwest::Client::new();
    let (result, growth) = peak_growth(announce(&client, &url, &request(), TIMEOUT)).await;
    let reply = result.expect("a reply under the cap is accepted");
    assert_eq!(reply.peers.len(), MAX_PEERS);
    assert_eq!(reply.peers[0].to_string(), "10.0.0.0:6881");
    assert!(
        growth < MAX_GROWTH_BYTES,
        "peak memory grew by {growth} bytes"
    );
}

/// The parser alone, past the HTTP cap (as if a caller raised it): a
/// million compact peers still yield MAX_PEERS, and a million dictionaries
/// hit the decoder's value limit, a clear error, before a huge tree is built.
#[tokio::test]
async fn the_parser_bounds_a_million_peers_on_its_own() {
    let _turn = SERIAL.lock().await;
    let compact = compact_reply(MILLION);
    let (reply, growth) = peak_growth(async { parse_announce_response(&compact) }).await;
    assert_eq!(reply.expect("well formed").peers.len(), MAX_PEERS);
    assert!(
        growth < MAX_GROWTH_BYTES,
        "peak memory grew by {growth} bytes"
    );

    let dictionaries = dictionary_reply(MILLION);
    let (result, growth) = peak_growth(async { parse_announce_response(&dictionaries) }).await;
    let err = result.expect_err("too many values");
    assert!(matches!(err, TrackerError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("more than"), "{err}");
    assert!(
        growth < 64 * 1024 * 1024,
        "peak memory grew by {growth} bytes parsing {} bytes",
        dictionaries.len()
    );
}
