//! Unit tests of the announce reply parser.

use super::*;
use bencode::Bencode;

fn reply(peers: Bencode, extra: Vec<(&str, Bencode)>) -> Vec<u8> {
    let mut entries = vec![("interval", Bencode::int(900)), ("peers", peers)];
    entries.extend(extra);
    Bencode::dict(entries).encode()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

#[test]
fn compact_peers_with_counts_and_intervals() {
    let body = reply(
        Bencode::bytes(vec![10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0, 80]),
        vec![
            ("min interval", Bencode::int(30)),
            ("complete", Bencode::int(4)),
            ("incomplete", Bencode::int(7)),
            ("tracker id", Bencode::string("abc")),
            ("warning message", Bencode::string("be nice")),
        ],
    );
    let r = parse_announce_response(&body).expect("valid reply");
    assert_eq!(r.peers, [addr("10.0.0.1:6881"), addr("192.168.1.2:80")]);
    assert_eq!(r.interval, Duration::from_secs(900));
    assert_eq!(r.min_interval, Some(Duration::from_secs(30)));
    assert_eq!((r.complete, r.incomplete), (Some(4), Some(7)));
    assert_eq!(r.tracker_id.as_deref(), Some(&b"abc"[..]));
    assert_eq!(r.warning.as_deref(), Some("be nice"));
}

#[test]
fn dictionary_peers_skip_what_cannot_be_used() {
    let peer = |ip: &str, port: i64| {
        Bencode::dict([
            ("ip", Bencode::string(ip)),
            ("port", Bencode::int(port)),
            ("peer id", Bencode::bytes(vec![0xff; 20])),
        ])
    };
    let body = reply(
        Bencode::List(vec![
            peer("10.0.0.1", 6881),
            peer("2001:db8::7", 443),
            peer("tracker.example", 1),
            peer("10.0.0.2", 70000),
            peer("10.0.0.3", 0),
        ]),
        vec![],
    );
    let r = parse_announce_response(&body).expect("valid reply");
    assert_eq!(r.peers, [addr("10.0.0.1:6881"), addr("[2001:db8::7]:443")]);
}

#[test]
fn peers6_entries_are_18_bytes() {
    let mut six = vec![0x20, 0x01, 0x0d, 0xb8];
    six.extend([0; 11]);
    six.push(9);
    six.extend(6881u16.to_be_bytes());
    let body = reply(
        Bencode::bytes(vec![]),
        vec![("peers6", Bencode::bytes(six.clone()))],
    );
    let r = parse_announce_response(&body).expect("valid reply");
    assert_eq!(r.peers, [addr("[2001:db8::9]:6881")]);

    six.pop();
    let body = reply(
        Bencode::bytes(vec![]),
        vec![("peers6", Bencode::bytes(six))],
    );
    assert!(matches!(
        parse_announce_response(&body),
        Err(TrackerError::Malformed { .. })
    ));
}

#[test]
fn failure_reason_wins() {
    let body =
        Bencode::dict([("failure reason", Bencode::string("unregistered torrent"))]).encode();
    match parse_announce_response(&body) {
        Err(TrackerError::Failure { reason, .. }) => assert_eq!(reason, "unregistered torrent"),
        other => panic!("expected Failure, got {other:?}"),
    }
}

#[test]
fn port_zero_and_unspecified_dropped_duplicates_merged() {
    let mut compact = Vec::new();
    for entry in [
        [1, 2, 3, 4, 0, 0],
        [1, 2, 3, 4, 0, 9],
        [0, 0, 0, 0, 0, 9],
        [1, 2, 3, 4, 0, 9],
    ] {
        compact.extend(entry);
    }
    // The same peer again, as an IPv4-mapped IPv6 address.
    let mut mapped = vec![0; 10];
    mapped.extend([0xff, 0xff, 1, 2, 3, 4, 0, 9]);
    let body = reply(
        Bencode::bytes(compact),
        vec![("peers6", Bencode::bytes(mapped))],
    );
    let r = parse_announce_response(&body).expect("valid reply");
    assert_eq!(r.peers, [addr("1.2.3.4:9")]);
}

/// Found by the `tracker_response` fuzz target: `::ffff:0.0.0.0` passed
/// the unspecified check as IPv6 and came out as 0.0.0.0.
#[test]
fn an_ipv4_mapped_unspecified_address_is_dropped() {
    let mut mapped = vec![0; 10];
    mapped.extend([0xff, 0xff, 0, 0, 0, 0, 0, 9]);
    let body = reply(
        Bencode::bytes(vec![1, 2, 3, 4, 0, 9]),
        vec![("peers6", Bencode::bytes(mapped))],
    );
    let r = parse_announce_response(&body).expect("valid reply");
    assert_eq!(r.peers, [addr("1.2.3.4:9")]);
}

#[test]
fn a_million_compact_peers_keep_only_max_peers() {
    let mut compact = Vec::with_capacity(6_000_000);
    for n in 0u32..1_000_000 {
        compact.extend((n | 0x0a00_0000).to_be_bytes());
        compact.extend(6881u16.to_be_bytes());
    }
    let body = reply(Bencode::bytes(compact), vec![]);
    let r = parse_announce_response(&body).expect("valid reply");
    assert_eq!(r.peers.len(), MAX_PEERS);
    assert_eq!(r.peers[0], addr("10.0.0.0:6881"));
}

#[test]
fn intervals_are_clamped() {
    let body = Bencode::dict([
        ("interval", Bencode::int(1)),
        ("min interval", Bencode::int(-5)),
    ])
    .encode();
    let r = parse_announce_response(&body).expect("valid reply");
    assert_eq!(r.interval, MIN_INTERVAL);
    assert_eq!(r.min_interval, Some(MIN_INTERVAL));
    assert!(r.peers.is_empty());
    let body = Bencode::dict([
        ("interval", Bencode::int(i64::MAX)),
        ("min interval", Bencode::int(i64::MAX)),
    ])
    .encode();
    let r = parse_announce_response(&body).expect("valid reply");
    assert_eq!(
        (r.interval, r.min_interval),
        (MAX_INTERVAL, Some(MAX_INTERVAL))
    );
}

#[test]
fn malformed_replies_are_typed() {
    let malformed: [&[u8]; 6] = [
        b"",
        b"<html>busy</html>",
        b"le",
        b"d5:peers0:e",
        b"d8:intervali60e5:peersi3ee",
        b"d8:intervali60e5:peers5:12345e",
    ];
    for body in malformed {
        assert!(
            matches!(
                parse_announce_response(body),
                Err(TrackerError::Malformed { .. })
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}
