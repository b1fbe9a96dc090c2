//! Reports merged in memory between batch writes, so a burst of announces
//! is one write per session.

use std::collections::HashMap;

use super::SessionReport;
use crate::store::ReleaseId;

/// Sessions that announced since the last batch, latest totals each.
#[derive(Debug, Default)]
pub struct PendingReports {
    sessions: HashMap<(ReleaseId, [u8; 20]), SessionReport>,
}

impl PendingReports {
    /// Merges an announce: the highest totals win; a `started` replaces
    /// what came before it in this window (the client began again).
    pub fn record(&mut self, report: SessionReport) {
        let key = (report.release, report.peer_id);
        match self.sessions.get_mut(&key) {
            Some(pending) if !report.restarted => {
                pending.uploaded = pending.uploaded.max(report.uploaded);
                pending.downloaded = pending.downloaded.max(report.downloaded);
                pending.origin = match (pending.origin, report.origin) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                pending.completed |= report.completed;
                pending.at_unix = pending.at_unix.max(report.at_unix);
            }
            _ => {
                self.sessions.insert(key, report);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Everything pending, for one batch; leaves the window empty.
    pub fn take(&mut self) -> Vec<SessionReport> {
        self.sessions.drain().map(|(_, report)| report).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(down: u64, restarted: bool) -> SessionReport {
        SessionReport {
            release: 1,
            publisher: 1,
            peer_id: [1; 20],
            restarted,
            started_unix: 0,
            uploaded: 0,
            downloaded: down,
            origin: None,
            completed: false,
            at_unix: 0,
        }
    }

    #[test]
    fn a_burst_of_announces_is_one_report_with_the_highest_totals() {
        let mut pending = PendingReports::default();
        for down in [10, 30, 20] {
            pending.record(report(down, false));
        }
        let batch = pending.take();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].downloaded, 30);
        assert!(pending.is_empty());
    }

    #[test]
    fn started_replaces_the_window() {
        let mut pending = PendingReports::default();
        pending.record(report(30, false));
        pending.record(report(0, true));
        pending.record(report(5, false));
        let batch = pending.take();
        assert!(batch[0].restarted);
        assert_eq!(batch[0].downloaded, 5);
    }
}
