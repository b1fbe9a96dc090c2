//! The readers of a release and where they read. The decisions that use
//! them are in `streaming.rs`; the state stands apart so that `Swarm` can
//! hold it without `streaming.rs` and `mod.rs` importing each other.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::rate::RateMeter;

/// One reader's position (a torrent byte offset) and read rate.
#[derive(Debug)]
pub(super) struct Cursor {
    pub(super) offset: u64,
    pub(super) rate: RateMeter,
    /// When `offset` last moved.
    pub(super) moved: Instant,
}

/// The readers of a release.
#[derive(Debug, Default)]
pub(super) struct StreamCursors {
    pub(super) cursors: BTreeMap<u64, Cursor>,
}
