//! Bencoded tracker replies: announce (BEP 3, compact per BEP 23, `peers6`
//! per BEP 7), scrape (BEP 48) and `failure reason`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use bencode::Bencode;

use crate::peer_store::{AnnounceOutcome, SwarmStats};
use crate::settings::TrackerSettings;

/// How the client asked for the peer list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerListForm {
    /// BEP 23 compact strings; otherwise the BEP 3 list of dictionaries.
    pub compact: bool,
    /// Leave `peer id` out of the dictionaries (no effect when compact).
    pub no_peer_id: bool,
}

/// A failure the client shows its user. Sent with HTTP 200, which is what
/// clients expect: many ignore the body of any other status.
pub fn failure_body(reason: &str) -> Vec<u8> {
    Bencode::dict([("failure reason", Bencode::string(reason))]).encode()
}

pub fn announce_body(
    outcome: &AnnounceOutcome,
    settings: &TrackerSettings,
    form: PeerListForm,
) -> Vec<u8> {
    let clamp = |n: u64| Bencode::int(i64::try_from(n).unwrap_or(i64::MAX));
    let mut dict = BTreeMap::new();
    let mut put = |key: &str, value: Bencode| {
        dict.insert(key.as_bytes().to_vec(), value);
    };
    put("interval", clamp(settings.announce_interval_secs));
    put("min interval", clamp(settings.min_interval_secs));
    put("complete", Bencode::int(outcome.stats.complete));
    put("incomplete", Bencode::int(outcome.stats.incomplete));
    if form.compact {
        let mut peers = Vec::new();
        let mut peers6 = Vec::new();
        for peer in &outcome.peers {
            match canonical(peer.addr) {
                SocketAddr::V4(a) => {
                    peers.extend_from_slice(&a.ip().octets());
                    peers.extend_from_slice(&a.port().to_be_bytes());
                }
                SocketAddr::V6(a) => {
                    peers6.extend_from_slice(&a.ip().octets());
                    peers6.extend_from_slice(&a.port().to_be_bytes());
                }
            }
        }
        put("peers", Bencode::Bytes(peers));
        if !peers6.is_empty() {
            put("peers6", Bencode::Bytes(peers6));
        }
    } else {
        let list = outcome
            .peers
            .iter()
            .map(|peer| {
                let addr = canonical(peer.addr);
                let mut entry = vec![
                    ("ip", Bencode::string(&addr.ip().to_string())),
                    ("port", Bencode::int(addr.port())),
                ];
                if !form.no_peer_id {
                    entry.push(("peer id", Bencode::bytes(peer.peer_id.to_vec())));
                }
                Bencode::dict(entry)
            })
            .collect();
        put("peers", Bencode::List(list));
    }
    Bencode::Dict(dict).encode()
}

pub fn scrape_body(files: &[([u8; 20], SwarmStats)]) -> Vec<u8> {
    let files = files
        .iter()
        .map(|(hash, stats)| {
            let numbers = Bencode::dict([
                ("complete", Bencode::int(stats.complete)),
                ("incomplete", Bencode::int(stats.incomplete)),
                (
                    "downloaded",
                    Bencode::int(i64::try_from(stats.downloaded).unwrap_or(i64::MAX)),
                ),
            ]);
            (hash.to_vec(), numbers)
        })
        .collect();
    Bencode::dict([("files", Bencode::Dict(files))]).encode()
}

/// An IPv4-mapped IPv6 address (from a dual-stack socket) is an IPv4 peer
/// and belongs in `peers`, not `peers6`.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(ip) => SocketAddr::new(ip.to_canonical(), addr.port()),
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_store::PeerInfo;
    use bencode::{decode, Limits};

    fn outcome() -> AnnounceOutcome {
        let peer = |n: u8, addr: &str| PeerInfo {
            peer_id: [n; 20],
            addr: addr.parse().expect("test address"),
            is_seed: false,
        };
        AnnounceOutcome {
            peers: vec![
                peer(1, "1.2.3.4:6881"),
                peer(2, "[2001:db8::1]:443"),
                peer(3, "[::ffff:5.6.7.8]:80"),
            ],
            stats: SwarmStats {
                complete: 1,
                incomplete: 2,
                downloaded: 3,
            },
            report_unchanged: false,
        }
    }

    #[test]
    fn compact_form_splits_families() {
        let form = PeerListForm {
            compact: true,
            no_peer_id: false,
        };
        let body = announce_body(&outcome(), &TrackerSettings::default(), form);
        let v = decode(&body, Limits::default()).expect("valid bencode");
        assert_eq!(v.get("interval").and_then(|i| i.as_int()), Some(1800));
        assert_eq!(v.get("min interval").and_then(|i| i.as_int()), Some(60));
        assert_eq!(
            v.get("peers").and_then(|p| p.as_bytes()),
            Some(&[1, 2, 3, 4, 0x1a, 0xe1, 5, 6, 7, 8, 0, 80][..])
        );
        let six = v.get("peers6").and_then(|p| p.as_bytes()).expect("peers6");
        assert_eq!(six.len(), 18);
        assert_eq!(&six[16..], &443u16.to_be_bytes());
    }

    #[test]
    fn dictionary_form_honours_no_peer_id() {
        for no_peer_id in [false, true] {
            let form = PeerListForm {
                compact: false,
                no_peer_id,
            };
            let body = announce_body(&outcome(), &TrackerSettings::default(), form);
            let v = decode(&body, Limits::default()).expect("valid bencode");
            let list = v.get("peers").and_then(|p| p.as_list()).expect("list");
            assert_eq!(list.len(), 3);
            assert_eq!(
                list[1].get("ip").and_then(|i| i.as_str()),
                Some("2001:db8::1")
            );
            assert_eq!(list[2].get("ip").and_then(|i| i.as_str()), Some("5.6.7.8"));
            assert_eq!(list[0].get("peer id").is_some(), !no_peer_id);
        }
    }

    #[test]
    fn failure_and_scrape() {
        assert_eq!(failure_body("no"), b"d14:failure reason2:noe");
        let stats = SwarmStats {
            complete: 1,
            incomplete: 2,
            downloaded: 3,
        };
        let body = scrape_body(&[([b'x'; 20], stats)]);
        let expected =
            b"d5:filesd20:xxxxxxxxxxxxxxxxxxxxd8:completei1e10:downloadedi3e10:incompletei2eeee";
        assert_eq!(body, expected);
    }
}
