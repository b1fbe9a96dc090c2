//! The control plane next to the peer store, present when the tracker has
//! a database: the release registry, the accounting window and the
//! database handle. `background` drives it: batches, pruning and (with
//! PostgreSQL) the exchange of peers and releases with other instances.
//!
//! Nothing here runs on the announce path except [`Control::record`],
//! which merges a report into memory. A crash loses at most the reports
//! of the current batch window (`TrackerSettings::batch_secs`, 5 s by
//! default); a clean shutdown writes it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::accounting::{PendingReports, Reported, SessionReport};
use crate::admission::Account;
use crate::announce_query::{AnnounceEvent, AnnounceQuery};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{Ceilings, Store, StoreError};

pub(crate) struct Control {
    db: Arc<Mutex<Box<dyn Store>>>,
    pub(crate) registry: Arc<Registry>,
    pending: Mutex<PendingReports>,
    /// Wakes the loop early when the window is full.
    pub(crate) flush_now: Notify,
    /// This instance's name in the shared peer table.
    pub(crate) instance: String,
    /// Whether the database shares peers between instances (PostgreSQL).
    pub(crate) shares_peers: bool,
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn unix_now_ms() -> i64 {
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
    pub(crate) async fn prune(&self, metrics: &Metrics, retention_days: u32) {
        let before_unix = unix_now().saturating_sub(i64::from(retention_days) * 86_400);
        match self.with_db(move |db| db.prune(before_unix)).await {
            Ok(pruned) => tracing::debug!(pruned, "old accounting rows pruned"),
            Err(error) => {
                Metrics::add(&metrics.batch_errors, 1);
                tracing::warn!(%error, "pruning old accounting rows failed; retrying later");
            }
        }
    }
}
