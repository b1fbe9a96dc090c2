//! `shoal demo` end to end: the newcomer's first command must finish on
//! its own, show the peers sharing (the origin sends about one copy), and
//! agree with its own tracker's accounting.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{field, shoal, Scene};

const PEERS: u64 = 4;

fn number(value: &Value, key: &str) -> u64 {
    field(value, key)
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {value:#}"))
}

fn assert_close(what: &str, accounted: u64, own: u64) {
    let ratio = accounted as f64 / own.max(1) as f64;
    assert!(
        (0.99..=1.01).contains(&ratio),
        "{what}: the tracker accounted {accounted} bytes, the peers count {own}"
    );
}

#[test]
fn demo_crowd_shares_and_the_tracker_agrees() {
    let scene = Scene::new();
    // The demo's temporary folder goes here, to check that it is removed.
    let tmp = scene.dir("tmp");
    let mut cmd = shoal();
    cmd.args([
        "demo",
        "--size",
        "8M",
        "--peers",
        &PEERS.to_string(),
        "--json",
    ])
    .env("TMPDIR", &tmp);
    let mut demo = scene.spawn("demo", &mut cmd);
    let deadline = Instant::now() + Duration::from_secs(240);

    let mut completed = BTreeSet::new();
    let summary = demo.next_json(deadline, |event| match event["event"].as_str() {
        Some("complete") => {
            completed.insert(number(event, "peer"));
            None
        }
        Some("summary") => Some(event.clone()),
        _ => None,
    });
    let status = demo.wait_exit(deadline);
    assert!(status.success(), "shoal demo exited with {status}");
    assert_eq!(
        completed,
        (0..PEERS).collect(),
        "every peer reported completion"
    );

    let size = number(&summary, "release_bytes");
    assert_eq!(size, 8 << 20, "{summary:#}");
    let peers = field(&summary, "peers")
        .as_array()
        .unwrap_or_else(|| panic!("peers is not an array: {summary:#}"));
    assert_eq!(peers.len() as u64, PEERS, "{summary:#}");
    for peer in peers {
        assert_eq!(field(peer, "complete"), true, "{summary:#}");
        assert_eq!(
            number(peer, "bytes_from_peers") + number(peer, "bytes_from_origin"),
            size,
            "each peer's bytes by source add up to the release: {peer:#}"
        );
    }

    // The origin sends about one copy; the rest moves between peers.
    let origin = number(&summary, "origin_bytes");
    let from_peers = number(&summary, "peer_bytes");
    assert!(
        origin >= size && origin as f64 <= 1.5 * size as f64,
        "origin sent {origin} bytes for a {size}-byte release: {summary:#}"
    );
    assert!(from_peers > 0, "peers shared nothing: {summary:#}");
    let served = number(&summary, "origin_served_bytes");
    assert!(
        served >= origin,
        "the origin server sent {served} bytes, the peers got {origin} from it"
    );

    // The embedded tracker accounted what the peers say they moved.
    let tracker = field(&summary, "tracker");
    assert_close("origin bytes", number(tracker, "origin_bytes"), origin);
    assert_close("peer bytes", number(tracker, "peer_bytes"), from_peers);
    assert_close(
        "all bytes",
        number(tracker, "peer_bytes") + number(tracker, "origin_bytes"),
        origin + from_peers,
    );
    assert_eq!(number(tracker, "completions"), PEERS, "{summary:#}");

    let dashboard = field(&summary, "dashboard")
        .as_str()
        .unwrap_or_else(|| panic!("no dashboard URL: {summary:#}"));
    assert!(
        dashboard.starts_with("http://127.0.0.1:") && dashboard.ends_with("/dashboard"),
        "{dashboard}"
    );
    assert_eq!(
        field(&summary, "token").as_str().map(str::len),
        Some(64),
        "the token to paste into the dashboard"
    );

    let left: Vec<_> = std::fs::read_dir(&tmp)
        .expect("read the temporary folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the demo left {left:?} behind");
}
