//! The piece picker: which block to ask which peer for next.
//!
//! Policy, in order of preference for a peer:
//! 1. blocks of a piece this peer already started (whole pieces per peer:
//!    when a piece fails its hash check, one sender is to blame);
//! 2. blocks of a started piece whose starter is gone;
//! 3. while a reader streams the release, pieces of its window, in order
//!    (`window`);
//! 4. a new piece, rarest first (fewest connected peers have it), ties
//!    broken at random so peers do not all fetch the same piece;
//! 5. missing blocks of pieces other peers started;
//! 6. endgame: when every missing block is already requested, a second
//!    request for a block in flight elsewhere (the first copy to arrive
//!    wins; the caller cancels the other).
//!
//! Rarity is kept sorted incrementally (`availability`); the tests are in
//! `tests`.

mod availability;
mod window;

use std::collections::BTreeMap;
use std::ops::Range;

use meta::layout::Layout;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;

use wire::BlockRef;

use crate::bitfield::Bitfield;
use crate::PeerKey;

/// The block size every request uses (BEP 3's customary 16 KiB, which BEP 52
/// fixes as the merkle leaf): `meta::merkle::BLOCK_SIZE`, as the `u32` of
/// wire offsets.
pub const BLOCK: u32 = meta::merkle::BLOCK_SIZE as u32;
/// Most requests in flight for one block during endgame.
const MAX_REQUESTERS: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
enum BlockState {
    Missing,
    Requested(Vec<PeerKey>),
    Received(PeerKey),
}

#[derive(Debug, Clone)]
struct PartialPiece {
    /// The peer that started the piece, while it is connected.
    starter: Option<PeerKey>,
    blocks: Vec<BlockState>,
    /// All blocks received; waiting for the hash check.
    verifying: bool,
}

impl PartialPiece {
    fn missing(&self) -> impl Iterator<Item = usize> + '_ {
        self.blocks
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == BlockState::Missing)
            .map(|(i, _)| i)
    }
}

/// What happened to a block that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockArrival {
    /// Store it: it was requested and is the first copy.
    pub accepted: bool,
    /// Other peers that were asked for the same block (endgame): cancel them.
    pub also_requested_from: Vec<PeerKey>,
    /// Every block of the piece is in: check its hash.
    pub piece_complete: bool,
}

/// How far the origin may reach for a piece (see
/// [`PiecePicker::pick_for_origin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginPick {
    /// Only a piece no connected peer has, that we own.
    Unheld,
    /// Any piece we own, unheld ones first.
    Owned,
    /// Any piece, ours first.
    Anything,
}

#[derive(Debug)]
pub struct PiecePicker {
    layout: Layout,
    have: Bitfield,
    availability: Vec<u32>,
    order: Vec<u32>,
    position: Vec<u32>,
    bucket_start: Vec<u32>,
    partial: BTreeMap<u32, PartialPiece>,
    /// Blocks nobody has been asked for, over all pieces not yet had.
    missing_blocks: u64,
    /// Pieces a reader needs next, fetched in order first (`window`).
    window: Option<Range<u32>>,
}

impl PiecePicker {
    pub fn new(layout: Layout, have: Bitfield, rng: &mut SmallRng) -> PiecePicker {
        let count = layout.piece_count();
        let mut order: Vec<u32> = (0..count).collect();
        order.shuffle(rng);
        let mut position = vec![0; count as usize];
        for (at, &piece) in order.iter().enumerate() {
            position[piece as usize] = at as u32;
        }
        let missing_blocks = (0..count)
            .filter(|&p| !have.get(p))
            .map(|p| u64::from(layout.block_count(p)))
            .sum();
        PiecePicker {
            layout,
            have,
            availability: vec![0; count as usize],
            order,
            position,
            bucket_start: vec![0, count],
            partial: BTreeMap::new(),
            missing_blocks,
            window: None,
        }
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// True once no block is left that nobody was asked for.
    pub fn in_endgame(&self) -> bool {
        self.missing_blocks == 0
    }

    fn block(&self, piece: u32, index: usize) -> BlockRef {
        let offset = index as u32 * BLOCK;
        BlockRef {
            piece,
            offset,
            length: BLOCK.min(self.layout.piece_len(piece) - offset),
        }
    }

    fn start_piece(&mut self, piece: u32, peer: PeerKey) -> &mut PartialPiece {
        let layout = &self.layout;
        let blocks: Vec<BlockState> = (0..layout.block_count(piece))
            .map(|b| {
                if layout.block_is_padding(piece, b * BLOCK) {
                    BlockState::Received(peer)
                } else {
                    BlockState::Missing
                }
            })
            .collect();
        let padding = blocks.iter().filter(|b| **b != BlockState::Missing).count() as u64;
        self.missing_blocks -= padding;
        self.partial.entry(piece).or_insert(PartialPiece {
            starter: Some(peer),
            blocks,
            verifying: false,
        })
    }

    /// Picks up to `count` blocks for `peer`, which has `peer_has`, and
    /// marks them requested by it; of them at most `duplicates` end-game
    /// copies of blocks requested elsewhere.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        count: usize,
        duplicates: usize,
        rng: &mut SmallRng,
    ) -> Vec<BlockRef> {
        let mut picked = Vec::new();
        if count == 0 {
            return picked;
        }
        // 1 and 2: started pieces of this peer, then orphaned ones.
        let mut started: Vec<(bool, u32)> = self
            .partial
            .iter()
            .filter(|(&p, partial)| !partial.verifying && peer_has.get(p))
            .filter(|(_, partial)| partial.starter == Some(peer) || partial.starter.is_none())
            .map(|(&p, partial)| (partial.starter != Some(peer), p))
            .collect();
        started.sort_unstable();
        for (_, piece) in started {
            self.take_missing(piece, peer, count, &mut picked);
            if picked.len() >= count {
                return picked;
            }
        }
        // 3: a streaming reader's window, in order.
        self.take_window(peer, peer_has, count, &mut picked);
        // 4: new pieces, rarest first.
        while picked.len() < count {
            let Some(piece) = self.rarest_new_piece(peer_has, rng) else {
                break;
            };
            self.start_piece(piece, peer);
            self.take_missing(piece, peer, count, &mut picked);
        }
        // 5: what others started.
        if picked.len() < count {
            let others: Vec<u32> = self
                .partial
                .iter()
                .filter(|(&p, partial)| {
                    !partial.verifying && peer_has.get(p) && partial.missing().next().is_some()
                })
                .map(|(&p, _)| p)
                .collect();
            for piece in others {
                self.take_missing(piece, peer, count, &mut picked);
                if picked.len() >= count {
                    return picked;
                }
            }
        }
        // 6: endgame duplicates.
        if picked.len() < count && self.in_endgame() {
            let count = count.min(picked.len().saturating_add(duplicates));
            self.take_duplicates(peer, peer_has, count, &mut picked);
        }
        picked
    }

    fn take_missing(
        &mut self,
        piece: u32,
        peer: PeerKey,
        count: usize,
        picked: &mut Vec<BlockRef>,
    ) {
        let Some(partial) = self.partial.get_mut(&piece) else {
            return;
        };
        let missing: Vec<usize> = partial.missing().take(count - picked.len()).collect();
        for &index in &missing {
            partial.blocks[index] = BlockState::Requested(vec![peer]);
        }
        self.missing_blocks -= missing.len() as u64;
        picked.extend(missing.into_iter().map(|index| self.block(piece, index)));
    }

    fn take_duplicates(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        count: usize,
        picked: &mut Vec<BlockRef>,
    ) {
        let mut pieces: Vec<u32> = self
            .partial
            .iter()
            .filter(|(&p, partial)| !partial.verifying && peer_has.get(p))
            .map(|(&p, _)| p)
            .collect();
        pieces.sort_unstable();
        for piece in pieces {
            let Some(partial) = self.partial.get_mut(&piece) else {
                continue;
            };
            let mut taken = Vec::new();
            for (index, state) in partial.blocks.iter_mut().enumerate() {
                if picked.len() + taken.len() >= count {
                    break;
                }
                if let BlockState::Requested(by) = state {
                    if by.len() < MAX_REQUESTERS && !by.contains(&peer) {
                        by.push(peer);
                        taken.push(index);
                    }
                }
            }
            picked.extend(taken.into_iter().map(|index| self.block(piece, index)));
            if picked.len() >= count {
                return;
            }
        }
    }

    /// The rarest piece `peer_has` offers that we neither have nor started;
    /// a random one among the equally rare.
    fn rarest_new_piece(&self, peer_has: &Bitfield, rng: &mut SmallRng) -> Option<u32> {
        for bucket in 1..self.bucket_start.len() - 1 {
            let (start, end) = (
                self.bucket_start[bucket] as usize,
                self.bucket_start[bucket + 1] as usize,
            );
            if start == end {
                continue;
            }
            // Scan the bucket from a random point so ties go anywhere.
            let span = end - start;
            let offset = rng.gen_range(0..span);
            for step in 0..span {
                let piece = self.order[start + (offset + step) % span];
                if peer_has.get(piece)
                    && !self.have.get(piece)
                    && !self.partial.contains_key(&piece)
                {
                    return Some(piece);
                }
            }
        }
        None
    }

    /// A block arrived from `peer`.
    pub fn on_block(&mut self, peer: PeerKey, block: BlockRef) -> BlockArrival {
        let mut arrival = BlockArrival {
            accepted: false,
            also_requested_from: Vec::new(),
            piece_complete: false,
        };
        let index = (block.offset / BLOCK) as usize;
        let Some(partial) = self.partial.get_mut(&block.piece) else {
            return arrival;
        };
        if !block.offset.is_multiple_of(BLOCK) || index >= partial.blocks.len() {
            return arrival;
        }
        match &partial.blocks[index] {
            BlockState::Requested(by) if by.contains(&peer) => {
                arrival.also_requested_from = by.iter().copied().filter(|&p| p != peer).collect();
                partial.blocks[index] = BlockState::Received(peer);
                arrival.accepted = true;
            }
            _ => return arrival, // unrequested, or a late duplicate
        }
        if partial
            .blocks
            .iter()
            .all(|b| matches!(b, BlockState::Received(_)))
        {
            partial.verifying = true;
            arrival.piece_complete = true;
        }
        arrival
    }

    /// `peer` will not send `block` after all (choked, rejected, timed out,
    /// cancelled or gone): someone else may be asked.
    pub fn abort_request(&mut self, peer: PeerKey, block: BlockRef) {
        let index = (block.offset / BLOCK) as usize;
        let Some(partial) = self.partial.get_mut(&block.piece) else {
            return;
        };
        if let Some(BlockState::Requested(by)) = partial.blocks.get_mut(index) {
            by.retain(|&p| p != peer);
            if by.is_empty() {
                partial.blocks[index] = BlockState::Missing;
                self.missing_blocks += 1;
            }
        }
    }

    /// `peer` left: its started pieces are up for grabs.
    pub fn forget_starter(&mut self, peer: PeerKey) {
        for partial in self.partial.values_mut() {
            if partial.starter == Some(peer) {
                partial.starter = None;
            }
        }
    }

    /// Who sent each block of a piece being checked (padding counts as
    /// its starter's).
    pub fn senders(&self, piece: u32) -> Vec<PeerKey> {
        self.partial.get(&piece).map_or_else(Vec::new, |partial| {
            partial
                .blocks
                .iter()
                .filter_map(|b| match b {
                    BlockState::Received(peer) => Some(*peer),
                    _ => None,
                })
                .collect()
        })
    }

    /// The hash check passed: the piece is ours.
    pub fn piece_passed(&mut self, piece: u32) {
        self.partial.remove(&piece);
        self.have.set(piece);
    }

    /// The hash check failed: every block must be fetched again.
    pub fn piece_failed(&mut self, piece: u32) {
        if self.partial.remove(&piece).is_some() {
            self.missing_blocks += u64::from(self.layout.block_count(piece));
        }
    }

    /// Whether `peer_has` holds any piece we lack.
    pub fn is_interesting(&self, peer_has: &Bitfield) -> bool {
        peer_has.ones().any(|p| !self.have.get(p))
    }

    /// Whether some piece is held by no connected peer.
    pub fn any_piece_unheld(&self) -> bool {
        self.bucket_start.get(1).is_some_and(|&end| end > 0)
    }

    /// Picks one whole piece for the origin, which has every piece: one no
    /// connected peer has, nobody fetches (a piece a peer started and left
    /// untouched counts as nobody's) and `mine` accepts, chosen at
    /// random; failing that, as `scope` allows, the rarest piece we lack
    /// that nobody fetches and `mine` accepts, then any such piece. Marks
    /// the piece's blocks requested by `origin` and returns them in order.
    pub fn pick_for_origin(
        &mut self,
        origin: PeerKey,
        scope: OriginPick,
        mine: impl Fn(u32) -> bool,
        rng: &mut SmallRng,
    ) -> Vec<BlockRef> {
        let end = self.bucket_start.get(1).copied().unwrap_or(0) as usize;
        // A piece nobody fetches: not started, or started by a peer that
        // then choked us or went quiet, with nothing of it requested or
        // received since (padding aside), so the origin's blocks of it are
        // one contiguous range.
        let layout = &self.layout;
        let fresh = |p: &u32| {
            !self.have.get(*p)
                && self.partial.get(p).is_none_or(|partial| {
                    !partial.verifying
                        && partial.blocks.iter().enumerate().all(|(i, b)| match b {
                            BlockState::Missing => true,
                            BlockState::Requested(_) => false,
                            BlockState::Received(_) => {
                                layout.block_is_padding(*p, i as u32 * BLOCK)
                            }
                        })
                })
        };
        let unheld: Vec<u32> = self.order[..end]
            .iter()
            .copied()
            .filter(|p| fresh(p) && mine(*p))
            .collect();
        let piece = if !unheld.is_empty() {
            Some(unheld[rng.gen_range(0..unheld.len())])
        } else if scope == OriginPick::Unheld {
            None
        } else {
            let rarest_mine = self.order.iter().copied().find(|p| fresh(p) && mine(*p));
            let anything = || self.order.iter().copied().find(fresh);
            rarest_mine.or_else(|| (scope == OriginPick::Anything).then(anything).flatten())
        };
        let Some(piece) = piece else {
            return Vec::new();
        };
        self.start_piece(piece, origin).starter = Some(origin);
        let mut picked = Vec::new();
        self.take_missing(piece, origin, usize::MAX, &mut picked);
        picked
    }

    /// Pieces no connected peer has and we lack: only the origin can supply them.
    pub fn unavailable_pieces(&self) -> impl Iterator<Item = u32> + '_ {
        let end = self.bucket_start.get(1).copied().unwrap_or(0) as usize;
        self.order[..end]
            .iter()
            .copied()
            .filter(|&p| !self.have.get(p))
    }
}

#[cfg(test)]
mod tests;
