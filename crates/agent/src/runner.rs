//! One task per running release: it owns the engine's handle, turns the
//! torrent's events into a status the API can read at any time, and stops
//! the torrent when asked (the engine then saves its resume data).

use std::sync::{Arc, Mutex, PoisonError};

use engine::{PieceReader, Progress, TorrentEvent, TorrentHandle};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Where a release stands, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Downloading,
    Seeding,
    Paused,
    Complete,
    Error,
}

/// What the runner last learned of its release.
#[derive(Debug, Clone)]
pub struct Status {
    pub phase: Phase,
    pub progress: Progress,
    /// Set once every piece is verified and the release is in place.
    pub completed: bool,
    pub error: Option<String>,
}

pub type SharedStatus = Arc<Mutex<Status>>;

pub fn lock(status: &SharedStatus) -> std::sync::MutexGuard<'_, Status> {
    status.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running release: a way to stop it and its task.
#[derive(Debug)]
pub struct Running {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
    reader: PieceReader,
}

/// How long a torrent may take to say goodbye to its trackers and save.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

impl Running {
    /// Follows `handle`, updating `status`; `on_complete` runs once when the
    /// release completes (to persist that fact).
    pub fn spawn(
        mut handle: TorrentHandle,
        status: SharedStatus,
        on_complete: impl FnOnce() + Send + 'static,
    ) -> Running {
        let stop = Arc::new(Notify::new());
        let stop_requested = stop.clone();
        let reader = handle.reader();
        let task = tokio::spawn(async move {
            let mut on_complete = Some(on_complete);
            let mut stopping = false;
            loop {
                tokio::select! {
                    event = handle.next_event() => match event {
                        Some(event) => {
                            if apply(&status, event) {
                                if let Some(done) = on_complete.take() {
                                    done();
                                }
                            }
                        }
                        None => break,
                    },
                    _ = stop_requested.notified(), if !stopping => {
                        stopping = true;
                        handle.stop().await;
                    }
                }
            }
            let mut status = lock(&status);
            if status.phase != Phase::Error {
                status.phase = if status.completed {
                    Phase::Complete
                } else {
                    Phase::Paused
                };
            }
            status.progress.download_rate = 0;
            status.progress.upload_rate = 0;
        });
        Running { stop, task, reader }
    }

    /// Reads the release's verified bytes, for streaming.
    pub fn reader(&self) -> PieceReader {
        self.reader.clone()
    }

    /// Stops the torrent and waits (bounded) for it to save its progress.
    pub async fn stop(self) {
        self.stop.notify_one();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(STOP_GRACE, self.task).await.is_err() {
            tracing::warn!("a torrent did not stop within {STOP_GRACE:?}; abandoning it");
            abort.abort();
        }
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Records `event` in `status`; true when it says the release completed.
fn apply(status: &SharedStatus, event: TorrentEvent) -> bool {
    let mut status = lock(status);
    match event {
        TorrentEvent::Checking { checked_bytes, .. } => {
            status.progress.verified_bytes = checked_bytes;
            false
        }
        TorrentEvent::Progress(progress) => {
            status.progress = progress;
            if !status.completed {
                status.phase = Phase::Downloading;
            }
            false
        }
        TorrentEvent::Completed { progress, .. } => {
            status.progress = progress;
            status.completed = true;
            status.phase = Phase::Seeding;
            true
        }
        TorrentEvent::Warning(message) => {
            tracing::warn!("{message}");
            false
        }
        TorrentEvent::Stopped { error, progress } => {
            status.progress = progress;
            if let Some(error) = error {
                status.phase = Phase::Error;
                status.error = Some(error);
            }
            false
        }
    }
}
