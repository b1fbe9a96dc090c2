//! What initial seeding has shown one peer and how far the peer got with
//! it (`swarm/initial_seeding.rs` decides what to show).
//!
//! A shown piece stops keeping the peer's link busy once we have handed it
//! every byte of the piece, whether or not the peer has announced it yet:
//! clients batch their `have`s on a timer (Transmission, about once a
//! second), and waiting for them would make each piece cost that timer.
//! The `have` only tells us the piece is out in the swarm.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::bitfield::Bitfield;

/// Pieces a peer we upload to has to fetch from us, at least and at most.
pub(crate) const MIN_WINDOW: u32 = 2;
pub(crate) const MAX_WINDOW: u32 = 256;

/// Initial seeding's view of the whole swarm.
#[derive(Debug, Clone)]
pub(crate) struct SwarmReveals {
    /// To how many peers each piece was shown.
    pub shown: Vec<u32>,
    /// Pieces we have sent someone in full: out in the swarm even before
    /// the peer announces them, so not worth showing to a second peer
    /// while others are not out.
    pub sent: Bitfield,
}

impl SwarmReveals {
    pub fn new(piece_count: u32) -> SwarmReveals {
        SwarmReveals {
            shown: vec![0; piece_count as usize],
            sent: Bitfield::new(piece_count),
        }
    }
}

/// A shown piece the peer has not announced yet.
#[derive(Debug, Clone, Copy)]
struct Shown {
    at: Instant,
    /// The peer asked for a block of it.
    requested: bool,
    /// Payload bytes of it handed to the driver for this peer. Repeated
    /// requests for one block count twice: all a peer gains by them is to
    /// be shown pieces sooner, as in plain seeding.
    bytes_sent: u64,
    /// Every byte of it has been handed out.
    all_sent: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct PeerReveal {
    /// Every piece shown to the peer, announced or not.
    pub shown: Bitfield,
    /// Shown pieces the peer has not announced, by piece.
    pending: BTreeMap<u32, Shown>,
    /// Pieces in `pending` we have not sent in full: what the peer still
    /// has to fetch from us.
    unsent: u32,
    /// Grows by one for each piece sent in full after the peer's queue ran
    /// dry (so doubles per round trip, as in TCP slow start): the window
    /// is never what holds a fast peer back, even before its measured rate
    /// catches up.
    window: u32,
    /// The peer asked for everything we had queued since the last piece
    /// was sent in full.
    drained: bool,
    /// Smallest time from showing a piece to the peer's first request for
    /// it: the request round trip, the peer's own scheduling included.
    rtt: Option<Duration>,
    /// Pieces handed out in full since the last upload report, which
    /// carries the time they went out.
    unstamped: Vec<u32>,
    /// Pieces sent in full, in the order they went, with when: the oldest
    /// still unannounced is at the front once announced ones are popped.
    sent_order: VecDeque<(u32, Instant)>,
    pub connected_at: Instant,
}

impl PeerReveal {
    pub fn new(piece_count: u32, now: Instant) -> PeerReveal {
        PeerReveal {
            shown: Bitfield::new(piece_count),
            pending: BTreeMap::new(),
            unsent: 0,
            window: MIN_WINDOW,
            drained: false,
            rtt: None,
            unstamped: Vec::new(),
            sent_order: VecDeque::new(),
            connected_at: now,
        }
    }

    pub fn unsent(&self) -> u32 {
        self.unsent
    }

    pub fn grown_window(&self) -> u32 {
        self.window
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    pub fn show(&mut self, now: Instant, piece: u32) {
        if !self.shown.set(piece) {
            return;
        }
        self.pending.insert(
            piece,
            Shown {
                at: now,
                requested: false,
                bytes_sent: 0,
                all_sent: false,
            },
        );
        self.unsent += 1;
    }

    /// The peer announced `piece` (a `have` or a bitfield).
    pub fn announced(&mut self, piece: u32) {
        if let Some(shown) = self.pending.remove(&piece) {
            if !shown.all_sent {
                self.unsent = self.unsent.saturating_sub(1);
            }
        }
    }

    /// The peer's whole piece set arrived (a bitfield, have-all).
    pub fn announced_all(&mut self, pieces: &Bitfield) {
        let had: Vec<u32> = self
            .pending
            .keys()
            .copied()
            .filter(|&p| pieces.get(p))
            .collect();
        for piece in had {
            self.announced(piece);
        }
    }

    /// The peer asked for a block of `piece`.
    pub fn requested(&mut self, now: Instant, piece: u32) {
        let Some(shown) = self.pending.get_mut(&piece) else {
            return;
        };
        if !shown.requested {
            shown.requested = true;
            let rtt = now.saturating_duration_since(shown.at);
            self.rtt = Some(self.rtt.map_or(rtt, |old| old.min(rtt)));
        }
    }

    /// A block of `piece`, `bytes` long, went to the driver for this peer;
    /// `queue_empty` says the peer has nothing more queued with us.
    /// Returns whether that completed the piece.
    pub fn handed_out(
        &mut self,
        piece: u32,
        bytes: u64,
        piece_len: u64,
        queue_empty: bool,
    ) -> bool {
        self.drained |= queue_empty;
        let Some(shown) = self.pending.get_mut(&piece) else {
            return false;
        };
        shown.bytes_sent = shown.bytes_sent.saturating_add(bytes);
        if shown.all_sent || shown.bytes_sent < piece_len {
            return false;
        }
        shown.all_sent = true;
        self.unsent = self.unsent.saturating_sub(1);
        self.unstamped.push(piece);
        if std::mem::take(&mut self.drained) {
            self.window = (self.window + 1).min(MAX_WINDOW);
        }
        true
    }

    /// Stamps pieces handed out in full with the time of the upload report.
    pub fn stamp_sent(&mut self, now: Instant) {
        for piece in self.unstamped.drain(..) {
            self.sent_order.push_back((piece, now));
        }
    }

    /// A piece we sent in full more than `grace` ago is still unannounced.
    /// Amortised constant time: it runs for every upload report.
    pub fn slow_to_announce(&mut self, now: Instant, grace: Duration) -> bool {
        while let Some(&(piece, at)) = self.sent_order.front() {
            // A piece is shown once, so one no longer pending was announced.
            if self.pending.contains_key(&piece) {
                return now.saturating_duration_since(at) > grace;
            }
            self.sent_order.pop_front();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u64 = 4 * 16_384;

    fn send_piece(reveal: &mut PeerReveal, piece: u32, queue_empty_at_end: bool) {
        for block in 0..4 {
            let done = reveal.handed_out(piece, 16_384, PIECE, block == 3 && queue_empty_at_end);
            assert_eq!(done, block == 3 && reveal.pending.contains_key(&piece));
        }
    }

    #[test]
    fn a_piece_sent_in_full_no_longer_counts_as_unsent() {
        let now = Instant::now();
        let mut reveal = PeerReveal::new(8, now);
        reveal.show(now, 1);
        reveal.show(now, 2);
        assert_eq!(reveal.unsent(), 2);
        send_piece(&mut reveal, 1, false);
        assert_eq!(reveal.unsent(), 1);
        reveal.announced(1);
        assert_eq!(reveal.unsent(), 1, "its have does not count it twice");
        reveal.announced(2);
        assert_eq!(reveal.unsent(), 0, "fetched from someone else");
    }

    #[test]
    fn the_window_grows_only_while_the_peer_drains_its_queue() {
        let now = Instant::now();
        let mut reveal = PeerReveal::new(600, now);
        for piece in 0..600 {
            reveal.show(now, piece);
        }
        for piece in 0..10 {
            send_piece(&mut reveal, piece, false);
        }
        assert_eq!(reveal.grown_window(), MIN_WINDOW, "never ran dry");
        for piece in 10..20 {
            send_piece(&mut reveal, piece, true);
        }
        assert_eq!(reveal.grown_window(), MIN_WINDOW + 10);
        for piece in 20..600 {
            send_piece(&mut reveal, piece, true);
        }
        assert_eq!(reveal.grown_window(), MAX_WINDOW);
    }

    #[test]
    fn repeated_requests_for_one_block_never_overflow() {
        let now = Instant::now();
        let mut reveal = PeerReveal::new(2, now);
        reveal.show(now, 0);
        assert!(reveal.handed_out(0, u64::MAX, PIECE, true));
        for _ in 0..10 {
            assert!(!reveal.handed_out(0, u64::MAX, PIECE, true));
        }
        assert_eq!(reveal.unsent(), 0);
        assert!(!reveal.handed_out(1, 16_384, PIECE, true), "never shown");
        assert_eq!(reveal.unsent(), 0);
    }

    #[test]
    fn a_peer_that_keeps_a_sent_piece_unannounced_past_the_grace_is_slow() {
        let now = Instant::now();
        let grace = Duration::from_secs(5);
        let mut reveal = PeerReveal::new(4, now);
        reveal.show(now, 0);
        reveal.requested(now + Duration::from_millis(30), 0);
        assert_eq!(reveal.rtt(), Some(Duration::from_millis(30)));
        send_piece(&mut reveal, 0, false);
        assert!(!reveal.slow_to_announce(now + Duration::from_secs(60), grace));
        reveal.stamp_sent(now + Duration::from_secs(1));
        assert!(!reveal.slow_to_announce(now + Duration::from_secs(6), grace));
        assert!(reveal.slow_to_announce(now + Duration::from_secs(7), grace));
        reveal.announced(0);
        assert!(!reveal.slow_to_announce(now + Duration::from_secs(7), grace));
    }
}
