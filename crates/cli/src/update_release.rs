//! How the project publishes a build of the agent for self-update:
//! `shoal stamp` names a built binary's version (see the agent's
//! `update/stamp.rs`), and `shoal publish-update` signs it as a release
//! named `shoal-VERSION-TARGET` with the project key and lists it in the
//! feed, with the same code the agent checks it with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use agent::update::{self, FeedEntry, Version};
use anyhow::{Context, Result};
use engine::atomic_file::FileAccess;
use meta::create::{self, CreateSettings};
use meta::publish::{create_signed, ReleaseInfo};

#[derive(Debug, clap::Args)]
pub struct StampArgs {
    /// The built `shoal` binary to stamp, in place.
    binary: PathBuf,
    /// The version it reports from now on (like 1.4.2).
    #[arg(long)]
    version: String,
}

pub fn stamp(args: StampArgs) -> Result<ExitCode> {
    let version: Version = args.version.parse().map_err(anyhow::Error::msg)?;
    update::write_stamp(&args.binary, &version)?;
    println!("{} now reports version {version}", args.binary.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The stamped `shoal` binary to publish (its stamp gives the version).
    binary: PathBuf,
    /// The project's secret key (its public half is pinned in the agent).
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Where to put the build, its torrent and `feed.json` (updated in place).
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
    /// The target triple the binary is for. Default: this shoal's.
    #[arg(long)]
    target: Option<String>,
    /// Tracker announce URL; repeat for more.
    #[arg(long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Web seed URL (BEP 19) where the build file is served.
    #[arg(long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// The torrent's URL as the feed lists it. Default: its file name,
    /// relative to the feed's own URL.
    #[arg(long, value_name = "URL")]
    torrent_url: Option<String>,
}

pub fn publish(args: PublishArgs) -> Result<ExitCode> {
    let target = args
        .target
        .clone()
        .unwrap_or_else(|| update::build_target().to_owned());
    update::check_target(&target).map_err(anyhow::Error::msg)?;
    let version = update::read_stamp(&args.binary)?;
    let key = crate::keyfile::read(&args.key)?;
    let name = update::build_file_name(&version, &target);
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let build = args.out_dir.join(&name);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    // Copying a file onto itself would empty it.
    if !same(&args.binary, &build) {
        std::fs::copy(&args.binary, &build)
            .with_context(|| format!("cannot copy the build to {}", build.display()))?;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let settings = CreateSettings {
        trackers: args.trackers.clone(),
        web_seeds: args.web_seeds.clone(),
        creation_date: Some(now),
        ..CreateSettings::default()
    };
    let release = ReleaseInfo {
        version: version.to_string(),
        created_unix: now,
        origins: Vec::new(),
        max_origin_millicopies: None,
    };
    let source = create::scan(&build)?;
    let bytes = create_signed(&source, &settings, &|_| {}, &release, &key)?;
    let torrent_name = format!("{name}.torrent");
    write(&args.out_dir.join(&torrent_name), &bytes)?;
    let feed_path = args.out_dir.join("feed.json");
    let existing = match std::fs::read(&feed_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", feed_path.display())),
    };
    let entry = FeedEntry {
        target: target.clone(),
        version: version.to_string(),
        torrent: args.torrent_url.clone().unwrap_or(torrent_name.clone()),
    };
    let feed = update::with_entry(existing.as_deref(), entry)
        .map_err(|e| anyhow::anyhow!("{}: {e}", feed_path.display()))?;
    write(&feed_path, &feed)?;
    println!("Published shoal {version} for {target}");
    println!("  build    {}", build.display());
    println!("  torrent  {}", args.out_dir.join(&torrent_name).display());
    println!("  feed     {}", feed_path.display());
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    engine::atomic_file::write_atomically(path, bytes, FileAccess::Default)
        .with_context(|| format!("cannot write {}", path.display()))
}
