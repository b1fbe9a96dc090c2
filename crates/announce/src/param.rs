//! The names of the announce and scrape query parameters (BEP 3, BEP 23
//! for `compact`, BEP 48 for scrape's repeated `info_hash`), and shoal's
//! one addition, which other trackers ignore.

pub const INFO_HASH: &str = "info_hash";
pub const PEER_ID: &str = "peer_id";
pub const PORT: &str = "port";
pub const UPLOADED: &str = "uploaded";
pub const DOWNLOADED: &str = "downloaded";
pub const LEFT: &str = "left";
pub const EVENT: &str = "event";
pub const COMPACT: &str = "compact";
pub const NUMWANT: &str = "numwant";
pub const KEY: &str = "key";
pub const NO_PEER_ID: &str = "no_peer_id";
/// Of `downloaded`, the bytes a shoal agent got from the publisher's
/// origin web server (what the publisher is billed for serving).
pub const SHOAL_ORIGIN_BYTES: &str = "shoal_origin_bytes";
