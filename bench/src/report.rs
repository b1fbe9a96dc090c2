//! The figures: the Kumar–Ross bound for a scenario, one JSON record per
//! run, and the Markdown table that compares runs.
//!
//! Kumar & Ross, "Peer-assisted file distribution: the minimum distribution
//! time" (2006): with a server uploading at u_s, N peers uploading at u and
//! downloading at d, no schedule delivers F bytes to every peer before
//! T_min = max(F/u_s, F/d, N·F/(u_s + N·u)): the server must send every byte
//! once, each peer must receive every byte, and the crowd must receive N·F
//! bytes with u_s + N·u of total upload.

use serde::Serialize;

use crate::fixture::{Fixture, OriginKind};
use crate::units::human_bytes;

/// The emulated links and crowd of one invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub peers: usize,
    pub size_bytes: u64,
    pub peer_up_bps: u64,
    pub peer_down_bps: u64,
    pub origin_up_bps: u64,
    /// Each peer's CPU cgroup limit in cores (`--peer-cpu`), if any.
    pub peer_cpu_cores: Option<f64>,
    /// Per-run timeout; `None` = 4·T_min + 30 s.
    #[serde(skip)]
    pub timeout_s: Option<f64>,
}

impl Scenario {
    pub fn t_min_s(&self) -> f64 {
        let f = self.size_bytes as f64;
        let n = self.peers as f64;
        let u_s = self.origin_up_bps as f64;
        let u = self.peer_up_bps as f64;
        let d = self.peer_down_bps as f64;
        (f / u_s).max(f / d).max(n * f / (u_s + n * u))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerRecord {
    pub index: usize,
    pub complete: bool,
    /// From the crowd's start to the completion line, seconds.
    pub seconds: Option<f64>,
    /// The file on disk has the original's SHA-256.
    pub identical: bool,
    pub cpu_s_at_completion: Option<f64>,
    /// CPU until the end of the run (includes seeding after completion).
    pub cpu_s_total: f64,
    pub peak_rss_kib: u64,
    /// As the implementation reports them (shoal only).
    pub bytes_from_peers: Option<u64>,
    pub bytes_from_origin: Option<u64>,
    pub failure: Option<String>,
}

/// What `run::run_one` measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub timeout_s: f64,
    pub wall_s: f64,
    pub origin_tx_bytes: u64,
    pub machine_busy_fraction: f64,
    pub process_cpu_s: f64,
    pub harness_cpu_s: f64,
    pub origin_cpu_s: f64,
    pub origin_peak_rss_kib: u64,
    pub load_avg_1m: f64,
    pub peers: Vec<PeerRecord>,
}

/// One run, as written to the results file (one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub date: String,
    pub unix_time: u64,
    pub implementation: String,
    pub origin: OriginKind,
    #[serde(flatten)]
    pub scenario: Scenario,
    pub piece_size: u64,
    pub t_min_s: f64,
    pub timeout_s: f64,
    /// From the crowd's start until all peers completed or the timeout.
    pub wall_s: f64,
    pub completed: usize,
    pub incomplete: usize,
    /// Every peer completed with a byte-identical file.
    pub all_identical: bool,
    pub last_s: Option<f64>,
    pub mean_s: Option<f64>,
    pub last_over_t_min: Option<f64>,
    pub mean_over_t_min: Option<f64>,
    /// Bytes the origin's interface sent during the run, headers included.
    pub origin_tx_bytes: u64,
    pub origin_over_size: f64,
    /// Payload the peers say came from the origin, over the release size:
    /// without TCP/IP and HTTP headers (about 4 % on MTU-sized packets).
    /// Only for a web origin, and when every peer reports it (shoal does;
    /// libtorrent's adapter does not).
    pub origin_payload_over_size: Option<f64>,
    pub origin_cpu_s: f64,
    pub origin_peak_rss_kib: u64,
    pub peer_cpu_s_mean: Option<f64>,
    pub peer_peak_rss_kib_max: u64,
    /// Busy share of all cores during the crowd phase (from /proc/stat).
    pub machine_busy_fraction: f64,
    /// CPU of every process of the run (peers, origin, tracker, harness).
    pub process_cpu_s: f64,
    /// process_cpu_s / (cores · wall_s): the share of the machine this
    /// run's own processes used (machine_busy_fraction also counts others).
    pub run_cpu_fraction: f64,
    pub harness_cpu_s: f64,
    /// 1-minute load average when the run started: other work on the
    /// machine shows up here.
    pub load_avg_1m: f64,
    pub cores: usize,
    pub peers_detail: Vec<PeerRecord>,
}

impl RunRecord {
    pub fn new(
        scenario: &Scenario,
        implementation: &str,
        origin: OriginKind,
        fixture: &Fixture,
        m: Measured,
    ) -> RunRecord {
        let t_min = scenario.t_min_s();
        let times: Vec<f64> = m.peers.iter().filter_map(|p| p.seconds).collect();
        let completed = times.len();
        let all_done = completed == m.peers.len();
        // Last and mean are only meaningful when everyone finished.
        let last_s = all_done.then(|| times.iter().cloned().fold(0.0, f64::max));
        let mean_s =
            (all_done && completed > 0).then(|| times.iter().sum::<f64>() / completed as f64);
        let cpus: Vec<f64> = m
            .peers
            .iter()
            .filter_map(|p| p.cpu_s_at_completion)
            .collect();
        let unix_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        RunRecord {
            date: units::days::format_day(units::days::day_of(
                i64::try_from(unix_time).unwrap_or(i64::MAX),
            )),
            unix_time,
            implementation: implementation.to_owned(),
            origin,
            scenario: scenario.clone(),
            piece_size: fixture.piece_size,
            t_min_s: t_min,
            timeout_s: m.timeout_s,
            wall_s: m.wall_s,
            completed,
            incomplete: m.peers.len() - completed,
            all_identical: all_done && m.peers.iter().all(|p| p.identical),
            last_s,
            mean_s,
            last_over_t_min: last_s.map(|s| s / t_min),
            mean_over_t_min: mean_s.map(|s| s / t_min),
            origin_tx_bytes: m.origin_tx_bytes,
            origin_over_size: m.origin_tx_bytes as f64 / scenario.size_bytes as f64,
            // A `bt` origin is a peer: its bytes count as from peers.
            origin_payload_over_size: (origin == OriginKind::Web)
                .then(|| {
                    m.peers
                        .iter()
                        .map(|p| p.bytes_from_origin)
                        .sum::<Option<u64>>()
                })
                .flatten()
                .map(|bytes| bytes as f64 / scenario.size_bytes as f64),
            origin_cpu_s: m.origin_cpu_s,
            origin_peak_rss_kib: m.origin_peak_rss_kib,
            peer_cpu_s_mean: (!cpus.is_empty())
                .then(|| cpus.iter().sum::<f64>() / cpus.len() as f64),
            peer_peak_rss_kib_max: m.peers.iter().map(|p| p.peak_rss_kib).max().unwrap_or(0),
            machine_busy_fraction: m.machine_busy_fraction,
            process_cpu_s: m.process_cpu_s,
            run_cpu_fraction: m.process_cpu_s / (cores as f64 * m.wall_s.max(1e-9)),
            harness_cpu_s: m.harness_cpu_s,
            load_avg_1m: m.load_avg_1m,
            cores,
            peers_detail: m.peers,
        }
    }
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or("—".into(), |v| format!("{v:.digits$}"))
}

/// A Markdown table, one row per run.
pub fn markdown_table(records: &[RunRecord]) -> String {
    let mut out = String::new();
    if let Some(r) = records.first() {
        let s = &r.scenario;
        out.push_str(&format!(
            "{}: N = {}, F = {} (pieces of {}), peers up {}/s down {}/s{}, origin up {}/s, T_min = {:.1} s, {} cores, load average {:.1} at the start\n\n",
            r.date,
            s.peers,
            human_bytes(s.size_bytes as f64),
            human_bytes(r.piece_size as f64),
            human_bytes(s.peer_up_bps as f64),
            human_bytes(s.peer_down_bps as f64),
            s.peer_cpu_cores
                .map_or(String::new(), |c| format!(", each peer's CPU at {c} core")),
            human_bytes(s.origin_up_bps as f64),
            r.t_min_s,
            r.cores,
            r.load_avg_1m,
        ));
    }
    out.push_str("| implementation | origin | complete | identical | last s | last / T_min | mean / T_min | origin bytes / F | origin payload / F | peer CPU s (mean) | peer peak RSS MiB (max) | run CPU | machine busy |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in records {
        let identical = r.peers_detail.iter().filter(|p| p.identical).count();
        out.push_str(&format!(
            "| {} | {} | {}/{}{} | {}/{} | {} | {} | {} | {:.2} | {} | {} | {:.0} | {:.0}% | {:.0}% |\n",
            r.implementation,
            r.origin.name(),
            r.completed,
            r.scenario.peers,
            if r.incomplete > 0 {
                " (incomplete at timeout)"
            } else {
                ""
            },
            identical,
            r.scenario.peers,
            opt(r.last_s, 1),
            opt(r.last_over_t_min, 2),
            opt(r.mean_over_t_min, 2),
            r.origin_over_size,
            opt(r.origin_payload_over_size, 3),
            opt(r.peer_cpu_s_mean, 2),
            r.peer_peak_rss_kib_max as f64 / 1024.0,
            r.run_cpu_fraction * 100.0,
            r.machine_busy_fraction * 100.0,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(peers: usize) -> Scenario {
        Scenario {
            peers,
            size_bytes: 64 << 20,
            peer_up_bps: 2 << 20,
            peer_down_bps: 8 << 20,
            origin_up_bps: 4 << 20,
            peer_cpu_cores: None,
            timeout_s: None,
        }
    }

    #[test]
    fn kumar_ross_bound() {
        // N = 20: crowd term 20·64/(4 + 40) = 29.1 s beats F/u_s = 16 s.
        assert!((scenario(20).t_min_s() - 20.0 * 64.0 / 44.0).abs() < 1e-9);
        // N = 1: the origin's upload is the limit.
        assert!((scenario(1).t_min_s() - 16.0).abs() < 1e-9);
    }
}
