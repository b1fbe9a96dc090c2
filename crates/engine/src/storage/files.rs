//! Open file handles, opened lazily and bounded in number: a release can
//! hold tens of thousands of files, more than a process may keep open.
//! The least recently used handle is closed first. Handles are shared as
//! `Arc<File>` and used with positioned I/O, so the lock is held only to
//! find or open a handle, never during a read or write.
//!
//! Also tracks which files were written since the last sync, so `sync`
//! flushes exactly those, even ones whose handle was closed meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use meta::Torrent;

use super::error::StorageError;
use super::lock::lock;
use super::platform;

/// Default bound on open handles: well under every platform's default
/// per-process limit (256 on macOS), leaving room for sockets.
pub(crate) const DEFAULT_MAX_OPEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reading; while downloading, a file not yet created reads as absent.
    Read,
    /// Writing: the file is created at its full (sparse) length if needed.
    Write,
}

#[derive(Debug)]
pub(crate) struct OpenFiles {
    inner: Mutex<Inner>,
    max_open: usize,
}

#[derive(Debug)]
struct Inner {
    /// The folder holding the release root (`NAME`).
    base: PathBuf,
    /// Download mode (read-write, create on write) or seed mode (read-only).
    writable: bool,
    open: HashMap<usize, (Arc<File>, u64)>,
    tick: u64,
    /// Files written since the last sync.
    dirty: BTreeSet<usize>,
    /// Folders that gained entries since the last sync.
    dirty_dirs: BTreeSet<PathBuf>,
}

/// Where file `index` of `torrent` lives when the release root is in `base`.
pub fn file_path(torrent: &Torrent, base: &Path, index: usize) -> PathBuf {
    let root = base.join(&torrent.name);
    match torrent.files.get(index) {
        Some(file) if torrent.multi_file => file.path.under(&root),
        _ => root,
    }
}

impl OpenFiles {
    pub(crate) fn new(base: PathBuf, writable: bool, max_open: usize) -> Self {
        OpenFiles {
            inner: Mutex::new(Inner {
                base,
                writable,
                open: HashMap::new(),
                tick: 0,
                dirty: BTreeSet::new(),
                dirty_dirs: BTreeSet::new(),
            }),
            max_open: max_open.max(1),
        }
    }

    pub(crate) fn path(&self, torrent: &Torrent, index: usize) -> PathBuf {
        file_path(torrent, &lock(&self.inner).base, index)
    }

    /// The folder holding the release root.
    pub(crate) fn base(&self) -> PathBuf {
        lock(&self.inner).base.clone()
    }

    /// Closes every handle and serves files from `base` from now on.
    pub(crate) fn relocate(&self, base: PathBuf, writable: bool) {
        let mut inner = lock(&self.inner);
        inner.open.clear();
        inner.base = base;
        inner.writable = writable;
    }

    /// The handle of file `index`, or `None` when reading a file that a
    /// download has not created yet.
    pub(crate) fn get(
        &self,
        torrent: &Torrent,
        index: usize,
        access: Access,
    ) -> Result<Option<Arc<File>>, StorageError> {
        let mut inner = lock(&self.inner);
        if access == Access::Write && !inner.writable {
            let path = file_path(torrent, &inner.base, index);
            return Err(StorageError::ReadOnly { path });
        }
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((file, used)) = inner.open.get_mut(&index) {
            *used = tick;
            return Ok(Some(Arc::clone(file)));
        }
        let path = file_path(torrent, &inner.base, index);
        let expected = torrent.files.get(index).map_or(0, |f| f.length);
        let file = if !inner.writable {
            File::open(&path).map_err(|e| StorageError::io_missing(&path, "open", e))?
        } else if access == Access::Read {
            match File::options().read(true).write(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(StorageError::io(&path, "open", e)),
            }
        } else {
            let inner = &mut *inner;
            create_sized(&path, expected, &inner.base, &mut inner.dirty_dirs)?
        };
        if inner.open.len() >= self.max_open {
            let oldest = inner.open.iter().min_by_key(|(_, (_, used))| *used);
            if let Some(&oldest) = oldest.map(|(index, _)| index) {
                inner.open.remove(&oldest);
            }
        }
        let file = Arc::new(file);
        inner.open.insert(index, (Arc::clone(&file), tick));
        Ok(Some(file))
    }

    /// Records that file `index` was written: call after the write is done,
    /// so that a sync which starts later is sure to cover it.
    pub(crate) fn mark_dirty(&self, index: usize) {
        lock(&self.inner).dirty.insert(index);
    }

    /// Flushes every file written and folder changed since the last sync.
    pub(crate) fn sync(&self, torrent: &Torrent) -> Result<(), StorageError> {
        let (files, dirs) = {
            let mut inner = lock(&self.inner);
            (
                std::mem::take(&mut inner.dirty),
                std::mem::take(&mut inner.dirty_dirs),
            )
        };
        let mut pending: Vec<usize> = files.iter().copied().collect();
        while let Some(&index) = pending.last() {
            let result = match self.get(torrent, index, Access::Read) {
                Ok(Some(file)) => file
                    .sync_data()
                    .map_err(|e| StorageError::io(&self.path(torrent, index), "sync", e)),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                // Still unsynced: the next sync must try them again.
                let mut inner = lock(&self.inner);
                inner.dirty.extend(pending);
                inner.dirty_dirs.extend(dirs);
                return Err(e);
            }
            pending.pop();
        }
        for dir in &dirs {
            if let Err(e) = platform::sync_dir(dir) {
                lock(&self.inner).dirty_dirs.extend(dirs.iter().cloned());
                return Err(StorageError::io(dir, "sync folder", e));
            }
        }
        Ok(())
    }

    #[cfg(test)]
    fn open_count(&self) -> usize {
        lock(&self.inner).open.len()
    }
}

/// Creates a file (and its folders) at its full length. `set_len` leaves
/// the file sparse where the filesystem allows, so no zeros are written.
fn create_sized(
    path: &Path,
    length: u64,
    base: &Path,
    dirty_dirs: &mut BTreeSet<PathBuf>,
) -> Result<File, StorageError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| StorageError::io(parent, "create folder", e))?;
        // Each folder from the file up to `base` may have a new entry.
        let mut dir = Some(parent);
        while let Some(d) = dir.filter(|d| d.starts_with(base)) {
            dirty_dirs.insert(d.to_path_buf());
            dir = d.parent();
        }
    }
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StorageError::io(path, "create", e))?;
    let found = file
        .metadata()
        .map_err(|e| StorageError::io(path, "inspect", e))?
        .len();
    if found != length {
        file.set_len(length)
            .map_err(|e| StorageError::io(path, "resize", e))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torrent(root: &Path) -> Torrent {
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            std::fs::write(root.join("rel").join(name), vec![i as u8; 20_000]).unwrap();
        }
        let source = meta::create::scan(&root.join("rel")).unwrap();
        let new = meta::create::create(&source, &meta::create::CreateSettings::default(), &|_| {})
            .unwrap();
        Torrent::from_bytes(&new.encode(None)).unwrap()
    }

    #[test]
    fn handles_are_bounded_and_files_created_at_full_length() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rel")).unwrap();
        let torrent = torrent(dir.path());
        let staging = dir.path().join("staging");
        let files = OpenFiles::new(staging.clone(), true, 2);
        let data: Vec<usize> = (0..torrent.files.len())
            .filter(|&i| !torrent.files[i].pad)
            .collect();
        assert_eq!(data.len(), 3);
        assert!(files
            .get(&torrent, data[0], Access::Read)
            .unwrap()
            .is_none());
        for &i in &data {
            files.get(&torrent, i, Access::Write).unwrap().unwrap();
            files.mark_dirty(i);
            assert!(files.open_count() <= 2);
            let on_disk = std::fs::metadata(files.path(&torrent, i)).unwrap().len();
            assert_eq!(on_disk, 20_000);
        }
        // The evicted file is reopened to be synced.
        files.sync(&torrent).unwrap();
        files.relocate(staging, false);
        assert!(matches!(
            files.get(&torrent, data[0], Access::Write),
            Err(StorageError::ReadOnly { .. })
        ));
    }
}
