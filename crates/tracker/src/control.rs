//! The control plane next to the peer store, present when the tracker has
//! a database: the release registry, the accounting window, and the
//! background loop that writes batches and (with PostgreSQL) exchanges
//! peers and releases with other instances.
//!
//! Nothing here runs on the announce path except [`Control::record`],
//! which merges a report into memory. A crash loses at most the reports
//! of the current batch window (`TrackerSettings::batch_secs`, 5 s by
//! default); a clean shutdown writes it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::accounting::{PendingReports, Reported, SessionReport};
use crate::admission::Account;
use crate::announce_query::{AnnounceEvent, AnnounceQuery};
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::peer_store::LocalPeer;
use crate::registry::Registry;
use crate::store::{Ceilings, SharedPeer, Store, StoreError};

/// How often old sessions and day-peer rows are deleted: each run scans
/// those tables, and a day's rows need only go within the day.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Longest time a live, unchanged peer goes without being shared again
/// with other instances (at most a quarter of the expiry, so they never
/// drop it while it announces here).
const REPUBLISH_MAX: Duration = Duration::from_secs(300);

/// How far instances' clocks may disagree without a peer being missed.
const CLOCK_SLACK_MS: i64 = 5_000;

pub(crate) struct Control {
    db: Arc<Mutex<Box<dyn Store>>>,
    pub(crate) registry: Arc<Registry>,
    pending: Mutex<PendingReports>,
    /// Wakes the loop early when the window is full.
    flush_now: Notify,
    /// This instance's name in the shared peer table.
    instance: String,
    shares_peers: bool,
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Control {
    /// The PostgreSQL client runs its own runtime: it must be used and
    /// dropped on a blocking thread, never inside async code.
    pub(crate) async fn new(
        store: Box<dyn Store>,
        instance: String,
    ) -> Result<Control, StoreError> {
        let shares_peers = store.shares_peers();
        let control = Control {
            db: Arc::new(Mutex::new(store)),
            registry: Arc::new(Registry::default()),
            pending: Mutex::new(PendingReports::default()),
            flush_now: Notify::new(),
            instance,
            shares_peers,
        };
        let releases = control.with_db(|db| db.releases()).await?;
        control.registry.load(&releases);
        Ok(control)
    }

    /// Closes the database from a blocking thread (see [`Control::new`]);
    /// afterwards every database call fails.
    pub(crate) async fn close(&self) {
        let db = Arc::clone(&self.db);
        let _ = tokio::task::spawn_blocking(move || {
            let mut store = db.lock().unwrap_or_else(PoisonError::into_inner);
            let closed: Box<dyn Store> = Box::new(crate::store::Closed);
            drop(std::mem::replace(&mut *store, closed));
        })
        .await;
    }

    fn pending(&self) -> MutexGuard<'_, PendingReports> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.pending().len()
    }

    /// Runs `work` on the database from a blocking thread.
    pub(crate) async fn with_db<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut dyn Store) -> T + Send + 'static,
    ) -> T {
        let db = Arc::clone(&self.db);
        let job = tokio::task::spawn_blocking(move || {
            let mut store = db.lock().unwrap_or_else(PoisonError::into_inner);
            work(store.as_mut())
        });
        match job.await {
            Ok(value) => value,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }

    /// Merges one announce into the window. Returns false when the window
    /// is over twice its bound (the database is not keeping up): the
    /// report is dropped rather than memory growing without end.
    ///
    /// `session` is the accounting identity of the announcer (see
    /// [`SessionReport::session`]); `client` its IP as 16 bytes.
    pub(crate) fn record(
        &self,
        account: Account,
        query: &AnnounceQuery,
        session: [u8; 20],
        client: [u8; 16],
        max_pending: usize,
    ) -> bool {
        let now_unix = unix_now();
        let started = query.event == Some(AnnounceEvent::Started);
        let report = SessionReport {
            release: account.release,
            publisher: account.publisher,
            session,
            client,
            restarted: started,
            started_unix: if started { now_unix } else { 0 },
            baseline: Reported {
                uploaded: query.uploaded,
                downloaded: query.downloaded,
                origin: query.origin_bytes.unwrap_or(0),
                at_unix: now_unix,
                completed: query.event == Some(AnnounceEvent::Completed),
            },
            uploaded: query.uploaded,
            downloaded: query.downloaded,
            origin: query.origin_bytes,
            completed: false,
            at_unix: now_unix,
        };
        let mut pending = self.pending();
        if pending.len() >= max_pending.saturating_mul(2) {
            return false;
        }
        pending.record(report);
        if pending.len() >= max_pending {
            self.flush_now.notify_one();
        }
        true
    }

    /// Writes the window as one batch. On failure the reports go back into
    /// the window for the next try.
    pub(crate) async fn flush(&self, metrics: &Metrics, ceilings: Ceilings) {
        let reports = self.pending().take();
        if reports.is_empty() {
            return;
        }
        let count = reports.len();
        let result = self
            .with_db(move |db| {
                db.apply_batch(&reports, &ceilings)
                    .map_err(|e| (e, reports))
            })
            .await;
        match result {
            Ok(outcome) => {
                Metrics::add(&metrics.batches, 1);
                Metrics::add(&metrics.batch_sessions, count as u64);
                Metrics::add(&metrics.flagged_bytes, outcome.added.flagged_bytes);
                Metrics::add(&metrics.completions_refused, outcome.completions_refused);
                tracing::debug!(sessions = count, "accounting batch written");
            }
            Err((error, reports)) => {
                Metrics::add(&metrics.batch_errors, 1);
                tracing::error!(%error, sessions = count, "accounting batch not written; retrying with the next one");
                let mut pending = self.pending();
                for report in reports {
                    pending.restore(report);
                }
            }
        }
    }

    /// Deletes per-session totals and per-day peer lists older than the
    /// retention (the per-day usage rows keep their peer counts).
    async fn prune(&self, metrics: &Metrics, retention_days: u32) {
        let before_unix = unix_now().saturating_sub(i64::from(retention_days) * 86_400);
        match self.with_db(move |db| db.prune(before_unix)).await {
            Ok(pruned) => tracing::debug!(pruned, "old accounting rows pruned"),
            Err(error) => {
                Metrics::add(&metrics.batch_errors, 1);
                tracing::warn!(%error, "pruning old accounting rows failed; retrying later");
            }
        }
    }

    /// Exchanges peers with the other instances and reloads the releases
    /// they may have registered or withdrawn.
    async fn sync(&self, state: &AppState, since_ms: i64) -> Result<i64, StoreError> {
        let now_ms = unix_now_ms();
        let (ours, stopped) = {
            let mut peers = state.store();
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
        let instance = self.instance.clone();
        let expiry_ms = i64::try_from(state.settings.peer_expiry().as_millis()).unwrap_or(i64::MAX);
        let undelivered = stopped.clone();
        let exchanged = self
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
                state.store().restore_stopped(undelivered);
                return Err(error);
            }
        };
        self.registry.load(&releases);
        let now = Instant::now();
        let mut peers = state.store();
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
            match control.sync(&state, since_ms).await {
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
