//! shoal's control plane: a standard BitTorrent HTTP tracker that admits
//! only signed releases of registered publishers and accounts the bytes
//! they move.
//!
//! `GET /announce` (BEP 3, compact peers per BEP 23, `peers6` per BEP 7)
//! introduces peers to each other, neighbours first; `GET /scrape`
//! (BEP 48) reports swarm sizes. Layout, one job per module:
//!
//! - [`settings`]: every knob, with defaults and units;
//! - [`announce_query`]: the raw query-string parser (pure);
//! - [`peer_store`], `swarm_table` and [`peer_selection`]: swarm
//!   membership and who owns a peer id (sans-IO, O(numwant) per announce);
//! - [`response`]: bencoded replies (pure);
//! - [`admission`] and [`registry`]: which swarms exist (all, or the
//!   registered releases);
//! - [`release_check`]: what a publisher's upload must be (pure);
//! - [`accounting`]: from announces to billable bytes (pure);
//! - [`store`]: the database trait, SQLite and PostgreSQL; `ids`: the
//!   row ids the store and the accounting share; [`days`]: day numbers;
//! - `control`: the accounting window and the database handle;
//!   `background`: the batch, prune, peer-exchange and expiry loops;
//! - `state`: what the handlers and loops share (`AppState`);
//! - `http`, `api`, `dashboard`, [`metrics`] and `listener`: the axum
//!   server and its connection bounds;
//! - `client_addr`: who the client is (trusted proxies' `X-Forwarded-For`)
//!   and the session identity (peer id + IP + `key`);
//! - `error`: why the tracker could not start or stopped.
//!
//! No two modules import each other, directly or round a loop
//! (`scripts/check_structure.py` checks it).
//!
//! Who may do what (docs/architecture.md, threat model): a stranger may
//! announce its own sessions, at most `max_sessions_per_ip` per swarm, and
//! nothing it reports is billed before a baseline and within a line rate;
//! it cannot update, stop or silence another client's peer id, nor learn
//! peer ids from `compact=0`. A publisher's token guards the API and the
//! dashboard (read before any request body); the operator's token guards
//! `/metrics`.

pub mod accounting;
pub mod admission;
pub mod announce_query;
mod api;
mod background;
mod client_addr;
mod control;
mod dashboard;
mod error;
mod http;
mod ids;
mod listener;
pub mod metrics;
pub mod peer_selection;
pub mod peer_store;
pub mod registry;
pub mod release_check;
pub mod response;
pub mod settings;
mod state;
pub mod store;
mod swarm_table;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::net::TcpListener;

pub use admission::{AdmitAll, Admitted, Refusal, SwarmAdmission};
pub use api::{new_token, token_hash};
pub use error::TrackerError;
pub use settings::TrackerSettings;
/// Day numbers and `YYYY-MM-DD`, shared with the rest of shoal.
pub use units::days;

use listener::BoundedListener;
use peer_store::PeerStore;
use state::AppState;

/// A tracker to be started: settings plus the pluggable parts.
pub struct Tracker {
    settings: TrackerSettings,
    admission: Arc<dyn SwarmAdmission>,
    store: Option<Box<dyn store::Store>>,
    rng_seed: Option<u64>,
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker")
            .field("settings", &self.settings)
            .field("rng_seed", &self.rng_seed)
            .finish_non_exhaustive()
    }
}

impl Tracker {
    /// An open tracker (every info-hash admitted) with a random RNG seed.
    pub fn new(settings: TrackerSettings) -> Self {
        Tracker {
            settings,
            admission: Arc::new(AdmitAll),
            store: None,
            rng_seed: None,
        }
    }

    /// Tracks only releases registered in `store`, and accounts their
    /// bytes there.
    pub fn with_store(mut self, store: Box<dyn store::Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Replaces the admit-all policy.
    pub fn with_admission(mut self, admission: impl SwarmAdmission) -> Self {
        self.admission = Arc::new(admission);
        self
    }

    /// Makes peer selection reproducible (tests, simulations).
    pub fn with_rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = Some(seed);
        self
    }

    /// Checks the settings and binds the listening socket. Port 0 picks a
    /// free port; [`BoundTracker::local_addr`] tells which.
    pub async fn bind(self) -> Result<BoundTracker, TrackerError> {
        self.settings.validate()?;
        let addr = self.settings.listen;
        let bind_error = |source| TrackerError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let rng = match self.rng_seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_entropy(),
        };
        let listener = BoundedListener::new(
            listener,
            self.settings.max_connections,
            Duration::from_secs(self.settings.idle_timeout_secs),
        );
        let (control, admission) = match self.store {
            Some(store) => {
                let instance = hex::encode(rand::random::<[u8; 8]>());
                let store_error = |e: store::StoreError| TrackerError::Store(e.to_string());
                let control = control::Control::new(store, instance)
                    .await
                    .map_err(store_error)?;
                let registry: Arc<dyn SwarmAdmission> = Arc::new(Arc::clone(&control.registry));
                (Some(control), registry)
            }
            None => (None, self.admission),
        };
        let state = AppState {
            peers: Mutex::new(
                PeerStore::new(self.settings.peer_expiry(), rng)
                    .with_max_sessions_per_ip(self.settings.max_sessions_per_ip),
            ),
            settings: self.settings,
            admission,
            control,
            metrics: metrics::Metrics::default(),
        };
        Ok(BoundTracker {
            local_addr,
            listener,
            state: Arc::new(state),
        })
    }
}

/// A tracker whose socket is bound but which does not answer yet.
pub struct BoundTracker {
    local_addr: SocketAddr,
    listener: BoundedListener,
    state: Arc<AppState>,
}

impl fmt::Debug for BoundTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundTracker")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl BoundTracker {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then lets open requests finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), TrackerError> {
        let _sweeper = AbortOnDrop(tokio::spawn(background::sweep_expired_peers(Arc::clone(
            &self.state,
        ))));
        let _control = AbortOnDrop(tokio::spawn(background::run(Arc::clone(&self.state))));
        let app = http::router(Arc::clone(&self.state))
            .into_make_service_with_connect_info::<listener::RemoteAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(TrackerError::Serve);
        // The last window is written on the way out, not lost.
        if let Some(control) = &self.state.control {
            control
                .flush(&self.state.metrics, self.state.settings.ceilings())
                .await;
            control.close().await;
        }
        served
    }
}

/// Binds `settings.listen` and serves until `shutdown` completes.
pub async fn serve(
    settings: TrackerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), TrackerError> {
    Tracker::new(settings).bind().await?.run(shutdown).await
}

/// Stops the sweep task when the server future ends or is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
