//! The tracker over real HTTP on 127.0.0.1, driven by a plain HTTP client
//! (not the engine's tracker client: the tracker must not depend on the
//! engine; the client↔server test lives in crates/engine/tests).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bencode::{decode, Limits};
use testkit::http::escape;
use tokio::sync::oneshot;
use tracker::{Tracker, TrackerSettings};

struct Running {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(settings: TrackerSettings) -> Running {
    let bound = Tracker::new(settings)
        .with_rng_seed(7)
        .bind()
        .await
        .expect("bind 127.0.0.1:0");
    let addr = bound.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));
    Running { addr, _stop: stop }
}

fn settings() -> TrackerSettings {
    TrackerSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..TrackerSettings::default()
    }
}

/// One announce; returns the raw body.
async fn announce(client: &reqwest::Client, tracker: SocketAddr, query: &str) -> Vec<u8> {
    let url = format!("http://{tracker}/announce?{query}");
    let response = client.get(url).send().await.expect("tracker answers");
    assert_eq!(response.status(), 200);
    response.bytes().await.expect("body").to_vec()
}

fn query(hash: u8, peer: u8, port: u16, left: u64, extra: &str) -> String {
    format!(
        "info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}{extra}",
        escape(&[hash; 20]),
        escape(&[peer; 20])
    )
}

/// The compact IPv4 peers of a reply, sorted by port.
fn ports(body: &[u8]) -> Vec<u16> {
    let v = decode(body, Limits::default()).expect("bencoded reply");
    assert!(
        v.get("failure reason").is_none(),
        "{}",
        String::from_utf8_lossy(body)
    );
    let peers = v
        .get("peers")
        .and_then(|p| p.as_bytes())
        .expect("compact peers");
    let mut ports: Vec<u16> = peers
        .chunks_exact(6)
        .map(|e| u16::from_be_bytes([e[4], e[5]]))
        .collect();
    ports.sort_unstable();
    ports
}

fn failure(body: &[u8]) -> String {
    let v = decode(body, Limits::default()).expect("bencoded reply");
    v.get("failure reason")
        .and_then(|r| r.as_str())
        .unwrap_or_else(|| panic!("no failure reason in {}", String::from_utf8_lossy(body)))
        .to_owned()
}

#[tokio::test]
async fn three_peers_get_each_other_but_not_themselves() {
    let t = start(settings()).await;
    let c = reqwest::Client::new();
    announce(&c, t.addr, &query(1, 1, 1001, 10, "&event=started")).await;
    announce(&c, t.addr, &query(1, 2, 1002, 10, "&event=started")).await;
    let third = announce(&c, t.addr, &query(1, 3, 1003, 10, "&event=started")).await;
    assert_eq!(ports(&third), [1001, 1002]);
    let first = announce(&c, t.addr, &query(1, 1, 1001, 10, "")).await;
    assert_eq!(ports(&first), [1002, 1003]);
    let v = decode(&first, Limits::default()).expect("bencoded reply");
    assert_eq!(v.get("interval").and_then(|i| i.as_int()), Some(1800));
    assert_eq!(v.get("incomplete").and_then(|i| i.as_int()), Some(3));
    // Another swarm is separate.
    assert!(ports(&announce(&c, t.addr, &query(2, 4, 1004, 10, "")).await).is_empty());
}

#[tokio::test]
async fn seeds_do_not_get_seeds_and_dictionary_form_works() {
    let t = start(settings()).await;
    let c = reqwest::Client::new();
    announce(&c, t.addr, &query(1, 1, 1001, 0, "")).await;
    announce(&c, t.addr, &query(1, 2, 1002, 5, "")).await;
    let seed = announce(&c, t.addr, &query(1, 3, 1003, 0, "")).await;
    assert_eq!(ports(&seed), [1002]);

    let dicts = announce(&c, t.addr, &query(1, 4, 1004, 5, "&compact=0")).await;
    let v = decode(&dicts, Limits::default()).expect("bencoded reply");
    let list = v
        .get("peers")
        .and_then(|p| p.as_list())
        .expect("dictionary peers");
    assert_eq!(list.len(), 3);
    for peer in list {
        assert_eq!(peer.get("ip").and_then(|i| i.as_str()), Some("127.0.0.1"));
        assert!(
            peer.get("peer id").is_none(),
            "peer ids are not handed out by default"
        );
    }
}

/// Regression (audit finding 2): `compact=0` handed out other peers' ids,
/// what it takes to impersonate them. Only an operator's setting brings
/// them back.
#[tokio::test]
async fn compact_0_answers_carry_peer_ids_only_when_the_operator_allows() {
    for share_peer_ids in [false, true] {
        let t = start(TrackerSettings {
            share_peer_ids,
            ..settings()
        })
        .await;
        let c = reqwest::Client::new();
        announce(&c, t.addr, &query(1, 1, 1001, 5, "")).await;
        let body = announce(&c, t.addr, &query(1, 2, 1002, 5, "&compact=0&no_peer_id=0")).await;
        let v = decode(&body, Limits::default()).expect("bencoded reply");
        let list = v.get("peers").and_then(|p| p.as_list()).expect("dicts");
        assert_eq!(list.len(), 1);
        let id = list[0].get("peer id").and_then(|p| p.as_bytes());
        assert_eq!(id.map(<[u8]>::len), share_peer_ids.then_some(20));
    }
}

#[tokio::test]
async fn stopped_removes_and_silence_expires() {
    let t = start(TrackerSettings {
        peer_expiry_secs: 1,
        ..settings()
    })
    .await;
    let c = reqwest::Client::new();
    announce(&c, t.addr, &query(1, 1, 1001, 5, "")).await;
    announce(&c, t.addr, &query(1, 2, 1002, 5, "")).await;
    let stopped = announce(&c, t.addr, &query(1, 2, 1002, 5, "&event=stopped")).await;
    assert!(ports(&stopped).is_empty());
    assert_eq!(
        ports(&announce(&c, t.addr, &query(1, 3, 1003, 5, "")).await),
        [1001]
    );

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let after = announce(&c, t.addr, &query(1, 4, 1004, 5, "")).await;
    assert!(ports(&after).is_empty(), "silent peers should have expired");
}

#[tokio::test]
async fn scrape_counts_complete_incomplete_downloaded() {
    let t = start(settings()).await;
    let c = reqwest::Client::new();
    announce(&c, t.addr, &query(1, 1, 1001, 5, "&event=started")).await;
    announce(&c, t.addr, &query(1, 2, 1002, 5, "&event=started")).await;
    announce(&c, t.addr, &query(1, 2, 1002, 0, "&event=completed")).await;
    announce(&c, t.addr, &query(1, 3, 1003, 0, "")).await;

    let url = format!(
        "http://{}/scrape?info_hash={}&info_hash={}",
        t.addr,
        escape(&[1; 20]),
        escape(&[9; 20])
    );
    let body = c
        .get(url)
        .send()
        .await
        .expect("scrape")
        .bytes()
        .await
        .expect("body");
    let v = decode(&body, Limits::default()).expect("bencoded reply");
    let files = v.get("files").and_then(|f| f.as_dict()).expect("files");
    let stats = |hash: [u8; 20], key: &str| {
        files
            .iter()
            .find(|(k, _)| *k == hash)
            .and_then(|(_, s)| s.get(key))
            .and_then(|n| n.as_int())
    };
    assert_eq!(stats([1; 20], "complete"), Some(2));
    assert_eq!(stats([1; 20], "incomplete"), Some(1));
    assert_eq!(stats([1; 20], "downloaded"), Some(1));
    assert_eq!(stats([9; 20], "complete"), Some(0));
}

#[tokio::test]
async fn bad_requests_get_404_or_a_failure_reason() {
    let t = start(settings()).await;
    let c = reqwest::Client::new();
    let missing = c
        .get(format!("http://{}/nothing", t.addr))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);

    let garbage = announce(&c, t.addr, "info_hash=%zz&&&=").await;
    assert!(
        failure(&garbage).contains("escape"),
        "{}",
        failure(&garbage)
    );
    let short = announce(&c, t.addr, "info_hash=abc&peer_id=x&port=1&left=0").await;
    assert!(failure(&short).contains("info_hash"));
    let long = announce(&c, t.addr, &query(1, 1, 1, 0, &"&x=y".repeat(2000))).await;
    assert!(failure(&long).contains("longer"));
    let scrape = c
        .get(format!("http://{}/scrape", t.addr))
        .send()
        .await
        .expect("answer");
    assert_eq!(scrape.status(), 200);
    assert!(failure(&scrape.bytes().await.expect("body")).contains("info_hash"));
}

/// Different loopback source addresses need Linux (all of 127/8 is local).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn peers_in_the_same_slash_24_come_first() {
    let t = start(settings()).await;
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<IpAddr>().expect("ip"))
            .build()
            .expect("client")
    };
    for n in 1..=5u8 {
        announce(
            &from(&format!("127.0.5.{n}")),
            t.addr,
            &query(1, n, 2000, 5, ""),
        )
        .await;
    }
    announce(&from("127.0.0.9"), t.addr, &query(1, 50, 3000, 5, "")).await;
    let asker = from("127.0.0.1");
    for numwant in [1, 3] {
        let body = announce(
            &asker,
            t.addr,
            &query(1, 99, 4000, 5, &format!("&numwant={numwant}")),
        )
        .await;
        let v = decode(&body, Limits::default()).expect("bencoded reply");
        let peers = v.get("peers").and_then(|p| p.as_bytes()).expect("compact");
        assert_eq!(peers.len(), 6 * numwant);
        assert_eq!(
            &peers[..6],
            &[127, 0, 0, 9, 0x0b, 0xb8],
            "the neighbour comes first"
        );
    }
}

#[tokio::test]
async fn idle_connections_are_closed() {
    use tokio::io::AsyncReadExt;
    let t = start(TrackerSettings {
        idle_timeout_secs: 1,
        ..settings()
    })
    .await;
    let mut socket = tokio::net::TcpStream::connect(t.addr)
        .await
        .expect("connect");
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(3), socket.read(&mut buf))
        .await
        .expect("the tracker should close a silent connection within its idle timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

/// Hostile announces: each gets a bencoded failure reason (or a 4xx for a
/// request too large to read), never a 5xx, and the tracker keeps serving.
#[tokio::test]
async fn malformed_announces_get_a_failure_reason_never_a_server_error() {
    let t = start(settings()).await;
    let c = reqwest::Client::new();
    let good = query(3, 3, 6881, 10, "");
    let replace = |from: &str, to: &str| good.replace(from, to);
    let hash_21 = format!("info_hash={}", escape(&[3; 21]));
    let cases: Vec<(String, String)> = vec![
        ("no fields".into(), String::new()),
        (
            "no info_hash".into(),
            replace(&format!("info_hash={}", escape(&[3; 20])), ""),
        ),
        (
            "no peer_id".into(),
            replace(&format!("peer_id={}", escape(&[3; 20])), ""),
        ),
        ("no port".into(), replace("port=6881", "")),
        (
            "21-byte info_hash".into(),
            replace(&format!("info_hash={}", escape(&[3; 20])), &hash_21),
        ),
        ("negative left".into(), replace("left=10", "left=-1")),
        (
            "negative uploaded".into(),
            replace("uploaded=0", "uploaded=-5"),
        ),
        (
            "absurd downloaded".into(),
            replace("downloaded=0", &format!("downloaded={}", u128::MAX)),
        ),
        ("port 0".into(), replace("port=6881", "port=0")),
        ("port 99999".into(), replace("port=6881", "port=99999")),
        ("numwant -1".into(), format!("{good}&numwant=-1")),
        (
            "numwant absurd".into(),
            format!("{good}&numwant=99999999999999999999999"),
        ),
        ("unknown event".into(), format!("{good}&event=exploded")),
        ("bad escape".into(), format!("{good}&key=%G1")),
        (
            "10 KB of fields".into(),
            format!("{good}{}", "&pad=x".repeat(2_000)),
        ),
    ];
    for (what, q) in &cases {
        let url = format!("http://{}/announce?{q}", t.addr);
        let response = c.get(url).send().await.expect("tracker answers");
        assert_eq!(response.status(), 200, "{what}");
        let body = response.bytes().await.expect("body");
        let reason = failure(&body);
        assert!(!reason.is_empty(), "{what}");
    }
    // Far too long to be a request at all: refused by the HTTP layer.
    for size in [100_000usize, 1_000_000] {
        let url = format!("http://{}/announce?{good}&pad={}", t.addr, "x".repeat(size));
        let status = match c.get(url).send().await {
            Ok(response) => Some(response.status()),
            Err(_) => None, // closed without an answer: also acceptable
        };
        if let Some(status) = status {
            assert!(
                status.is_client_error() || status == 200,
                "{size}-byte query answered {status}"
            );
        }
    }
    // Still serving, and none of the above joined the swarm.
    let body = announce(&c, t.addr, &query(3, 4, 7000, 10, "")).await;
    assert_eq!(ports(&body), Vec::<u16>::new());
}
