//! The streaming window: pieces just ahead of a reader, fetched in order
//! before anything else so a stream (the browser hand-off) never waits on
//! a piece that rarest-first left for last. The window is set by the swarm
//! (`swarm::streaming`); without one the picker is plain rarest-first.

use std::ops::Range;

use wire::BlockRef;

use super::PiecePicker;
use crate::bitfield::Bitfield;
use crate::PeerKey;

impl PiecePicker {
    /// Pieces to fetch in order before any other, or `None`.
    pub fn set_window(&mut self, window: Option<Range<u32>>) {
        let count = self.layout.piece_count();
        self.window = window
            .map(|w| w.start.min(count)..w.end.min(count))
            .filter(|w| !w.is_empty());
    }

    pub fn window(&self) -> Option<Range<u32>> {
        self.window.clone()
    }

    /// The first piece of the window we lack, which a reader waits on.
    pub fn first_missing_in_window(&self) -> Option<u32> {
        self.window.clone()?.find(|&p| !self.have.get(p))
    }

    /// Takes blocks of window pieces `peer_has`, in piece order: missing
    /// blocks of pieces already started (by anyone: at the head of a
    /// stream, two peers finishing one piece beat each starting another),
    /// then new pieces.
    pub(super) fn take_window(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        count: usize,
        picked: &mut Vec<BlockRef>,
    ) {
        let Some(window) = self.window.clone() else {
            return;
        };
        for piece in window {
            if picked.len() >= count {
                return;
            }
            if self.have.get(piece) || !peer_has.get(piece) {
                continue;
            }
            match self.partial.get(&piece) {
                Some(partial) if partial.verifying => continue,
                Some(_) => {}
                None => {
                    self.start_piece(piece, peer);
                }
            }
            self.take_missing(piece, peer, count, picked);
        }
    }

    /// A window piece for the origin: the first one nobody fetches that
    /// `wanted` accepts. Marks its blocks requested by `origin`.
    pub fn pick_window_for_origin(
        &mut self,
        origin: PeerKey,
        wanted: impl Fn(u32) -> bool,
    ) -> Vec<BlockRef> {
        let Some(window) = self.window.clone() else {
            return Vec::new();
        };
        let fresh = window
            .filter(|&p| !self.have.get(p) && !self.partial.contains_key(&p))
            .find(|&p| wanted(p));
        let Some(piece) = fresh else {
            return Vec::new();
        };
        self.start_piece(piece, origin);
        let mut picked = Vec::new();
        self.take_missing(piece, origin, usize::MAX, &mut picked);
        picked
    }

    /// How many connected peers have `piece` (the origin not counted).
    pub fn availability_of(&self, piece: u32) -> u32 {
        self.availability.get(piece as usize).copied().unwrap_or(0)
    }
}
