//! The tracker's announce and scrape query parsers: never panic, refuse
//! oversized queries, and keep scrapes to MAX_SCRAPE_HASHES info-hashes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracker::announce_query::{
    parse_announce_query, parse_scrape_query, percent_decode, MAX_QUERY_BYTES, MAX_SCRAPE_HASHES,
};

fuzz_target!(|data: &[u8]| {
    let announce = parse_announce_query(data);
    let scrape = parse_scrape_query(data);
    if data.len() > MAX_QUERY_BYTES {
        assert!(announce.is_err() && scrape.is_err());
    }
    if let Ok(query) = announce {
        assert!(query.key.as_ref().is_none_or(|k| k.len() <= data.len()));
    }
    if let Ok(hashes) = scrape {
        assert!(hashes.len() <= MAX_SCRAPE_HASHES);
    }
    if let Some(decoded) = percent_decode(data) {
        assert!(decoded.len() <= data.len());
    }
});
