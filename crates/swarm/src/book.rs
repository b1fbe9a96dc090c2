//! The address book: peers we may dial, when, and who is banned.
//!
//! Bans are by address. On a real network that is the IP (a peer that
//! reconnects from another port is the same machine); on loopback, where
//! tests and benchmarks run many peers on one IP, it is IP and port.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BanKey {
    Ip(IpAddr),
    Socket(SocketAddr),
}

pub(crate) fn ban_key(addr: SocketAddr) -> BanKey {
    if addr.ip().is_loopback() {
        BanKey::Socket(addr)
    } else {
        BanKey::Ip(addr.ip())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dial {
    /// May be dialled from this time on.
    After(Instant),
    Connecting,
    Connected,
}

#[derive(Debug, Default)]
pub(crate) struct AddressBook {
    entries: BTreeMap<SocketAddr, Dial>,
    /// Failed dials in a row, per address still in `entries`.
    dial_failures: HashMap<SocketAddr, u32>,
    strikes: HashMap<BanKey, u32>,
    banned: std::collections::HashSet<BanKey>,
}

/// Caps the book so a tracker or peer flooding us with addresses costs
/// bounded memory.
const MAX_ADDRESSES: usize = 4096;

impl AddressBook {
    pub fn add(&mut self, addr: SocketAddr, now: Instant) {
        if self.entries.len() < MAX_ADDRESSES && !self.is_banned(addr) {
            self.entries.entry(addr).or_insert(Dial::After(now));
        }
    }

    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.banned.contains(&ban_key(addr))
    }

    /// Addresses to dial now, at most `limit`.
    pub fn take_dialable(&mut self, now: Instant, limit: usize) -> Vec<SocketAddr> {
        let ready: Vec<SocketAddr> = self
            .entries
            .iter()
            .filter(|(_, d)| matches!(d, Dial::After(t) if *t <= now))
            .map(|(a, _)| *a)
            .take(limit)
            .collect();
        for addr in &ready {
            self.entries.insert(*addr, Dial::Connecting);
        }
        ready
    }

    /// Whether some address is being dialled or waits to be (again).
    pub fn has_dials_ahead(&self) -> bool {
        self.entries
            .values()
            .any(|d| matches!(d, Dial::Connecting | Dial::After(_)))
    }

    pub fn connecting_count(&self) -> usize {
        self.entries
            .values()
            .filter(|d| **d == Dial::Connecting)
            .count()
    }

    pub fn connected(&mut self, addr: SocketAddr) {
        self.entries.insert(addr, Dial::Connected);
        self.dial_failures.remove(&addr);
    }

    /// A dial failed: try again after `base`, doubled per failure in a
    /// row, at most 8 × `base`.
    pub fn dial_failed(&mut self, addr: SocketAddr, now: Instant, base: std::time::Duration) {
        if !self.entries.contains_key(&addr) {
            return;
        }
        let failures = self.dial_failures.entry(addr).or_insert(0);
        *failures = failures.saturating_add(1);
        let delay = base * (1u32 << (*failures - 1).min(3));
        self.retry_after(addr, now + delay);
    }

    /// An incoming connection from a known address: do not dial it too.
    pub fn connected_if_known(&mut self, addr: SocketAddr) {
        if let Some(entry) = self.entries.get_mut(&addr) {
            *entry = Dial::Connected;
        }
    }

    /// A dial failed or a connection ended: try again later.
    pub fn retry_after(&mut self, addr: SocketAddr, when: Instant) {
        if let Some(entry) = self.entries.get_mut(&addr) {
            *entry = Dial::After(when);
        }
    }

    pub fn is_connected_or_connecting(&self, addr: SocketAddr) -> bool {
        matches!(
            self.entries.get(&addr),
            Some(Dial::Connected | Dial::Connecting)
        )
    }

    /// Counts a strike; returns true when it makes the peer banned.
    pub fn strike(&mut self, addr: SocketAddr, limit: u32) -> bool {
        let key = ban_key(addr);
        let strikes = self.strikes.entry(key).or_insert(0);
        *strikes += 1;
        if *strikes >= limit && self.banned.insert(key) {
            self.entries.retain(|a, _| ban_key(*a) != key);
            self.dial_failures.retain(|a, _| ban_key(*a) != key);
            return true;
        }
        false
    }

    pub fn banned_count(&self) -> usize {
        self.banned.len()
    }
}
