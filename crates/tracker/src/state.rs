//! What every request handler and background task of one tracker shares:
//! the in-memory peer store, the settings, the admission policy and, with
//! a database, the control plane. `http`, `api`, `dashboard` and
//! `background` read it; it depends on none of them, so the server's
//! modules form no cycle (docs/architecture.md, tracker layout).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::admission::SwarmAdmission;
use crate::control::Control;
use crate::metrics::Metrics;
use crate::peer_store::PeerStore;
use crate::settings::TrackerSettings;

/// What the handlers share.
pub(crate) struct AppState {
    /// Swarm membership, in memory; the database is `control`'s.
    pub(crate) peers: Mutex<PeerStore>,
    pub(crate) settings: TrackerSettings,
    pub(crate) admission: Arc<dyn SwarmAdmission>,
    /// Present when the tracker has a database.
    pub(crate) control: Option<Control>,
    pub(crate) metrics: Metrics,
}

impl AppState {
    /// A panic while the lock was held cannot leave the peer store
    /// half-updated in a way that matters more than losing the tracker, so
    /// carry on.
    pub(crate) fn peers(&self) -> MutexGuard<'_, PeerStore> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
