//! The demo's flash crowd: several shoal engines in this process, each
//! with its own port, folder and rate caps, all starting the same download
//! at once. They keep seeding until every one is complete, then stop
//! together, so that their `stopped` announces carry final totals.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use engine::{Engine, EngineSettings, Progress, TorrentEvent};
use meta::Torrent;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::display::Display;

/// Each peer's caps in bytes/s; 0 = unlimited.
#[derive(Debug, Clone, Copy)]
pub struct PeerCaps {
    pub up_bps: u64,
    pub down_bps: u64,
}

/// How the crowd did.
#[derive(Debug)]
pub struct Outcome {
    /// Each peer's final totals, from its `Stopped` event.
    pub peers: Vec<Progress>,
    /// From the start until the last peer completed.
    pub elapsed: Duration,
}

/// Time left, after the last peer completes, for every peer to stop (its
/// `stopped` announce has a timeout of its own of a few seconds).
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Runs `count` peers downloading `torrent` into `work/peer-N` until all
/// completed and stopped. Fails if that takes longer than `deadline`, if a
/// peer fails, or on Ctrl-C.
pub async fn run(
    torrent: Arc<Torrent>,
    work: &Path,
    count: usize,
    caps: PeerCaps,
    deadline: Duration,
    display: &mut Display,
) -> Result<Outcome> {
    let started = Instant::now();
    let (events_tx, mut events) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    // The engines must outlive their downloads: they own the listeners.
    let mut engines = Vec::with_capacity(count);
    for peer in 0..count {
        let engine = Engine::start(EngineSettings {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_upload_bps: caps.up_bps,
            max_download_bps: caps.down_bps,
            ..EngineSettings::default()
        })
        .await
        .with_context(|| format!("cannot start peer {peer}"))?;
        let folder = work.join(format!("peer-{peer}"));
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let mut handle = engine
            .download(torrent.clone(), &folder, true)
            .await
            .with_context(|| format!("peer {peer} cannot start the download"))?;
        engines.push(engine);
        let events_tx = events_tx.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut stopping = false;
            loop {
                tokio::select! {
                    event = handle.next_event() => match event {
                        Some(event) => {
                            if events_tx.send((peer, event)).await.is_err() {
                                handle.stop().await;
                                return;
                            }
                        }
                        None => return,
                    },
                    // A stop request, or the demo gave up (sender dropped).
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        handle.stop().await;
                    }
                }
            }
        });
    }
    drop(events_tx);

    let mut latest = vec![Progress::default(); count];
    let mut completed = vec![false; count];
    let mut stopped: Vec<Option<Progress>> = vec![None; count];
    let mut elapsed = None;
    let timer = tokio::time::sleep(deadline);
    tokio::pin!(timer);
    let interrupt = crate::transfer::stop_requested();
    tokio::pin!(interrupt);
    while stopped.iter().any(Option::is_none) {
        tokio::select! {
            event = events.recv() => {
                let Some((peer, event)) = event else {
                    bail!("the peers ended without stopping cleanly");
                };
                match event {
                    TorrentEvent::Progress(p) => {
                        latest[peer] = p;
                        display.progress(peer, &p);
                    }
                    TorrentEvent::Checking { .. } => {}
                    TorrentEvent::Completed { progress, .. } => {
                        latest[peer] = progress;
                        completed[peer] = true;
                        display.complete(peer, &progress);
                        if completed.iter().all(|c| *c) {
                            elapsed = Some(started.elapsed());
                            stop_tx.send_replace(true);
                            timer.as_mut().reset(Instant::now() + STOP_GRACE);
                        }
                    }
                    TorrentEvent::Warning(message) => display.warning(peer, &message),
                    TorrentEvent::Stopped { error, progress } => {
                        if let Some(error) = error {
                            bail!("peer {peer} failed: {error}");
                        }
                        if !completed[peer] {
                            bail!("peer {peer} stopped before completing");
                        }
                        stopped[peer] = Some(progress);
                    }
                }
            }
            () = &mut timer => {
                if elapsed.is_some() {
                    bail!("the peers did not stop within {} s of completing", STOP_GRACE.as_secs());
                }
                bail!(
                    "the demo did not finish within {:.0} s (ten times the Kumar–Ross bound, plus a minute): {}. \
                     Is the machine busy? Try a smaller --size or fewer --peers.",
                    deadline.as_secs_f64(),
                    describe(&latest)
                );
            }
            () = &mut interrupt => bail!("interrupted"),
        }
    }
    drop(engines);
    Ok(Outcome {
        peers: stopped.into_iter().flatten().collect(),
        elapsed: elapsed.unwrap_or_else(|| started.elapsed()),
    })
}

/// Where each peer was, for a timeout message.
fn describe(latest: &[Progress]) -> String {
    latest
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let percent = 100.0 * p.verified_bytes as f64 / p.total_bytes.max(1) as f64;
            format!("peer {i} at {percent:.0}% with {} peers", p.peers)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
