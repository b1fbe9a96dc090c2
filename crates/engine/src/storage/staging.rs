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

use super::files::Access;
use super::{lock, platform, PieceStore, StorageError};
use crate::resume::{self, LoadedResume, ResumeState, ResumeWarning};

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

    fn staged_root(&self, torrent: &Torrent) -> PathBuf {
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
            let pieces = super::seed::pieces_of_file(torrent, index);
            if !pieces.clone().any(|p| loaded.state.is_verified(p)) {
                continue;
            }
            let path = super::files::file_path(torrent, &self.data, index);
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
    fn clean_up(&self) {
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
}

impl PieceStore {
    /// Moves a completely verified download into place: syncs it, renames
    /// the staged root to `out_dir/NAME`, removes the staging folder, and
    /// from then on serves the pieces from the final place (as a seed,
    /// watching for changes). Returns the final path. Calling it again, or
    /// after a crash half-way, completes what is left.
    pub fn finish(&self, state: &ResumeState) -> Result<PathBuf, StorageError> {
        let Some(staging) = &self.staging else {
            // A seed is already in place.
            return Ok(self.files.base().join(&self.torrent.name));
        };
        let mut finished = lock(&self.finished);
        if *finished {
            return Ok(staging.final_path.clone());
        }
        if state.piece_count() != self.layout.piece_count() || !state.is_complete() {
            return Err(StorageError::Incomplete {
                path: staging.final_path.clone(),
                missing: state.piece_count() - state.verified_count(),
            });
        }
        let staged = staging.staged_root(&self.torrent);
        if std::fs::symlink_metadata(&staged).is_ok() {
            self.move_into_place(staging, &staged)?;
        } else if std::fs::symlink_metadata(&staging.final_path).is_err() {
            return Err(StorageError::MissingFile { path: staged });
        }
        staging.clean_up();
        *finished = true;
        // Our own verified bytes, now the customer's files: guard them.
        self.files.relocate(staging.out_dir.clone(), false);
        let stamps = self.stat_all(false)?;
        self.seed.activate(stamps, true);
        Ok(staging.final_path.clone())
    }

    fn move_into_place(&self, staging: &Staging, staged: &Path) -> Result<(), StorageError> {
        // Files no block was written to (empty ones) must exist too.
        for (index, entry) in self.torrent.files.iter().enumerate() {
            if !entry.pad {
                self.files.get(&self.torrent, index, Access::Write)?;
            }
        }
        self.sync()?;
        if std::fs::symlink_metadata(&staging.final_path).is_ok() {
            // Appeared since the download started: still never overwrite it.
            return Err(StorageError::AlreadyExists {
                path: staging.final_path.clone(),
            });
        }
        // Close every handle (Windows cannot rename a folder holding open
        // files) and point reads at the final place: a read racing the
        // rename then fails as missing rather than reading as zeros.
        self.files.relocate(staging.out_dir.clone(), false);
        if let Err(e) = std::fs::rename(staged, &staging.final_path) {
            self.files.relocate(staging.data.clone(), true);
            return Err(StorageError::io(&staging.final_path, "move into place", e));
        }
        platform::sync_dir(&staging.out_dir)
            .map_err(|e| StorageError::io(&staging.out_dir, "sync folder", e))
    }
}
