//! Initial seeding (super-seeding, BEP 16): while we are the only source of
//! some pieces, each peer is shown only a few pieces at a time, chosen among
//! those shown to nobody yet, and a new one each time it reports having one
//! of them. Peers then fetch *different* pieces from us and trade them with
//! each other, so we send each piece about once. When every piece is out in
//! the swarm, every peer is shown everything.
//!
//! It is plain BitTorrent: we start with have-none (or no bitfield) and send
//! `have` messages, which every client understands.

use std::time::{Duration, Instant};

use rand::Rng;

use super::Swarm;
use crate::action::Outgoing;
use crate::bitfield::Bitfield;
use crate::{Action, PeerKey};

/// Pieces shown to a peer and not yet fetched by it, at least.
const MIN_WINDOW: u32 = 2;
const MAX_WINDOW: u32 = 256;
/// The window covers this much of the peer's download from us.
const WINDOW_TIME: Duration = Duration::from_secs(1);

impl Swarm {
    pub(super) fn initial_seeding_active(&self) -> bool {
        self.reveal_counts.is_some()
    }

    /// A peer just connected: it sees nothing until `top_up` shows it some.
    pub(super) fn start_revealing(&mut self, key: PeerKey) {
        let count = self.picker.have().len();
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.revealed = Some(Bitfield::new(count));
            peer.revealed_outstanding = 0;
        }
    }

    /// The peer told us what it has: recount what it still lacks of what it
    /// was shown, and show it more.
    pub(super) fn reveals_after_bitfield(&mut self, now: Instant, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if let Some(revealed) = &peer.revealed {
            peer.revealed_outstanding =
                revealed.ones().filter(|&p| !peer.pieces.get(p)).count() as u32;
        }
        self.top_up(now, key);
        self.maybe_finish_initial_seeding();
    }

    /// The peer now has `piece`: if it was one we showed it, show another.
    pub(super) fn reveals_after_have(&mut self, now: Instant, key: PeerKey, piece: u32) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.revealed.as_ref().is_some_and(|r| r.get(piece)) {
            peer.revealed_outstanding = peer.revealed_outstanding.saturating_sub(1);
        }
        self.top_up(now, key);
        self.maybe_finish_initial_seeding();
    }

    /// The peer left: what it was shown and did not fetch is up for others.
    pub(super) fn reveals_after_disconnect(
        &mut self,
        revealed: Option<Bitfield>,
        pieces: &Bitfield,
    ) {
        let (Some(revealed), Some(counts)) = (revealed, self.reveal_counts.as_mut()) else {
            return;
        };
        for piece in revealed.ones().filter(|&p| !pieces.get(p)) {
            counts[piece as usize] = counts[piece as usize].saturating_sub(1);
        }
    }

    /// How many pieces a peer should have to fetch from us: one while we
    /// choke it (enough to keep it interested), else what it can fetch in a
    /// second at its current rate.
    fn reveal_window(&mut self, now: Instant, key: PeerKey) -> u32 {
        let piece_length = self.picker.layout().piece_length().max(1);
        let Some(peer) = self.peers.get_mut(&key) else {
            return 0;
        };
        if peer.am_choking {
            return 1;
        }
        let covered =
            peer.upload.rate(now) as f64 * WINDOW_TIME.as_secs_f64() / piece_length as f64;
        (covered.ceil() as u32).clamp(MIN_WINDOW, MAX_WINDOW)
    }

    /// Shows `key` pieces until it has a window's worth to fetch from us.
    pub(super) fn top_up(&mut self, now: Instant, key: PeerKey) {
        if !self.initial_seeding_active() {
            return;
        }
        let window = self.reveal_window(now, key);
        let piece_count = self.picker.have().len().max(1);
        loop {
            let start = self.rng.gen_range(0..piece_count);
            let Some(peer) = self.peers.get(&key) else {
                return;
            };
            let Some(revealed) = &peer.revealed else {
                return;
            };
            if peer.revealed_outstanding >= window {
                return;
            }
            let choked = peer.am_choking;
            let Some(piece) = self.piece_to_reveal(revealed, &peer.pieces, start, choked) else {
                return;
            };
            if let Some(counts) = self.reveal_counts.as_mut() {
                counts[piece as usize] += 1;
            }
            let Some(peer) = self.peers.get_mut(&key) else {
                return;
            };
            if let Some(revealed) = peer.revealed.as_mut() {
                revealed.set(piece);
            }
            peer.revealed_outstanding += 1;
            self.actions
                .push_back(Action::Send(key, Outgoing::Have(piece)));
        }
    }

    /// For a peer we upload to: the piece the fewest peers have and the
    /// fewest were shown. For a choked peer, which only needs a reason to
    /// stay interested: the piece most peers have, so that if it fetches it,
    /// it fetches it from them. Either way one it lacks and was not shown;
    /// ties at random.
    fn piece_to_reveal(
        &self,
        revealed: &Bitfield,
        pieces: &Bitfield,
        start: u32,
        choked: bool,
    ) -> Option<u32> {
        let counts = self.reveal_counts.as_ref()?;
        let count = counts.len() as u32;
        let candidates = (0..count)
            .map(|step| (start + step) % count)
            .filter(|&p| !revealed.get(p) && !pieces.get(p));
        if choked {
            candidates.max_by_key(|&p| {
                (
                    self.picker.availability(p),
                    std::cmp::Reverse(counts[p as usize]),
                )
            })
        } else {
            candidates.min_by_key(|&p| (self.picker.availability(p), counts[p as usize]))
        }
    }

    /// Once every piece is somewhere in the swarm, show everyone everything.
    fn maybe_finish_initial_seeding(&mut self) {
        if !self.initial_seeding_active() || self.picker.any_piece_unheld() {
            return;
        }
        self.reveal_counts = None;
        for (key, peer) in &mut self.peers {
            let Some(revealed) = peer.revealed.take() else {
                continue;
            };
            for piece in 0..revealed.len() {
                if !revealed.get(piece) && !peer.pieces.get(piece) {
                    self.actions
                        .push_back(Action::Send(*key, Outgoing::Have(piece)));
                }
            }
        }
    }
}
