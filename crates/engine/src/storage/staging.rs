//! The staging folder of a download, and the final move out of it.
//!
//! ```text
//! out_dir/
//!   .NAME.1a2b3c4d.shoal-partial/   hidden; NAME cut to 200 bytes, then 8 hex
//!     resume                        digits of the info-hash so two releases
//!     data/NAME                     of one name never share a folder
//!   NAME                            appears only by `finish`'s rename
//! ```
//!
//! Data sits under `data/` so the release root (`NAME`, a file or a folder)
//! moves into place with one rename, whatever its name, and so the resume
//! file can never collide with a file of the release.

use std::path::{Path, PathBuf};

use meta::Torrent;

use super::error::StorageError;
use super::files::{self, Access, OpenFiles};
use super::platform;
use super::resume::{self, LoadedResume, ResumeState, ResumeWarning};
use super::seed;

#[derive(Debug, Clone)]
pub(crate) struct Staging {
    pub(crate) out_dir: PathBuf,
    pub(crate) dir: PathBuf,
    /// Holds the release root `NAME`.
    pub(crate) data: PathBuf,
    pub(crate) resume: PathBuf,
    /// `out_dir/NAME`.
    pub(crate) final_path: PathBuf,
}

/// Longest part of the release name kept in the staging folder's name,
/// leaving room for the rest under the usual 255-byte limit.
const NAME_BYTES: usize = 200;

/// The hidden folder in `out_dir` where a download of `torrent` is staged
/// until it completes, `.NAME.TAG.shoal-partial`. Public so that whoever
/// deletes a release's data (the agent) finds the folder by the engine's
/// own rule instead of repeating it.
pub fn staging_dir(torrent: &Torrent, out_dir: &Path) -> PathBuf {
    let mut cut = torrent.name.len().min(NAME_BYTES);
    while !torrent.name.is_char_boundary(cut) {
        cut -= 1;
    }
    let tag: String = resume::info_hash_of(torrent)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    out_dir.join(format!(".{}.{tag}.shoal-partial", &torrent.name[..cut]))
}

impl Staging {
    pub(crate) fn new(torrent: &Torrent, out_dir: &Path) -> Staging {
        let dir = staging_dir(torrent, out_dir);
        Staging {
            out_dir: out_dir.to_path_buf(),
            data: dir.join("data"),
            resume: dir.join("resume"),
            final_path: out_dir.join(&torrent.name),
            dir,
        }
    }

    pub(super) fn staged_root(&self, torrent: &Torrent) -> PathBuf {
        self.data.join(&torrent.name)
    }

    /// Creates the staging folder and loads saved progress, dropping any
    /// piece whose staged file is gone or resized (the folder was tampered
    /// with, or a crash lost a file the state claims).
    pub(crate) fn prepare(&self, torrent: &Torrent) -> Result<LoadedResume, StorageError> {
        if std::fs::symlink_metadata(&self.final_path).is_ok() {
            self.remove_leftovers(torrent);
            return Err(StorageError::AlreadyExists {
                path: self.final_path.clone(),
            });
        }
        std::fs::create_dir_all(&self.data)
            .map_err(|e| StorageError::io(&self.data, "create folder", e))?;
        for dir in [&self.out_dir, &self.dir] {
            platform::sync_dir(dir).map_err(|e| StorageError::io(dir, "sync folder", e))?;
        }
        resume::remove_stale_temps(&self.resume);
        resume::reserve_space(&self.resume);
        let mut loaded = ResumeState::load(&self.resume, torrent)?;
        for (index, entry) in torrent.files.iter().enumerate() {
            let pieces = seed::pieces_of_file(torrent, index);
            if !pieces.clone().any(|p| loaded.state.is_verified(p)) {
                continue;
            }
            let path = files::file_path(torrent, &self.data, index);
            let intact = std::fs::metadata(&path).is_ok_and(|m| m.len() == entry.length);
            if !intact {
                pieces.for_each(|p| loaded.state.mark_unverified(p));
                loaded
                    .warning
                    .get_or_insert(ResumeWarning::DataMissing { path });
            }
        }
        Ok(loaded)
    }

    /// After a crash between the final rename and the clean-up, the release
    /// is in place and the staging folder holds only our bookkeeping.
    fn remove_leftovers(&self, torrent: &Torrent) {
        if self.dir.exists() && !self.staged_root(torrent).exists() {
            self.clean_up();
        }
    }

    /// Removes the staging folder's known contents; never anything else, so
    /// a stray file keeps the folder (and a warning says so).
    pub(super) fn clean_up(&self) {
        resume::remove_stale_temps(&self.resume);
        resume::remove_reserve(&self.resume);
        let report = |path: &Path, result: std::io::Result<()>| match result {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), error = %e, "could not clean up");
            }
            _ => {}
        };
        report(&self.resume, std::fs::remove_file(&self.resume));
        report(&self.data, std::fs::remove_dir(&self.data));
        report(&self.dir, std::fs::remove_dir(&self.dir));
        if let Err(e) = platform::sync_dir(&self.out_dir) {
            tracing::warn!(path = %self.out_dir.display(), error = %e, "could not sync folder");
        }
    }

    /// Syncs the staged download and renames its root to
    /// `out_dir/NAME`, never over an existing file; `files` then reads
    /// from the final place.
    pub(super) fn move_into_place(
        &self,
        staged: &Path,
        torrent: &Torrent,
        files: &OpenFiles,
    ) -> Result<(), StorageError> {
        // Files no block was written to (empty ones) must exist too.
        for (index, entry) in torrent.files.iter().enumerate() {
            if !entry.pad {
                files.get(torrent, index, Access::Write)?;
            }
        }
        files.sync(torrent)?;
        if std::fs::symlink_metadata(&self.final_path).is_ok() {
            // Appeared since the download started: still never overwrite it.
            return Err(StorageError::AlreadyExists {
                path: self.final_path.clone(),
            });
        }
        // Close every handle (Windows cannot rename a folder holding open
        // files) and point reads at the final place: a read racing the
        // rename then fails as missing rather than reading as zeros.
        files.relocate(self.out_dir.clone(), false);
        if let Err(e) = std::fs::rename(staged, &self.final_path) {
            files.relocate(self.data.clone(), true);
            return Err(StorageError::io(&self.final_path, "move into place", e));
        }
        platform::sync_dir(&self.out_dir)
            .map_err(|e| StorageError::io(&self.out_dir, "sync folder", e))
    }
}
