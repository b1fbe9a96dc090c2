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
        left,
        event,
        numwant: 50,
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
    s.announce(t, &announce(1, "10.0.0.1:1", 5, None));
    s.announce(t, &announce(2, "10.0.0.2:2", 5, None));
    let third = s.announce(t, &announce(3, "10.0.0.3:3", 5, None));
    assert_eq!(ids(&third), [1, 2]);
    let first = s.announce(t, &announce(1, "10.0.0.1:1", 5, None));
    assert_eq!(ids(&first), [2, 3]);
    assert_eq!(first.stats.incomplete, 3);
}

#[test]
fn seeds_are_not_sent_to_seeds() {
    let mut s = store();
    let t = Instant::now();
    s.announce(t, &announce(1, "10.0.0.1:1", 0, None));
    s.announce(t, &announce(2, "10.0.0.2:2", 9, None));
    let seed = s.announce(t, &announce(3, "10.0.0.3:3", 0, None));
    assert_eq!(ids(&seed), [2]);
    let leecher = s.announce(t, &announce(4, "10.0.0.4:4", 9, None));
    assert_eq!(ids(&leecher), [1, 2, 3]);
    assert_eq!((leecher.stats.complete, leecher.stats.incomplete), (2, 2));
}

#[test]
fn stopped_removes_and_expiry_forgets() {
    let mut s = store();
    let t = Instant::now();
    s.announce(t, &announce(1, "10.0.0.1:1", 5, None));
    s.announce(t, &announce(2, "10.0.0.2:2", 5, None));
    let stop = s.announce(
        t,
        &announce(2, "10.0.0.2:2", 5, Some(AnnounceEvent::Stopped)),
    );
    assert!(stop.peers.is_empty());
    assert_eq!(s.stats(t, &[7; 20]).incomplete, 1);

    // Peer 3 keeps announcing, peer 1 goes silent.
    s.announce(t + EXPIRY / 2, &announce(3, "10.0.0.3:3", 5, None));
    let later = s.announce(t + EXPIRY, &announce(3, "10.0.0.3:3", 5, None));
    assert!(later.peers.is_empty(), "peer 1 should have expired");
    assert_eq!(s.sweep(t + EXPIRY * 3), 1);
    assert_eq!(s.swarm_count(), 0);
}

#[test]
fn completed_is_counted_once_per_peer_and_survives_the_peers() {
    let mut s = store();
    let t = Instant::now();
    s.announce(
        t,
        &announce(1, "10.0.0.1:1", 5, Some(AnnounceEvent::Started)),
    );
    s.announce(
        t,
        &announce(1, "10.0.0.1:1", 0, Some(AnnounceEvent::Completed)),
    );
    s.announce(
        t,
        &announce(1, "10.0.0.1:1", 0, Some(AnnounceEvent::Completed)),
    );
    s.announce(
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
    s.announce(t, &announce(1, "10.0.0.1:1", 5, None));
    s.announce(t, &announce(9, "10.0.0.1:1", 5, None));
    let other = s.announce(t, &announce(2, "10.0.0.2:2", 5, None));
    assert_eq!(ids(&other), [9]);
}

#[test]
fn same_subnet_first_and_numwant_respected() {
    let mut s = store();
    let t = Instant::now();
    for n in 1..=30u8 {
        s.announce(t, &announce(n, &format!("172.16.{n}.1:6881"), 5, None));
    }
    s.announce(t, &announce(200, "10.9.9.9:6881", 5, None));
    let mut asker = announce(100, "10.9.9.1:6881", 5, None);
    asker.numwant = 4;
    let out = s.announce(t, &asker);
    assert_eq!(out.peers.len(), 4);
    assert_eq!(out.peers[0].peer_id, [200; 20]);
}
