//! Self-update through the swarm: the agent's own builds are signed
//! releases of the project's key, listed per target on a feed; the agent
//! downloads a newer one through its engine like any release (and shares
//! it on), tries it, swaps its binary and restarts into it, and rolls back
//! if the new build does not come up healthy. The README's "Updates"
//! section says how to turn it off or defer it, and how the project
//! publishes a build.
//!
//! - `feed.rs`: the feed, and the checks on the build it offers
//! - `version.rs`, `stamp.rs`: versions, and the one a build reports
//! - `updater.rs`: the check loop, the download, the commit
//! - `trial.rs`: running a new build once before it may replace this one
//! - `swap.rs`: the renames and the restart, per platform
//! - `startup.rs`, `marker.rs`, `guard.rs`: an update under way across
//!   the restart, and rolling back
//! - `status.rs`, `error.rs`: what the API shows, faults by who caused them

mod error;
mod feed;
#[cfg(test)]
mod feed_tests;
mod guard;
mod marker;
mod stamp;
mod startup;
mod status;
mod swap;
mod trial;
mod updater;
mod version;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Notify;

pub use error::{Fault, UpdateError};
pub use feed::{build_file_name, check_target, with_entry, FeedEntry, MAX_FEED_BYTES};
pub use guard::guard;
pub use stamp::{build_target, current_version, read_stamp, write_stamp, StampError};
pub use status::{SharedStatus, UpdateState, UpdateStatus};
pub use version::Version;

use crate::releases::Releases;
use crate::settings::{parse_key, UpdateSettings};

/// The project's public key: the agent installs only builds it signed.
/// The project keeps the secret half offline and signs each build with
/// `shoal publish-update --key`. `update.project_key` in the config file
/// replaces it (see [`UpdateSettings::project_key`] for why that is safe).
///
/// Until the project sets its own key here, this one is a placeholder
/// whose secret half was thrown away when it was made: no one can sign a
/// build that agents with the default settings would install.
pub const PROJECT_KEY: &str = "e6d4ee889a180568d428d32f22452a3e9e0142bc625283179802dd8c648a15ed";

/// The key builds must be signed by under `settings`.
pub fn project_key(settings: &UpdateSettings) -> Result<[u8; 32], String> {
    parse_key(settings.project_key.as_deref().unwrap_or(PROJECT_KEY))
}

/// The updater of one agent, from its start to its serving.
#[derive(Debug)]
pub struct SelfUpdate {
    updater: updater::Updater,
    startup: startup::Startup,
}

impl SelfUpdate {
    /// Settles an update under way, before the agent binds or starts
    /// anything: a new build that must be rolled back is, here, and this
    /// call then never returns.
    pub(crate) fn settle(state_dir: &Path) -> startup::Startup {
        startup::on_start(state_dir)
    }

    /// Prepares the updater after [`SelfUpdate::settle`]; nothing is
    /// fetched until [`SelfUpdate::spawn`].
    pub(crate) fn new(
        settings: &UpdateSettings,
        startup: startup::Startup,
        state_dir: &Path,
        releases: Arc<Releases>,
    ) -> Result<SelfUpdate, String> {
        let key = project_key(settings)?;
        let status = status::new_status(settings, &key);
        if let Some(error) = &startup.rolled_back {
            status::record_error(&status, error);
        }
        let exe = std::env::current_exe()
            .inspect_err(|e| tracing::warn!("update: cannot find the agent's binary: {e}"))
            .ok();
        Ok(SelfUpdate {
            updater: updater::Updater {
                settings: settings.clone(),
                key,
                state_dir: state_dir.to_owned(),
                exe,
                releases,
                status,
                restart: Arc::new(Notify::new()),
            },
            startup,
        })
    }

    pub(crate) fn status(&self) -> SharedStatus {
        self.updater.status.clone()
    }

    /// Told when a new build is in place and the agent should restart.
    pub(crate) fn restart_signal(&self) -> Arc<Notify> {
        self.updater.restart.clone()
    }

    /// The binary to restart into, and the state folder.
    pub(crate) fn restart_target(&self) -> (Option<PathBuf>, PathBuf) {
        (self.updater.exe.clone(), self.updater.state_dir.clone())
    }

    /// Commits an update under way once the API at `api` answers, then
    /// checks the feed on schedule, until the task is aborted.
    pub(crate) fn spawn(self, api: SocketAddr, token: String) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let SelfUpdate { updater, startup } = self;
            if let Some(pending) = startup.pending {
                updater
                    .commit(pending, startup.committed, api.to_string(), token)
                    .await;
            }
            updater.run().await;
        })
    }
}

/// Runs the build just swapped in at `exe` in place of this process (or
/// the previous one, if it cannot start); returns only if neither ran.
pub(crate) fn restart_into_new(state_dir: &Path, exe: &Path) {
    startup::restart_into_new(state_dir, exe);
}
