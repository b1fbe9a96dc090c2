//! Reports merged in memory between batch writes, so a burst of announces
//! is one write per session.

use std::collections::HashMap;

use super::SessionReport;
use crate::ids::ReleaseId;

/// Sessions that announced since the last batch, latest totals each.
#[derive(Debug, Default)]
pub struct PendingReports {
    sessions: HashMap<(ReleaseId, [u8; 20]), SessionReport>,
}

/// `newer` merged on top of `older` (the same session): the highest
/// totals win and the baseline stays the older one's; a `started` in
/// `newer` replaces what came before it (the client began again).
fn merge(older: &SessionReport, newer: &SessionReport) -> SessionReport {
    if newer.restarted {
        return *newer;
    }
    let mut merged = *older;
    merged.uploaded = older.uploaded.max(newer.uploaded);
    merged.downloaded = older.downloaded.max(newer.downloaded);
    merged.origin = match (older.origin, newer.origin) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    merged.completed = older.completed || newer.completed || newer.baseline.completed;
    merged.at_unix = older.at_unix.max(newer.at_unix);
    merged
}

impl PendingReports {
    /// Merges an announce (or a report) after what is pending.
    pub fn record(&mut self, report: SessionReport) {
        let key = (report.release, report.session);
        match self.sessions.get_mut(&key) {
            Some(pending) => *pending = merge(pending, &report),
            None => {
                self.sessions.insert(key, report);
            }
        }
    }

    /// Puts back a report a failed batch took: it came before what is
    /// pending now.
    pub fn restore(&mut self, report: SessionReport) {
        let key = (report.release, report.session);
        match self.sessions.get_mut(&key) {
            Some(pending) => *pending = merge(&report, pending),
            None => {
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
            session: [1; 20],
            client: [0; 16],
            restarted,
            started_unix: 0,
            baseline: crate::accounting::Reported {
                downloaded: down,
                ..Default::default()
            },
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
        assert_eq!(
            batch[0].baseline.downloaded, 10,
            "the first announce is the baseline"
        );
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
        assert_eq!(
            batch[0].baseline.downloaded, 0,
            "the started is the baseline"
        );
    }
}
