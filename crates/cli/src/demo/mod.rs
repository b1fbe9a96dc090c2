//! `shoal demo`: the whole system on one machine, in a temporary folder.
//! A publisher signs a sample release; an embedded tracker (SQLite) has
//! the publisher registered and accepts the release; a local origin web
//! server serves it under an upload cap; a flash crowd of shoal peers on
//! loopback downloads it at once, each with its own caps. The end compares
//! the origin's bytes with the release size, the tracker's accounting with
//! the peers' own counts, and the time with the Kumar–Ross bound.
//!
//! Layout: [`sample`] (release and torrent), [`origin`] (the web server),
//! [`crowd`] (the peers), [`display`] (progress), [`summary`] (the end).

mod crowd;
mod display;
mod origin;
mod sample;
mod summary;

use std::future::Future;
use std::io::IsTerminal;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracker::store::Store;

use crowd::PeerCaps;
use units::{format_bytes, parse_bytes};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the sample release in bytes (k/M/G suffixes work).
    #[arg(long, default_value = "64M", value_parser = parse_bytes)]
    size: u64,
    /// How many peers download the release at once.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=64))]
    peers: u16,
    /// Each peer's upload cap in bytes/s; 0 = unlimited.
    #[arg(long, value_name = "RATE", default_value = "2M", value_parser = parse_bytes)]
    peer_up: u64,
    /// Each peer's download cap in bytes/s; 0 = unlimited.
    #[arg(long, value_name = "RATE", default_value = "8M", value_parser = parse_bytes)]
    peer_down: u64,
    /// The origin server's upload cap in bytes/s, over all its
    /// connections; 0 = unlimited.
    #[arg(long, value_name = "RATE", default_value = "4M", value_parser = parse_bytes)]
    origin_up: u64,
    /// Print JSON lines (events, then a summary) on stdout instead.
    #[arg(long)]
    json: bool,
}

/// The registered publisher's name, as the dashboard shows it.
const PUBLISHER: &str = "Demo Publisher";
/// How often the demo's peers announce: often, so the dashboard is live.
const ANNOUNCE_INTERVAL_SECS: u64 = 10;

pub fn run(args: Args) -> Result<ExitCode> {
    ensure!(args.size > 0, "--size must be at least 1 byte");
    let peers = usize::from(args.peers);
    let caps = PeerCaps {
        up_bps: args.peer_up,
        down_bps: args.peer_down,
    };
    let work = tempfile::Builder::new()
        .prefix("shoal-demo-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let say = |line: String| {
        if !args.json {
            println!("{line}");
        }
    };
    say(format!(
        "shoal demo: a publisher, a tracker, an origin server and {peers} peers, all on this machine"
    ));

    let release = work.path().join("sample-release");
    sample::write_sample_release(&release, args.size)?;
    say(format!(
        "1. Release    sample-release: {} in {} files, in {}",
        format_bytes(args.size),
        sample::FILES,
        work.path().display()
    ));
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let public = key.verifying_key().to_bytes();

    let token = tracker::new_token();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let stop_signal = move || {
        let mut rx = shutdown_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let (tracker_base, tracker_task) = runtime.block_on(start_tracker(
        &work.path().join("tracker.db"),
        &public,
        &token,
        u32::from(args.peers),
        stop_signal(),
    ))?;

    let origin = runtime.block_on(origin::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        &release,
        args.origin_up,
        stop_signal(),
    ))?;
    let origin_base = format!("http://{}", origin.addr);

    let published = sample::publish(
        &release,
        &key,
        &format!("{tracker_base}/announce"),
        &origin_base,
        unix_now(),
    )?;
    let torrent = &published.torrent;
    say(format!(
        "2. Publisher  key {}: a signed hybrid torrent, {} pieces of {}, hashed at {:.0} MiB/s",
        hex::encode(public),
        torrent.piece_count(),
        format_bytes(torrent.piece_length),
        published.hash_rate / f64::from(1 << 20),
    ));
    say(format!(
        "              (a copy with one byte of `info` changed: {})",
        sample::tampered_verdict(&published.bytes)?
    ));
    // `register` runs its own runtime: called from this plain thread.
    let registered = crate::register::register(&tracker_base, &token, &published.bytes)?;
    say(format!(
        "3. Tracker    {tracker_base}/announce (SQLite): {PUBLISHER} registered the release as #{}",
        registered.release
    ));
    say(format!(
        "4. Origin     {origin_base}/ serves the folder, at most {}/s",
        format_bytes(args.origin_up)
    ));
    // The peers accept only the publisher's key, as `shoal get --trust` does.
    crate::source::check_publisher("the demo release", torrent, &[public], false)?;

    let bound_seconds = summary::kumar_ross_seconds(args.size, peers, args.origin_up, caps);
    let deadline = Duration::from_secs_f64(10.0 * bound_seconds + 60.0);
    let dashboard = format!("{tracker_base}/dashboard");
    say(format!(
        "5. Crowd      {peers} peers start at once, each ↑ {}/s ↓ {}/s; the Kumar–Ross bound is {bound_seconds:.1} s",
        format_bytes(args.peer_up),
        format_bytes(args.peer_down),
    ));
    if args.json {
        crate::report::print_json(&json!({
            "event": "ready",
            "release_bytes": args.size,
            "info_hash_v1": torrent.info_hashes.v1.map(hex::encode),
            "info_hash_v2": torrent.info_hashes.v2.map(hex::encode),
            "publisher_key": hex::encode(public),
            "tracker": format!("{tracker_base}/announce"),
            "origin": format!("{origin_base}/"),
            "dashboard": dashboard,
            "peers": peers,
            "bound_seconds": bound_seconds,
        }));
    }

    let mut display = display::Display::new(args.json, peers, args.size);
    let outcome = runtime.block_on(crowd::run(
        Arc::new(published.torrent.clone()),
        work.path(),
        peers,
        caps,
        deadline,
        &mut display,
    ));
    display.finish();
    let outcome = outcome?;
    let expected: u64 = outcome
        .peers
        .iter()
        .map(|p| p.bytes_from_peers + p.bytes_from_origin)
        .sum();
    let usage = runtime.block_on(summary::tracker_usage(
        &tracker_base,
        &token,
        expected,
        Duration::from_secs(6),
    ))?;
    let result = summary::Summary {
        release_bytes: args.size,
        outcome: &outcome,
        origin_served: origin.served_bytes(),
        usage: &usage,
        bound_seconds,
        dashboard,
        token: &token,
    };
    if args.json {
        crate::report::print_json(&result.json());
    } else {
        result.print();
        if std::io::stdout().is_terminal() {
            println!("\nThe tracker and the origin keep running for the dashboard; press Ctrl-C to stop.");
            runtime.block_on(crate::transfer::stop_requested());
        }
    }
    shutdown.send_replace(true);
    let _ = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), tracker_task).await });
    Ok(ExitCode::SUCCESS)
}

/// Starts the embedded tracker on a free loopback port with the demo's
/// publisher registered (before it starts, as `shoal-tracker publisher
/// add` would). Returns its base URL and its task. Every demo peer is on
/// 127.0.0.1, so the per-address allowances (sessions per swarm,
/// completions per day) are raised to the number of peers.
async fn start_tracker(
    db: &Path,
    public: &[u8; 32],
    token: &str,
    peers: u32,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(String, JoinHandle<Result<(), tracker::TrackerError>>)> {
    let mut store = tracker::store::SqliteStore::open(db)
        .with_context(|| format!("cannot open the demo tracker's database {}", db.display()))?;
    store.add_publisher(PUBLISHER, public, &tracker::token_hash(token), unix_now())?;
    let settings = tracker::TrackerSettings {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        batch_secs: 1,
        max_sessions_per_ip: peers.saturating_add(2),
        max_completions_per_ip_per_day: peers,
        ..Default::default()
    }
    .with_announce_interval(ANNOUNCE_INTERVAL_SECS);
    let bound = tracker::Tracker::new(settings)
        .with_store(Box::new(store))
        .bind()
        .await?;
    let base = format!("http://{}", bound.local_addr());
    Ok((base, tokio::spawn(bound.run(shutdown))))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
