//! The pure rule that turns a session's reported totals into billable
//! bytes. Both store backends call it inside their batch transaction.

use crate::store::{PublisherId, ReleaseId};

/// The latest totals one peer session reported within a batch window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionReport {
    pub release: ReleaseId,
    pub publisher: PublisherId,
    pub peer_id: [u8; 20],
    /// `event=started` was seen: the client's totals restarted from zero.
    pub restarted: bool,
    /// When that `started` arrived (unix seconds; 0 without one). A restart
    /// resets the stored totals only if it is newer than them: with several
    /// instances, another may already have stored this session's later
    /// totals, and counting from zero again would count them twice.
    pub started_unix: i64,
    pub uploaded: u64,
    pub downloaded: u64,
    /// `shoal_origin_bytes`, sent only by shoal agents.
    pub origin: Option<u64>,
    /// `event=completed` was seen.
    pub completed: bool,
    /// When the last of the merged announces arrived (unix seconds).
    pub at_unix: i64,
}

/// What the store keeps per session: the highest totals counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionState {
    pub uploaded: u64,
    pub downloaded: u64,
    pub origin: u64,
    pub reported_unix: i64,
    pub completed: bool,
}

/// Bytes and events added to a release's day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UsageDelta {
    /// Downloaded from other peers (shoal agents: downloaded − origin).
    pub peer_bytes: u64,
    /// Downloaded from the publisher's origin, as shoal agents report it.
    pub origin_bytes: u64,
    /// Downloaded by clients that do not say where from: never guessed.
    pub unattributed_bytes: u64,
    pub uploaded_bytes: u64,
    /// Growth faster than `max_rate` allows: kept out of every total above.
    pub flagged_bytes: u64,
    pub completions: u64,
}

impl UsageDelta {
    pub fn add(&mut self, other: &UsageDelta) {
        self.peer_bytes += other.peer_bytes;
        self.origin_bytes += other.origin_bytes;
        self.unattributed_bytes += other.unattributed_bytes;
        self.uploaded_bytes += other.uploaded_bytes;
        self.flagged_bytes += other.flagged_bytes;
        self.completions += other.completions;
    }
}

/// The new stored state and the usage to add for one report.
///
/// - Only growth beyond the stored totals counts; a restarted session
///   counts from zero again.
/// - `downloaded` splits into origin bytes (at most the downloaded growth)
///   and peer bytes when the client reports origin bytes, else it is
///   unattributed.
/// - If the growth of downloaded + uploaded is more than `max_rate`
///   bytes/s could have moved since the previous report (at least one
///   second; a session's first report is measured over one second), it is
///   all flagged and billed nowhere. The stored totals still advance, so
///   it is never counted later either.
pub fn session_delta(
    stored: Option<&SessionState>,
    report: &SessionReport,
    max_rate: u64,
) -> (SessionState, UsageDelta) {
    let restart = report.restarted && stored.is_none_or(|s| report.started_unix > s.reported_unix);
    let base = match stored {
        Some(s) if !restart => *s,
        _ => SessionState::default(),
    };
    let grow = |new: u64, old: u64| new.saturating_sub(old);
    let downloaded = grow(report.downloaded, base.downloaded);
    let uploaded = grow(report.uploaded, base.uploaded);
    let origin = report.origin.map(|o| grow(o, base.origin).min(downloaded));
    let previous_unix = stored.map_or(report.at_unix - 1, |s| s.reported_unix);
    let elapsed = u64::try_from(report.at_unix - previous_unix)
        .unwrap_or(0)
        .max(1);
    let mut usage = UsageDelta::default();
    if downloaded.saturating_add(uploaded) > max_rate.saturating_mul(elapsed) {
        usage.flagged_bytes = downloaded.saturating_add(uploaded);
    } else {
        usage.uploaded_bytes = uploaded;
        match origin {
            Some(origin) => {
                usage.origin_bytes = origin;
                usage.peer_bytes = downloaded - origin;
            }
            None => usage.unattributed_bytes = downloaded,
        }
    }
    let was_completed = base.completed;
    if report.completed && !was_completed {
        usage.completions = 1;
    }
    let state = SessionState {
        uploaded: base.uploaded.max(report.uploaded),
        downloaded: base.downloaded.max(report.downloaded),
        origin: base.origin.max(report.origin.unwrap_or(0)),
        reported_unix: stored.map_or(report.at_unix, |s| s.reported_unix.max(report.at_unix)),
        completed: was_completed || report.completed,
    };
    (state, usage)
}

#[cfg(test)]
#[path = "delta_tests.rs"]
mod tests;
