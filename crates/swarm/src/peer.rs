//! What the swarm knows about one connected peer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::bitfield::Bitfield;
use crate::rate::RateMeter;
use crate::reveal::PeerReveal;
use wire::BlockRef;

/// A connected peer, as the swarm and its driver call it. Never reused
/// within one swarm, so a stale key cannot reach a newer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub u32);

/// The picker's name for the origin.
pub const ORIGIN: PeerKey = PeerKey(u32::MAX);

/// What the handshake told us about a peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCaps {
    /// BEP 6: have-all/none, reject, allowed-fast.
    pub fast: bool,
    /// BEP 10: extension protocol.
    pub extended: bool,
    /// The peer id it gave: two connections with the same one are twins.
    pub peer_id: [u8; 20],
    /// For a peer that shares out origin fetches by the same rule as we do
    /// (a shoal agent): its [`origin_share_id`](crate::origin_share_id).
    pub origin_share_id: Option<u64>,
}

/// Late copies of cancelled requests are expected; remember this many.
const RECENTLY_CANCELLED: usize = 1024;

#[derive(Debug)]
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub caps: PeerCaps,
    /// We dialled it (else it dialled us).
    pub outgoing: bool,
    pub pieces: Bitfield,
    /// Pieces the peer has that we lack: interest without a scan.
    pub wanted: u32,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// Our requests to the peer, oldest first, with when they were sent.
    pub requests: Vec<(BlockRef, Instant)>,
    pub recently_cancelled: VecDeque<BlockRef>,
    /// The peer's requests to us, waiting to be served.
    pub upload_queue: VecDeque<BlockRef>,
    /// Blocks handed to the driver by `next_upload` and not yet sent.
    pub uploads_in_flight: usize,
    pub download: RateMeter,
    pub upload: RateMeter,
    /// When a block last arrived (or when requests started, if none yet).
    pub last_progress: Instant,
    pub snubbed: bool,
    /// Smallest request-to-block time seen: the round trip without queueing.
    pub base_rtt: Option<Duration>,
    pub unchoked_at: Option<Instant>,
    pub optimistic: bool,
    /// While initial seeding: what we have shown this peer. `None` once
    /// it may see everything.
    pub reveal: Option<PeerReveal>,
    /// Pieces we verified that the peer already has: it learns of them at
    /// the next tick, together, rather than in a packet each.
    pub held_haves: Vec<u32>,
}

impl Peer {
    pub fn new(
        addr: SocketAddr,
        caps: PeerCaps,
        outgoing: bool,
        piece_count: u32,
        now: Instant,
    ) -> Peer {
        Peer {
            addr,
            caps,
            outgoing,
            pieces: Bitfield::new(piece_count),
            wanted: 0,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            requests: Vec::new(),
            recently_cancelled: VecDeque::new(),
            upload_queue: VecDeque::new(),
            uploads_in_flight: 0,
            download: RateMeter::new(now),
            upload: RateMeter::new(now),
            last_progress: now,
            snubbed: false,
            base_rtt: None,
            unchoked_at: None,
            optimistic: false,
            reveal: None,
            held_haves: Vec::new(),
        }
    }

    pub fn remember_cancelled(&mut self, block: BlockRef) {
        if self.recently_cancelled.len() == RECENTLY_CANCELLED {
            self.recently_cancelled.pop_front();
        }
        self.recently_cancelled.push_back(block);
    }

    /// Removes `block` from our requests; returns when it was sent.
    pub fn take_request(&mut self, block: BlockRef) -> Option<Instant> {
        let at = self.requests.iter().position(|(b, _)| *b == block)?;
        Some(self.requests.remove(at).1)
    }
}
