//! Which peers an announcer gets: neighbours first, then a random sample.
//!
//! Peers in the same /24 (IPv4) or /64 (IPv6) as the announcer are likely
//! on the same site, where bytes are cheap and fast, so they come first.
//! The rest is a uniform random sample, so load spreads over the swarm
//! instead of everyone hammering the oldest peers.

use std::net::IpAddr;

use rand::seq::SliceRandom;
use rand::Rng;

use crate::peer_store::PeerInfo;

/// True when `a` and `b` share a /24 (IPv4) or a /64 (IPv6).
pub fn same_subnet(a: IpAddr, b: IpAddr) -> bool {
    match (a.to_canonical(), b.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets()[..8] == b.octets()[..8],
        _ => false,
    }
}

/// Picks at most `numwant` of `candidates`: same-subnet peers first (in
/// random order among themselves), then a random sample of the others.
pub fn select_peers(
    candidates: impl Iterator<Item = PeerInfo>,
    requester: IpAddr,
    numwant: usize,
    rng: &mut impl Rng,
) -> Vec<PeerInfo> {
    if numwant == 0 {
        return Vec::new();
    }
    let (mut near, mut far): (Vec<PeerInfo>, Vec<PeerInfo>) =
        candidates.partition(|p| same_subnet(p.addr.ip(), requester));
    let take_near = near.len().min(numwant);
    let mut picked: Vec<PeerInfo> = near.partial_shuffle(rng, take_near).0.to_vec();
    let take_far = far.len().min(numwant - take_near);
    picked.extend_from_slice(far.partial_shuffle(rng, take_far).0);
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::net::SocketAddr;

    fn peer(n: u8, addr: &str) -> PeerInfo {
        PeerInfo {
            peer_id: [n; 20],
            addr: addr.parse::<SocketAddr>().expect("test address"),
            is_seed: false,
        }
    }

    #[test]
    fn subnets() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("test ip");
        assert!(same_subnet(ip("10.1.2.3"), ip("10.1.2.200")));
        assert!(!same_subnet(ip("10.1.2.3"), ip("10.1.3.3")));
        assert!(same_subnet(
            ip("2001:db8:1:2::1"),
            ip("2001:db8:1:2:ffff::9")
        ));
        assert!(!same_subnet(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1")));
        assert!(same_subnet(ip("::ffff:10.1.2.3"), ip("10.1.2.9")));
        assert!(!same_subnet(ip("10.1.2.3"), ip("::1")));
    }

    #[test]
    fn neighbours_come_first_then_a_bounded_random_sample() {
        let mut candidates = Vec::new();
        for n in 0..20 {
            candidates.push(peer(n, &format!("192.168.{n}.1:6881")));
        }
        candidates.push(peer(100, "10.0.0.7:6881"));
        candidates.push(peer(101, "10.0.0.8:6881"));
        let requester: IpAddr = "10.0.0.1".parse().expect("test ip");
        let mut rng = SmallRng::seed_from_u64(1);
        let picked = select_peers(candidates.clone().into_iter(), requester, 5, &mut rng);
        assert_eq!(picked.len(), 5);
        let mut first_two: Vec<u8> = picked[..2].iter().map(|p| p.peer_id[0]).collect();
        first_two.sort_unstable();
        assert_eq!(first_two, [100, 101]);
        assert!(picked[2..].iter().all(|p| p.peer_id[0] < 20));

        // Same seed, same answer; another seed, (almost surely) another sample.
        let again = select_peers(
            candidates.clone().into_iter(),
            requester,
            5,
            &mut SmallRng::seed_from_u64(1),
        );
        assert_eq!(picked, again);
        let samples: std::collections::HashSet<Vec<u8>> = (0..10)
            .map(|seed| {
                select_peers(
                    candidates.clone().into_iter(),
                    requester,
                    5,
                    &mut SmallRng::seed_from_u64(seed),
                )
                .iter()
                .map(|p| p.peer_id[0])
                .collect()
            })
            .collect();
        assert!(samples.len() > 1, "the sample should depend on the seed");
    }

    #[test]
    fn numwant_zero_and_small_swarms() {
        let mut rng = SmallRng::seed_from_u64(3);
        let requester: IpAddr = "10.0.0.1".parse().expect("test ip");
        let two = vec![peer(1, "1.2.3.4:1"), peer(2, "5.6.7.8:2")];
        assert!(select_peers(two.clone().into_iter(), requester, 0, &mut rng).is_empty());
        assert_eq!(
            select_peers(two.into_iter(), requester, 50, &mut rng).len(),
            2
        );
    }
}
