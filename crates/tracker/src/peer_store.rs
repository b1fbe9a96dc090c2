//! Who is in which swarm: the tracker's only state today.
//!
//! Sans-IO: every call takes `now`, randomness comes from the RNG given at
//! construction, so tests drive time by hand and get the same peers for the
//! same seed. The HTTP layer owns the clock and the lock. A later issue puts
//! accounting and a database next to this; the swarm membership stays here,
//! in memory, because it is rebuilt by announces within one interval.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;

use crate::announce_query::AnnounceEvent;
use crate::peer_selection::select_peers;

pub type InfoHash = [u8; 20];

/// Bound on departures remembered between two peer exchanges; beyond it
/// other instances learn of a departure by expiry instead.
const MAX_STOPPED_KEPT: usize = 100_000;
pub type PeerId = [u8; 20];

/// One announce, reduced to what the store needs. `addr` is the
/// connection's IP with the port the peer listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub addr: SocketAddr,
    pub left: u64,
    pub event: Option<AnnounceEvent>,
    /// Most peers to return, already capped by the settings.
    pub numwant: usize,
}

/// A peer handed to another peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    pub peer_id: PeerId,
    pub addr: SocketAddr,
    /// True when the peer has the whole content (`left=0`).
    pub is_seed: bool,
}

/// The BEP 48 scrape numbers of one swarm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmStats {
    /// Live peers with the whole content.
    pub complete: u32,
    /// Live peers still downloading.
    pub incomplete: u32,
    /// `completed` events ever seen (at most one per peer id).
    pub downloaded: u64,
}

/// What an announce gets back: peers to try, and the swarm's numbers after
/// the announce was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceOutcome {
    pub peers: Vec<PeerInfo>,
    pub stats: SwarmStats,
}

#[derive(Debug, Clone)]
struct PeerEntry {
    addr: SocketAddr,
    left: u64,
    last_seen: Instant,
    /// Whether this peer's `completed` was already counted, so a client
    /// that repeats the event does not inflate `downloaded`.
    completion_counted: bool,
    /// Announced to another tracker instance, learned through the shared
    /// database: not shared back.
    remote: bool,
}

#[derive(Debug, Default)]
struct Swarm {
    /// A BTreeMap, not a HashMap: iteration order must not depend on a
    /// per-process hash seed, or seeded tests would not be reproducible.
    peers: BTreeMap<PeerId, PeerEntry>,
    downloaded: u64,
}

impl Swarm {
    fn expire(&mut self, now: Instant, expiry: Duration) -> usize {
        let before = self.peers.len();
        self.peers
            .retain(|_, p| now.saturating_duration_since(p.last_seen) < expiry);
        before - self.peers.len()
    }

    fn stats(&self) -> SwarmStats {
        let complete = self.peers.values().filter(|p| p.left == 0).count();
        let incomplete = self.peers.len() - complete;
        SwarmStats {
            complete: u32::try_from(complete).unwrap_or(u32::MAX),
            incomplete: u32::try_from(incomplete).unwrap_or(u32::MAX),
            downloaded: self.downloaded,
        }
    }

    /// Nothing worth remembering: no peers and no completion count.
    fn is_forgettable(&self) -> bool {
        self.peers.is_empty() && self.downloaded == 0
    }
}

/// All swarms the tracker knows, keyed by info-hash.
#[derive(Debug)]
pub struct PeerStore {
    swarms: HashMap<InfoHash, Swarm>,
    peer_expiry: Duration,
    rng: SmallRng,
    /// Peers that announced `stopped` since the last [`take_stopped`]:
    /// other instances are told to drop them.
    stopped: Vec<(InfoHash, PeerId)>,
}

/// A peer as announced to this instance, for other instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPeer {
    pub swarm: InfoHash,
    pub peer_id: PeerId,
    pub addr: SocketAddr,
    pub left: u64,
}

impl PeerStore {
    /// `peer_expiry`: how long after its last announce a peer is dropped.
    pub fn new(peer_expiry: Duration, rng: SmallRng) -> Self {
        PeerStore {
            swarms: HashMap::new(),
            peer_expiry,
            rng,
            stopped: Vec::new(),
        }
    }

    /// Peers that announced to this instance at or after `since`.
    pub fn local_seen_since(&self, since: Instant) -> Vec<LocalPeer> {
        self.swarms
            .iter()
            .flat_map(|(hash, swarm)| {
                swarm
                    .peers
                    .iter()
                    .filter(move |(_, p)| !p.remote && p.last_seen >= since)
                    .map(move |(id, p)| LocalPeer {
                        swarm: *hash,
                        peer_id: *id,
                        addr: p.addr,
                        left: p.left,
                    })
            })
            .collect()
    }

    /// Peers that left since the last call.
    pub fn take_stopped(&mut self) -> Vec<(InfoHash, PeerId)> {
        std::mem::take(&mut self.stopped)
    }

    /// Departures taken but not delivered (the database was down): kept
    /// for the next exchange, within the same bound.
    pub fn restore_stopped(&mut self, stopped: Vec<(InfoHash, PeerId)>) {
        let room = MAX_STOPPED_KEPT.saturating_sub(self.stopped.len());
        self.stopped.extend(stopped.into_iter().take(room));
    }

    /// A peer another instance saw: listed here until it expires, unless
    /// it announced here too (then this instance's entry is the truth).
    pub fn merge_remote(&mut self, now: Instant, peer: LocalPeer, stopped: bool) {
        if stopped {
            if let Some(swarm) = self.swarms.get_mut(&peer.swarm) {
                swarm.peers.remove(&peer.peer_id);
            }
            return;
        }
        let swarm = self.swarms.entry(peer.swarm).or_default();
        match swarm.peers.get_mut(&peer.peer_id) {
            Some(entry) if !entry.remote => {}
            Some(entry) => {
                entry.addr = peer.addr;
                entry.left = peer.left;
                entry.last_seen = now;
            }
            None => {
                swarm.peers.insert(
                    peer.peer_id,
                    PeerEntry {
                        addr: peer.addr,
                        left: peer.left,
                        last_seen: now,
                        completion_counted: false,
                        remote: true,
                    },
                );
            }
        }
    }

    /// Live peers over all swarms (expired ones until the next sweep).
    pub fn peer_count(&self) -> usize {
        self.swarms.values().map(|s| s.peers.len()).sum()
    }

    /// Records an announce and picks peers for the announcer.
    pub fn announce(&mut self, now: Instant, announce: &Announce) -> AnnounceOutcome {
        let swarm = self.swarms.entry(announce.info_hash).or_default();
        swarm.expire(now, self.peer_expiry);

        if announce.event == Some(AnnounceEvent::Stopped) {
            swarm.peers.remove(&announce.peer_id);
            if self.stopped.len() < MAX_STOPPED_KEPT {
                self.stopped.push((announce.info_hash, announce.peer_id));
            }
            let stats = swarm.stats();
            if swarm.is_forgettable() {
                self.swarms.remove(&announce.info_hash);
            }
            return AnnounceOutcome {
                peers: Vec::new(),
                stats,
            };
        }

        // A new peer id at an address already listed is the same listener
        // restarted: the old entry is stale.
        swarm
            .peers
            .retain(|id, p| *id == announce.peer_id || p.addr != announce.addr);
        let entry = swarm
            .peers
            .entry(announce.peer_id)
            .or_insert_with(|| PeerEntry {
                addr: announce.addr,
                left: announce.left,
                last_seen: now,
                completion_counted: false,
                remote: false,
            });
        entry.remote = false;
        entry.addr = announce.addr;
        entry.left = announce.left;
        entry.last_seen = now;
        if announce.event == Some(AnnounceEvent::Completed) && !entry.completion_counted {
            entry.completion_counted = true;
            swarm.downloaded += 1;
        }

        let requester_is_seed = announce.left == 0;
        let candidates = swarm
            .peers
            .iter()
            .filter(|(id, p)| **id != announce.peer_id && p.addr != announce.addr)
            // A seed has nothing to get from another seed.
            .filter(|(_, p)| !(requester_is_seed && p.left == 0))
            .map(|(id, p)| PeerInfo {
                peer_id: *id,
                addr: p.addr,
                is_seed: p.left == 0,
            });
        let peers = select_peers(
            candidates,
            announce.addr.ip(),
            announce.numwant,
            &mut self.rng,
        );
        AnnounceOutcome {
            peers,
            stats: swarm.stats(),
        }
    }

    /// Scrape numbers of one swarm (zeros for an unknown one).
    pub fn stats(&mut self, now: Instant, info_hash: &InfoHash) -> SwarmStats {
        match self.swarms.get_mut(info_hash) {
            Some(swarm) => {
                swarm.expire(now, self.peer_expiry);
                swarm.stats()
            }
            None => SwarmStats::default(),
        }
    }

    /// Drops every expired peer and every swarm left with nothing to
    /// remember; returns how many peers were dropped.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let expiry = self.peer_expiry;
        let mut dropped = 0;
        self.swarms.retain(|_, swarm| {
            dropped += swarm.expire(now, expiry);
            !swarm.is_forgettable()
        });
        dropped
    }

    /// Swarms currently held in memory.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }
}

#[cfg(test)]
#[path = "peer_store_tests.rs"]
mod tests;
