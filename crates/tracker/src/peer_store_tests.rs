//! Unit tests of the peer store, with time advanced by hand.

use super::*;
use rand::SeedableRng;

const EXPIRY: Duration = Duration::from_secs(100);

fn store() -> PeerStore {
    PeerStore::new(EXPIRY, SmallRng::seed_from_u64(42))
}

fn announce(peer: u8, addr: &str, left: u64, event: Option<AnnounceEvent>) -> Announce {
    Announce {
        info_hash: [7; 20],
        peer_id: [peer; 20],
        addr: addr.parse().expect("test address"),
        key: None,
        left,
        event,
        numwant: 50,
        totals: [0; 3],
    }
}

/// Announces and expects it accepted.
trait Accept {
    fn ok(&mut self, t: Instant, a: &Announce) -> AnnounceOutcome;
}

impl Accept for PeerStore {
    fn ok(&mut self, t: Instant, a: &Announce) -> AnnounceOutcome {
        self.announce(t, a)
            .unwrap_or_else(|e| panic!("announce {a:?} refused: {e}"))
    }
}

fn ids(outcome: &AnnounceOutcome) -> Vec<u8> {
    let mut ids: Vec<u8> = outcome.peers.iter().map(|p| p.peer_id[0]).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn peers_get_each_other_but_never_themselves() {
    let mut s = store();
    let t = Instant::now();
    s.ok(t, &announce(1, "10.0.0.1:1", 5, None));
    s.ok(t, &announce(2, "10.0.0.2:2", 5, None));
    let third = s.ok(t, &announce(3, "10.0.0.3:3", 5, None));
    assert_eq!(ids(&third), [1, 2]);
    let first = s.ok(t, &announce(1, "10.0.0.1:1", 5, None));
    assert_eq!(ids(&first), [2, 3]);
    assert_eq!(first.stats.incomplete, 3);
}

#[test]
fn seeds_are_not_sent_to_seeds() {
    let mut s = store();
    let t = Instant::now();
    s.ok(t, &announce(1, "10.0.0.1:1", 0, None));
    s.ok(t, &announce(2, "10.0.0.2:2", 9, None));
    let seed = s.ok(t, &announce(3, "10.0.0.3:3", 0, None));
    assert_eq!(ids(&seed), [2]);
    let leecher = s.ok(t, &announce(4, "10.0.0.4:4", 9, None));
    assert_eq!(ids(&leecher), [1, 2, 3]);
    assert_eq!((leecher.stats.complete, leecher.stats.incomplete), (2, 2));
}

#[test]
fn stopped_removes_and_expiry_forgets() {
    let mut s = store();
    let t = Instant::now();
    s.ok(t, &announce(1, "10.0.0.1:1", 5, None));
    s.ok(t, &announce(2, "10.0.0.2:2", 5, None));
    let stop = s.ok(
        t,
        &announce(2, "10.0.0.2:2", 5, Some(AnnounceEvent::Stopped)),
    );
    assert!(stop.peers.is_empty());
    assert_eq!(s.stats(t, &[7; 20]).incomplete, 1);

    // Peer 3 keeps announcing, peer 1 goes silent.
    s.ok(t + EXPIRY / 2, &announce(3, "10.0.0.3:3", 5, None));
    let later = s.ok(t + EXPIRY, &announce(3, "10.0.0.3:3", 5, None));
    assert!(later.peers.is_empty(), "peer 1 should have expired");
    assert_eq!(s.sweep(t + EXPIRY * 3), 1);
    assert_eq!(s.swarm_count(), 0);
}

#[test]
fn completed_is_counted_once_per_peer_and_survives_the_peers() {
    let mut s = store();
    let t = Instant::now();
    s.ok(
        t,
        &announce(1, "10.0.0.1:1", 5, Some(AnnounceEvent::Started)),
    );
    s.ok(
        t,
        &announce(1, "10.0.0.1:1", 0, Some(AnnounceEvent::Completed)),
    );
    s.ok(
        t,
        &announce(1, "10.0.0.1:1", 0, Some(AnnounceEvent::Completed)),
    );
    s.ok(
        t,
        &announce(2, "10.0.0.2:2", 0, Some(AnnounceEvent::Completed)),
    );
    let stats = s.stats(t, &[7; 20]);
    assert_eq!(
        (stats.complete, stats.incomplete, stats.downloaded),
        (2, 0, 2)
    );
    s.sweep(t + EXPIRY);
    assert_eq!(s.swarm_count(), 1, "the completion count is kept");
    assert_eq!(s.stats(t + EXPIRY, &[7; 20]).downloaded, 2);
}

#[test]
fn a_new_peer_id_at_a_known_address_replaces_the_old_entry() {
    let mut s = store();
    let t = Instant::now();
    s.ok(t, &announce(1, "10.0.0.1:1", 5, None));
    s.ok(t, &announce(9, "10.0.0.1:1", 5, None));
    let other = s.ok(t, &announce(2, "10.0.0.2:2", 5, None));
    assert_eq!(ids(&other), [9]);
}

#[test]
fn same_subnet_first_and_numwant_respected() {
    let mut s = store();
    let t = Instant::now();
    for n in 1..=30u8 {
        s.ok(t, &announce(n, &format!("172.16.{n}.1:6881"), 5, None));
    }
    s.ok(t, &announce(200, "10.9.9.9:6881", 5, None));
    let mut asker = announce(100, "10.9.9.1:6881", 5, None);
    asker.numwant = 4;
    let out = s.ok(t, &asker);
    assert_eq!(out.peers.len(), 4);
    assert_eq!(out.peers[0].peer_id, [200; 20]);
}

#[test]
fn another_address_cannot_update_or_stop_a_peer() {
    let mut s = store();
    let t = Instant::now();
    s.ok(t, &announce(1, "10.0.0.1:1", 5, None));
    let mut forged = announce(1, "10.6.6.6:1", 0, Some(AnnounceEvent::Stopped));
    assert_eq!(s.announce(t, &forged), Err(AnnounceRefusal::PeerIdTaken));
    forged.event = None;
    assert_eq!(s.announce(t, &forged), Err(AnnounceRefusal::PeerIdTaken));
    let other = s.ok(t, &announce(2, "10.0.0.2:2", 5, None));
    assert_eq!(ids(&other), [1], "the victim is still listed");
    assert_eq!(other.peers[0].addr, "10.0.0.1:1".parse().expect("addr"));
    assert!(s.take_stopped().is_empty(), "no forged departure is shared");
}

#[test]
fn the_key_binds_a_peer_id_to_its_client() {
    let mut s = store();
    let t = Instant::now();
    let mut owner = announce(1, "10.0.0.1:1", 5, None);
    owner.key = Some(42);
    s.ok(t, &owner);
    // Same address, no key or another key: refused.
    let mut keyless = owner.clone();
    keyless.key = None;
    keyless.event = Some(AnnounceEvent::Stopped);
    assert_eq!(s.announce(t, &keyless), Err(AnnounceRefusal::PeerIdTaken));
    let mut wrong = keyless.clone();
    wrong.key = Some(7);
    assert_eq!(s.announce(t, &wrong), Err(AnnounceRefusal::PeerIdTaken));
    // Even the right key from another address.
    let mut moved = owner.clone();
    moved.addr = "10.9.9.9:1".parse().expect("addr");
    assert_eq!(s.announce(t, &moved), Err(AnnounceRefusal::PeerIdTaken));
    // Once the entry expired, the peer id is free again.
    s.ok(t + EXPIRY, &moved);
    // The owner itself: accepted.
    let mut stop = moved.clone();
    stop.event = Some(AnnounceEvent::Stopped);
    s.ok(t + EXPIRY, &stop);
    assert!(ids(&s.ok(t + EXPIRY, &announce(2, "10.0.0.2:2", 5, None))).is_empty());
}

#[test]
fn one_address_holds_at_most_its_allowance_of_sessions() {
    let mut s = PeerStore::new(EXPIRY, SmallRng::seed_from_u64(1)).with_max_sessions_per_ip(3);
    let t = Instant::now();
    for n in 1..=3u8 {
        s.ok(t, &announce(n, &format!("10.0.0.1:{n}"), 5, None));
    }
    assert_eq!(
        s.announce(t, &announce(4, "10.0.0.1:4", 5, None)),
        Err(AnnounceRefusal::TooManySessions { limit: 3 })
    );
    // Another address is not affected; a stop frees a slot.
    s.ok(t, &announce(5, "10.0.0.2:5", 5, None));
    s.ok(
        t,
        &announce(1, "10.0.0.1:1", 5, Some(AnnounceEvent::Stopped)),
    );
    s.ok(t, &announce(4, "10.0.0.1:4", 5, None));
    assert_eq!(s.stats(t, &[7; 20]).incomplete, 4);
}

/// The cost of an announce: it examines O(numwant) entries, not the swarm.
#[test]
fn an_announce_examines_numwant_entries_not_the_swarm() {
    let mut s = store();
    let t = Instant::now();
    for n in 0..100_000u32 {
        let mut a = announce(0, "10.0.0.1:1", u64::from(n % 3), None);
        a.peer_id[..4].copy_from_slice(&n.to_be_bytes());
        let [_, b, c, d] = n.to_be_bytes();
        a.addr = SocketAddr::from(([11, b, c, d], 6881));
        a.numwant = 0;
        s.ok(t, &a);
    }
    assert_eq!(s.peer_count(), 100_000);
    let mut asker = announce(200, "12.0.0.1:1", 5, None);
    asker.numwant = 50;
    let out = s.ok(t, &asker);
    assert_eq!(out.peers.len(), 50);
    assert!(
        s.last_announce_probes() <= 4 * 50 + 64 + 4,
        "examined {} entries",
        s.last_announce_probes()
    );
    // A seed asking gets only leechers, still at bounded cost.
    let mut seed = announce(201, "12.0.0.2:1", 0, None);
    seed.numwant = 50;
    let out = s.ok(t, &seed);
    assert_eq!(out.peers.len(), 50);
    assert!(out.peers.iter().all(|p| !p.is_seed));
    assert!(s.last_announce_probes() <= 4 * 50 + 64 + 4);
}

#[test]
fn the_same_seed_gives_the_same_peers() {
    let run = || {
        let mut s = store();
        let t = Instant::now();
        for n in 1..=60u8 {
            s.ok(t, &announce(n, &format!("172.16.{n}.1:6881"), 5, None));
        }
        s.ok(
            t,
            &announce(60, "172.16.60.1:6881", 5, Some(AnnounceEvent::Stopped)),
        );
        let mut asker = announce(100, "10.9.9.1:6881", 5, None);
        asker.numwant = 10;
        ids(&s.ok(t, &asker))
    };
    assert_eq!(run(), run());
}

#[test]
fn a_repeat_of_the_same_totals_is_not_passed_to_the_accounting() {
    let mut s = store();
    let t = Instant::now();
    let mut a = announce(1, "10.0.0.1:1", 5, Some(AnnounceEvent::Started));
    assert!(!s.ok(t, &a).report_unchanged, "a new peer reports");
    a.event = None;
    assert!(s.ok(t, &a).report_unchanged);
    a.totals = [0, 10, 0];
    assert!(!s.ok(t, &a).report_unchanged, "growth reports");
    assert!(s.ok(t + Duration::from_secs(1), &a).report_unchanged);
    assert!(
        !s.ok(t + IDLE_REPORT_EVERY, &a).report_unchanged,
        "an idle peer still reports now and then"
    );
    a.event = Some(AnnounceEvent::Completed);
    assert!(
        !s.ok(t + IDLE_REPORT_EVERY, &a).report_unchanged,
        "events report"
    );
}
