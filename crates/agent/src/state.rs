//! The agent's state folder: a small JSON file listing the releases it
//! runs and the caps chosen through the API, next to a copy of each
//! release's torrent. Written atomically (temp file, fsync, rename) so a
//! crash leaves either the old list or the new one, never half of one.
//! Download progress itself lives in the engine's resume data.
//!
//! The folder holds the customer's download history and the API token, so
//! it is made owner-only and so is every file in it (0700 and 0600 on
//! Unix, a protected one-entry ACL on Windows: `engine::owner_only`);
//! other local accounts see nothing.

use std::io::Read;
use std::path::{Path, PathBuf};

use engine::atomic_file::FileAccess;
use engine::owner_only;
use serde::{Deserialize, Serialize};

/// Longest state file we read: a record is a few hundred bytes.
const MAX_STATE_BYTES: u64 = 16 * 1024 * 1024;
const STATE_FILE: &str = "releases.json";

/// One release the agent holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// Hex info-hash: v2 when the torrent has one, else v1.
    pub info_hash: String,
    pub name: String,
    /// The torrent's copy in the state folder.
    pub torrent_file: PathBuf,
    /// Where the release is downloaded to (it lands at `out_dir/NAME`).
    pub out_dir: PathBuf,
    pub paused: bool,
    /// Every piece verified and the release in its final place.
    pub completed: bool,
    /// Kept when the disk quota needs room (see `quota.rs`).
    pub pinned: bool,
    /// Came from a web page's hand-off, not from the customer: a copy
    /// kept for sharing (the browser saved the customer's own), which the
    /// quota may remove. Records of older versions are the customer's.
    #[serde(default)]
    pub handed_off: bool,
    /// Its trackers and web seeds may be reached at public addresses
    /// only (a hand-off from a page on a public origin).
    #[serde(default)]
    pub public_remotes_only: bool,
    /// Unix seconds.
    pub added_at: u64,
    pub last_used_at: u64,
}

/// Caps and seeding chosen at run time through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeCaps {
    pub max_upload_bps: u64,
    pub max_download_bps: u64,
    pub seeding: bool,
    /// Bytes of complete, unpinned releases kept for sharing; 0 = no limit.
    #[serde(default)]
    pub shared_quota_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    pub releases: Vec<ReleaseRecord>,
    pub caps: Option<RuntimeCaps>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({reason}); move it away to start with no releases")]
    Damaged { path: PathBuf, reason: String },
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        path: path.to_owned(),
        action,
        source,
    }
}

impl StateFile {
    /// Loads the state in `dir`; none yet means an empty one.
    pub fn load(dir: &Path) -> Result<StateFile, StateError> {
        let path = dir.join(STATE_FILE);
        let file = match std::fs::File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::default()),
            other => other.map_err(io(&path, "open"))?,
        };
        let mut bytes = Vec::new();
        file.take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io(&path, "read"))?;
        if bytes.len() as u64 > MAX_STATE_BYTES {
            return Err(StateError::Damaged {
                path,
                reason: format!("larger than {MAX_STATE_BYTES} bytes"),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| StateError::Damaged {
            path,
            reason: e.to_string(),
        })
    }

    /// Saves the state in `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| StateError::Damaged {
            path: dir.join(STATE_FILE),
            reason: e.to_string(),
        })?;
        write_atomically(&dir.join(STATE_FILE), &bytes)
    }
}

/// Writes `bytes` to `path`, owner-only, atomically and durably (file and
/// folder fsynced), so readers see the old file or the new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    engine::atomic_file::write_atomically(path, bytes, FileAccess::OwnerOnly).map_err(|e| {
        StateError::Io {
            path: e.path,
            action: e.action,
            source: e.source,
        }
    })
}

/// Creates `dir` (and its parents) if needed and makes it owner-only.
pub fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    std::fs::create_dir_all(dir).map_err(io(dir, "create"))?;
    owner_only::restrict(dir).map_err(io(dir, "restrict the permissions of"))
}

/// Makes a file written by an earlier version owner-only; none is fine.
pub fn restrict_file(path: &Path) -> Result<(), StateError> {
    match owner_only::restrict(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io(path, "restrict the permissions of")(e))
        }
        _ => Ok(()),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StateFile::load(dir.path()).unwrap(), StateFile::default());
        let state = StateFile {
            releases: vec![ReleaseRecord {
                info_hash: "ab".repeat(32),
                name: "tool.bin".into(),
                torrent_file: dir.path().join("t.torrent"),
                out_dir: dir.path().join("out"),
                paused: true,
                completed: false,
                pinned: false,
                handed_off: true,
                public_remotes_only: true,
                added_at: 1,
                last_used_at: 2,
            }],
            caps: Some(RuntimeCaps {
                max_upload_bps: 5,
                max_download_bps: 6,
                seeding: false,
                shared_quota_bytes: 7,
            }),
        };
        state.save(dir.path()).unwrap();
        assert_eq!(StateFile::load(dir.path()).unwrap(), state);
        assert!(!dir.path().join("releases.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(STATE_FILE)).unwrap();
            assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_damaged_file_is_reported_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
        let error = StateFile::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("releases.json"), "{error}");
    }
}
