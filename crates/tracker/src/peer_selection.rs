//! Which peers an announcer gets: neighbours first, then a random sample.
//!
//! Peers in the same /24 (IPv4) or /64 (IPv6) as the announcer are likely
//! on the same site, where bytes are cheap and fast, so they come first.
//! The rest is a uniform random sample, so load spreads over the swarm
//! instead of everyone hammering the oldest peers. The sampling itself
//! lives with the indexes it draws from (`swarm_table`).

use std::net::IpAddr;

/// A /24 (IPv4) or /64 (IPv6) network: the neighbourhood key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subnet {
    V4([u8; 3]),
    V6([u8; 8]),
}

/// The /24 or /64 of `ip` (an IPv4-mapped IPv6 address counts as IPv4).
pub fn subnet_of(ip: IpAddr) -> Subnet {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Subnet::V4([a, b, c])
        }
        IpAddr::V6(v6) => {
            let mut prefix = [0; 8];
            prefix.copy_from_slice(&v6.octets()[..8]);
            Subnet::V6(prefix)
        }
    }
}

/// True when `a` and `b` share a /24 (IPv4) or a /64 (IPv6).
pub fn same_subnet(a: IpAddr, b: IpAddr) -> bool {
    subnet_of(a) == subnet_of(b)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
