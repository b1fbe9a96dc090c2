//! `shoal seed`: share a complete release that is already on disk.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::report::Reporter;
use crate::transfer::{self, NetArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release's torrent file.
    torrent: PathBuf,
    /// Folder holding the release (its file or folder is DIR/NAME).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    #[command(flatten)]
    net: NetArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(seed(args))
}

async fn seed(args: Args) -> Result<ExitCode> {
    let source = args.torrent.display().to_string();
    let torrent = crate::source::load(&source).await?;
    let note = crate::source::check_publisher(
        &source,
        &torrent,
        &args.net.trust,
        args.net.allow_unsigned,
    )?;
    let engine = transfer::start_engine(&args.net, 0).await?;
    let reporter = Reporter::new(args.net.json, torrent.total_size());
    if let Some(note) = note {
        reporter.warning(&note);
    }
    let torrent = Arc::new(torrent);
    let options = engine::TorrentOptions {
        publisher: crate::source::publisher_trust(&torrent, &args.net.trust),
        ..engine::TorrentOptions::default()
    };
    let handle = engine
        .seed_with(torrent.clone(), &args.data, reporter.checker(), options)
        .await?;
    reporter.started("seeding", engine.listen_addr(), &torrent);
    transfer::follow(handle, reporter, true).await
}
