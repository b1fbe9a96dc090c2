//! `shoal get`: download a release from its swarm.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use engine::EngineError;

use crate::report::Reporter;
use crate::transfer::{self, NetArgs};
use units::parse_bytes;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release's torrent: a file path or an http(s) URL.
    source: String,
    /// Folder to download into; the release lands at DIR/NAME when complete.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Keep sharing after the download completes, until interrupted.
    #[arg(long)]
    seed: bool,
    /// Download cap in bytes/s (k/M suffixes work); 0 = unlimited.
    #[arg(long, value_name = "RATE", default_value = "0", value_parser = parse_bytes)]
    max_down: u64,
    /// A peer to connect to besides those the trackers name; repeatable.
    #[arg(long = "peer", value_name = "ADDR:PORT")]
    peers: Vec<SocketAddr>,
    #[command(flatten)]
    net: NetArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(download(args))
}

async fn download(args: Args) -> Result<ExitCode> {
    let torrent = crate::source::load(&args.source).await?;
    let note = crate::source::check_publisher(
        &args.source,
        &torrent,
        &args.net.trust,
        args.net.allow_unsigned,
    )?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let engine = transfer::start_engine(&args.net, args.max_down).await?;
    let reporter = Reporter::new(args.net.json, torrent.total_size());
    if let Some(note) = note {
        reporter.warning(&note);
    }
    let torrent = Arc::new(torrent);
    let options = engine::TorrentOptions {
        publisher: crate::source::publisher_trust(&torrent, &args.net.trust),
        ..engine::TorrentOptions::default()
    };
    let handle = match engine
        .download_with(torrent.clone(), &args.out, args.seed, options)
        .await
    {
        Err(EngineError::Storage(engine::storage::StorageError::AlreadyExists { path })) => {
            anyhow::bail!(
                "{} already exists; to share it, run `shoal seed {} --data {}`",
                path.display(),
                args.source,
                args.out.display()
            )
        }
        other => other?,
    };
    if !args.peers.is_empty() {
        handle.add_peers(args.peers.clone()).await;
    }
    reporter.started("downloading", engine.listen_addr(), &torrent);
    transfer::follow(handle, reporter, args.seed).await
}
