//! One release in the agent: its record, its torrent, its live status,
//! and the helpers around it (the API's view of it, deleting its data).
//!
//! A release has two locks of its own. `live` (a std mutex) guards its
//! record and running torrent; it is held to read or swap them, never
//! across an await. `lifecycle` (an async mutex) orders what starts and
//! stops it (pause, resume, removal, a seeding change, shutdown): it is
//! held across this release's own stop or start, which the next of those
//! must wait for anyway, and no other release ever waits on it.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use engine::{EngineError, Progress};
use meta::Torrent;
use serde::Serialize;

use crate::runner::{lock, Phase, Running, SharedStatus, Status};
use crate::state::ReleaseRecord;
use crate::AgentError;

#[derive(Debug)]
pub struct Release {
    /// Its key in the registry, `record.info_hash`.
    pub id: String,
    pub torrent: Arc<Torrent>,
    pub status: SharedStatus,
    live: Mutex<Live>,
    pub lifecycle: Arc<tokio::sync::Mutex<()>>,
}

/// What changes as a release is paused, resumed, pinned or used.
#[derive(Debug)]
pub struct Live {
    pub record: ReleaseRecord,
    pub running: Option<Running>,
}

impl Release {
    /// Its record and running torrent; lock order: the registry, then
    /// this, then the status.
    pub fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A release as `GET /v1/releases` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseView {
    pub info_hash: String,
    pub name: String,
    pub state: Phase,
    pub verified_bytes: u64,
    pub total_bytes: u64,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub bytes_from_peers: u64,
    pub bytes_from_origin: u64,
    pub uploaded: u64,
    pub peers: usize,
    pub pinned: bool,
    /// Came from a web page's hand-off (a copy kept for sharing, which the
    /// disk quota may remove), not from the customer.
    pub handed_off: bool,
    pub added_at: u64,
    pub last_used_at: u64,
    pub error: Option<String>,
}

pub fn new_release(record: ReleaseRecord, torrent: Arc<Torrent>) -> Release {
    let progress = Progress {
        total_bytes: torrent.total_size(),
        verified_bytes: if record.completed {
            torrent.total_size()
        } else {
            0
        },
        ..Progress::default()
    };
    let status = Status {
        phase: if record.completed {
            Phase::Complete
        } else {
            Phase::Paused
        },
        progress,
        completed: record.completed,
        error: None,
    };
    Release {
        id: record.info_hash.clone(),
        torrent,
        status: Arc::new(Mutex::new(status)),
        live: Mutex::new(Live {
            record,
            running: None,
        }),
        lifecycle: Arc::default(),
    }
}

pub fn view(release: &Release) -> ReleaseView {
    let live = release.live();
    let record = &live.record;
    let status = lock(&release.status);
    let p = &status.progress;
    ReleaseView {
        info_hash: record.info_hash.clone(),
        name: record.name.clone(),
        state: if record.paused {
            Phase::Paused
        } else {
            status.phase
        },
        verified_bytes: p.verified_bytes,
        total_bytes: p.total_bytes,
        download_rate: p.download_rate,
        upload_rate: p.upload_rate,
        bytes_from_peers: p.bytes_from_peers,
        bytes_from_origin: p.bytes_from_origin,
        uploaded: p.uploaded,
        peers: p.peers,
        pinned: record.pinned,
        handed_off: record.handed_off,
        added_at: record.added_at,
        last_used_at: record.last_used_at,
        error: status.error.clone(),
    }
}

/// A stopped torrent leaves the engine a moment after its last event;
/// starting it again in that window finds it "already running".
pub async fn retry_while_stopping<F, Fut>(
    mut start: F,
) -> Result<engine::TorrentHandle, EngineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<engine::TorrentHandle, EngineError>>,
{
    for _ in 0..50 {
        match start().await {
            Err(EngineError::AlreadyRunning) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            other => return other,
        }
    }
    start().await
}

/// Deletes `out_dir/NAME` and the engine's staging folder for it (named
/// by the engine, see [`engine::storage::staging_dir`]). Nothing else in
/// `out_dir` is touched. Blocking: call it off the async threads.
pub fn delete_data(out_dir: &Path, torrent: &Torrent) -> Result<(), AgentError> {
    let final_path = out_dir.join(&torrent.name);
    if final_path.is_dir() {
        std::fs::remove_dir_all(&final_path).map_err(|e| io_error(&final_path, e))?;
    } else if final_path.exists() {
        std::fs::remove_file(&final_path).map_err(|e| io_error(&final_path, e))?;
    }
    let staging = engine::storage::staging_dir(torrent, out_dir);
    if staging.is_dir() {
        std::fs::remove_dir_all(&staging).map_err(|e| io_error(&staging, e))?;
    }
    Ok(())
}

pub fn io_error(path: &Path, source: std::io::Error) -> AgentError {
    AgentError::State(crate::state::StateError::Io {
        path: path.to_owned(),
        action: "write",
        source,
    })
}
