//! What `get` and `seed` share: network options, starting the engine,
//! following a torrent's events, and stopping cleanly on a signal.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{bail, Result};
use engine::{Engine, EngineSettings, TorrentEvent, TorrentHandle};

use crate::report::Reporter;
use units::parse_bytes;

#[derive(Debug, Clone, clap::Args)]
pub struct NetArgs {
    /// Address to accept peers on. If the default port is taken, a free
    /// one is used instead.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:6881")]
    listen: SocketAddr,
    /// Upload cap in bytes/s (k/M suffixes work); 0 = unlimited.
    #[arg(long, value_name = "RATE", default_value = "0", value_parser = parse_bytes)]
    max_up: u64,
    /// A publisher public key (64 hex digits) to accept; repeat for more.
    #[arg(long, value_name = "HEX", value_parser = crate::keyfile::parse_public_key)]
    pub trust: Vec<[u8; 32]>,
    /// Accept a torrent that no publisher signed.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Print JSON lines (events) on stdout instead of a progress display.
    #[arg(long)]
    pub json: bool,
}

/// Starts an engine; falls back to a free port if the default one is taken.
pub async fn start_engine(net: &NetArgs, max_down: u64) -> Result<Engine> {
    Ok(Engine::start_or_any_port(EngineSettings {
        listen: net.listen,
        max_upload_bps: net.max_up,
        max_download_bps: max_down,
        ..EngineSettings::default()
    })
    .await?)
}

/// Resolves when the user asks us to stop (Ctrl-C, or SIGTERM on Unix).
pub(crate) async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Follows a torrent until it stops. Returns success if it completed (or,
/// when `until_stopped`, if it was stopped by the user without error).
pub async fn follow(
    mut handle: TorrentHandle,
    mut reporter: Reporter,
    until_stopped: bool,
) -> Result<ExitCode> {
    let mut completed = false;
    let mut interrupted = false;
    let stop = stop_requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            event = handle.next_event() => match event {
                Some(TorrentEvent::Progress(p)) => reporter.progress(&p),
                Some(TorrentEvent::Checking { checked_bytes, .. }) => reporter.checking(checked_bytes),
                Some(TorrentEvent::Completed { path, progress }) => {
                    completed = true;
                    reporter.complete(&path, &progress);
                }
                Some(TorrentEvent::Warning(message)) => reporter.warning(&message),
                Some(TorrentEvent::Stopped { error, progress }) => {
                    reporter.stopped(&progress);
                    if let Some(error) = error {
                        bail!("{error}");
                    }
                    break;
                }
                None => break,
            },
            _ = &mut stop, if !interrupted => {
                interrupted = true;
                handle.stop().await;
            }
        }
    }
    if completed || (until_stopped && interrupted) {
        return Ok(ExitCode::SUCCESS);
    }
    if interrupted {
        eprintln!("shoal: stopped before completion; run the same command again to resume");
        return Ok(ExitCode::from(130));
    }
    bail!("the download stopped before completion")
}
