//! Who is in which swarm, and which client owns which peer id.
//!
//! Sans-IO: every call takes `now`, randomness comes from the RNG given at
//! construction, so tests drive time by hand and get the same peers for the
//! same seed. The HTTP layer owns the clock and the lock. Swarm membership
//! stays in memory because announces rebuild it within one interval.
//!
//! An announce costs O(numwant) whatever the swarm's size (see
//! `swarm_table`): expired peers are dropped when an announce meets them
//! and by the periodic [`PeerStore::sweep`], never by a scan per announce.
//!
//! A peer id belongs to the client that announced it first: an update or
//! a stop must come from the same IP with the same `key` (BEP 7). Nobody
//! else can move, silence or remove it. A client whose address changes is
//! refused under that peer id until its old entry expires; clients pick a
//! new peer id when they restart anyway. (Letting the key alone prove
//! ownership across addresses would rest on a 32-bit secret, and peers
//! learn each other's peer ids from the wire handshake.) At most `max_sessions_per_ip` live peer ids
//! per IP and swarm: one address cannot fill a swarm with sybils.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use thiserror::Error;

use crate::announce_query::AnnounceEvent;
use crate::swarm_table::{PeerEntry, Swarm};
pub use crate::swarm_table::{PeerId, PeerInfo, SwarmStats};

pub type InfoHash = [u8; 20];

/// Bound on departures remembered between two peer exchanges; beyond it
/// other instances learn of a departure by expiry instead.
const MAX_STOPPED_KEPT: usize = 100_000;

/// One announce, reduced to what the store needs. `addr` is the
/// client's IP with the port the peer listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub addr: SocketAddr,
    /// A digest of the client's `key` parameter, if it sent one.
    pub key: Option<u64>,
    pub left: u64,
    pub event: Option<AnnounceEvent>,
    /// Most peers to return, already capped by the settings.
    pub numwant: usize,
    /// The client's running totals: uploaded, downloaded, origin bytes.
    pub totals: [u64; 3],
}

/// What an announce gets back: peers to try, and the swarm's numbers after
/// the announce was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceOutcome {
    pub peers: Vec<PeerInfo>,
    pub stats: SwarmStats,
    /// The announce repeats totals this peer already reported within
    /// [`IDLE_REPORT_EVERY`], with no event: the accounting has nothing to
    /// learn from it (most of a full swarm's re-announces are such).
    pub report_unchanged: bool,
}

/// How often a peer whose totals do not move is still passed on to the
/// accounting (which keeps its session alive there and counts it among
/// the day's peers).
pub const IDLE_REPORT_EVERY: Duration = Duration::from_secs(600);

/// Why the store refused an announce; the text is the `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AnnounceRefusal {
    /// The peer id is live and was announced from another address or
    /// with another `key`.
    #[error("this peer_id is in use by another client; choose a new peer_id")]
    PeerIdTaken,
    /// The address already has the most sessions allowed in this swarm.
    #[error("too many sessions from your address in this swarm (at most {limit}); stop one or wait for it to expire")]
    TooManySessions { limit: u32 },
}

/// All swarms the tracker knows, keyed by info-hash.
#[derive(Debug)]
pub struct PeerStore {
    swarms: HashMap<InfoHash, Swarm>,
    peer_expiry: Duration,
    max_sessions_per_ip: u32,
    rng: SmallRng,
    /// Peers that announced `stopped` since the last [`take_stopped`]:
    /// other instances are told to drop them.
    stopped: Vec<(InfoHash, PeerId)>,
    /// Entries the last announce examined while picking peers: the cost
    /// bound the tests check (O(numwant), not O(swarm)).
    last_probes: usize,
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
    /// No limit of sessions per IP until [`Self::with_max_sessions_per_ip`].
    pub fn new(peer_expiry: Duration, rng: SmallRng) -> Self {
        PeerStore {
            swarms: HashMap::new(),
            peer_expiry,
            max_sessions_per_ip: u32::MAX,
            rng,
            stopped: Vec::new(),
            last_probes: 0,
        }
    }

    /// Live peer ids one IP may hold in one swarm.
    pub fn with_max_sessions_per_ip(mut self, limit: u32) -> Self {
        self.max_sessions_per_ip = limit;
        self
    }

    /// Peers to share with other instances now: those announced here that
    /// are new or changed (address, bytes left) since they were last
    /// shared, or still announcing and last shared `republish_every` ago
    /// (so others keep them). Marks them shared. Re-announces that change
    /// nothing are most of a full swarm's traffic: sharing each would make
    /// the database's work follow the swarm's size.
    pub fn take_to_publish(&mut self, now: Instant, republish_every: Duration) -> Vec<LocalPeer> {
        let mut out = Vec::new();
        for (hash, swarm) in &mut self.swarms {
            for (id, p) in swarm.entries_mut() {
                if p.remote {
                    continue;
                }
                let due = match p.published {
                    None => true,
                    Some((at, addr, left)) => {
                        addr != p.addr
                            || left != p.left
                            || (p.last_seen > at
                                && now.saturating_duration_since(at) >= republish_every)
                    }
                };
                if due {
                    p.published = Some((now, p.addr, p.left));
                    out.push(LocalPeer {
                        swarm: *hash,
                        peer_id: *id,
                        addr: p.addr,
                        left: p.left,
                    });
                }
            }
        }
        out
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
    /// The other instance checked who may stop it.
    pub fn merge_remote(&mut self, now: Instant, peer: LocalPeer, stopped: bool) {
        if stopped {
            if let Some(swarm) = self.swarms.get_mut(&peer.swarm) {
                swarm.remove(&peer.peer_id);
            }
            return;
        }
        let swarm = self.swarms.entry(peer.swarm).or_default();
        match swarm.get(&peer.peer_id) {
            Some(entry) if !entry.remote => {}
            Some(_) => swarm.refresh(&peer.peer_id, peer.addr, peer.left, now),
            None => {
                let mut entry = PeerEntry::new(peer.addr, peer.left, now, None);
                entry.remote = true;
                swarm.insert(peer.peer_id, entry);
            }
        }
    }

    /// Peers over all swarms (expired ones until the next sweep).
    pub fn peer_count(&self) -> usize {
        self.swarms.values().map(Swarm::len).sum()
    }

    /// Entries the last announce examined to pick its peers.
    pub fn last_announce_probes(&self) -> usize {
        self.last_probes
    }

    /// Records an announce and picks peers for the announcer, or refuses
    /// it (see the module comment). O(numwant), whatever the swarm's size.
    pub fn announce(
        &mut self,
        now: Instant,
        announce: &Announce,
    ) -> Result<AnnounceOutcome, AnnounceRefusal> {
        let expiry = self.peer_expiry;
        let swarm = self.swarms.entry(announce.info_hash).or_default();
        let id = announce.peer_id;
        let known = match swarm.get(&id) {
            Some(entry) if entry.expired(now, expiry) => {
                swarm.remove(&id);
                false
            }
            Some(entry) => {
                if !same_client(entry, announce) {
                    return Err(AnnounceRefusal::PeerIdTaken);
                }
                true
            }
            None => false,
        };

        if announce.event == Some(AnnounceEvent::Stopped) {
            if known {
                swarm.remove(&id);
                if self.stopped.len() < MAX_STOPPED_KEPT {
                    self.stopped.push((announce.info_hash, id));
                }
            }
            let stats = swarm.stats();
            if swarm.is_forgettable() {
                self.swarms.remove(&announce.info_hash);
            }
            return Ok(AnnounceOutcome {
                peers: Vec::new(),
                stats,
                report_unchanged: false,
            });
        }

        if known {
            swarm.refresh(&id, announce.addr, announce.left, now);
        } else {
            // A new peer id at an address already listed is the same
            // listener restarted: the old entry is stale.
            if let Some(old) = swarm.id_at(&announce.addr) {
                swarm.remove(&old);
            }
            if swarm.sessions_from(announce.addr.ip()) >= self.max_sessions_per_ip {
                let limit = self.max_sessions_per_ip;
                if swarm.is_forgettable() {
                    self.swarms.remove(&announce.info_hash);
                }
                return Err(AnnounceRefusal::TooManySessions { limit });
            }
            swarm.insert(
                id,
                PeerEntry::new(announce.addr, announce.left, now, announce.key),
            );
        }
        let mut report_unchanged = false;
        if let Some(entry) = swarm.get_mut(&id) {
            report_unchanged = known
                && announce.event.is_none()
                && entry.reported.is_some_and(|(totals, at)| {
                    totals == announce.totals
                        && now.saturating_duration_since(at) < IDLE_REPORT_EVERY
                });
            if !report_unchanged {
                entry.reported = Some((announce.totals, now));
            }
            entry.remote = false;
            entry.key = announce.key;
            if announce.event == Some(AnnounceEvent::Completed) && !entry.completion_counted {
                entry.completion_counted = true;
                swarm.downloaded = swarm.downloaded.saturating_add(1);
            }
        }

        let (peers, expired, probes) = swarm.pick(
            &id,
            announce.addr,
            announce.left == 0,
            announce.numwant,
            now,
            expiry,
            &mut self.rng,
        );
        for gone in &expired {
            swarm.remove(gone);
        }
        self.last_probes = probes.0;
        Ok(AnnounceOutcome {
            peers,
            stats: swarm.stats(),
            report_unchanged,
        })
    }

    /// Scrape numbers of one swarm (zeros for an unknown one).
    pub fn stats(&mut self, _now: Instant, info_hash: &InfoHash) -> SwarmStats {
        self.swarms
            .get(info_hash)
            .map(Swarm::stats)
            .unwrap_or_default()
    }

    /// Drops every expired peer and every swarm left with nothing to
    /// remember; returns how many peers were dropped. O(peers): run from
    /// the timer, not per announce.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let expiry = self.peer_expiry;
        let mut dropped = 0;
        self.swarms.retain(|_, swarm| {
            for id in swarm.expired_ids(now, expiry) {
                swarm.remove(&id);
                dropped += 1;
            }
            !swarm.is_forgettable()
        });
        dropped
    }

    /// Swarms currently held in memory.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }
}

/// Whether `announce` comes from the client that owns `entry`: the same
/// IP and `key`. A peer learned from another instance has no known key:
/// its IP decides.
fn same_client(entry: &PeerEntry, announce: &Announce) -> bool {
    let same_ip = entry.addr.ip() == announce.addr.ip();
    same_ip && (entry.remote || entry.key == announce.key)
}

#[cfg(test)]
#[path = "peer_store_tests.rs"]
mod tests;
