//! Counters for the operator, served as Prometheus text at `/metrics`
//! to whoever shows the operator's metrics token (nobody else: the
//! figures tell an attacker what works). Plain atomics: the announce path
//! only increments.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub announces: AtomicU64,
    pub announces_refused: AtomicU64,
    pub scrapes: AtomicU64,
    pub batches: AtomicU64,
    pub batch_sessions: AtomicU64,
    pub batch_errors: AtomicU64,
    pub flagged_bytes: AtomicU64,
    pub peer_sync_errors: AtomicU64,
    pub registrations: AtomicU64,
    pub registrations_refused: AtomicU64,
    /// New sessions refused: the IP already had its allowance in the swarm.
    pub sessions_refused: AtomicU64,
    /// Announces refused: the peer id belongs to another client.
    pub peer_id_refused: AtomicU64,
    pub completions_refused: AtomicU64,
}

/// Point-in-time values read when `/metrics` is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    pub swarms: usize,
    pub peers: usize,
    pub releases: usize,
    pub pending_sessions: usize,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format, version 0.0.4.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: &AtomicU64| {
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "shoal_tracker_announces_total",
            "Announces answered.",
            &self.announces,
        );
        counter(
            "shoal_tracker_announces_refused_total",
            "Announces answered with a failure reason.",
            &self.announces_refused,
        );
        counter(
            "shoal_tracker_scrapes_total",
            "Scrapes answered.",
            &self.scrapes,
        );
        counter(
            "shoal_tracker_write_batches_total",
            "Accounting batches written to the database.",
            &self.batches,
        );
        counter(
            "shoal_tracker_batch_sessions_total",
            "Peer sessions written in accounting batches.",
            &self.batch_sessions,
        );
        counter(
            "shoal_tracker_batch_errors_total",
            "Accounting batches the database refused (kept for the next try).",
            &self.batch_errors,
        );
        counter(
            "shoal_tracker_flagged_bytes_total",
            "Reported bytes faster than a line could carry, kept out of billing.",
            &self.flagged_bytes,
        );
        counter(
            "shoal_tracker_peer_sync_errors_total",
            "Failed exchanges of peers with other instances.",
            &self.peer_sync_errors,
        );
        counter(
            "shoal_tracker_registrations_total",
            "Releases registered.",
            &self.registrations,
        );
        counter(
            "shoal_tracker_registrations_refused_total",
            "Registrations refused (unsigned, wrong key, malformed).",
            &self.registrations_refused,
        );
        counter(
            "shoal_tracker_sessions_refused_total",
            "New peer ids refused: the IP already had its allowance of sessions in the swarm.",
            &self.sessions_refused,
        );
        counter(
            "shoal_tracker_peer_id_refused_total",
            "Announces refused: the peer id belongs to a client at another address or with another key.",
            &self.peer_id_refused,
        );
        counter(
            "shoal_tracker_completions_refused_total",
            "Completions not billed: the IP already had its allowance for the release and day.",
            &self.completions_refused,
        );
        let mut gauge = |name: &str, help: &str, value: usize| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "shoal_tracker_swarms",
            "Swarms with live peers.",
            gauges.swarms,
        );
        gauge(
            "shoal_tracker_peers",
            "Live peers over all swarms.",
            gauges.peers,
        );
        gauge(
            "shoal_tracker_releases",
            "Registered releases admitted.",
            gauges.releases,
        );
        gauge(
            "shoal_tracker_pending_sessions",
            "Peer sessions waiting for the next accounting batch.",
            gauges.pending_sessions,
        );
        out
    }
}
