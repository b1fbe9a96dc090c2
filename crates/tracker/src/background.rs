//! The tracker's background tasks: the sweep that drops expired peers,
//! and, with a database, the loop that writes accounting batches, prunes
//! old rows and (with PostgreSQL) exchanges peers and releases with the
//! other instances. Announces never wait on any of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::control::{unix_now_ms, Control};
use crate::metrics::Metrics;
use crate::peer_store::LocalPeer;
use crate::state::AppState;
use crate::store::{SharedPeer, StoreError};

/// How often old sessions and day-peer rows are deleted: each run scans
/// those tables, and a day's rows need only go within the day.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Longest time a live, unchanged peer goes without being shared again
/// with other instances (at most a quarter of the expiry, so they never
/// drop it while it announces here).
const REPUBLISH_MAX: Duration = Duration::from_secs(300);

/// How far instances' clocks may disagree without a peer being missed.
const CLOCK_SLACK_MS: i64 = 5_000;

/// Lazy expiry on access keeps answers right; this sweep keeps memory
/// bounded for swarms nobody asks about any more.
pub(crate) async fn sweep_expired_peers(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.settings.sweep_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut peers = state.peers();
        let dropped = peers.sweep(Instant::now());
        if dropped > 0 {
            tracing::debug!(
                dropped,
                swarms = peers.swarm_count(),
                "expired peers dropped"
            );
        }
    }
}

/// The background loop: a batch every `batch_secs` (or sooner when the
/// window is full), a peer exchange every `sync_secs` when sharing.
pub(crate) async fn run(state: Arc<AppState>) {
    let Some(control) = state.control.as_ref() else {
        return;
    };
    let batch_every = Duration::from_secs(state.settings.batch_secs);
    let sync_every = Duration::from_millis(state.settings.sync_millis);
    let mut next_batch = Instant::now() + batch_every;
    let mut next_prune = Instant::now();
    let mut last_sync = Instant::now();
    let mut since_ms = 0;
    loop {
        let wait = if control.shares_peers {
            sync_every.min(next_batch.saturating_duration_since(Instant::now()))
        } else {
            next_batch.saturating_duration_since(Instant::now())
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = control.flush_now.notified() => next_batch = Instant::now(),
        }
        if control.shares_peers && last_sync.elapsed() >= sync_every {
            let started = Instant::now();
            match exchange_peers(control, &state, since_ms).await {
                Ok(newest) => {
                    since_ms = newest;
                    last_sync = started;
                }
                Err(error) => {
                    Metrics::add(&state.metrics.peer_sync_errors, 1);
                    tracing::warn!(%error, "peer exchange with other instances failed");
                }
            }
        }
        if Instant::now() >= next_batch {
            control
                .flush(&state.metrics, state.settings.ceilings())
                .await;
            next_batch = Instant::now() + batch_every;
        }
        if Instant::now() >= next_prune {
            control
                .prune(&state.metrics, state.settings.accounting_retention_days)
                .await;
            next_prune = Instant::now() + PRUNE_EVERY;
        }
    }
}

/// Exchanges peers with the other instances and reloads the releases
/// they may have registered or withdrawn.
async fn exchange_peers(
    control: &Control,
    state: &AppState,
    since_ms: i64,
) -> Result<i64, StoreError> {
    let now_ms = unix_now_ms();
    let (ours, stopped) = {
        let mut peers = state.peers();
        let republish_every =
            (state.settings.peer_expiry() / 4).clamp(Duration::from_secs(1), REPUBLISH_MAX);
        (
            peers.take_to_publish(Instant::now(), republish_every),
            peers.take_stopped(),
        )
    };
    let shared: Vec<SharedPeer> = ours
        .iter()
        .map(|p| SharedPeer {
            swarm: p.swarm,
            peer_id: p.peer_id,
            addr: p.addr,
            left: p.left,
            seen_unix_ms: now_ms,
            stopped: false,
        })
        .chain(stopped.iter().map(|(swarm, peer_id)| SharedPeer {
            swarm: *swarm,
            peer_id: *peer_id,
            addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            left: 0,
            seen_unix_ms: now_ms,
            stopped: true,
        }))
        .collect();
    let instance = control.instance.clone();
    let expiry_ms = i64::try_from(state.settings.peer_expiry().as_millis()).unwrap_or(i64::MAX);
    let undelivered = stopped.clone();
    let exchanged = control
        .with_db(move |db| {
            db.publish_peers(&instance, &shared)?;
            // Re-read a margin back: merging is idempotent, and the
            // instances' clocks need not agree to the millisecond.
            let theirs =
                db.peers_from_others(&instance, since_ms.saturating_sub(CLOCK_SLACK_MS))?;
            db.expire_peers(now_ms.saturating_sub(expiry_ms))?;
            Ok::<_, StoreError>((theirs, db.releases()?))
        })
        .await;
    let (theirs, releases) = match exchanged {
        Ok(exchanged) => exchanged,
        Err(error) => {
            state.peers().restore_stopped(undelivered);
            return Err(error);
        }
    };
    control.registry.load(&releases);
    let now = Instant::now();
    let mut peers = state.peers();
    let mut newest = since_ms;
    for peer in theirs {
        newest = newest.max(peer.seen_unix_ms);
        let local = LocalPeer {
            swarm: peer.swarm,
            peer_id: peer.peer_id,
            addr: peer.addr,
            left: peer.left,
        };
        peers.merge_remote(now, local, peer.stopped);
    }
    Ok(newest)
}
