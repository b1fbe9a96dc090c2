//! Initial seeding (super-seeding, BEP 16): while we are the only source of
//! some pieces, each peer is shown only some of them, chosen among those
//! shown to the fewest peers. Peers then fetch *different* pieces from us
//! and trade them with each other, so we send each piece about once. When
//! every piece is out in the swarm, every peer is shown everything.
//!
//! Showing is never what limits a peer: a piece stops counting against the
//! peer's window once we have sent it in full (not when the peer announces
//! it, which some clients do on a timer), and the window covers the peer's
//! measured rate over its request round trip, growing whenever the peer
//! drains it. `have`s only tell us which pieces are out in the swarm.
//!
//! Where it cannot pay off, a peer is shown everything: a small crowd
//! (nobody to trade with), or a peer that does not announce what it got
//! from us (we cannot tell what it spreads).
//!
//! It is plain BitTorrent: we start with have-none (or no bitfield) and send
//! `have` messages, which every client understands.

use std::time::{Duration, Instant};

use rand::Rng;
use wire::BlockRef;

use super::Swarm;
use crate::action::Outgoing;
use crate::bitfield::Bitfield;
use crate::reveal::{PeerReveal, MAX_WINDOW, MIN_WINDOW};
use crate::{Action, PeerKey};

/// Beyond its request round trip, the window covers this much of the
/// peer's download from us at its measured rate.
const WINDOW_TIME: Duration = Duration::from_secs(1);
/// How long a peer waits for a crowd to gather before a small crowd shows
/// it everything: peers of a flash crowd connect within a moment of each
/// other, and one shown everything early would fetch what others fetch.
const CROWD_WAIT: Duration = Duration::from_millis(500);

impl Swarm {
    pub(super) fn initial_seeding_active(&self) -> bool {
        self.reveal_counts.is_some()
    }

    /// A peer just connected: it sees nothing until `top_up` shows it some.
    pub(super) fn start_revealing(&mut self, now: Instant, key: PeerKey) {
        let count = self.picker.have().len();
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.reveal = Some(PeerReveal::new(count, now));
        }
    }

    /// The peer told us what it has: what it was shown and has is out, and
    /// it may be shown more.
    pub(super) fn reveals_after_bitfield(&mut self, now: Instant, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if let Some(reveal) = peer.reveal.as_mut() {
            reveal.announced_all(&peer.pieces);
        }
        self.top_up(now, key);
        self.maybe_finish_initial_seeding();
    }

    /// The peer now has `piece`.
    pub(super) fn reveals_after_have(&mut self, now: Instant, key: PeerKey, piece: u32) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if let Some(reveal) = peer.reveal.as_mut() {
            reveal.announced(piece);
        }
        self.top_up(now, key);
        self.maybe_finish_initial_seeding();
    }

    /// The peer asked us for `block`: the first request for a shown piece
    /// measures its request round trip.
    pub(super) fn reveals_after_request(&mut self, now: Instant, key: PeerKey, block: BlockRef) {
        if let Some(reveal) = self.peers.get_mut(&key).and_then(|p| p.reveal.as_mut()) {
            reveal.requested(now, block.piece);
        }
    }

    /// `block` went to the driver for `key`: a piece handed out in full no
    /// longer keeps the peer busy (the next upload report shows more).
    pub(super) fn reveals_after_upload(&mut self, key: PeerKey, block: BlockRef) {
        let piece_len = self.picker.layout().piece_len(block.piece);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let queue_empty = peer.upload_queue.is_empty();
        let Some(reveal) = peer.reveal.as_mut() else {
            return;
        };
        let bytes = u64::from(block.length);
        if reveal.handed_out(block.piece, bytes, u64::from(piece_len), queue_empty) {
            if let Some(counts) = self.reveal_counts.as_mut() {
                counts.sent.set(block.piece);
            }
        }
    }

    /// Blocks went out to `key`: show it more if it has drained its window.
    pub(super) fn reveals_after_sent(&mut self, now: Instant, key: PeerKey) {
        if let Some(reveal) = self.peers.get_mut(&key).and_then(|p| p.reveal.as_mut()) {
            reveal.stamp_sent(now);
        }
        self.top_up(now, key);
    }

    /// The peer left: what it was shown and did not fetch is up for others.
    pub(super) fn reveals_after_disconnect(
        &mut self,
        reveal: Option<PeerReveal>,
        pieces: &Bitfield,
    ) {
        let (Some(reveal), Some(counts)) = (reveal, self.reveal_counts.as_mut()) else {
            return;
        };
        for piece in reveal.shown.ones().filter(|&p| !pieces.get(p)) {
            counts.shown[piece as usize] = counts.shown[piece as usize].saturating_sub(1);
        }
    }

    /// How many pieces a peer should have to fetch from us: one while we
    /// choke it (enough to keep it interested), else what keeps its link
    /// busy: its rate over its request round trip plus [`WINDOW_TIME`], or
    /// the window grown while it drained it, whichever is larger.
    fn reveal_window(&mut self, now: Instant, key: PeerKey) -> u32 {
        let piece_length = self.picker.layout().piece_length().max(1);
        let Some(peer) = self.peers.get_mut(&key) else {
            return 0;
        };
        if peer.am_choking {
            return 1;
        }
        let Some(reveal) = peer.reveal.as_ref() else {
            return 0;
        };
        let span = WINDOW_TIME + reveal.rtt().unwrap_or_default();
        let grown = reveal.grown_window();
        let covered = peer.upload.rate(now) as f64 * span.as_secs_f64() / piece_length as f64;
        (covered.ceil().min(f64::from(MAX_WINDOW)) as u32)
            .max(grown)
            .clamp(MIN_WINDOW, MAX_WINDOW)
    }

    /// Where initial seeding cannot pay off for `key`: the crowd stayed
    /// small, or the peer does not announce what it got from us.
    fn plain_seeding_suits(&mut self, now: Instant, key: PeerKey) -> bool {
        let grace = self.settings.initial_seeding_have_grace;
        let Some(reveal) = self.peers.get_mut(&key).and_then(|p| p.reveal.as_mut()) else {
            return false;
        };
        if reveal.slow_to_announce(now, grace) {
            return true;
        }
        if now.saturating_duration_since(reveal.connected_at) < CROWD_WAIT {
            return false;
        }
        let interested = self.peers.values().filter(|p| p.peer_interested).count();
        interested < self.settings.initial_seeding_min_crowd
    }

    /// When the next peer's wait for a crowd ends: a lone downloader (a
    /// browser's stream waiting for its first byte) is shown everything
    /// then, not at the next tick.
    pub(super) fn next_crowd_decision(&self) -> Option<Instant> {
        if !self.initial_seeding_active() {
            return None;
        }
        self.peers
            .values()
            .filter_map(|p| p.reveal.as_ref())
            .map(|r| r.connected_at + CROWD_WAIT)
            .filter(|&t| t > self.crowds_decided_until)
            .min()
    }

    /// Decides the peers whose wait for a crowd ended since the last call.
    pub(super) fn decide_crowds(&mut self, now: Instant) {
        let since = std::mem::replace(&mut self.crowds_decided_until, now);
        if !self.initial_seeding_active() {
            return;
        }
        let due: Vec<PeerKey> = self
            .peers
            .iter()
            .filter_map(|(key, p)| Some((*key, p.reveal.as_ref()?.connected_at + CROWD_WAIT)))
            .filter(|&(_, t)| t > since && t <= now)
            .map(|(key, _)| key)
            .collect();
        for key in due {
            self.top_up(now, key);
        }
    }

    /// Shows `key` pieces until it has a window's worth to fetch from us.
    pub(super) fn top_up(&mut self, now: Instant, key: PeerKey) {
        if !self.initial_seeding_active() {
            return;
        }
        if self.plain_seeding_suits(now, key) {
            return self.show_everything(key);
        }
        let window = self.reveal_window(now, key);
        let piece_count = self.picker.have().len().max(1);
        loop {
            let start = self.rng.gen_range(0..piece_count);
            let Some(peer) = self.peers.get(&key) else {
                return;
            };
            let Some(reveal) = &peer.reveal else {
                return;
            };
            if reveal.unsent() >= window {
                return;
            }
            let choked = peer.am_choking;
            let Some(piece) = self.piece_to_reveal(&reveal.shown, &peer.pieces, start, choked)
            else {
                return;
            };
            if let Some(counts) = self.reveal_counts.as_mut() {
                counts.shown[piece as usize] += 1;
            }
            let Some(reveal) = self.peers.get_mut(&key).and_then(|p| p.reveal.as_mut()) else {
                return;
            };
            reveal.show(now, piece);
            self.actions
                .push_back(Action::Send(key, Outgoing::Have(piece)));
        }
    }

    /// For a peer we upload to: the piece the fewest peers have (counting
    /// one for a piece we sent in full, announced or not) and the fewest
    /// were shown. For a choked peer, which only needs a reason to
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
        let count = counts.shown.len() as u32;
        let candidates = (0..count)
            .map(|step| (start + step) % count)
            .filter(|&p| !revealed.get(p) && !pieces.get(p));
        if choked {
            candidates.max_by_key(|&p| {
                (
                    self.picker.availability(p),
                    std::cmp::Reverse(counts.shown[p as usize]),
                )
            })
        } else {
            candidates.min_by_key(|&p| {
                let out = u32::from(counts.sent.get(p));
                (
                    self.picker.availability(p).max(out),
                    counts.shown[p as usize],
                )
            })
        }
    }

    /// `key` may see every piece from now on: plain seeding for it.
    fn show_everything(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(reveal) = peer.reveal.take() else {
            return;
        };
        for piece in 0..reveal.shown.len() {
            if !reveal.shown.get(piece) && !peer.pieces.get(piece) {
                self.actions
                    .push_back(Action::Send(key, Outgoing::Have(piece)));
            }
        }
    }

    /// Once every piece is somewhere in the swarm, show everyone everything.
    fn maybe_finish_initial_seeding(&mut self) {
        if !self.initial_seeding_active() || self.picker.any_piece_unheld() {
            return;
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.show_everything(key);
        }
        self.reveal_counts = None;
    }
}
