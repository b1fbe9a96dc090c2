//! Why a session's work failed, sorted by who is at fault: the disk or the
//! user's files (a full disk, a removed file: fix and resume), or shoal
//! itself (a disk task that panicked: a bug to report). A peer's faults
//! never stop a session; they close that peer's connection (see
//! `connection::ConnectError` and `swarm::ProtocolViolation`).

use crate::storage::StorageError;

/// Why disk work (a hash check's write, a read for an upload, a resume
/// save, the final move) failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DiskError {
    /// The disk or the files: the text names the file and the fix.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The task doing the work panicked or was cancelled: a bug in shoal.
    #[error("internal error in disk work: {0}")]
    Task(String),
}

/// Runs disk work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, DiskError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(DiskError::from),
        Err(e) => Err(DiskError::Task(e.to_string())),
    }
}
