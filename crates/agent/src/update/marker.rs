//! What the updater keeps in the state folder's `update/` folder between
//! runs: the update under way (`pending.json`, written before the swap
//! and removed once the new build is healthy or rolled back) and the
//! builds that failed (`failed.json`), so one is not tried again until
//! the feed offers another.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{disk, UpdateError};
use crate::state::{create_private_dir, write_atomically};

/// How long a new build has, from its start, to answer its own API
/// before it is rolled back.
pub const HEALTH_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The updater's folder inside the state folder.
pub const UPDATE_DIR: &str = "update";
const PENDING_FILE: &str = "pending.json";
const FAILED_FILE: &str = "failed.json";
/// Both files are a few hundred bytes.
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Failed builds remembered; the oldest are forgotten first.
const MAX_FAILED: usize = 16;

pub fn update_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(UPDATE_DIR)
}

/// Where the updater downloads builds (as releases of the agent's).
pub fn downloads_dir(state_dir: &Path) -> PathBuf {
    update_dir(state_dir).join("downloads")
}

/// An update swapped in and not yet known to be healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpdate {
    pub from_version: String,
    pub to_version: String,
    /// The new build's release id.
    pub release_id: String,
    /// The agent's binary, now the new build.
    pub exe: PathBuf,
    /// The previous build, beside it.
    pub backup: PathBuf,
    /// Times the new build started without committing: a second start
    /// means the first one died before it was healthy.
    pub starts: u32,
    /// Why the new build was rolled back, set just before the old build
    /// is restored and started: the old build reads it and reports it.
    #[serde(default)]
    pub failure: Option<String>,
}

/// A build that failed its trial or its first run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedBuild {
    pub release_id: String,
    pub version: String,
    pub reason: String,
}

fn read_small<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let file = std::fs::File::open(path).ok()?;
    let mut text = Vec::new();
    file.take(MAX_FILE_BYTES).read_to_end(&mut text).ok()?;
    match serde_json::from_slice(&text) {
        Ok(value) => Some(value),
        Err(e) => {
            // Only the updater writes it: a damaged one is dropped.
            tracing::warn!("ignoring the damaged {}: {e}", path.display());
            None
        }
    }
}

fn write<T: Serialize>(state_dir: &Path, name: &str, value: &T) -> Result<(), UpdateError> {
    let dir = update_dir(state_dir);
    create_private_dir(&dir).map_err(|e| UpdateError::Internal(e.to_string()))?;
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|e| UpdateError::Internal(e.to_string()))?;
    let path = dir.join(name);
    write_atomically(&path, &bytes).map_err(|e| UpdateError::Disk {
        path: path.display().to_string(),
        action: "write",
        source: std::io::Error::other(e.to_string()),
    })
}

pub fn load_pending(state_dir: &Path) -> Option<PendingUpdate> {
    read_small(&update_dir(state_dir).join(PENDING_FILE))
}

pub fn save_pending(state_dir: &Path, pending: &PendingUpdate) -> Result<(), UpdateError> {
    write(state_dir, PENDING_FILE, pending)
}

pub fn clear_pending(state_dir: &Path) -> Result<(), UpdateError> {
    let path = update_dir(state_dir).join(PENDING_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(disk(&path, "remove")(e)),
        _ => Ok(()),
    }
}

pub fn load_failed(state_dir: &Path) -> Vec<FailedBuild> {
    read_small(&update_dir(state_dir).join(FAILED_FILE)).unwrap_or_default()
}

pub fn remember_failed(state_dir: &Path, build: FailedBuild) -> Result<(), UpdateError> {
    let mut failed = load_failed(state_dir);
    failed.retain(|f| f.release_id != build.release_id);
    failed.push(build);
    let excess = failed.len().saturating_sub(MAX_FAILED);
    failed.drain(..excess);
    write(state_dir, FAILED_FILE, &failed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn failed_builds_are_remembered_boundedly_and_pending_ones_cleared() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..20 {
            let build = FailedBuild {
                release_id: format!("id{i}"),
                version: "1.0.1".into(),
                reason: "exited".into(),
            };
            remember_failed(dir.path(), build).unwrap();
        }
        let failed = load_failed(dir.path());
        assert_eq!(failed.len(), MAX_FAILED);
        assert_eq!(failed[0].release_id, "id4");
        let pending = PendingUpdate {
            from_version: "1.0.0".into(),
            to_version: "1.0.1".into(),
            release_id: "id".into(),
            exe: "shoal".into(),
            backup: "shoal.previous".into(),
            starts: 0,
            failure: None,
        };
        save_pending(dir.path(), &pending).unwrap();
        assert_eq!(load_pending(dir.path()), Some(pending));
        clear_pending(dir.path()).unwrap();
        clear_pending(dir.path()).unwrap();
        assert_eq!(load_pending(dir.path()), None);
        std::fs::write(update_dir(dir.path()).join(PENDING_FILE), b"{").unwrap();
        assert_eq!(load_pending(dir.path()), None);
    }
}
