//! One swarm's peers, with the indexes that make an announce cost
//! independent of the swarm's size. The peer types it answers with
//! ([`PeerInfo`], [`SwarmStats`]) are public as `peer_store`'s.
//!
//! An announce must not scan the swarm: a swarm of 100,000 peers would
//! cost 100,000 steps per request, under the lock every swarm shares. So
//! every question an announce asks has its own index, kept up to date on
//! each insert and removal:
//!
//! - `peers`: peer id → entry (lookup, update);
//! - `seeds` and `leechers`: the peers in two vectors of [`Slot`]s, for
//!   uniform random sampling and O(1) counts; an entry records its slot,
//!   and removal is a swap-remove that updates the one entry moved;
//! - `by_subnet`: the slots per /24 or /64, same swap-remove scheme, for
//!   the neighbours-first rule;
//! - `by_addr`: listening address → peer id (a restarted listener);
//! - `per_ip`: live sessions per IP, for the per-address limit.
//!
//! Sampling draws random slots (O(numwant) probes), never a shuffle of the
//! whole swarm. A slot carries what sampling checks (id, address, last
//! seen, seed), so a probe is one read of a vector, not a hash lookup in a
//! map far bigger than the cache. Only vectors are ever iterated or indexed by the random
//! number generator, never a hash map, so results are reproducible for a
//! seed.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::peer_selection::{subnet_of, Subnet};

/// A client's 20-byte peer id (BEP 3).
pub type PeerId = [u8; 20];

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
    /// Peers with the whole content (expired ones until the next sweep).
    pub complete: u32,
    /// Peers still downloading (likewise).
    pub incomplete: u32,
    /// `completed` events ever seen (at most one per peer id).
    pub downloaded: u64,
}

/// One peer as this instance knows it.
#[derive(Debug, Clone)]
pub(crate) struct PeerEntry {
    pub(crate) addr: SocketAddr,
    pub(crate) left: u64,
    pub(crate) last_seen: Instant,
    /// A digest of the client's BEP 7 `key`: only the client knows it, so
    /// it proves that an update or a stop comes from the same client.
    pub(crate) key: Option<u64>,
    /// Whether this peer's `completed` was already counted, so a client
    /// that repeats the event does not inflate `downloaded`.
    pub(crate) completion_counted: bool,
    /// Announced to another tracker instance, learned through the shared
    /// database: not shared back.
    pub(crate) remote: bool,
    /// The totals (uploaded, downloaded, origin) of the last announce
    /// passed on to the accounting, and when.
    pub(crate) reported: Option<([u64; 3], Instant)>,
    /// When this peer was last shared with other instances, and its
    /// address and bytes left then.
    pub(crate) published: Option<(Instant, SocketAddr, u64)>,
    /// Index in `seeds` (left = 0) or `leechers`.
    pool_slot: usize,
    /// Index in its subnet's list.
    subnet_slot: usize,
}

impl PeerEntry {
    pub(crate) fn new(addr: SocketAddr, left: u64, last_seen: Instant, key: Option<u64>) -> Self {
        PeerEntry {
            addr,
            left,
            last_seen,
            key,
            completion_counted: false,
            remote: false,
            reported: None,
            published: None,
            pool_slot: 0,
            subnet_slot: 0,
        }
    }

    fn is_seed(&self) -> bool {
        self.left == 0
    }

    pub(crate) fn expired(&self, now: Instant, expiry: Duration) -> bool {
        now.saturating_duration_since(self.last_seen) >= expiry
    }
}

/// What sampling needs of a peer, kept in the vectors it samples.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: PeerId,
    addr: SocketAddr,
    last_seen: Instant,
    seed: bool,
}

impl Slot {
    fn of(id: PeerId, entry: &PeerEntry) -> Slot {
        Slot {
            id,
            addr: entry.addr,
            last_seen: entry.last_seen,
            seed: entry.is_seed(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Swarm {
    peers: HashMap<PeerId, PeerEntry>,
    seeds: Vec<Slot>,
    leechers: Vec<Slot>,
    by_subnet: HashMap<Subnet, Vec<Slot>>,
    by_addr: HashMap<SocketAddr, PeerId>,
    per_ip: HashMap<IpAddr, u32>,
    /// `completed` events ever counted (at most one per peer entry).
    pub(crate) downloaded: u64,
}

/// What one sampling pass looked at, for the cost bound the tests check.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Probes(pub(crate) usize);

impl Swarm {
    pub(crate) fn get(&self, id: &PeerId) -> Option<&PeerEntry> {
        self.peers.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &PeerId) -> Option<&mut PeerEntry> {
        self.peers.get_mut(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Live entries (expired ones until the sweep) from `ip`.
    pub(crate) fn sessions_from(&self, ip: IpAddr) -> u32 {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// The peer id listed at `addr`, if any.
    pub(crate) fn id_at(&self, addr: &SocketAddr) -> Option<PeerId> {
        self.by_addr.get(addr).copied()
    }

    pub(crate) fn stats(&self) -> SwarmStats {
        SwarmStats {
            complete: u32::try_from(self.seeds.len()).unwrap_or(u32::MAX),
            incomplete: u32::try_from(self.leechers.len()).unwrap_or(u32::MAX),
            downloaded: self.downloaded,
        }
    }

    /// Nothing worth remembering: no peers and no completion count.
    pub(crate) fn is_forgettable(&self) -> bool {
        self.peers.is_empty() && self.downloaded == 0
    }

    fn pool(&mut self, seed: bool) -> &mut Vec<Slot> {
        if seed {
            &mut self.seeds
        } else {
            &mut self.leechers
        }
    }

    /// Adds `id` (which must not be present) with every index.
    pub(crate) fn insert(&mut self, id: PeerId, mut entry: PeerEntry) {
        let slot = Slot::of(id, &entry);
        let pool = self.pool(entry.is_seed());
        entry.pool_slot = pool.len();
        pool.push(slot);
        let list = self
            .by_subnet
            .entry(subnet_of(entry.addr.ip()))
            .or_default();
        entry.subnet_slot = list.len();
        list.push(slot);
        self.by_addr.insert(entry.addr, id);
        *self.per_ip.entry(entry.addr.ip()).or_insert(0) += 1;
        self.peers.insert(id, entry);
    }

    /// Removes `id` from every index; O(1).
    pub(crate) fn remove(&mut self, id: &PeerId) -> Option<PeerEntry> {
        let entry = self.peers.remove(id)?;
        let seed = entry.is_seed();
        self.take_pool_slot(seed, entry.pool_slot);
        let subnet = subnet_of(entry.addr.ip());
        if let Some(list) = self.by_subnet.get_mut(&subnet) {
            list.swap_remove(entry.subnet_slot);
            if let Some(moved) = list.get(entry.subnet_slot) {
                if let Some(e) = self.peers.get_mut(&moved.id) {
                    e.subnet_slot = entry.subnet_slot;
                }
            }
            if list.is_empty() {
                self.by_subnet.remove(&subnet);
            }
        }
        if self.by_addr.get(&entry.addr) == Some(id) {
            self.by_addr.remove(&entry.addr);
        }
        if let Some(count) = self.per_ip.get_mut(&entry.addr.ip()) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_ip.remove(&entry.addr.ip());
            }
        }
        Some(entry)
    }

    fn take_pool_slot(&mut self, seed: bool, slot: usize) {
        let pool = self.pool(seed);
        pool.swap_remove(slot);
        if let Some(moved) = pool.get(slot).map(|s| s.id) {
            if let Some(e) = self.peers.get_mut(&moved) {
                e.pool_slot = slot;
            }
        }
    }

    /// Applies a fresh announce to an existing entry: address, bytes left,
    /// time seen. Moves it between pools and indexes as needed.
    pub(crate) fn refresh(&mut self, id: &PeerId, addr: SocketAddr, left: u64, now: Instant) {
        let Some(entry) = self.peers.get(id) else {
            return;
        };
        if entry.addr != addr {
            // Rare (a roaming client proving itself with its key): rebuild.
            if let Some(mut entry) = self.remove(id) {
                entry.addr = addr;
                entry.left = left;
                entry.last_seen = now;
                self.insert(*id, entry);
            }
            return;
        }
        let was_seed = entry.is_seed();
        let (pool_slot, subnet_slot) = (entry.pool_slot, entry.subnet_slot);
        let subnet = subnet_of(addr.ip());
        if let Some(e) = self.peers.get_mut(id) {
            e.left = left;
            e.last_seen = now;
        }
        if let Some(slot) = self
            .by_subnet
            .get_mut(&subnet)
            .and_then(|list| list.get_mut(subnet_slot))
        {
            slot.last_seen = now;
            slot.seed = left == 0;
        }
        if was_seed != (left == 0) {
            self.take_pool_slot(was_seed, pool_slot);
            let Some(entry) = self.peers.get(id) else {
                return;
            };
            let slot = Slot::of(*id, entry);
            let pool = self.pool(left == 0);
            let new_slot = pool.len();
            pool.push(slot);
            if let Some(e) = self.peers.get_mut(id) {
                e.pool_slot = new_slot;
            }
        } else if let Some(slot) = self.pool(was_seed).get_mut(pool_slot) {
            slot.last_seen = now;
        }
    }

    /// Ids of expired entries, in vector order (deterministic).
    pub(crate) fn expired_ids(&self, now: Instant, expiry: Duration) -> Vec<PeerId> {
        self.seeds
            .iter()
            .chain(&self.leechers)
            .filter(|slot| now.saturating_duration_since(slot.last_seen) >= expiry)
            .map(|slot| slot.id)
            .collect()
    }

    /// Every entry, to update (in no particular order).
    pub(crate) fn entries_mut(&mut self) -> impl Iterator<Item = (&PeerId, &mut PeerEntry)> {
        self.peers.iter_mut()
    }

    /// At most `numwant` peers for `requester` at `addr`: same-subnet
    /// peers first, then a uniform sample of the rest. Never the requester
    /// itself, nothing at its address, no seed for a seed, nothing expired;
    /// expired entries met on the way are returned for removal.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pick(
        &self,
        requester: &PeerId,
        addr: SocketAddr,
        requester_is_seed: bool,
        numwant: usize,
        now: Instant,
        expiry: Duration,
        rng: &mut impl Rng,
    ) -> (Vec<PeerInfo>, Vec<PeerId>, Probes) {
        let mut picked: Vec<PeerInfo> = Vec::with_capacity(numwant.min(self.peers.len()));
        let mut expired = Vec::new();
        let mut probes = Probes::default();
        let home = subnet_of(addr.ip());
        let mut consider = |slot: &Slot, far: bool, picked: &mut Vec<PeerInfo>| -> bool {
            probes.0 += 1;
            if slot.id == *requester || slot.addr == addr {
                return false;
            }
            // The near pass already looked at the requester's subnet.
            if far && subnet_of(slot.addr.ip()) == home {
                return false;
            }
            if now.saturating_duration_since(slot.last_seen) >= expiry {
                expired.push(slot.id);
                return false;
            }
            if requester_is_seed && slot.seed {
                return false;
            }
            picked.push(PeerInfo {
                peer_id: slot.id,
                addr: slot.addr,
                is_seed: slot.seed,
            });
            true
        };
        if let Some(near) = self.by_subnet.get(&home) {
            sample(near.len(), numwant, rng, |i| {
                consider(&near[i], false, &mut picked)
            });
        }
        let want = numwant - picked.len();
        // A seed only gets leechers; a leecher samples seeds and leechers
        // as one list, seeds first.
        let seeds: &[Slot] = if requester_is_seed { &[] } else { &self.seeds };
        let leechers = &self.leechers;
        sample(seeds.len() + leechers.len(), want, rng, |i| {
            let slot = seeds.get(i).unwrap_or_else(|| &leechers[i - seeds.len()]);
            consider(slot, true, &mut picked)
        });
        expired.sort_unstable();
        expired.dedup();
        (picked, expired, probes)
    }
}

/// Hashes the random slot indices `sample` draws: they are not chosen by
/// anyone, so a multiply-shift is enough (SipHash costs more than the
/// probe it guards).
#[derive(Default)]
struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_usize(&mut self, i: usize) {
        self.0 = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Slots probed together from each random start in a long list: a run
/// of neighbouring slots shares cache lines, so a probe costs a few
/// nanoseconds instead of a memory miss, while every slot keeps the same
/// chance to be picked.
const RUN: usize = 4;

/// Calls `take` on distinct random indices of `0..len` until it has
/// accepted `want` of them. A short list is walked in a random order in
/// full; a long one is probed in runs of [`RUN`] consecutive indices from
/// random starts, at most `4 * want + 64` probes, so the cost is O(want)
/// whatever `len` is (with many rejections it may return fewer; the client
/// asks again next interval).
fn sample(len: usize, want: usize, rng: &mut impl Rng, mut take: impl FnMut(usize) -> bool) {
    if want == 0 || len == 0 {
        return;
    }
    let budget = want.saturating_mul(4).saturating_add(64);
    let mut got = 0;
    if len <= budget {
        let mut order: Vec<usize> = (0..len).collect();
        for i in 0..len {
            let j = rng.gen_range(i..len);
            order.swap(i, j);
            if take(order[i]) {
                got += 1;
                if got == want {
                    return;
                }
            }
        }
    } else {
        let mut tried: HashSet<usize, BuildHasherDefault<IndexHasher>> =
            HashSet::with_capacity_and_hasher(budget, BuildHasherDefault::default());
        let mut probes = 0;
        while probes < budget {
            let start = rng.gen_range(0..len);
            for i in (start..start + RUN).map(|i| i % len) {
                probes += 1;
                if tried.insert(i) && take(i) {
                    got += 1;
                    if got == want {
                        return;
                    }
                }
            }
        }
    }
}
