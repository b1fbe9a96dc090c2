//! What the swarm remembers of its link to the origin web server. The
//! decisions that use it are in `origin.rs`; the state stands apart so that
//! `Swarm` can hold it without `origin.rs` and `mod.rs` importing each other.

use std::time::Instant;

use crate::rate::RateMeter;
use wire::BlockRef;

#[derive(Debug)]
pub(super) struct Origin {
    /// Blocks asked of the origin and not yet arrived.
    pub(super) requests: Vec<BlockRef>,
    pub(super) usable: bool,
    pub(super) not_before: Option<Instant>,
    pub(super) download: RateMeter,
    pub(super) bytes: u64,
    pub(super) started: Instant,
    /// Ours, for sharing out unheld pieces.
    pub(super) share_id: u64,
    /// When the last stall fetch (a piece peers have, fetched because our
    /// link sat idle) started.
    pub(super) last_stall_fetch: Option<Instant>,
    /// Stall fetches made while connected peers had pieces we lack: each
    /// doubles the wait before the next one.
    pub(super) slow_crowd_streak: u32,
    /// The publisher's ceiling on the swarm's origin bytes, if it set one.
    pub(super) ceiling_bytes: Option<u64>,
    /// The swarm's origin bytes so far as the tracker last counted them.
    pub(super) swarm_bytes_reported: u64,
}
