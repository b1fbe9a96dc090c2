//! Parses announce replies (BEP 3 §trackers; compact `peers` per BEP 23;
//! `peers6` per BEP 7: 16-byte address + 2-byte port, network order).
//!
//! The reply is untrusted: the caller has already capped it at
//! [`MAX_RESPONSE_BYTES`]; here intervals are clamped to sane bounds and at
//! most [`MAX_PEERS`] distinct, connectable peers are kept.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bencode::{decode, Limits, Value, ValueKind};

use super::TrackerError;

/// Largest reply body read from a tracker. Even 1,000 peers in the
/// dictionary form fit in well under 100 KiB.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Most peers kept from one reply; more would never all be connected to.
pub const MAX_PEERS: usize = 1000;
/// Shortest re-announce interval honoured, so a tracker cannot make us spin.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Longest re-announce interval honoured, so a tracker cannot silence us.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest `failure reason` or `warning message` kept, in bytes.
const MAX_MESSAGE_BYTES: usize = 1024;

/// A successful announce reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// When to announce again, clamped to [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
    pub interval: Duration,
    /// Earliest unscheduled re-announce, clamped likewise and never above `interval`.
    pub min_interval: Option<Duration>,
    /// To be sent back on later announces, if the tracker gave one.
    pub tracker_id: Option<Vec<u8>>,
    /// Seeds in the swarm, if the tracker said.
    pub complete: Option<u32>,
    /// Downloaders in the swarm, if the tracker said.
    pub incomplete: Option<u32>,
    /// A message the tracker wants shown; the announce still succeeded.
    pub warning: Option<String>,
    /// Distinct peers, IPv4 then IPv6, without port 0 or unspecified
    /// addresses, at most [`MAX_PEERS`].
    pub peers: Vec<SocketAddr>,
}

/// Parses a bencoded announce reply. A `failure reason` becomes
/// [`TrackerError::Failure`]; anything unreadable becomes
/// [`TrackerError::Malformed`]. The errors' `url` is left empty.
pub fn parse_announce_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    // Deep enough for the dictionary peer list, small enough that a 1 MiB
    // body cannot turn into a huge tree.
    let limits = Limits {
        max_depth: 8,
        max_values: 300_000,
    };
    let root = decode(body, limits).map_err(|e| TrackerError::malformed(e.to_string()))?;
    if root.as_dict().is_none() {
        return Err(TrackerError::malformed(format!(
            "expected a dictionary, got a {}",
            root.type_name()
        )));
    }
    if let Some(reason) = root.get("failure reason") {
        return Err(TrackerError::Failure {
            url: String::new(),
            reason: message(reason),
        });
    }
    let interval = root
        .get("interval")
        .and_then(Value::as_int)
        .ok_or_else(|| TrackerError::malformed("no integer `interval`"))?;
    let interval = clamp_interval(interval);
    let min_interval = root
        .get("min interval")
        .and_then(Value::as_int)
        .map(|secs| clamp_interval(secs).min(interval));

    let mut peers = PeerList::default();
    match root.get("peers").map(|v| &v.kind) {
        None => {}
        Some(ValueKind::Bytes(compact)) => peers.add_compact::<6>(compact, "peers")?,
        Some(ValueKind::List(entries)) => peers.add_dicts(entries),
        Some(_) => {
            return Err(TrackerError::malformed(
                "`peers` is neither a string nor a list",
            ))
        }
    }
    match root.get("peers6").map(|v| &v.kind) {
        None => {}
        Some(ValueKind::Bytes(compact)) => peers.add_compact::<18>(compact, "peers6")?,
        Some(_) => return Err(TrackerError::malformed("`peers6` is not a string")),
    }

    let count = |key| {
        root.get(key)
            .and_then(Value::as_int)
            .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
    };
    Ok(AnnounceResponse {
        interval,
        min_interval,
        tracker_id: root
            .get("tracker id")
            .and_then(Value::as_bytes)
            .filter(|id| id.len() <= MAX_MESSAGE_BYTES)
            .map(<[u8]>::to_vec),
        complete: count("complete"),
        incomplete: count("incomplete"),
        warning: root.get("warning message").map(message),
        peers: peers.addrs,
    })
}

fn clamp_interval(secs: i64) -> Duration {
    Duration::from_secs(u64::try_from(secs).unwrap_or(0)).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// A tracker's text, lossily decoded and cut to a length fit for a log line.
fn message(value: &Value<'_>) -> String {
    let bytes = value.as_bytes().unwrap_or(b"(not a string)");
    let cut = &bytes[..bytes.len().min(MAX_MESSAGE_BYTES)];
    String::from_utf8_lossy(cut).into_owned()
}

/// Collects distinct usable peers up to [`MAX_PEERS`].
#[derive(Default)]
struct PeerList {
    addrs: Vec<SocketAddr>,
    seen: HashSet<SocketAddr>,
}

impl PeerList {
    fn full(&self) -> bool {
        self.addrs.len() >= MAX_PEERS
    }

    fn add(&mut self, ip: IpAddr, port: u16) {
        // Port 0 and 0.0.0.0/:: cannot be connected to. Canonical first:
        // ::ffff:0.0.0.0 is 0.0.0.0, though not "unspecified" as IPv6.
        let ip = ip.to_canonical();
        if port == 0 || ip.is_unspecified() || self.full() {
            return;
        }
        let addr = SocketAddr::new(ip, port);
        if self.seen.insert(addr) {
            self.addrs.push(addr);
        }
    }

    /// `N`-byte entries: an address of `N - 2` bytes, then the port.
    fn add_compact<const N: usize>(&mut self, bytes: &[u8], key: &str) -> Result<(), TrackerError> {
        let entries = bytes.chunks_exact(N);
        if !entries.remainder().is_empty() {
            return Err(TrackerError::malformed(format!(
                "`{key}` is {} bytes, not a multiple of {N}",
                bytes.len()
            )));
        }
        for entry in entries {
            if self.full() {
                break;
            }
            let (ip, port) = entry.split_at(N - 2);
            let ip = match ip.len() {
                4 => <[u8; 4]>::try_from(ip).ok().map(IpAddr::from),
                _ => <[u8; 16]>::try_from(ip).ok().map(IpAddr::from),
            };
            let Some(ip) = ip else { continue };
            self.add(ip, u16::from_be_bytes([port[0], port[1]]));
        }
        Ok(())
    }

    /// BEP 3 dictionaries `{ip, port, peer id}`. Entries we cannot use (a
    /// DNS name, a bad port) are skipped rather than failing the reply.
    fn add_dicts(&mut self, entries: &[Value<'_>]) {
        for entry in entries {
            if self.full() {
                break;
            }
            let ip = entry
                .get("ip")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok());
            let port = entry
                .get("port")
                .and_then(Value::as_int)
                .and_then(|p| u16::try_from(p).ok());
            if let (Some(ip), Some(port)) = (ip, port) {
                self.add(ip, port);
            }
        }
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
