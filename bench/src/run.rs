//! One measured run: a tracker, an origin and a flash crowd of N peers of
//! one implementation on the emulated network, timed from outside.
//!
//! Order: tracker up, origin up (and ready), origin byte counter read, then
//! every peer started at once (t0). A peer's completion time is from t0 to
//! the moment the harness read its completion line. When all peers are done
//! (or the timeout passes) the counter is read again, peers are stopped,
//! and every peer's file is hashed against the original.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::adapters::{Completion, Implementation, LeechSpec, SeedSpec};
use crate::cgroup::CpuLimits;
use crate::fixture::{sha256_file, Fixture, OriginKind, RELEASE_NAME};
use crate::netns::Network;
use crate::procs::{self, Proc};
use crate::report::{Measured, PeerRecord, RunRecord, Scenario};

pub const TRACKER_PORT: u16 = 6969;

/// Programs the harness runs itself, whatever the implementation.
#[derive(Debug)]
pub struct Tools {
    pub tracker: PathBuf,
    pub nginx: PathBuf,
}

#[derive(Debug)]
struct Peer {
    proc: Proc,
    out_dir: PathBuf,
    done: Option<(f64, Completion, f64)>,
    failed: Option<String>,
}

/// What every run of one invocation shares.
#[derive(Debug)]
pub struct RunSetup<'a> {
    pub net: &'a Network,
    pub scenario: &'a Scenario,
    pub fixture: &'a Fixture,
    pub tools: &'a Tools,
    /// One CPU cgroup per peer (`--peer-cpu`).
    pub cpu_limits: Option<&'a CpuLimits>,
}

pub fn run_one(
    setup: &RunSetup<'_>,
    imp: &dyn Implementation,
    origin: OriginKind,
    work: &Path,
) -> Result<RunRecord> {
    let RunSetup {
        net,
        scenario,
        fixture,
        tools,
        cpu_limits,
    } = *setup;
    let load_avg_1m = procs::load_avg_1m();
    let label = format!("{}-{}", imp.name(), origin.name());
    let dir = work.join(&label);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let t_min = scenario.t_min_s();
    let timeout = scenario.timeout_s.unwrap_or(4.0 * t_min + 30.0);
    let torrent = fixture.torrent(origin);
    // Processes outlive the run only by accident; this bounds the accident.
    let lifetime = timeout + 120.0;

    let tracker_host = net.host("tracker");
    let tracker_listen = format!("{}:{TRACKER_PORT}", tracker_host.ip);
    let tracker_argv: Vec<OsString> = vec![
        tools.tracker.clone().into(),
        "serve".into(),
        "--open".into(),
        "--listen".into(),
        tracker_listen.into(),
    ];
    let mut tracker = Proc::spawn(&tracker_host.ns, &tracker_argv, &logs, "tracker")?;
    tracker.wait_for(Duration::from_secs(10), |l| l.starts_with("listening on"))?;

    let origin_host = net.host("origin");
    let mut origin_proc = match origin {
        OriginKind::Bt => {
            let argv = imp.seed_cmd(&SeedSpec {
                torrent,
                data_dir: &fixture.data_dir,
                ip: origin_host.ip,
                trust: &fixture.trust,
                timeout_s: lifetime,
            });
            let mut seed = Proc::spawn(&origin_host.ns, &argv, &logs, "origin")?;
            seed.wait_for(Duration::from_secs(120), |l| imp.seed_ready(l))?;
            seed
        }
        OriginKind::Web => {
            let conf = nginx_conf(&dir, &fixture.data_dir, origin_host.ip)?;
            let argv: Vec<OsString> = vec![
                tools.nginx.clone().into(),
                "-c".into(),
                conf.into(),
                "-e".into(),
                dir.join("logs/nginx-error.log").into(),
            ];
            let nginx = Proc::spawn(&origin_host.ns, &argv, &logs, "origin")?;
            wait_listening(&origin_host.ns, 80, Duration::from_secs(10))?;
            nginx
        }
    };

    let origin_tx_before = net.tx_bytes("origin")?;
    let cpu_before = procs::machine_cpu();
    let harness_cpu_before = procs::usage_of(std::process::id()).cpu_s;
    let t0 = Instant::now();
    let mut peers = Vec::with_capacity(scenario.peers);
    for i in 0..scenario.peers {
        let host = net.host(&format!("peer{i}"));
        let out_dir = dir.join(format!("peer{i}"));
        std::fs::create_dir_all(&out_dir)?;
        let argv = imp.leech_cmd(&LeechSpec {
            torrent,
            out_dir: &out_dir,
            ip: host.ip,
            trust: &fixture.trust,
            timeout_s: lifetime,
        });
        let cgroup = cpu_limits.and_then(|limits| limits.procs_file(i));
        let label = format!("peer{i}");
        let proc = Proc::spawn_limited(&host.ns, &argv, &logs, &label, cgroup.as_deref())?;
        peers.push(Peer {
            proc,
            out_dir,
            done: None,
            failed: None,
        });
    }
    eprintln!(
        "shoal-bench: {label}: {} peers started in {:.2} s; T_min {:.1} s, timeout {:.0} s",
        scenario.peers,
        t0.elapsed().as_secs_f64(),
        t_min,
        timeout
    );

    let deadline = t0 + Duration::from_secs_f64(timeout);
    let mut last_report = Instant::now();
    loop {
        for peer in peers
            .iter_mut()
            .filter(|p| p.done.is_none() && p.failed.is_none())
        {
            watch(peer, imp, t0);
        }
        let pending = peers
            .iter()
            .filter(|p| p.done.is_none() && p.failed.is_none())
            .count();
        if pending == 0 || Instant::now() >= deadline {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "shoal-bench: {label}: {:.0} s, {} of {} peers complete",
                t0.elapsed().as_secs_f64(),
                peers.iter().filter(|p| p.done.is_some()).count(),
                peers.len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall_s = t0.elapsed().as_secs_f64();
    for peer in peers
        .iter_mut()
        .filter(|p| p.done.is_none() && p.failed.is_none())
    {
        peer.failed = Some(format!("not complete after the {timeout:.0} s timeout"));
    }
    let origin_tx_bytes = net.tx_bytes("origin")?.saturating_sub(origin_tx_before);
    let cpu_after = procs::machine_cpu();
    let harness_cpu_s = procs::usage_of(std::process::id()).cpu_s - harness_cpu_before;

    // Peak RSS and total CPU while every process is still alive.
    let usages: Vec<_> = peers.iter().map(|p| p.proc.usage()).collect();
    let origin_usage = origin_proc.usage();
    let tracker_usage = tracker.usage();
    for peer in &peers {
        crate::cleanup::signal_group(peer.proc.pid(), "TERM");
    }
    for peer in &mut peers {
        peer.proc.stop(Duration::from_secs(5));
    }
    origin_proc.stop(Duration::from_secs(5));
    tracker.stop(Duration::from_secs(5));

    let mut records = Vec::with_capacity(peers.len());
    for (index, (peer, usage)) in peers.iter().zip(&usages).enumerate() {
        let file = peer.out_dir.join(RELEASE_NAME);
        let identical = peer.done.is_some()
            && sha256_file(&file)
                .map(|h| h == fixture.sha256)
                .unwrap_or(false);
        let (seconds, completion, cpu_at_completion) = match &peer.done {
            Some((s, c, cpu)) => (Some(*s), c.clone(), Some(*cpu)),
            None => (None, Completion::default(), None),
        };
        records.push(PeerRecord {
            index,
            complete: peer.done.is_some(),
            seconds,
            identical,
            cpu_s_at_completion: cpu_at_completion,
            cpu_s_total: usage.cpu_s,
            peak_rss_kib: usage.peak_rss_kib,
            bytes_from_peers: completion.bytes_from_peers,
            bytes_from_origin: completion.bytes_from_origin,
            failure: peer.failed.clone(),
        });
    }
    let busy = cpu_after.0.saturating_sub(cpu_before.0) as f64;
    let total = cpu_after.1.saturating_sub(cpu_before.1) as f64;
    let process_cpu_s = usages.iter().map(|u| u.cpu_s).sum::<f64>()
        + origin_usage.cpu_s
        + tracker_usage.cpu_s
        + harness_cpu_s;
    let measured = Measured {
        timeout_s: timeout,
        wall_s,
        origin_tx_bytes,
        machine_busy_fraction: if total > 0.0 { busy / total } else { 0.0 },
        process_cpu_s,
        harness_cpu_s,
        origin_cpu_s: origin_usage.cpu_s,
        origin_peak_rss_kib: origin_usage.peak_rss_kib,
        load_avg_1m,
        peers: records,
    };
    Ok(RunRecord::new(
        scenario,
        imp.name(),
        origin,
        fixture,
        measured,
    ))
}

/// Drains a peer's stdout; records completion, or an exit before it.
fn watch(peer: &mut Peer, imp: &dyn Implementation, t0: Instant) {
    loop {
        match peer.proc.try_line() {
            Ok(Some((at, line))) => {
                if let Some(completion) = imp.parse_completion(&line) {
                    let seconds = at.duration_since(t0).as_secs_f64();
                    peer.done = Some((seconds, completion, peer.proc.usage().cpu_s));
                    return;
                }
            }
            Ok(None) => break,
            Err(()) => {
                // stdout closed without a completion line.
                let status = peer.proc.exited();
                peer.failed = Some(format!(
                    "exited before completing ({status:?}); see logs/{}.err",
                    peer.proc.label
                ));
                return;
            }
        }
    }
}

fn nginx_conf(dir: &Path, root: &Path, ip: Ipv4Addr) -> Result<PathBuf> {
    let nginx = dir.join("nginx");
    std::fs::create_dir_all(nginx.join("tmp"))?;
    let tmp = nginx.join("tmp");
    let conf = nginx.join("nginx.conf");
    // Foreground (the harness owns its lifetime), one worker, files sent
    // with sendfile; the temp paths keep nginx out of /var.
    let text = format!(
        "daemon off;\nworker_processes 1;\nuser root;\npid {pid};\nerror_log {log};\n\
events {{ worker_connections 1024; }}\n\
http {{\n  access_log {access};\n  sendfile on;\n  tcp_nopush on;\n  default_type application/octet-stream;\n\
  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n  fastcgi_temp_path {tmp}/fastcgi;\n\
  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n\
  server {{ listen {ip}:80; root {root}; }}\n}}\n",
        pid = nginx.join("nginx.pid").display(),
        log = dir.join("logs/nginx-error.log").display(),
        access = dir.join("logs/nginx-access.log").display(),
        tmp = tmp.display(),
        root = root.display(),
    );
    std::fs::write(&conf, text)?;
    Ok(conf)
}

/// Polls /proc/net/tcp inside `ns` until something listens on `port`.
fn wait_listening(ns: &str, port: u16, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let needle = format!(":{port:04X} ");
    while Instant::now() < deadline {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "cat", "/proc/net/tcp"])
            .output()
            .context("reading /proc/net/tcp")?;
        let text = String::from_utf8_lossy(&out.stdout);
        // Column 2 is local address:port, column 4 the state; 0A = LISTEN.
        if text.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3 && format!("{} ", cols[1]).ends_with(&needle) && cols[3] == "0A"
        }) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on port {port} in {ns} after {timeout:?}; see the nginx error log")
}
