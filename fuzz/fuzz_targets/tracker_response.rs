//! The client's parser of tracker announce replies: never panics, keeps at
//! most MAX_PEERS distinct peers, and clamps the intervals.
#![no_main]

use engine::tracker_client::{parse_announce_response, MAX_INTERVAL, MAX_PEERS, MIN_INTERVAL};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reply) = parse_announce_response(data) else {
        return;
    };
    assert!(reply.peers.len() <= MAX_PEERS);
    let mut distinct = reply.peers.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), reply.peers.len(), "duplicate peers kept");
    assert!((MIN_INTERVAL..=MAX_INTERVAL).contains(&reply.interval));
    if let Some(min) = reply.min_interval {
        assert!(min >= MIN_INTERVAL && min <= reply.interval);
    }
    assert!(reply
        .peers
        .iter()
        .all(|p| p.port() != 0 && !p.ip().is_unspecified()));
});
