//! Which addresses a torrent's trackers and web seeds may be reached at.
//!
//! A release the customer asked for by hand may use any address. A
//! release a web page handed to the agent may not make the agent reach
//! the customer's own network (loopback, RFC 1918, ULA, link-local,
//! CGNAT, multicast, unspecified): otherwise a page could use the agent
//! to send requests the browser's Private Network Access rules forbid it.
//! [`AddressPolicy::PublicOnly`] is enforced where connections are made:
//! literal IPs in URLs (and redirect targets) are checked, and host names
//! go through a resolver that drops the addresses it may not use, so a
//! name that changes its answer later (DNS rebinding) gains nothing.
//! Peer connections are not affected: peers on the LAN are welcome.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Where a torrent's trackers and web seeds may be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressPolicy {
    /// Any address: the customer chose the release.
    #[default]
    Any,
    /// Only addresses [`is_public`] accepts.
    PublicOnly,
}

impl AddressPolicy {
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            AddressPolicy::Any => true,
            AddressPolicy::PublicOnly => is_public(ip),
        }
    }

    /// Refuses a URL whose host is a literal address the policy forbids
    /// (host names are checked when they are resolved).
    pub fn check_url(self, url: &reqwest::Url) -> Result<(), String> {
        let literal = url
            .host_str()
            .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|host| host.parse::<IpAddr>().ok());
        let Some(ip) = literal else {
            return Ok(());
        };
        if self.allows(ip) {
            Ok(())
        } else {
            Err(local_refusal(&ip.to_string()))
        }
    }

    /// Applies the policy to an HTTP client: the resolver, no proxy (a
    /// proxy would resolve names itself) and checked redirects, at most
    /// `max_redirects` of them.
    pub fn apply(
        self,
        builder: reqwest::ClientBuilder,
        max_redirects: usize,
    ) -> reqwest::ClientBuilder {
        match self {
            AddressPolicy::Any => {
                builder.redirect(reqwest::redirect::Policy::limited(max_redirects))
            }
            AddressPolicy::PublicOnly => builder
                .no_proxy()
                .dns_resolver(Arc::new(PublicResolver))
                .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                    if attempt.previous().len() > max_redirects {
                        return attempt.error("too many redirects");
                    }
                    match AddressPolicy::PublicOnly.check_url(attempt.url()) {
                        Ok(()) => attempt.follow(),
                        Err(reason) => attempt.error(reason),
                    }
                })),
        }
    }
}

fn local_refusal(host: &str) -> String {
    format!(
        "{host} is on a local network (loopback, private, link-local or similar); \
         a release handed off by a web page may not use local addresses"
    )
}

/// Whether `ip` is an address on the public internet, as opposed to this
/// machine or its local networks: not loopback, unspecified, private
/// (RFC 1918, ULA fc00::/7), link-local, shared CGNAT space (100.64/10),
/// multicast, broadcast or "this network" (0/8). IPv4 addresses written
/// as IPv6 (`::ffff:a.b.c.d`, NAT64's `64:ff9b::/96`) are judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => {
            if let Some(v4) = embedded_v4(ip) {
                return is_public_v4(v4);
            }
            let first = ip.segments()[0];
            !(ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_multicast()
                || first & 0xfe00 == 0xfc00 // unique local fc00::/7
                || first & 0xffc0 == 0xfe80 // link-local fe80::/10
                || first & 0xffc0 == 0xfec0) // site-local fec0::/10 (deprecated)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b))) // CGNAT 100.64.0.0/10
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:0:0/96`) or NAT64
/// (`64:ff9b::/96`) IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., a, b, c, d] = ip.octets();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

/// The system resolver, keeping only public addresses.
#[derive(Debug)]
struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let public = resolve_public(&host).await?;
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// Resolves `host` and keeps its public addresses; an error when it has
/// none (naming the local ones it has).
pub async fn resolve_public(
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let (public, local): (Vec<SocketAddr>, Vec<SocketAddr>) =
        all.into_iter().partition(|a| is_public(a.ip()));
    if public.is_empty() {
        let shown: Vec<String> = local.iter().take(4).map(|a| a.ip().to_string()).collect();
        return Err(local_refusal(&format!("{host} ({})", shown.join(", "))).into());
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().unwrap_or_else(|_| panic!("{text}")))
    }

    #[test]
    fn local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a00:1",
        ] {
            assert!(!public(ip), "{ip} counted as public");
        }
    }

    #[test]
    fn internet_addresses_are_public() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.169.0.1",
            "198.51.100.7",
            "2001:db8::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(public(ip), "{ip} counted as local");
        }
    }

    #[test]
    fn literal_hosts_in_urls_are_checked_names_are_left_to_the_resolver() {
        let check = |url: &str| {
            AddressPolicy::PublicOnly
                .check_url(&reqwest::Url::parse(url).unwrap_or_else(|_| panic!("{url}")))
        };
        assert!(check("http://127.0.0.1:6969/announce").is_err());
        assert!(check("http://[::1]/x").is_err());
        assert!(check("http://192.168.0.1/").is_err());
        assert!(check("http://8.8.8.8/announce").is_ok());
        assert!(check("https://tracker.example.com/announce").is_ok());
        assert!(AddressPolicy::Any
            .check_url(&reqwest::Url::parse("http://127.0.0.1/").unwrap_or_else(|_| panic!()))
            .is_ok());
    }

    /// What DNS rebinding comes to: a name that resolves to loopback
    /// when the connection is made. A client under the policy does not
    /// connect, and the loopback service sees nothing.
    #[tokio::test]
    async fn a_client_under_the_policy_never_connects_to_a_name_for_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let client = AddressPolicy::PublicOnly
            .apply(reqwest::Client::builder(), 5)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let result = client
            .get(format!("http://localhost:{port}/announce"))
            .send()
            .await;
        assert!(result.is_err(), "{result:?}");
        assert!(
            listener.accept().is_err(),
            "the loopback service got a connection"
        );
        // The same client without the policy does connect: the test can fail.
        let open = AddressPolicy::Any
            .apply(reqwest::Client::builder(), 5)
            .timeout(std::time::Duration::from_millis(300))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = open
            .get(format!("http://localhost:{port}/announce"))
            .send()
            .await;
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            listener.accept().is_ok(),
            "the unrestricted client did not connect"
        );
    }

    #[tokio::test]
    async fn a_name_for_loopback_resolves_to_nothing_usable() {
        let error = resolve_public("localhost")
            .await
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("local network")),
            "{error:?}"
        );
    }
}
