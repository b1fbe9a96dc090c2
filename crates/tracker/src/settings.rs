//! Every knob of the tracker service in one struct, so the CLI today and a
//! config file later build the same thing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::error::TrackerError;

/// How the tracker listens and what it tells clients. Times are in seconds.
/// `Debug` leaves the metrics token out.
#[derive(Clone, PartialEq, Eq)]
pub struct TrackerSettings {
    /// Address to listen on for HTTP. Default `127.0.0.1:6969`: exposing the
    /// tracker is a deliberate choice (`0.0.0.0:6969` or `[::]:6969`).
    pub listen: SocketAddr,
    /// Seconds a client should wait between regular announces (`interval`).
    /// Default 1800 (30 min), the usual value for HTTP trackers.
    pub announce_interval_secs: u64,
    /// Seconds a client must wait before announcing again unasked
    /// (`min interval`). Default 60. Never more than the interval.
    pub min_interval_secs: u64,
    /// Seconds after its last announce that a silent peer is forgotten.
    /// Default 3900: two intervals plus 300 s of slack, so one lost announce
    /// does not drop a live peer.
    pub peer_expiry_secs: u64,
    /// Most peers returned in one announce, whatever `numwant` asks. Default 200.
    pub max_numwant: u32,
    /// Peers returned when the client does not send `numwant`. Default 50.
    pub default_numwant: u32,
    /// Most HTTP connections open at once; more wait in the kernel's
    /// accept queue. Default 4096.
    pub max_connections: usize,
    /// Seconds a connection may stay silent (no request bytes) before it is
    /// closed; bounds slow or idle clients. Default 30.
    pub idle_timeout_secs: u64,
    /// Seconds between accounting batch writes; also what a crash can lose.
    /// Default 5.
    pub batch_secs: u64,
    /// Milliseconds between peer exchanges with other instances (PostgreSQL
    /// only): how soon a peer announced elsewhere is handed out here.
    /// Default 1000.
    pub sync_millis: u64,
    /// Bytes/s no peer can move (default 10 Gbit/s): faster reported
    /// growth is flagged and kept out of billed totals.
    pub max_report_rate: u64,
    /// Peer sessions kept in memory between batches before one is written
    /// early. Default 1,000,000 (about 100 MB).
    pub max_pending_sessions: usize,
    /// Live peer ids one IP address may hold in one swarm; a further new
    /// peer id from it is refused with a failure reason. Default 8 (a few
    /// machines behind one NAT, each restarting once).
    pub max_sessions_per_ip: u32,
    /// Whether `compact=0` answers carry each peer's `peer id`. Default
    /// false (as if every client sent `no_peer_id=1`): a peer id is what an
    /// attacker needs to impersonate a session, and no client needs it.
    pub share_peer_ids: bool,
    /// Reverse proxies (load balancers) whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` headers are believed. Default none: the
    /// connection's address is the client's. List only your own proxies:
    /// anyone else could claim any address.
    pub trusted_proxies: Vec<IpAddr>,
    /// The operator's token for `/metrics` (`Authorization: Bearer …`).
    /// Default none: `/metrics` answers 404.
    pub metrics_token: Option<String>,
    /// Whether clients reach the tracker over HTTPS (a TLS-terminating
    /// proxy in front): the dashboard cookie then carries `Secure`. Default
    /// false; also true per request when a trusted proxy sends
    /// `X-Forwarded-Proto: https`.
    pub public_https: bool,
    /// Days the database keeps per-session totals and per-day peer lists
    /// after their last report (`sessions`, `day_peers`,
    /// `day_completions`); the per-day usage rows are kept for ever.
    /// Default 7.
    pub accounting_retention_days: u32,
    /// Completions counted per client IP, release and UTC day; more from
    /// the same address are flagged, not billed. Default 1.
    pub max_completions_per_ip_per_day: u32,
}

impl std::fmt::Debug for TrackerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackerSettings")
            .field("listen", &self.listen)
            .field("announce_interval_secs", &self.announce_interval_secs)
            .field("min_interval_secs", &self.min_interval_secs)
            .field("peer_expiry_secs", &self.peer_expiry_secs)
            .field("max_numwant", &self.max_numwant)
            .field("max_sessions_per_ip", &self.max_sessions_per_ip)
            .field("trusted_proxies", &self.trusted_proxies)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "(set)"),
            )
            .field("public_https", &self.public_https)
            .finish_non_exhaustive()
    }
}

/// Slack added to two announce intervals to get the default peer expiry.
const EXPIRY_SLACK_SECS: u64 = 300;

impl Default for TrackerSettings {
    fn default() -> Self {
        let announce_interval_secs = 1800;
        TrackerSettings {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 6969)),
            announce_interval_secs,
            min_interval_secs: 60,
            peer_expiry_secs: default_expiry_secs(announce_interval_secs),
            max_numwant: 200,
            default_numwant: 50,
            max_connections: 4096,
            idle_timeout_secs: 30,
            batch_secs: 5,
            sync_millis: 1000,
            max_report_rate: 10_000_000_000 / 8,
            max_pending_sessions: 1_000_000,
            max_sessions_per_ip: 8,
            share_peer_ids: false,
            trusted_proxies: Vec::new(),
            metrics_token: None,
            public_https: false,
            accounting_retention_days: 7,
            max_completions_per_ip_per_day: 1,
        }
    }
}

/// Two intervals plus slack: the expiry that goes with an announce interval.
pub fn default_expiry_secs(announce_interval_secs: u64) -> u64 {
    announce_interval_secs
        .saturating_mul(2)
        .saturating_add(EXPIRY_SLACK_SECS)
}

impl TrackerSettings {
    /// Sets the announce interval and moves the peer expiry and the minimum
    /// interval along with it, so the three stay consistent.
    pub fn with_announce_interval(mut self, secs: u64) -> Self {
        self.announce_interval_secs = secs;
        self.peer_expiry_secs = default_expiry_secs(secs);
        self.min_interval_secs = self.min_interval_secs.min(secs);
        self
    }

    /// Refuses settings that would make clients hammer the tracker or peers
    /// vanish between two of their announces.
    pub fn validate(&self) -> Result<(), TrackerError> {
        let bad = |why: &str| Err(TrackerError::InvalidSettings(why.to_owned()));
        if self.announce_interval_secs == 0 {
            return bad("the announce interval must be at least 1 second");
        }
        if self.min_interval_secs > self.announce_interval_secs {
            return bad("the minimum interval must not exceed the announce interval");
        }
        if self.peer_expiry_secs == 0 {
            return bad("the peer expiry must be at least 1 second");
        }
        if self.default_numwant > self.max_numwant {
            return bad("the default numwant must not exceed the maximum numwant");
        }
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if self.idle_timeout_secs == 0 {
            return bad("the idle timeout must be at least 1 second");
        }
        if self.batch_secs == 0 || self.sync_millis == 0 {
            return bad("the batch and sync periods must not be zero");
        }
        if self.max_pending_sessions == 0 {
            return bad("max_pending_sessions must be at least 1");
        }
        if self.max_sessions_per_ip == 0 {
            return bad("max_sessions_per_ip must be at least 1");
        }
        if self.accounting_retention_days == 0 {
            return bad("the accounting retention must be at least 1 day");
        }
        if let Some(token) = &self.metrics_token {
            if token.len() < 16 || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_graphic())
            {
                return bad("the metrics token must be 16 to 128 printable ASCII characters");
            }
        }
        Ok(())
    }

    /// The bounds an accounting batch applies.
    pub(crate) fn ceilings(&self) -> crate::store::Ceilings {
        crate::store::Ceilings {
            max_rate: self.max_report_rate,
            completions_per_ip_per_day: self.max_completions_per_ip_per_day,
        }
    }

    pub(crate) fn peer_expiry(&self) -> Duration {
        Duration::from_secs(self.peer_expiry_secs)
    }

    /// How often the background sweep drops expired peers: often enough that
    /// memory follows the live swarm, rarely enough to cost nothing.
    pub(crate) fn sweep_every(&self) -> Duration {
        (self.peer_expiry() / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_consistent_and_documented_values() {
        let s = TrackerSettings::default();
        assert_eq!(s.announce_interval_secs, 1800);
        assert_eq!(s.peer_expiry_secs, 3900);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn changing_the_interval_moves_expiry_and_min_interval() {
        let s = TrackerSettings::default().with_announce_interval(20);
        assert_eq!(s.peer_expiry_secs, 340);
        assert_eq!(s.min_interval_secs, 20);
        assert!(s.validate().is_ok());
        let zero = TrackerSettings::default().with_announce_interval(0);
        assert!(matches!(
            zero.validate(),
            Err(TrackerError::InvalidSettings(_))
        ));
    }
}
