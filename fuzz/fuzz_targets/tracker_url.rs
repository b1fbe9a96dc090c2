//! Tracker URLs taken from torrents: building the announce and scrape URLs
//! from a hostile base never panics (string slicing at odd places), and a
//! built URL keeps the base it came from and carries our parameters.
#![no_main]

use engine::tracker_client::{announce_url, scrape_url, AnnounceEvent, AnnounceRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(base) = std::str::from_utf8(data) else {
        return;
    };
    let request = AnnounceRequest {
        info_hash: [0xab; 20],
        peer_id: *b"-SH0100-fuzzfuzzfuzz",
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Some(AnnounceEvent::Started),
        numwant: Some(50),
        key: 7,
        compact: true,
        origin_bytes: Some(4),
    };
    if let Ok(url) = announce_url(base, &request) {
        // Each of our parameters is a pair of its own, not glued onto a
        // value of the base's query.
        assert_eq!(pairs(&url, "info_hash=%AB%AB"), 1, "{url}");
        assert_eq!(pairs(&url, "peer_id=-SH0100-fuzzfuzzfuzz"), 1, "{url}");
    }
    if let Ok(url) = scrape_url(base, &[[0xcd; 20], [0; 20]]) {
        assert!(url.contains("scrape"), "{url}");
        assert_eq!(pairs(&url, "info_hash="), 2, "{url}");
    }
});

/// How many `&`-separated pairs of the query start with `prefix`; counted
/// in the query only, as a path may spell `info_hash=` too.
fn pairs(url: &str, prefix: &str) -> usize {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    query.split('&').filter(|p| p.starts_with(prefix)).count()
}
