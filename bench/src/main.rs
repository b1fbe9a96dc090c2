//! shoal-bench: a flash crowd on emulated links, for shoal and libtorrent
//! side by side, measured against the Kumar–Ross lower bound.
//! See bench/README.md for how to run it and read its figures.

mod adapters;
mod cgroup;
mod cleanup;
mod fixture;
mod linecheck;
mod netns;
mod plot;
mod procs;
mod report;
mod run;
mod units;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use adapters::Programs;
use fixture::{Fixture, OriginKind};
use netns::{LinkCaps, Network};
use report::Scenario;
use units::parse_bytes;

/// Flash-crowd swarm benchmark on emulated links (needs root).
///
/// Sizes and rates take binary suffixes, as shoal's own flags do:
/// 64M = 64 MiB, 2M = 2 MiB/s.
#[derive(Debug, Parser)]
#[command(name = "shoal-bench", version)]
struct Args {
    /// Number of downloading peers, all started at once.
    #[arg(long, default_value_t = 20)]
    peers: usize,
    /// Release size in bytes (random data).
    #[arg(long, default_value = "64M", value_parser = parse_bytes)]
    size: u64,
    /// Piece size in bytes; default: shoal publish's own choice.
    #[arg(long, value_parser = parse_bytes)]
    piece_size: Option<u64>,
    /// Each peer's upload cap, bytes/s.
    #[arg(long, default_value = "2M", value_parser = parse_bytes)]
    peer_up: u64,
    /// Each peer's download cap, bytes/s.
    #[arg(long, default_value = "8M", value_parser = parse_bytes)]
    peer_down: u64,
    /// The origin's upload cap, bytes/s.
    #[arg(long, default_value = "4M", value_parser = parse_bytes)]
    origin_up: u64,
    /// Origin kind: bt (a seed of the implementation under test), web
    /// (nginx as an HTTP web seed) or both; repeatable.
    #[arg(long, default_value = "both", value_parser = ["bt", "web", "both"])]
    origin: Vec<String>,
    /// Implementation: shoal, libtorrent or all; repeatable.
    #[arg(long = "impl", default_value = "all")]
    implementation: Vec<String>,
    /// Seconds a run may take before unfinished peers count as incomplete
    /// (default: 4·T_min + 30).
    #[arg(long)]
    timeout: Option<f64>,
    /// Folder for results.jsonl (appended), table.md and cdf.png.
    #[arg(long, default_value = "target/shoal-bench")]
    out: PathBuf,
    /// Scratch folder for data, torrents, downloads and logs (default
    /// /tmp/shoal-bench-<pid>); removed afterwards unless --keep-work.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    #[arg(long)]
    keep_work: bool,
    /// Default: next to shoal-bench, else on PATH.
    #[arg(long)]
    shoal_bin: Option<PathBuf>,
    /// Default: next to shoal-bench, else on PATH.
    #[arg(long)]
    tracker_bin: Option<PathBuf>,
    #[arg(long, default_value = "/usr/bin/python3")]
    python: PathBuf,
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/interop/lt_driver.py"))]
    lt_driver: PathBuf,
    #[arg(long, default_value = "/usr/sbin/nginx")]
    nginx: PathBuf,
    /// Before the runs, check the emulated links reach line rate without
    /// any BitTorrent: each peer sends the release size to the next one.
    #[arg(long)]
    line_check: bool,
    /// Put each peer in a CPU cgroup limited to this fraction of one core
    /// (e.g. 0.2): a crowd of slow machines. cgroup v2 `cpu.max`, or the
    /// cgroup v1 cpu controller; removed at the end, also on Ctrl-C.
    #[arg(long)]
    peer_cpu: Option<f64>,
}

fn main() -> ExitCode {
    match bench(Args::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("shoal-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_root() -> bool {
    // Effective uid, second field of the Uid: line (no libc, no unsafe).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(2).map(|uid| uid == "0")
        })
        .unwrap_or(false)
}

/// A program next to our own executable (cargo puts every workspace binary
/// of a profile in one folder), else the bare name for PATH.
fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn require(path: &Path, hint: &str) -> Result<()> {
    let found = path.is_file()
        || (path.components().count() == 1
            && std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(path).is_file())));
    if !found {
        bail!("{} not found; {hint}", path.display());
    }
    Ok(())
}

fn bench(args: Args) -> Result<ExitCode> {
    if !is_root() {
        bail!("shoal-bench needs root to create network namespaces; run it with sudo");
    }
    if args.peers == 0 || args.peers > 500 {
        bail!("--peers must be 1 to 500");
    }
    let origins: Vec<OriginKind> = if args.origin.iter().any(|o| o == "both") {
        vec![OriginKind::Bt, OriginKind::Web]
    } else {
        let mut kinds = Vec::new();
        for o in &args.origin {
            let kind = if o == "bt" {
                OriginKind::Bt
            } else {
                OriginKind::Web
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds
    };
    let names: Vec<&str> = if args.implementation.iter().any(|i| i == "all") {
        adapters::ALL.to_vec()
    } else {
        let mut names: Vec<&str> = Vec::new();
        for name in &args.implementation {
            if !adapters::ALL.contains(&name.as_str()) {
                bail!(
                    "--impl {name}: unknown implementation; choose from {} or all",
                    adapters::ALL.join(", ")
                );
            }
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        names
    };
    let programs = Programs {
        shoal: args.shoal_bin.clone().unwrap_or_else(|| sibling("shoal")),
        python: args.python.clone(),
        lt_driver: args.lt_driver.clone(),
    };
    let tools = run::Tools {
        tracker: args
            .tracker_bin
            .clone()
            .unwrap_or_else(|| sibling("shoal-tracker")),
        nginx: args.nginx.clone(),
    };
    let build_hint = "build first: cargo build --release --bin shoal --bin shoal-tracker";
    require(&programs.shoal, build_hint)?;
    require(&tools.tracker, build_hint)?;
    if origins.contains(&OriginKind::Web) {
        require(
            &tools.nginx,
            "install nginx-light (apt-get install nginx-light)",
        )?;
    }
    if names.contains(&"libtorrent") {
        require(&programs.lt_driver, "pass --lt-driver PATH")?;
        require(&programs.python, "install python3-libtorrent")?;
    }
    let implementations: Vec<_> = names
        .iter()
        .filter_map(|n| adapters::by_name(n, &programs))
        .collect();

    cleanup::install_signal_handler()?;
    netns::remove_stale_namespaces()?;
    cgroup::remove_stale();
    let scenario = Scenario {
        peers: args.peers,
        size_bytes: args.size,
        peer_up_bps: args.peer_up,
        peer_down_bps: args.peer_down,
        origin_up_bps: args.origin_up,
        peer_cpu_cores: args.peer_cpu,
        timeout_s: args.timeout,
    };
    let work = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("shoal-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    if !args.keep_work {
        cleanup::set_scratch(work.clone());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let result = measure(
        &args,
        &scenario,
        &origins,
        &implementations,
        &programs.shoal,
        &tools,
        &work,
    );
    if !args.keep_work {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("shoal-bench: logs and downloads kept in {}", work.display());
    }
    result
}

fn measure(
    args: &Args,
    scenario: &Scenario,
    origins: &[OriginKind],
    implementations: &[Box<dyn adapters::Implementation>],
    shoal: &Path,
    tools: &run::Tools,
    work: &Path,
) -> Result<ExitCode> {
    // The tracker's link is generous: its traffic is a few announces.
    let mut hosts = vec![
        (
            "tracker".to_owned(),
            LinkCaps {
                up_bps: 100 << 20,
                down_bps: 100 << 20,
            },
        ),
        (
            "origin".to_owned(),
            LinkCaps {
                up_bps: args.origin_up,
                down_bps: args.peer_down,
            },
        ),
    ];
    for i in 0..args.peers {
        hosts.push((
            format!("peer{i}"),
            LinkCaps {
                up_bps: args.peer_up,
                down_bps: args.peer_down,
            },
        ));
    }
    eprintln!("shoal-bench: creating {} namespaces", hosts.len() + 1);
    let net = Network::create(&hosts)?;
    let tracker_url = format!(
        "http://{}:{}/announce",
        net.host("tracker").ip,
        run::TRACKER_PORT
    );
    let fixture = Fixture::create(
        work,
        shoal,
        args.size,
        args.piece_size,
        &tracker_url,
        net.host("origin").ip,
        origins,
    )?;

    let mut line_check = None;
    if args.line_check {
        let check = linecheck::run(&net, scenario, &args.python, work)?;
        println!("{}", serde_json::json!({ "line_check": &check }));
        line_check = Some(check);
    }

    let cpu_limits = match args.peer_cpu {
        Some(cores) => Some(cgroup::CpuLimits::create(args.peers, cores)?),
        None => None,
    };

    let results_path = args.out.join("results.jsonl");
    let mut results = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&results_path)
        .with_context(|| format!("opening {}", results_path.display()))?;
    let mut records = Vec::new();
    let mut failed = false;
    for &origin in origins {
        for imp in implementations {
            let run = run::RunSetup {
                net: &net,
                scenario,
                fixture: &fixture,
                tools,
                cpu_limits: cpu_limits.as_ref(),
            };
            match run::run_one(&run, imp.as_ref(), origin, work) {
                Ok(record) => {
                    let line = serde_json::to_string(&record)?;
                    println!("{line}");
                    writeln!(results, "{line}")?;
                    records.push(record);
                }
                Err(error) => {
                    failed = true;
                    eprintln!(
                        "shoal-bench: {} / {} failed: {error:#}",
                        imp.name(),
                        origin.name()
                    );
                }
            }
        }
    }
    drop(cpu_limits);
    drop(net);

    if !records.is_empty() {
        let mut table = report::markdown_table(&records);
        if let Some(c) = &line_check {
            table.push_str(&format!(
                "\nLine check (no BitTorrent: each peer sends F to the next, all at once): \
                 {}/{} transfers done, slowest {} s vs {:.1} s at line rate ({}×), machine busy {:.0}%\n",
                c.completed,
                c.peers,
                c.slowest_s.map_or("—".into(), |s| format!("{s:.1}")),
                c.expected_s,
                c.slowest_over_expected.map_or("—".into(), |r| format!("{r:.2}")),
                c.machine_busy_fraction * 100.0,
            ));
        }
        std::fs::write(args.out.join("table.md"), &table)?;
        eprintln!("\n{table}");
        let png = args.out.join("cdf.png");
        match plot::cdf_png(&records, &png) {
            Ok(()) => eprintln!(
                "shoal-bench: wrote {}, {}",
                results_path.display(),
                png.display()
            ),
            Err(error) => eprintln!("shoal-bench: no plot: {error:#}"),
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
