//! Accounting: from successive announces of each peer session, the bytes a
//! release moved, by source, per day.
//!
//! Announces carry running totals (`uploaded`, `downloaded`, and from
//! shoal agents `shoal_origin_bytes`). The tracker keeps, per session, the
//! highest totals seen; only growth beyond them is counted, so a repeated
//! or reordered announce adds nothing. Reports are merged in memory
//! ([`PendingReports`]) and written in batches by the store, which applies
//! [`session_delta`] against the totals it has stored.
//!
//! Nothing here trusts a client: a session is bound to its peer id, IP and
//! `key`; its first report only sets a baseline; its growth is capped by a
//! line rate; completions count once per (IP, release, day); every sum
//! saturates. What fails a check is counted as flagged, never billed.

mod delta;
mod pending;

pub use delta::{
    changes_anything, session_delta, Reported, SessionReport, SessionState, UsageDelta,
    IDLE_TOUCH_SECS,
};
pub use pending::PendingReports;

pub use units::days::day_of;
