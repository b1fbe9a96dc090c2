//! Everything a swarm's behaviour can be tuned by, with defaults and units.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SwarmSettings {
    /// Most connected peers.
    pub max_peers: usize,
    /// Most outgoing connections being set up at once (half-open).
    pub max_connecting: usize,
    /// Peers unchoked for their upload rate (tit-for-tat).
    pub unchoke_slots: usize,
    /// Peers unchoked at random, to find better partners and start newcomers.
    pub optimistic_slots: usize,
    /// How often the choker re-ranks peers.
    pub choke_interval: Duration,
    /// How often the optimistic slot moves on.
    pub optimistic_interval: Duration,
    /// Requests kept in flight cover twice the round trip plus this much
    /// time at the peer's measured rate, so the link never idles between
    /// answers. Deeper queues only commit blocks to one peer early, which
    /// makes peers collide on the same pieces.
    pub request_queue_time: Duration,
    /// Requests in flight to a peer whose rate is not known yet.
    pub initial_queue_depth: usize,
    /// Bounds on requests in flight to one peer. Clients commonly accept
    /// 250 to 500 queued requests (libtorrent 500, `reqq`); more gets us
    /// disconnected.
    pub min_queue_depth: usize,
    pub max_queue_depth: usize,
    /// End-game (every block we lack is requested): a peer is asked for a
    /// second copy of a block in flight elsewhere only while fewer than
    /// this many of our requests are in flight to it, i.e. once it has
    /// served nearly all we asked of it. Filling every queue with copies
    /// instead spent 1.6 % of a 20-peer crowd's upload (measured on
    /// emulated links) on blocks that arrived twice, at the tail, when the
    /// last peers need that upload most.
    pub endgame_queue_depth: usize,
    /// A peer with requests in flight that sends nothing for this long is
    /// snubbed: its requests go to other peers.
    pub request_timeout: Duration,
    /// Most requests from one peer waiting to be served; more are refused
    /// (rejected with the fast extension, else dropped), so a flood of
    /// requests costs bounded memory.
    pub max_upload_queue: usize,
    /// Failed pieces a peer may be blamed for before it is banned.
    pub strikes_to_ban: u32,
    /// Wait before redialling an address that left or refused us for
    /// having too many peers.
    pub reconnect_delay: Duration,
    /// Wait before redialling an address we could not reach, doubled for
    /// each failure in a row up to 8 times this. A SYN lost in a full
    /// queue is common on a saturated link; waiting long for it starves a
    /// newcomer of peers.
    pub dial_retry: Duration,
    /// Housekeeping period: timeouts, connections, request refills.
    pub tick: Duration,
    /// A swarm that starts as the only seed shows each peer a few pieces at
    /// a time, different ones to different peers, until every piece is out
    /// in the swarm (super-seeding, BEP 16): the seed then sends each piece
    /// about once instead of the same pieces to several peers.
    pub initial_seeding: bool,
    /// Initial seeding pays off only when peers can trade with each other:
    /// a peer that has been connected a while with fewer interested peers
    /// than this in the swarm is shown every piece (plain seeding).
    pub initial_seeding_min_crowd: usize,
    /// A peer we sent a piece in full that has not announced it within
    /// this long is shown every piece: we cannot tell what it spreads.
    pub initial_seeding_have_grace: Duration,
}

impl Default for SwarmSettings {
    fn default() -> Self {
        SwarmSettings {
            max_peers: 60,
            max_connecting: 25,
            unchoke_slots: 4,
            optimistic_slots: 1,
            choke_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            request_queue_time: Duration::from_secs(1),
            initial_queue_depth: 32,
            min_queue_depth: 16,
            max_queue_depth: 250,
            endgame_queue_depth: 4,
            request_timeout: Duration::from_secs(20),
            max_upload_queue: 2000,
            strikes_to_ban: 3,
            reconnect_delay: Duration::from_secs(30),
            dial_retry: Duration::from_secs(3),
            tick: Duration::from_millis(500),
            initial_seeding: true,
            initial_seeding_min_crowd: 4,
            initial_seeding_have_grace: Duration::from_secs(5),
        }
    }
}
