//! What the swarm remembers of its link to the origin web server. The
//! decisions that use it are in `origin.rs`; the state stands apart so that
//! `Swarm` can hold it without `origin.rs` and `mod.rs` importing each other.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::rate::RateMeter;
use wire::BlockRef;

/// Agents remembered for the swarm's size: 64 Ki share ids, about 3 MiB.
pub(super) const MAX_AGENTS_SEEN: usize = 1 << 16;

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
    /// Agents in the swarm as the tracker last counted them (0: unknown).
    pub(super) swarm_size: u64,
    /// Share ids of the agents that connected to us or that we reached,
    /// kept or not (at most [`MAX_AGENTS_SEEN`]): at the start of a flash
    /// crowd the tracker's count is of those who came before us, and those
    /// who come after find us.
    pub(super) agents_seen: BTreeSet<u64>,
    /// The piece of the fetch under way, if we fetch it as its owner (it
    /// is abandoned once a peer has it or it is no longer ours).
    pub(super) owned_fetch: Option<u32>,
    /// Whether a tracker answered yet (or there is none to wait for).
    pub(super) tracker_heard: bool,
    /// How often our claim on unheld pieces was widened because nothing
    /// reached us or our peers: each doubles the owners per piece.
    pub(super) widenings: u32,
    pub(super) last_widening: Option<Instant>,
}
