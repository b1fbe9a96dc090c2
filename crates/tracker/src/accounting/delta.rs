//! The pure rule that turns a session's reported totals into billable
//! bytes. Both store backends call it inside their batch transaction.

use crate::ids::{PublisherId, ReleaseId};
use units::days::day_of;

/// The totals one announce reported, and when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    pub uploaded: u64,
    pub downloaded: u64,
    /// `shoal_origin_bytes` (0 when absent).
    pub origin: u64,
    pub at_unix: i64,
    /// The announce carried `event=completed`.
    pub completed: bool,
}

/// The latest totals one peer session reported within a batch window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionReport {
    pub release: ReleaseId,
    pub publisher: PublisherId,
    /// Who the session is: a digest of (peer id, client IP, `key`), so an
    /// announce from another address or without the key is another
    /// session and cannot move, stop or silence this one.
    pub session: [u8; 20],
    /// The client's IP as 16 bytes (IPv4 mapped): completions count once
    /// per (IP, release, day).
    pub client: [u8; 16],
    /// `event=started` was seen: the client's totals restarted from zero.
    pub restarted: bool,
    /// When that `started` arrived (unix seconds; 0 without one). A restart
    /// resets the stored totals only if it is newer than them: with several
    /// instances, another may already have stored this session's later
    /// totals, and counting from zero again would count them twice.
    pub started_unix: i64,
    /// The first announce merged into this report (the `started` when
    /// there was one). When the store knows nothing of the session, it is
    /// the baseline: its own totals are never credited, only growth after
    /// it, so a session's first report credits nothing.
    pub baseline: Reported,
    pub uploaded: u64,
    pub downloaded: u64,
    /// `shoal_origin_bytes`, sent only by shoal agents.
    pub origin: Option<u64>,
    /// `event=completed` was seen after the first announce of the window.
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
    /// Saturating: a sum of hostile reports pins at `u64::MAX` (shown and
    /// stored as `i64::MAX`) instead of wrapping or panicking.
    pub fn add(&mut self, other: &UsageDelta) {
        self.peer_bytes = self.peer_bytes.saturating_add(other.peer_bytes);
        self.origin_bytes = self.origin_bytes.saturating_add(other.origin_bytes);
        self.unattributed_bytes = self
            .unattributed_bytes
            .saturating_add(other.unattributed_bytes);
        self.uploaded_bytes = self.uploaded_bytes.saturating_add(other.uploaded_bytes);
        self.flagged_bytes = self.flagged_bytes.saturating_add(other.flagged_bytes);
        self.completions = self.completions.saturating_add(other.completions);
    }
}

/// The new stored state and the usage to add for one report.
///
/// - Only growth beyond the stored totals counts; a session the store does
///   not know (or a restarted one) counts from its report's baseline, the
///   first announce of the window, whose own totals are never credited.
/// - `downloaded` splits into origin bytes (at most the downloaded growth)
///   and peer bytes when the client reports origin bytes, else it is
///   unattributed.
/// - The line-rate ceiling: if the growth of downloaded + uploaded is more
///   than `max_rate` bytes/s could have moved since the previous report
///   (or the baseline; at least one second, the clock's resolution), it is
///   all flagged and billed nowhere. The stored totals advance by at most
///   what the line could have carried, so no stored counter is ever beyond
///   what the session could physically have moved, and a client cannot
///   silence its own later growth with one absurd report either.
/// - A completion is credited once per session, never on the announce
///   that set the baseline.
pub fn session_delta(
    stored: Option<&SessionState>,
    report: &SessionReport,
    max_rate: u64,
) -> (SessionState, UsageDelta) {
    let restart = report.restarted && stored.is_none_or(|s| report.started_unix > s.reported_unix);
    let (base, first) = match stored {
        Some(s) if !restart => (*s, false),
        _ => {
            let b = &report.baseline;
            let base = SessionState {
                uploaded: b.uploaded,
                downloaded: b.downloaded,
                origin: b.origin.min(b.downloaded),
                reported_unix: b.at_unix,
                // A `completed` on the baseline announce is not credited,
                // nor can it be later.
                completed: b.completed,
            };
            (base, true)
        }
    };
    let grow = |new: u64, old: u64| new.saturating_sub(old);
    let downloaded = grow(report.downloaded, base.downloaded);
    let uploaded = grow(report.uploaded, base.uploaded);
    let origin = report.origin.map(|o| grow(o, base.origin).min(downloaded));
    let elapsed = u64::try_from(report.at_unix.saturating_sub(base.reported_unix))
        .unwrap_or(0)
        .max(1);
    let allowance = max_rate.saturating_mul(elapsed);
    let mut usage = UsageDelta::default();
    let flagged = downloaded.saturating_add(uploaded) > allowance;
    if flagged {
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
    let completed_now = report.completed || (!first && report.baseline.completed);
    if completed_now && !base.completed {
        usage.completions = 1;
    }
    // Each counter moves up by at most the line's allowance (all of the
    // growth when it was within it).
    let ceiling = |new: u64, old: u64| old.saturating_add(grow(new, old).min(allowance));
    let downloaded_total = ceiling(report.downloaded, base.downloaded);
    let state = SessionState {
        uploaded: ceiling(report.uploaded, base.uploaded),
        downloaded: downloaded_total,
        origin: ceiling(report.origin.unwrap_or(0), base.origin)
            .min(downloaded_total)
            .max(base.origin),
        reported_unix: base.reported_unix.max(report.at_unix),
        completed: base.completed || completed_now,
    };
    (state, usage)
}

/// How long a session's stored row may go untouched by announces that
/// change nothing (seconds): such announces are not written at all, which
/// keeps a batch's cost proportional to the sessions that moved bytes,
/// not to the swarm. The row is still refreshed this often (and on a new
/// day, for the day's distinct-peer list) so pruning sees it alive.
pub const IDLE_TOUCH_SECS: i64 = 3600;

/// Whether `report` changes anything against `stored`: growth, a
/// completion, a restart, a new day, or a row older than
/// [`IDLE_TOUCH_SECS`]. When it does not, the store skips it: nothing to
/// credit, nothing to write. (The stored `reported_unix` then stays the
/// time of the last change, which is where the line-rate allowance for the
/// next growth is rightly measured from.)
pub fn changes_anything(stored: &SessionState, report: &SessionReport, max_rate: u64) -> bool {
    let (state, usage) = session_delta(Some(stored), report, max_rate);
    let same_totals = SessionState {
        reported_unix: stored.reported_unix,
        ..state
    } == *stored;
    let fresh = report.at_unix.saturating_sub(stored.reported_unix) < IDLE_TOUCH_SECS
        && day_of(report.at_unix) == day_of(stored.reported_unix);
    !(usage == UsageDelta::default() && same_totals && fresh)
}

#[cfg(test)]
#[path = "delta_tests.rs"]
mod tests;
