//! Seeding from the customer's files, which they may edit, replace or
//! truncate at any time. Every file's (length, modification time) is
//! recorded when it is verified; each read compares the file's current
//! metadata with the record (one fstat), and a difference sends every piece
//! of that file back to "unchecked", to be verified again before any of its
//! bytes leave the machine. A modification that keeps the length and lands
//! within the filesystem's timestamp resolution cannot be seen this way;
//! peers still verify every block they receive.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use meta::Torrent;

use super::lock::lock;

const UNCHECKED: u8 = 0;
const GOOD: u8 = 1;
const BAD: u8 = 2;

/// What a file looked like when its pieces were last verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    pub(crate) fn of(metadata: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct SeedGuard {
    /// Off while downloading: our own writes are not changes.
    active: AtomicBool,
    records: Mutex<Records>,
    health: Vec<AtomicU8>,
}

#[derive(Debug)]
struct Records {
    /// Per entry of `Torrent::files`; `None` is unknown, so any stamp differs.
    stamps: Vec<Option<Stamp>>,
    /// Bumped on every recorded change. A verification or read that saw
    /// the epoch move under it cannot vouch for what it read.
    epoch: u64,
}

/// The pieces that hold bytes of file `index`.
pub(crate) fn pieces_of_file(torrent: &Torrent, index: usize) -> Range<u32> {
    let Some(file) = torrent.files.get(index).filter(|f| !f.pad && f.length > 0) else {
        return 0..0;
    };
    let first = file.offset / torrent.piece_length;
    let last = file.offset.saturating_add(file.length - 1) / torrent.piece_length;
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    clamp(first)..clamp(last).saturating_add(1)
}

impl SeedGuard {
    pub(crate) fn new(torrent: &Torrent, piece_count: u32) -> SeedGuard {
        SeedGuard {
            active: AtomicBool::new(false),
            records: Mutex::new(Records {
                stamps: vec![None; torrent.files.len()],
                epoch: 0,
            }),
            health: (0..piece_count).map(|_| AtomicU8::new(UNCHECKED)).collect(),
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Starts guarding with these stamps; pieces start good (data this
    /// store just verified) or unchecked (verification to follow).
    pub(crate) fn activate(&self, stamps: Vec<Option<Stamp>>, all_good: bool) {
        let mut records = lock(&self.records);
        records.stamps = stamps;
        records.epoch += 1;
        let state = if all_good { GOOD } else { UNCHECKED };
        for health in &self.health {
            health.store(state, Ordering::Release);
        }
        self.active.store(true, Ordering::Release);
    }

    pub(crate) fn epoch(&self) -> u64 {
        lock(&self.records).epoch
    }

    pub(crate) fn is_good(&self, piece: u32) -> bool {
        self.health_of(piece) == Some(GOOD)
    }

    pub(crate) fn is_bad(&self, piece: u32) -> bool {
        self.health_of(piece) == Some(BAD)
    }

    fn health_of(&self, piece: u32) -> Option<u8> {
        self.health
            .get(piece as usize)
            .map(|h| h.load(Ordering::Acquire))
    }

    /// Compares current stamps with the records. Each change is recorded,
    /// sends its file's pieces back to unchecked and bumps the epoch.
    /// Returns the first file found changed.
    pub(crate) fn note(&self, torrent: &Torrent, current: &[(usize, Stamp)]) -> Option<usize> {
        let mut records = lock(&self.records);
        let mut changed = None;
        for &(index, stamp) in current {
            let Some(recorded) = records.stamps.get_mut(index) else {
                continue;
            };
            if *recorded != Some(stamp) {
                *recorded = Some(stamp);
                records.epoch += 1;
                changed.get_or_insert(index);
                for piece in pieces_of_file(torrent, index) {
                    if let Some(health) = self.health.get(piece as usize) {
                        health.store(UNCHECKED, Ordering::Release);
                    }
                }
            }
        }
        changed
    }

    /// Records a verification of `piece` that started at `epoch`, unless a
    /// change was recorded since: then it stays unchecked.
    pub(crate) fn record_verdict(&self, piece: u32, ok: bool, epoch: u64) {
        let records = lock(&self.records);
        if records.epoch == epoch {
            if let Some(health) = self.health.get(piece as usize) {
                health.store(if ok { GOOD } else { BAD }, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(len: u64) -> Stamp {
        Stamp {
            len,
            modified: None,
        }
    }

    fn torrent() -> (tempfile::TempDir, Torrent) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rel");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a"), vec![1u8; 40_000]).unwrap();
        std::fs::write(root.join("b"), vec![2u8; 20_000]).unwrap();
        let settings = meta::create::CreateSettings {
            piece_length: Some(16_384),
            ..Default::default()
        };
        let source = meta::create::scan(&root).unwrap();
        let new = meta::create::create(&source, &settings, &|_| {}).unwrap();
        (dir, Torrent::from_bytes(&new.encode(None)).unwrap())
    }

    #[test]
    fn a_changed_file_unchecks_only_its_pieces_and_voids_running_checks() {
        let (_dir, torrent) = torrent();
        let a = torrent
            .files
            .iter()
            .position(|f| f.length == 40_000)
            .unwrap();
        let b = torrent
            .files
            .iter()
            .position(|f| f.length == 20_000)
            .unwrap();
        assert_eq!(pieces_of_file(&torrent, a), 0..3);
        assert_eq!(pieces_of_file(&torrent, b), 3..5);
        let guard = SeedGuard::new(&torrent, 5);
        let mut stamps = vec![None; torrent.files.len()];
        stamps[a] = Some(stamp(40_000));
        stamps[b] = Some(stamp(20_000));
        guard.activate(stamps, true);
        assert_eq!(guard.note(&torrent, &[(a, stamp(40_000))]), None);
        let before = guard.epoch();
        assert_eq!(guard.note(&torrent, &[(b, stamp(1))]), Some(b));
        assert!(guard.is_good(0) && !guard.is_good(3) && !guard.is_good(4));
        // A verification begun before the change does not count.
        guard.record_verdict(3, true, before);
        assert!(!guard.is_good(3));
        guard.record_verdict(3, false, guard.epoch());
        assert!(guard.is_bad(3));
    }
}
