//! Where a release's bytes live on disk: [`PieceStore`] writes and reads
//! pieces through [`meta::layout::Layout`], so pad bytes are never stored
//! and read back as zeros.
//!
//! A download is staged out of sight: nothing appears under the release's
//! final name until every piece is verified; then one rename in the same
//! folder puts it there (see `staging.rs`). A seed serves the customer's
//! existing files, verified once on open and watched for changes on every
//! read (see `seed.rs`).
//!
//! The code is synchronous std::fs; the async engine calls it through
//! `spawn_blocking`. Every method takes `&self`, so one store is shared by
//! all tasks of a torrent in an `Arc`.

mod error;
mod files;
mod lock;
mod platform;
pub mod resume;
mod seed;
mod staging;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use meta::layout::{check_piece_with, FileSpan, Layout, PieceHashes, PieceVerdict};
use meta::Torrent;

pub use error::StorageError;
pub use files::file_path;
pub(crate) use platform::sync_dir;
pub use staging::staging_dir;

use files::{Access, OpenFiles};
use lock::lock;
use resume::{LoadedResume, ResumeState};
use seed::{SeedGuard, Stamp};
use staging::Staging;

/// The pieces of one release on disk.
#[derive(Debug)]
pub struct PieceStore {
    torrent: Arc<Torrent>,
    layout: Layout,
    /// `None` when seeding a customer's files.
    staging: Option<Staging>,
    files: OpenFiles,
    seed: SeedGuard,
    /// Which hashes every piece check uses (the torrent's publisher decides).
    hashes: PieceHashes,
    /// Set once `finish` has moved the data into place; held by resume
    /// saves too, so none lands in a staging folder being removed.
    finished: Mutex<bool>,
}

impl PieceStore {
    /// Opens (or resumes) a download of `torrent` into `out_dir`. Data goes
    /// to a hidden staging folder in `out_dir` until [`PieceStore::finish`].
    /// Fails with [`StorageError::AlreadyExists`] if `out_dir/NAME` exists.
    pub fn open_download(
        torrent: Arc<Torrent>,
        out_dir: &Path,
    ) -> Result<(PieceStore, LoadedResume), StorageError> {
        PieceStore::open_download_with(torrent, out_dir, PieceHashes::All)
    }

    /// [`PieceStore::open_download`], checking pieces against `hashes`.
    pub fn open_download_with(
        torrent: Arc<Torrent>,
        out_dir: &Path,
        hashes: PieceHashes,
    ) -> Result<(PieceStore, LoadedResume), StorageError> {
        let staging = Staging::new(&torrent, out_dir);
        let loaded = staging.prepare(&torrent)?;
        let store = PieceStore::new(torrent, Some(staging.clone()), staging.data, true, hashes);
        Ok((store, loaded))
    }

    /// Opens the complete release at `data_dir/NAME` for seeding and
    /// verifies every piece, on all cores; `progress` hears of the data
    /// bytes checked as it goes (they add up to `Torrent::total_size`).
    /// Returns which pieces are valid.
    pub fn open_seed(
        torrent: Arc<Torrent>,
        data_dir: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(PieceStore, Vec<bool>), StorageError> {
        PieceStore::open_seed_with(torrent, data_dir, PieceHashes::All, progress)
    }

    /// [`PieceStore::open_seed`], checking pieces against `hashes`.
    pub fn open_seed_with(
        torrent: Arc<Torrent>,
        data_dir: &Path,
        hashes: PieceHashes,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(PieceStore, Vec<bool>), StorageError> {
        let store = PieceStore::new(torrent, None, data_dir.to_path_buf(), false, hashes);
        let root = data_dir.join(&store.torrent.name);
        if let Err(e) = std::fs::symlink_metadata(&root) {
            return Err(StorageError::io_missing(&root, "open", e));
        }
        let stamps = store.stat_all(true)?;
        store.seed.activate(stamps, false);
        let valid = verify::verify_all(&store.layout, |piece| store.check_piece(piece), progress)?;
        Ok((store, valid))
    }

    fn new(
        torrent: Arc<Torrent>,
        staging: Option<Staging>,
        base: PathBuf,
        writable: bool,
        hashes: PieceHashes,
    ) -> PieceStore {
        let layout = Layout::new(&torrent);
        let seed = SeedGuard::new(&torrent, layout.piece_count());
        PieceStore {
            files: OpenFiles::new(base, writable, files::DEFAULT_MAX_OPEN),
            staging,
            seed,
            layout,
            torrent,
            hashes,
            finished: Mutex::new(false),
        }
    }

    pub fn torrent(&self) -> &Arc<Torrent> {
        &self.torrent
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where download progress is saved; `None` for a seed.
    pub fn resume_path(&self) -> Option<&Path> {
        self.staging.as_ref().map(|s| s.resume.as_path())
    }

    /// Where file `index` of the torrent is stored right now.
    pub fn file_path(&self, index: usize) -> PathBuf {
        self.files.path(&self.torrent, index)
    }

    /// Writes a block received for `piece` at `offset`. Only the parts in
    /// data files are stored; pad bytes are dropped.
    pub fn write_block(&self, piece: u32, offset: u32, data: &[u8]) -> Result<(), StorageError> {
        let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
        for (span, range) in self.block_spans(piece, offset, length)? {
            let Some(file) = self.files.get(&self.torrent, span.file, Access::Write)? else {
                continue;
            };
            let at = span.file_offset + u64::from(range.start - span.piece_offset);
            let bytes = &data[(range.start - offset) as usize..(range.end - offset) as usize];
            platform::write_all_at(&file, bytes, at)
                .map_err(|e| StorageError::io(&self.file_path(span.file), "write", e))?;
            self.files.mark_dirty(span.file);
        }
        Ok(())
    }

    /// Reads a block of `piece`, pad bytes as zeros. While seeding, a piece
    /// whose files changed since it was verified is verified again first,
    /// and [`StorageError::PieceChanged`] returned if it no longer matches.
    pub fn read_block(
        &self,
        piece: u32,
        offset: u32,
        length: u32,
    ) -> Result<Vec<u8>, StorageError> {
        self.read_block_into(piece, offset, length, Vec::new())
    }

    /// [`PieceStore::read_block`] into `buffer`, a spare one from an
    /// earlier read: it is overwritten, not zeroed first, and a seed that
    /// reads piece after piece does not ask the allocator (and the kernel,
    /// page by page) for fresh memory each time.
    pub fn read_block_into(
        &self,
        piece: u32,
        offset: u32,
        length: u32,
        mut buffer: Vec<u8>,
    ) -> Result<Vec<u8>, StorageError> {
        let spans = self.block_spans(piece, offset, length)?;
        if !self.seed.is_active() {
            self.read_spans(&spans, offset, length, &mut buffer)?;
            return Ok(buffer);
        }
        // The epoch is taken before the health: a change recorded in
        // between would otherwise go unseen.
        let epoch = self.seed.epoch();
        let mut changed = None;
        if self.seed.is_good(piece) {
            self.read_spans(&spans, offset, length, &mut buffer)?;
            // Stat after reading: a change before or during the read shows.
            changed = self.note_changes(piece)?;
            if self.seed.epoch() == epoch {
                return Ok(buffer);
            }
        } else if self.seed.is_bad(piece) {
            // Known bad and unchanged since: refuse without hashing again,
            // so repeated requests cost a stat, not a piece read.
            changed = self.note_changes(piece)?;
            if self.seed.epoch() == epoch {
                return Err(self.piece_changed(piece, changed));
            }
        }
        let (verdict, changed_now) = self.verify_piece(piece, &mut buffer)?;
        if !verdict.ok {
            return Err(self.piece_changed(piece, changed.or(changed_now)));
        }
        if offset == 0 && buffer.len() == length as usize {
            return Ok(buffer);
        }
        Ok(buffer[offset as usize..(offset + length) as usize].to_vec())
    }

    /// Reads the whole piece (padding as zeros) and checks it against the
    /// torrent's hashes.
    pub fn check_piece(&self, piece: u32) -> Result<PieceVerdict, StorageError> {
        if piece >= self.layout.piece_count() {
            return Err(StorageError::BadBlock {
                piece,
                offset: 0,
                length: 0,
            });
        }
        // Each checking thread reuses one buffer for all its pieces.
        thread_local! {
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUFFER.with_borrow_mut(|buffer| Ok(self.verify_piece(piece, buffer)?.0))
    }

    /// Checks a piece assembled in memory (padding as zeros) against the
    /// hashes this store checks.
    pub fn check_data(&self, piece: u32, data: &[u8]) -> PieceVerdict {
        check_piece_with(&self.layout.piece(&self.torrent, piece), data, self.hashes)
    }

    /// Whether a seeded piece is known not to match (on open or since).
    pub fn is_known_bad(&self, piece: u32) -> bool {
        self.seed.is_bad(piece)
    }

    /// Flushes every file written since the last sync to stable storage.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.files.sync(&self.torrent)
    }

    /// Syncs the data, then saves `state` atomically beside it, so saved
    /// progress never claims bytes a power cut could lose. A no-op when
    /// seeding or once finished.
    pub fn save_resume(&self, state: &ResumeState) -> Result<(), StorageError> {
        let finished = lock(&self.finished);
        let Some(staging) = self.staging.as_ref().filter(|_| !*finished) else {
            return Ok(());
        };
        self.sync()?;
        state.save(&staging.resume)
    }

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
            staging.move_into_place(&staged, &self.torrent, &self.files)?;
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

    /// The data-file stretches of a block, each with the piece range it
    /// covers; refuses a block outside the piece.
    fn block_spans(
        &self,
        piece: u32,
        offset: u32,
        length: u32,
    ) -> Result<Vec<(FileSpan, std::ops::Range<u32>)>, StorageError> {
        let bad = || StorageError::BadBlock {
            piece,
            offset,
            length,
        };
        if piece >= self.layout.piece_count() || length == 0 {
            return Err(bad());
        }
        let end = offset.checked_add(length).ok_or_else(bad)?;
        if end > self.layout.piece_len(piece) {
            return Err(bad());
        }
        Ok(self
            .layout
            .spans(piece)
            .into_iter()
            .filter_map(|span| {
                let from = span.piece_offset.max(offset);
                let to = (span.piece_offset + span.length).min(end);
                (from < to).then_some((span, from..to))
            })
            .collect())
    }

    /// Reads `length` bytes at `offset` of a piece into `data`: zeros where
    /// no file stores data, where a download has not written yet, or past
    /// the end of a truncated file (which seeding notices from its stamp).
    /// `data` may hold an earlier read: every byte is overwritten, by the
    /// files or by zeros.
    fn read_spans(
        &self,
        spans: &[(FileSpan, std::ops::Range<u32>)],
        offset: u32,
        length: u32,
        data: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        let length = length as usize;
        data.truncate(length);
        // Zeros only what a shorter buffer lacks.
        data.resize(length, 0);
        // Bytes before `written` have been read or zeroed.
        let mut written = 0;
        for (span, range) in spans {
            let Some(file) = self.files.get(&self.torrent, span.file, Access::Read)? else {
                continue;
            };
            let (start, end) = (
                (range.start - offset) as usize,
                (range.end - offset) as usize,
            );
            zero(data, written..start);
            let at = span.file_offset + u64::from(range.start - span.piece_offset);
            let read = platform::read_full_at(&file, &mut data[start..end], at)
                .map_err(|e| StorageError::io(&self.file_path(span.file), "read", e))?;
            zero(data, start.saturating_add(read)..end);
            written = end;
        }
        zero(data, written..length);
        Ok(())
    }

    /// Reads and checks a whole piece. While seeding, first records any
    /// change to its files (returning the first changed one), and records
    /// the verdict unless a change was recorded meanwhile.
    fn verify_piece(
        &self,
        piece: u32,
        data: &mut Vec<u8>,
    ) -> Result<(PieceVerdict, Option<usize>), StorageError> {
        let length = self.layout.piece_len(piece);
        let spans = self.block_spans(piece, 0, length)?;
        let guarding = self.seed.is_active();
        let changed = if guarding {
            self.note_changes(piece)?
        } else {
            None
        };
        let epoch = self.seed.epoch();
        self.read_spans(&spans, 0, length, data)?;
        let verdict = self.check_data(piece, data);
        if guarding {
            self.seed.record_verdict(piece, verdict.ok, epoch);
        }
        Ok((verdict, changed))
    }

    /// Stats the files of `piece` through their open handles and records
    /// any change.
    fn note_changes(&self, piece: u32) -> Result<Option<usize>, StorageError> {
        let mut current = Vec::new();
        for span in self.layout.spans(piece) {
            let path = || self.file_path(span.file);
            let Some(file) = self.files.get(&self.torrent, span.file, Access::Read)? else {
                continue;
            };
            let metadata = file
                .metadata()
                .map_err(|e| StorageError::io(&path(), "inspect", e))?;
            current.push((span.file, Stamp::of(&metadata)));
        }
        Ok(self.seed.note(&self.torrent, &current))
    }

    /// Names the changed file if known, else the piece's first file.
    fn piece_changed(&self, piece: u32, changed: Option<usize>) -> StorageError {
        let first = || self.layout.spans(piece).first().map_or(0, |s| s.file);
        let file = changed.unwrap_or_else(first);
        StorageError::PieceChanged {
            piece,
            file: self.file_path(file),
        }
    }

    /// Stats every data file where it is stored now. With `strict`, a
    /// missing file or a wrong size is an error; otherwise it is recorded
    /// as unknown, so its pieces get verified on first read.
    fn stat_all(&self, strict: bool) -> Result<Vec<Option<Stamp>>, StorageError> {
        let mut stamps = vec![None; self.torrent.files.len()];
        for (index, entry) in self.torrent.files.iter().enumerate() {
            if entry.pad {
                continue;
            }
            let path = self.file_path(index);
            let metadata = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() && m.len() == entry.length => m,
                _ if !strict => continue,
                Ok(m) if !m.is_file() => return Err(StorageError::MissingFile { path }),
                Ok(m) => {
                    return Err(StorageError::WrongSize {
                        path,
                        expected: entry.length,
                        found: m.len(),
                    })
                }
                Err(e) => return Err(StorageError::io_missing(&path, "open", e)),
            };
            stamps[index] = Some(Stamp::of(&metadata));
        }
        Ok(stamps)
    }
}

/// Zeros `range` of `data`, if there is such a range.
fn zero(data: &mut [u8], range: std::ops::Range<usize>) {
    if let Some(bytes) = data.get_mut(range) {
        bytes.fill(0);
    }
}
