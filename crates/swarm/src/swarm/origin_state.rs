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
}
