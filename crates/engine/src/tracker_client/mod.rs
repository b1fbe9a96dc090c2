//! Talks to HTTP trackers (BEP 3 §trackers): builds the announce URL,
//! sends it, reads a bounded reply and parses the peers out of it
//! (compact per BEP 23, `peers6` per BEP 7, or the BEP 3 dictionary list).
//!
//! The URL builder and the reply parser are pure functions; `announce` is
//! the only code here that does I/O. A tracker is untrusted input: the body
//! is capped at [`MAX_RESPONSE_BYTES`] while it streams in and at most
//! [`MAX_PEERS`] peers are kept.

mod error;
mod fetch;
mod request;
mod response;

pub use error::TrackerError;
pub use fetch::{announce, read_capped};
pub use request::{announce_url, percent_encode, scrape_url, AnnounceEvent, AnnounceRequest};
pub use response::{
    parse_announce_response, AnnounceResponse, MAX_INTERVAL, MAX_PEERS, MAX_RESPONSE_BYTES,
    MIN_INTERVAL,
};
