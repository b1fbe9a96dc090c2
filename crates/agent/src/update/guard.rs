//! The guard: a small process the old build starts, from the backup of
//! itself, just before it runs the new build. A new build that dies
//! before any of its own code runs (so its in-process watchdog never
//! starts, see `startup.rs`) would otherwise be restarted by the service
//! manager forever. The guard waits out the health limit; if the update
//! is still neither committed nor being rolled back by then, it puts the
//! previous build back, so the service manager's next restart runs it
//! (which then reports the failure). It never starts anything itself.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::marker::{self, HEALTH_LIMIT};
use super::swap;

/// Beyond the health limit: the new build's own watchdog acts first.
const GUARD_MARGIN: Duration = Duration::from_secs(5);

/// Starts the guard (the previous build at `backup`) for the update
/// recorded in `state_dir`; a guard that cannot start is logged only.
pub fn spawn_guard(backup: &Path, state_dir: &Path) {
    let spawned = Command::new(backup)
        .arg("update-guard")
        .arg("--state")
        .arg(state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        tracing::warn!("update: cannot start the update guard: {e}");
    }
}

/// The guard's work (`shoal update-guard`): returns once the update is
/// settled one way or the other, within the health limit and a margin.
pub fn guard(state_dir: &Path) {
    let deadline = Instant::now() + HEALTH_LIMIT + GUARD_MARGIN;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let Some(mut pending) = marker::load_pending(state_dir) else {
            return;
        };
        if pending.failure.is_some() {
            // The new build is rolling back by itself.
            return;
        }
        if Instant::now() >= deadline {
            pending.failure = Some(format!(
                "it did not come up within {} s",
                HEALTH_LIMIT.as_secs()
            ));
            if let Err(e) = marker::save_pending(state_dir, &pending) {
                tracing::warn!("update: {e}");
            }
            if let Err(e) = swap::restore(&pending.exe, &pending.backup) {
                tracing::error!("update: cannot put the previous build back: {e}");
            }
            return;
        }
    }
}
