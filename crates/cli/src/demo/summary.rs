//! The demo's result: what the peers say they moved, what the tracker
//! accounted, and how the time compares with what any scheme could do.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use engine::Progress;
use serde_json::{json, Value};

use super::crowd::{Outcome, PeerCaps};
use units::format_bytes;

/// The Kumar–Ross lower bound on the time to deliver `size` bytes to
/// `peers` peers (Kumar & Ross, "Peer-assisted file distribution: the
/// minimum distribution time", 2006):
/// `max(F/u_origin, F/d_peer, N·F/(u_origin + N·u_peer))`, in seconds.
/// A cap of 0 (unlimited) drops the terms it limits.
pub fn kumar_ross_seconds(size: u64, peers: usize, origin_up: u64, caps: PeerCaps) -> f64 {
    let f = size as f64;
    let n = peers as f64;
    let over = |rate: u64| if rate == 0 { 0.0 } else { f / rate as f64 };
    let crowd = if origin_up == 0 || caps.up_bps == 0 {
        0.0
    } else {
        n * f / (origin_up as f64 + n * caps.up_bps as f64)
    };
    over(origin_up).max(over(caps.down_bps)).max(crowd)
}

/// Reads `GET /api/v1/usage` until the tracker has written what the peers
/// reported (its batches run every second), or `patience` has passed.
pub async fn tracker_usage(
    base: &str,
    token: &str,
    expected_bytes: u64,
    patience: Duration,
) -> Result<Value> {
    let url = format!("{base}/api/v1/usage");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let give_up = tokio::time::Instant::now() + patience;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let response = client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("cannot reach the tracker at {url}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("the tracker at {url} answered {status}: {text}");
        }
        let usage: Value = serde_json::from_str(&text)
            .with_context(|| format!("the tracker at {url} sent no JSON"))?;
        let totals = &usage["totals"];
        let accounted = totals["peer_bytes"].as_u64().unwrap_or(0)
            + totals["origin_bytes"].as_u64().unwrap_or(0);
        if accounted >= expected_bytes || tokio::time::Instant::now() >= give_up {
            return Ok(usage);
        }
    }
}

/// Everything the summary shows.
#[derive(Debug)]
pub struct Summary<'a> {
    pub release_bytes: u64,
    pub outcome: &'a Outcome,
    pub origin_served: u64,
    pub usage: &'a Value,
    pub bound_seconds: f64,
    pub dashboard: String,
    pub token: &'a str,
}

impl Summary<'_> {
    fn origin_bytes(&self) -> u64 {
        self.outcome.peers.iter().map(|p| p.bytes_from_origin).sum()
    }

    fn peer_bytes(&self) -> u64 {
        self.outcome.peers.iter().map(|p| p.bytes_from_peers).sum()
    }

    pub fn json(&self) -> Value {
        let peers: Vec<Value> = self
            .outcome
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| peer_json(i, p))
            .collect();
        let totals = &self.usage["totals"];
        json!({
            "event": "summary",
            "release_bytes": self.release_bytes,
            "peers": peers,
            "origin_bytes": self.origin_bytes(),
            "peer_bytes": self.peer_bytes(),
            "origin_ratio": self.origin_bytes() as f64 / self.release_bytes.max(1) as f64,
            "origin_served_bytes": self.origin_served,
            "tracker": {
                "peer_bytes": totals["peer_bytes"],
                "origin_bytes": totals["origin_bytes"],
                "unattributed_bytes": totals["unattributed_bytes"],
                "completions": totals["completions"],
                "offload_percent": totals["offload_percent"],
            },
            "seconds": self.outcome.elapsed.as_secs_f64(),
            "bound_seconds": self.bound_seconds,
            "dashboard": self.dashboard,
            "token": self.token,
        })
    }

    pub fn print(&self) {
        let size = self.release_bytes;
        let n = self.outcome.peers.len();
        println!();
        println!(
            "Result: {n} peers each got the {} release",
            format_bytes(size)
        );
        for (i, p) in self.outcome.peers.iter().enumerate() {
            println!(
                "  peer {i}: {:>10} from peers, {:>10} from the origin, uploaded {:>10}",
                format_bytes(p.bytes_from_peers),
                format_bytes(p.bytes_from_origin),
                format_bytes(p.uploaded),
            );
        }
        let origin = self.origin_bytes();
        println!(
            "  origin:    {} sent (its server counted {}) for {} delivered: {:.2} × the release size; \
             a plain download server would send {n}.00 ×",
            format_bytes(origin),
            format_bytes(self.origin_served),
            format_bytes(size * n as u64),
            origin as f64 / size.max(1) as f64,
        );
        let totals = &self.usage["totals"];
        let bytes = |key: &str| format_bytes(totals[key].as_u64().unwrap_or(0));
        let offload = totals["offload_percent"]
            .as_f64()
            .map_or_else(|| "no".to_owned(), |p| format!("{p:.1} %"));
        println!(
            "  tracker:   accounted {} from peers and {} from the origin: {offload} offloaded, {} completions",
            bytes("peer_bytes"),
            bytes("origin_bytes"),
            totals["completions"].as_u64().unwrap_or(0),
        );
        let seconds = self.outcome.elapsed.as_secs_f64();
        println!(
            "  time:      {seconds:.1} s; the Kumar–Ross bound for these caps is {:.1} s ({:.2} × the bound)",
            self.bound_seconds,
            seconds / self.bound_seconds.max(1e-9),
        );
        println!("  dashboard: {}", self.dashboard);
        println!("  token:     {} (paste it into the dashboard)", self.token);
    }
}

fn peer_json(peer: usize, p: &Progress) -> Value {
    json!({
        "peer": peer,
        "complete": p.total_bytes > 0 && p.verified_bytes == p.total_bytes,
        "verified_bytes": p.verified_bytes,
        "bytes_from_peers": p.bytes_from_peers,
        "bytes_from_origin": p.bytes_from_origin,
        "uploaded": p.uploaded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_takes_the_tightest_of_three_limits() {
        let caps = PeerCaps {
            up_bps: 2 << 20,
            down_bps: 8 << 20,
        };
        // 6 × 64 MiB over 4 + 6 × 2 MiB/s of upload: 24 s.
        let t = kumar_ross_seconds(64 << 20, 6, 4 << 20, caps);
        assert!((t - 24.0).abs() < 1e-9, "{t}");
        // One peer: the origin's 16 s dominates.
        let t = kumar_ross_seconds(64 << 20, 1, 4 << 20, caps);
        assert!((t - 16.0).abs() < 1e-9, "{t}");
        let unlimited = PeerCaps {
            up_bps: 0,
            down_bps: 0,
        };
        assert_eq!(kumar_ross_seconds(64 << 20, 6, 0, unlimited), 0.0);
    }
}
