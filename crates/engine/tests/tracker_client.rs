//! The engine's tracker client against the real tracker and against small
//! misbehaving HTTP servers, all on 127.0.0.1.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::tracker_client::{
    announce, announce_url, AnnounceEvent, AnnounceRequest, TrackerError, MAX_RESPONSE_BYTES,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tracker::announce_query::{self, parse_announce_query};
use tracker::{Refusal, SwarmAdmission, Tracker, TrackerSettings};

const TIMEOUT: Duration = Duration::from_secs(5);

fn request(peer: u8, port: u16, left: u64) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: [0x5a; 20],
        peer_id: [peer; 20],
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event: Some(AnnounceEvent::Started),
        numwant: None,
        key: u32::from(peer),
        compact: true,
        origin_bytes: None,
    }
}

async fn start_tracker(tracker: Tracker) -> (String, oneshot::Sender<()>) {
    let bound = tracker.bind().await.expect("bind 127.0.0.1:0");
    let url = format!("http://{}/announce", bound.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

fn local_settings() -> TrackerSettings {
    TrackerSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..TrackerSettings::default()
    }
}

/// Pins the client's encoder to the server's parser: every byte value in
/// `info_hash` and `peer_id` survives the trip, and so do the other fields.
#[test]
fn every_byte_value_survives_client_encoding_and_server_parsing() {
    let all: Vec<u8> = (0..=255).collect();
    for (i, chunk) in all.chunks(20).enumerate() {
        let mut hash = [0xFF; 20];
        hash[..chunk.len()].copy_from_slice(chunk);
        let mut peer_id = hash;
        peer_id.reverse();
        let req = AnnounceRequest {
            info_hash: hash,
            peer_id,
            port: 6881,
            // The largest number trackers store (signed 64-bit).
            uploaded: i64::MAX as u64,
            downloaded: 7,
            left: i as u64,
            event: Some(AnnounceEvent::Completed),
            numwant: Some(33),
            key: 0xdead_beef,
            compact: i % 2 == 0,
            origin_bytes: Some(i as u64),
        };
        let url = announce_url("http://127.0.0.1:6969/announce?pk=1", &req).expect("valid url");
        let query = url.split_once('?').expect("a query").1;
        let parsed = parse_announce_query(query.as_bytes()).expect("the server accepts it");
        assert_eq!(parsed.info_hash, hash);
        assert_eq!(parsed.peer_id, peer_id);
        assert_eq!(
            (parsed.port, parsed.uploaded, parsed.downloaded),
            (6881, i64::MAX as u64, 7)
        );
        assert_eq!(parsed.left, i as u64);
        assert_eq!(parsed.event, Some(announce_query::AnnounceEvent::Completed));
        assert_eq!(parsed.numwant, Some(33));
        assert_eq!(parsed.compact, i % 2 == 0);
        assert_eq!(parsed.key.as_deref(), Some(&b"deadbeef"[..]));
    }
}

#[tokio::test]
async fn announce_round_trip_returns_the_other_peers() {
    let (url, _stop) = start_tracker(Tracker::new(local_settings()).with_rng_seed(1)).await;
    let client = reqwest::Client::new();
    for (peer, port) in [(1, 7001), (2, 7002)] {
        announce(&client, &url, &request(peer, port, 100), TIMEOUT)
            .await
            .expect("announce");
    }
    let reply = announce(&client, &url, &request(3, 7003, 100), TIMEOUT)
        .await
        .expect("announce");
    let mut peers = reply.peers.clone();
    peers.sort();
    let expected: Vec<SocketAddr> = ["127.0.0.1:7001", "127.0.0.1:7002"]
        .iter()
        .map(|s| s.parse().expect("address"))
        .collect();
    assert_eq!(peers, expected);
    assert_eq!(reply.interval, Duration::from_secs(1800));
    assert_eq!(reply.min_interval, Some(Duration::from_secs(60)));
    assert_eq!(reply.incomplete, Some(3));
}

struct RefuseAll;

impl SwarmAdmission for RefuseAll {
    fn admit(&self, _info_hash: &[u8; 20]) -> Result<tracker::Admitted, Refusal> {
        Err(Refusal("torrent not registered with this tracker".into()))
    }
}

#[tokio::test]
async fn a_refused_swarm_is_a_failure_naming_the_tracker() {
    let (url, _stop) =
        start_tracker(Tracker::new(local_settings()).with_admission(RefuseAll)).await;
    let err = announce(&reqwest::Client::new(), &url, &request(1, 7001, 0), TIMEOUT)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, TrackerError::Failure { reason, .. } if reason.contains("not registered")),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn a_tracker_that_is_not_listening_is_unreachable_quickly() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let url = format!("http://{addr}/announce");
    let started = Instant::now();
    let err = announce(&reqwest::Client::new(), &url, &request(1, 7001, 0), TIMEOUT)
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, TrackerError::Unreachable { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.to_string().contains(&url), "{err}");
}

/// A one-connection HTTP server that reads the request head, then lets
/// `respond` do whatever it likes with the socket.
async fn misbehaving_server<F, Fut>(respond: F) -> String
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        respond(socket).await;
    });
    format!("http://{addr}/announce")
}

#[tokio::test]
async fn an_endless_body_is_cut_off_at_the_cap() {
    let url = misbehaving_server(|mut socket| async move {
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            .await;
        let chunk = vec![b'x'; 64 * 1024];
        // 16 MiB at most: far past the cap, still a bounded loop.
        for _ in 0..256 {
            if socket.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    let err = announce(&reqwest::Client::new(), &url, &request(1, 7001, 0), TIMEOUT)
        .await
        .expect_err("too large");
    assert!(
        matches!(&err, TrackerError::TooLarge { limit, .. } if *limit == MAX_RESPONSE_BYTES),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_reading() {
    let url = misbehaving_server(|mut socket| async move {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            2 * MAX_RESPONSE_BYTES
        );
        let _ = socket.write_all(head.as_bytes()).await;
        // Send nothing more: the client must not wait for the body.
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await;
    let started = Instant::now();
    let err = announce(&reqwest::Client::new(), &url, &request(1, 7001, 0), TIMEOUT)
        .await
        .expect_err("too large");
    assert!(matches!(err, TrackerError::TooLarge { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_silent_tracker_times_out_on_time() {
    let url = misbehaving_server(|socket| async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(socket);
    })
    .await;
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = announce(&reqwest::Client::new(), &url, &request(1, 7001, 0), timeout)
        .await
        .expect_err("timeout");
    assert!(
        matches!(err, TrackerError::Timeout { after, .. } if after == timeout),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_server_error_is_an_http_status_error() {
    let url = misbehaving_server(|mut socket| async move {
        let _ = socket
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops")
            .await;
    })
    .await;
    let err = announce(&reqwest::Client::new(), &url, &request(1, 7001, 0), TIMEOUT)
        .await
        .expect_err("500");
    assert!(
        matches!(err, TrackerError::HttpStatus { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(err.to_string().contains("HTTP 500"), "{err}");
}

#[tokio::test]
async fn a_non_bencoded_reply_is_malformed() {
    let url = misbehaving_server(|mut socket| async move {
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n<html></html>")
            .await;
    })
    .await;
    let err = announce(&reqwest::Client::new(), &url, &request(1, 7001, 0), TIMEOUT)
        .await
        .expect_err("not bencode");
    assert!(matches!(err, TrackerError::Malformed { .. }), "{err:?}");
}
