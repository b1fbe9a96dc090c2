//! What the API shows of the updater (`GET /v1/update`): the running
//! version, what the feed offers, the last check and the last error with
//! who is at fault.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;

use super::error::{Fault, UpdateError};
use crate::settings::UpdateSettings;
use crate::state::unix_now;

/// What the updater is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateState {
    /// Updates are off, or no feed is set: nothing is fetched.
    Off,
    /// Deferred until `defer_until_unix`.
    Deferred,
    Idle,
    Checking,
    Downloading,
    Trying,
    Restarting,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorView {
    pub fault: Fault,
    pub message: String,
    pub at_unix: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateStatus {
    pub current_version: String,
    pub target: String,
    pub enabled: bool,
    pub feed_url: String,
    pub check_interval_secs: u64,
    pub defer_until_unix: u64,
    /// The key builds must be signed by (public).
    pub project_key: String,
    pub state: UpdateState,
    /// The newer build the feed offers, once checked.
    pub offered_version: Option<String>,
    pub last_check_unix: Option<u64>,
    pub last_error: Option<ErrorView>,
    /// The last update that took, like "1.0.0 to 1.0.1".
    pub last_update: Option<String>,
}

pub type SharedStatus = Arc<Mutex<UpdateStatus>>;

pub fn new_status(settings: &UpdateSettings, key: &[u8; 32]) -> SharedStatus {
    Arc::new(Mutex::new(UpdateStatus {
        current_version: super::stamp::current_version().to_owned(),
        target: super::stamp::build_target().to_owned(),
        enabled: settings.enabled,
        feed_url: settings.feed_url.clone(),
        check_interval_secs: settings.check_interval_secs,
        defer_until_unix: settings.defer_until_unix,
        project_key: hex::encode(key),
        state: if settings.enabled && !settings.feed_url.is_empty() {
            UpdateState::Idle
        } else {
            UpdateState::Off
        },
        offered_version: None,
        last_check_unix: None,
        last_error: None,
        last_update: None,
    }))
}

pub fn lock(status: &SharedStatus) -> MutexGuard<'_, UpdateStatus> {
    status.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn record_error(status: &SharedStatus, error: &UpdateError) {
    tracing::warn!("update: {error}");
    lock(status).last_error = Some(ErrorView {
        fault: error.fault(),
        message: error.to_string(),
        at_unix: unix_now(),
    });
}
