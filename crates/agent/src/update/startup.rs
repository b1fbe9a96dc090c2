//! What an agent does at start about an update under way (the marker in
//! `update/pending.json`, see `marker.rs`):
//!
//! - It is the new build, first start: it counts the start, and a
//!   watchdog rolls back unless the updater commits the update (its own
//!   API answered) within [`HEALTH_LIMIT`].
//! - It is the new build, started again before it committed: the first
//!   run died, so it rolls back at once.
//! - It is the old build: a rollback happened; it remembers the new build
//!   as failed (not tried again until the feed offers another) and
//!   reports why.
//!
//! A rollback restores the previous build beside the binary and runs it
//! in place of this process (see `swap.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::UpdateError;
use super::marker::{self, FailedBuild, PendingUpdate, HEALTH_LIMIT};
use super::{stamp, swap};

/// What the start found.
#[derive(Debug, Default)]
pub struct Startup {
    /// The update this (new) build must commit.
    pub pending: Option<PendingUpdate>,
    /// Set once committed; the watchdog then stands down.
    pub committed: Arc<AtomicBool>,
    /// A rollback that brought this (old) build back.
    pub rolled_back: Option<UpdateError>,
}

pub fn on_start(state_dir: &Path) -> Startup {
    let mut startup = Startup::default();
    let Some(mut pending) = marker::load_pending(state_dir) else {
        return startup;
    };
    let current = stamp::current_version();
    if current == pending.to_version {
        if pending.starts >= 1 {
            roll_back(
                state_dir,
                pending,
                "it stopped before it was healthy".to_owned(),
            );
            // Still here: the rollback failed, and was logged. Run on.
            return startup;
        }
        pending.starts += 1;
        if let Err(e) = marker::save_pending(state_dir, &pending) {
            tracing::warn!("update: {e}");
        }
        watchdog(
            state_dir.to_owned(),
            pending.clone(),
            startup.committed.clone(),
        );
        startup.pending = Some(pending);
    } else if current == pending.from_version {
        let reason = pending
            .failure
            .clone()
            .unwrap_or_else(|| "the previous build was restored".to_owned());
        let failed = FailedBuild {
            release_id: pending.release_id.clone(),
            version: pending.to_version.clone(),
            reason: reason.clone(),
        };
        if let Err(e) = marker::remember_failed(state_dir, failed) {
            tracing::warn!("update: {e}");
        }
        startup.rolled_back = Some(UpdateError::RolledBack {
            version: pending.to_version.clone(),
            reason,
        });
        if let Err(e) = marker::clear_pending(state_dir) {
            tracing::warn!("update: {e}");
        }
        if cfg!(windows) {
            let _ = std::fs::remove_file(swap::failed_path(&pending.exe));
        }
    } else {
        // Neither build: the customer installed another by hand.
        let _ = marker::clear_pending(state_dir);
    }
    startup
}

/// Rolls back unless `committed` is set within [`HEALTH_LIMIT`].
fn watchdog(state_dir: PathBuf, pending: PendingUpdate, committed: Arc<AtomicBool>) {
    let deadline = Instant::now() + HEALTH_LIMIT;
    let spawned = std::thread::Builder::new()
        .name("update-watchdog".to_owned())
        .spawn(move || {
            while Instant::now() < deadline {
                if committed.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            if !committed.load(Ordering::Acquire) {
                let reason = format!("its API did not answer within {} s", HEALTH_LIMIT.as_secs());
                roll_back(&state_dir, pending, reason);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("update: cannot watch the new build's health: {e}");
    }
}

/// Records why, restores the previous build and runs it in place of
/// this process; returns only if that failed (and says so in the log).
pub fn roll_back(state_dir: &Path, mut pending: PendingUpdate, reason: String) {
    tracing::warn!("update: rolling back {}: {reason}", pending.to_version);
    pending.failure = Some(reason);
    if let Err(e) = marker::save_pending(state_dir, &pending) {
        tracing::warn!("update: {e}");
    }
    if let Err(e) = swap::restore(&pending.exe, &pending.backup) {
        tracing::error!("update: cannot roll back to the previous build: {e}");
        return;
    }
    let error = swap::restart(&pending.exe);
    tracing::error!(
        "update: cannot start the restored build {}: {error}",
        pending.exe.display()
    );
}

/// Runs the build just swapped in at `exe`; if it cannot be started, the
/// previous one is put back and run instead. Returns only if neither ran.
pub fn restart_into_new(state_dir: &Path, exe: &Path) {
    if let Some(pending) = marker::load_pending(state_dir) {
        super::guard::spawn_guard(&pending.backup, state_dir);
    }
    let error = swap::restart(exe);
    match marker::load_pending(state_dir) {
        Some(pending) => roll_back(
            state_dir,
            pending,
            format!("it could not be started: {error}"),
        ),
        None => tracing::error!("update: cannot start {}: {error}", exe.display()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pending(from: &str, to: &str) -> PendingUpdate {
        PendingUpdate {
            from_version: from.into(),
            to_version: to.into(),
            release_id: "ab".repeat(32),
            exe: "shoal".into(),
            backup: "shoal.previous".into(),
            starts: 0,
            failure: Some("its API did not answer within 60 s".into()),
        }
    }

    /// The old build, back after a rollback, reports it and never tries
    /// that build again.
    #[test]
    fn the_old_build_back_after_a_rollback_remembers_the_failed_one() {
        let dir = tempfile::tempdir().unwrap();
        let current = stamp::current_version();
        marker::save_pending(dir.path(), &pending(current, "999.0.0")).unwrap();
        let startup = on_start(dir.path());
        assert!(startup.pending.is_none());
        let error = startup.rolled_back.unwrap();
        assert_eq!(error.fault(), super::super::Fault::Build);
        assert!(error.to_string().contains("did not answer"), "{error}");
        assert_eq!(marker::load_pending(dir.path()), None);
        let failed = marker::load_failed(dir.path());
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].version, "999.0.0");
    }

    /// A marker naming neither this build nor the one before (the
    /// customer installed another by hand) is dropped.
    #[test]
    fn a_marker_for_other_builds_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        marker::save_pending(dir.path(), &pending("0.0.1", "0.0.2")).unwrap();
        let startup = on_start(dir.path());
        assert!(startup.pending.is_none() && startup.rolled_back.is_none());
        assert_eq!(marker::load_pending(dir.path()), None);
        assert!(marker::load_failed(dir.path()).is_empty());
    }
}
