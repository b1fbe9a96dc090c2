//! Who the client is: the connection's address, or, when the connection
//! comes from a reverse proxy the operator listed
//! (`TrackerSettings::trusted_proxies`), the address that proxy saw.
//!
//! `X-Forwarded-For` is a list each proxy appends to; only the entries our
//! own proxies appended can be believed, so it is read from the right,
//! skipping trusted proxies, and the first other address is the client.
//! Anything to its left was written by the client and is ignored. From any
//! other connection the headers are ignored altogether: a stranger could
//! otherwise claim every address.

use std::net::IpAddr;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

/// Most `X-Forwarded-For` entries looked at: a chain of proxies is short.
const MAX_FORWARDED_HOPS: usize = 16;

/// The client's IP (canonical: an IPv4-mapped IPv6 address is IPv4).
pub(crate) fn client_ip(remote: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let remote = remote.to_canonical();
    if !trusted.contains(&remote) {
        return remote;
    }
    let mut client = remote;
    let entries = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for entry in entries.iter().rev().take(MAX_FORWARDED_HOPS) {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            // Not an address: nothing further left can be trusted.
            break;
        };
        client = ip.to_canonical();
        if !trusted.contains(&client) {
            break;
        }
    }
    client
}

/// Whether the client reached us over HTTPS: always when the operator
/// says the public address is HTTPS, else when a trusted proxy says so.
pub(crate) fn is_https(
    remote: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpAddr],
    public_https: bool,
) -> bool {
    public_https
        || (trusted.contains(&remote.to_canonical())
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https")))
}

/// The IP as 16 bytes (IPv4 mapped into IPv6).
pub(crate) fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// A digest of the client's BEP 7 `key`, as the peer store keeps it.
pub(crate) fn key_digest(key: &[u8]) -> u64 {
    let digest = Sha256::digest(key);
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The accounting identity of an announce: peer id, client IP and `key`
/// together, so the same peer id from another address, or without the
/// key, is another session with its own totals.
pub(crate) fn session_id(peer_id: &[u8; 20], ip: IpAddr, key: Option<&[u8]>) -> [u8; 20] {
    let mut hasher = Sha256::new();
    hasher.update(b"shoal session v1");
    hasher.update(peer_id);
    hasher.update(ip_bytes(ip));
    match key {
        Some(key) => {
            hasher.update([1]);
            hasher.update((key.len() as u64).to_be_bytes());
            hasher.update(key);
        }
        None => hasher.update([0]),
    }
    let mut id = [0; 20];
    id.copy_from_slice(&hasher.finalize()[..20]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 10.0.0.5")]);
        assert_eq!(client_ip(ip("192.0.2.1"), &h, &[]), ip("192.0.2.1"));
        let proxy = [ip("192.0.2.1")];
        assert_eq!(client_ip(ip("192.0.2.1"), &h, &proxy), ip("10.0.0.5"));
        // A chain of our proxies is skipped; the client's own claim is not read.
        let chain = [ip("192.0.2.1"), ip("10.0.0.5")];
        assert_eq!(client_ip(ip("192.0.2.1"), &h, &chain), ip("6.6.6.6"));
        let junk = headers(&[("x-forwarded-for", "1.2.3.4, garbage")]);
        assert_eq!(client_ip(ip("192.0.2.1"), &junk, &proxy), ip("192.0.2.1"));
        assert_eq!(
            client_ip(ip("::ffff:192.0.2.1"), &h, &proxy),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn https_from_the_setting_or_a_trusted_proxy() {
        let h = headers(&[("x-forwarded-proto", "https")]);
        let proxy = [ip("192.0.2.1")];
        assert!(is_https(ip("192.0.2.1"), &h, &proxy, false));
        assert!(!is_https(ip("192.0.2.9"), &h, &proxy, false));
        assert!(is_https(ip("192.0.2.9"), &HeaderMap::new(), &[], true));
    }

    #[test]
    fn sessions_differ_by_address_and_key() {
        let a = session_id(&[1; 20], ip("10.0.0.1"), Some(b"k"));
        assert_ne!(a, session_id(&[1; 20], ip("10.0.0.2"), Some(b"k")));
        assert_ne!(a, session_id(&[1; 20], ip("10.0.0.1"), None));
        assert_ne!(a, session_id(&[1; 20], ip("10.0.0.1"), Some(b"j")));
        assert_eq!(a, session_id(&[1; 20], ip("10.0.0.1"), Some(b"k")));
    }
}
