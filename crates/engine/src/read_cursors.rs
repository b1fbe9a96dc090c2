//! Where a release's readers read, as its session needs to know it: the
//! latest offset of each live reader, never a queue of every offset it
//! passed. The session fetches the pieces ahead of readers first
//! (`swarm::Swarm::set_stream_cursor`), and only the latest position
//! matters for that.
//!
//! Readers are driven by whoever holds them (a browser pulling a stream,
//! an API caller), and the session may be busy: a queue of reports would
//! grow with every read the session has not caught up with. Here a reader
//! overwrites its one slot, the session is woken through a channel of
//! capacity one (a wake-up already pending is enough), and a reader that
//! goes away empties its slot. What this holds is bounded by the number of
//! readers alive, however fast they read or come and go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

/// What the session learns about a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadReport {
    /// Reader `id` reads torrent byte `offset` next.
    At { id: u64, offset: u64 },
    /// Reader `id` is gone.
    Gone { id: u64 },
}

/// The readers' side: one slot per live reader that has read.
#[derive(Debug)]
pub(crate) struct ReadCursors {
    latest: Mutex<HashMap<u64, u64>>,
    wake: mpsc::Sender<()>,
}

/// The session's side: wakes when a slot changed and says what changed
/// since it last looked.
#[derive(Debug)]
pub(crate) struct ReadCursorWatch {
    cursors: Arc<ReadCursors>,
    wake: mpsc::Receiver<()>,
    /// What the session was last told, per reader.
    told: HashMap<u64, u64>,
}

/// A board shared by a torrent's readers and its session.
pub(crate) fn read_cursors() -> (Arc<ReadCursors>, ReadCursorWatch) {
    let (wake_tx, wake_rx) = mpsc::channel(1);
    let cursors = Arc::new(ReadCursors {
        latest: Mutex::new(HashMap::new()),
        wake: wake_tx,
    });
    let watch = ReadCursorWatch {
        cursors: cursors.clone(),
        wake: wake_rx,
        told: HashMap::new(),
    };
    (cursors, watch)
}

impl ReadCursors {
    /// Reader `id` reads `offset` next.
    pub(crate) fn set(&self, id: u64, offset: u64) {
        self.slots().insert(id, offset);
        self.wake_session();
    }

    /// Reader `id` is gone.
    pub(crate) fn remove(&self, id: u64) {
        if self.slots().remove(&id).is_some() {
            self.wake_session();
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        // The map stays consistent whatever panicked while holding it.
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_session(&self) {
        // Full: a wake-up is pending and will see this slot too. Closed:
        // the session ended and nobody needs to know.
        let _ = self.wake.try_send(());
    }

    #[cfg(test)]
    fn slot_count(&self) -> usize {
        self.slots().len()
    }
}

impl ReadCursorWatch {
    /// Waits until some reader moved, came or went. Cancel-safe, for the
    /// session's `select!`.
    pub(crate) async fn changed(&mut self) {
        // The watch holds a sender itself (through `cursors`), so the
        // channel never closes; were it to, waiting forever is right (no
        // reader can report) and spinning on `None` would not be.
        if self.wake.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    /// What changed since the last call: readers that moved or came, then
    /// readers that went.
    pub(crate) fn changes(&mut self) -> Vec<ReadReport> {
        let latest = self.cursors.slots().clone();
        let mut reports = Vec::new();
        for (&id, &offset) in &latest {
            if self.told.get(&id) != Some(&offset) {
                reports.push(ReadReport::At { id, offset });
            }
        }
        for &id in self.told.keys() {
            if !latest.contains_key(&id) {
                reports.push(ReadReport::Gone { id });
            }
        }
        self.told = latest;
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that reports far faster than the session looks leaves one
    /// slot and one pending wake-up behind, and the session learns only
    /// where it is now.
    #[tokio::test]
    async fn a_reader_reporting_endlessly_holds_one_slot() {
        let (cursors, mut watch) = read_cursors();
        for offset in 0..1_000_000u64 {
            cursors.set(7, offset);
        }
        assert_eq!(cursors.slot_count(), 1);
        watch.changed().await;
        assert_eq!(
            watch.changes(),
            [ReadReport::At {
                id: 7,
                offset: 999_999
            }]
        );
        // No second wake-up was queued behind the first.
        assert!(watch.wake.try_recv().is_err());
        assert!(watch.changes().is_empty(), "nothing moved since");
    }

    /// Readers that come and go between two looks of the session leave
    /// nothing behind; one the session knew is reported gone once.
    #[tokio::test]
    async fn readers_that_come_and_go_leave_nothing_behind() {
        let (cursors, mut watch) = read_cursors();
        cursors.set(1, 100);
        assert_eq!(watch.changes(), [ReadReport::At { id: 1, offset: 100 }]);
        for id in 2..100_000u64 {
            cursors.set(id, id);
            cursors.remove(id);
        }
        cursors.remove(1);
        assert_eq!(cursors.slot_count(), 0);
        watch.changed().await;
        assert_eq!(watch.changes(), [ReadReport::Gone { id: 1 }]);
        assert!(watch.changes().is_empty());
        assert!(watch.told.is_empty());
    }

    /// Moves are reported per reader, each at its latest offset.
    #[test]
    fn each_reader_is_reported_at_its_latest_offset() {
        let (cursors, mut watch) = read_cursors();
        cursors.set(1, 10);
        cursors.set(2, 20);
        cursors.set(1, 15);
        let mut changes = watch.changes();
        changes.sort_by_key(|r| match r {
            ReadReport::At { id, .. } | ReadReport::Gone { id } => *id,
        });
        assert_eq!(
            changes,
            [
                ReadReport::At { id: 1, offset: 15 },
                ReadReport::At { id: 2, offset: 20 }
            ]
        );
        cursors.set(2, 20);
        assert!(watch.changes().is_empty(), "the same offset is no change");
    }
}
