//! Unit tests of the query parser. The client↔server pinning test (every
//! byte value through the engine's encoder) is in
//! `crates/engine/tests/tracker_client.rs`.

use super::*;

/// Escapes every byte, the way strict clients do.
fn escape_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn base(extra: &str) -> String {
    format!(
        "info_hash={}&peer_id=-SH0100-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3{extra}",
        escape_all(&[0xAB; 20])
    )
}

#[test]
fn a_full_announce_parses() {
    let q = parse_announce_query(
        base("&event=started&compact=0&numwant=17&key=k%2Fy&no_peer_id=1&ip=6.6.6.6").as_bytes(),
    )
    .expect("valid query");
    assert_eq!(q.info_hash, [0xAB; 20]);
    assert_eq!(&q.peer_id, b"-SH0100-abcdefghijkl");
    assert_eq!((q.port, q.uploaded, q.downloaded, q.left), (6881, 1, 2, 3));
    assert_eq!(q.event, Some(AnnounceEvent::Started));
    assert!(!q.compact);
    assert_eq!(q.numwant, Some(17));
    assert_eq!(q.key.as_deref(), Some(&b"k/y"[..]));
    assert!(q.no_peer_id);
}

#[test]
fn defaults_compact_on_and_no_event() {
    let q = parse_announce_query(base("&event=empty").as_bytes()).expect("valid query");
    assert!(q.compact);
    assert_eq!(q.event, None);
    assert_eq!(q.numwant, None);
    assert!(!q.no_peer_id);
}

#[test]
fn every_byte_value_round_trips_escaped_or_literal() {
    let all: Vec<u8> = (0..=255).collect();
    for chunk in all.chunks(20) {
        let mut hash = [0u8; 20];
        hash[..chunk.len()].copy_from_slice(chunk);
        let q = format!(
            "info_hash={}&peer_id={}&port=1&left=0",
            escape_all(&hash),
            escape_all(&hash)
        );
        let parsed = parse_announce_query(q.as_bytes()).expect("valid query");
        assert_eq!(parsed.info_hash, hash);
    }
    // Unreserved and other harmless bytes may come unescaped; `+` is a plus.
    let literal = b"info_hash=ab+de-._~!*'()012345&peer_id=%41AAAAAAAAAAAAAAAAAAA&port=1&left=0";
    let parsed = parse_announce_query(literal).expect("valid query");
    assert_eq!(&parsed.info_hash, b"ab+de-._~!*'()012345");
    assert_eq!(&parsed.peer_id, b"AAAAAAAAAAAAAAAAAAAA");
}

#[test]
fn missing_fields_are_named() {
    let cases = [
        ("peer_id=%41AAAAAAAAAAAAAAAAAAA&port=1&left=0", "info_hash"),
        ("info_hash=%41AAAAAAAAAAAAAAAAAAA&port=1&left=0", "peer_id"),
        (
            "info_hash=%41AAAAAAAAAAAAAAAAAAA&peer_id=%41AAAAAAAAAAAAAAAAAAA&left=0",
            "port",
        ),
        (
            "info_hash=%41AAAAAAAAAAAAAAAAAAA&peer_id=%41AAAAAAAAAAAAAAAAAAA&port=1",
            "left",
        ),
    ];
    for (query, field) in cases {
        assert_eq!(
            parse_announce_query(query.as_bytes()),
            Err(QueryError::Missing(field)),
            "{query}"
        );
    }
    assert_eq!(parse_announce_query(b""), Err(QueryError::Missing("port")));
}

#[test]
fn invalid_values_are_typed_errors() {
    let invalid = |extra: &str| match parse_announce_query(base(extra).as_bytes()) {
        Err(QueryError::Invalid { name, .. }) => name,
        other => panic!("{extra}: expected Invalid, got {other:?}"),
    };
    assert_eq!(invalid("&event=paused"), "event");
    assert_eq!(invalid("&compact=yes"), "compact");
    assert_eq!(invalid("&numwant=-1"), "numwant");
    let port = |p: &str| base("").replace("port=6881", &format!("port={p}"));
    for bad in ["0", "65536", "x", ""] {
        assert!(
            matches!(
                parse_announce_query(port(bad).as_bytes()),
                Err(QueryError::Invalid { name: "port", .. })
            ),
            "port={bad}"
        );
    }
    let short = base("").replace(&escape_all(&[0xAB; 20]), &escape_all(&[0xAB; 19]));
    assert!(matches!(
        parse_announce_query(short.as_bytes()),
        Err(QueryError::Invalid {
            name: "info_hash",
            ..
        })
    ));
    let huge = base("").replace("left=3", "left=99999999999999999999");
    assert!(matches!(
        parse_announce_query(huge.as_bytes()),
        Err(QueryError::Invalid { name: "left", .. })
    ));
    assert!(matches!(
        parse_announce_query(base("&left=4").as_bytes()),
        Err(QueryError::Duplicate("left"))
    ));
    for bad_escape in ["&key=%4", "&key=%zz", "&key=%"] {
        assert!(matches!(
            parse_announce_query(base(bad_escape).as_bytes()),
            Err(QueryError::BadEscape(_))
        ));
    }
}

#[test]
fn over_long_queries_are_refused_before_parsing() {
    let long = base(&format!("&pad={}", "x".repeat(MAX_QUERY_BYTES)));
    assert_eq!(
        parse_announce_query(long.as_bytes()),
        Err(QueryError::TooLong)
    );
    let at_limit = base("&pad=");
    let padded = format!("{at_limit}{}", "x".repeat(MAX_QUERY_BYTES - at_limit.len()));
    assert!(parse_announce_query(padded.as_bytes()).is_ok());
}

#[test]
fn scrape_takes_several_hashes_and_bounds_them() {
    let a = escape_all(&[1; 20]);
    let b = escape_all(&[2; 20]);
    let hashes =
        parse_scrape_query(format!("info_hash={a}&info_hash={b}&info_hash={a}").as_bytes())
            .expect("valid scrape");
    assert_eq!(hashes, vec![[1; 20], [2; 20]]);
    assert_eq!(
        parse_scrape_query(b""),
        Err(QueryError::Missing("info_hash"))
    );
    let many: Vec<String> = (0..=MAX_SCRAPE_HASHES)
        .map(|i| format!("info_hash={:0>20}", i))
        .collect();
    assert_eq!(
        parse_scrape_query(many.join("&").as_bytes()),
        Err(QueryError::TooManyHashes)
    );
}
