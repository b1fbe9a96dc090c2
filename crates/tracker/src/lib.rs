//! shoal's control plane, first part: a standard BitTorrent HTTP tracker.
//!
//! `GET /announce` (BEP 3, compact peers per BEP 23, `peers6` per BEP 7)
//! introduces peers to each other, neighbours first; `GET /scrape`
//! (BEP 48) reports swarm sizes. Layout, one job per module:
//!
//! - [`settings`]: every knob, with defaults and units;
//! - [`announce_query`]: the raw query-string parser (pure);
//! - [`peer_store`] and [`peer_selection`]: swarm membership (sans-IO);
//! - [`response`]: bencoded replies (pure);
//! - [`admission`]: the hook that will restrict swarms to signed releases;
//! - `http` and `listener`: the axum server and its connection bounds.
//!
//! Later issues add the publisher registry and accounting beside the peer
//! store; they plug into [`SwarmAdmission`] and the handlers.

pub mod admission;
pub mod announce_query;
mod http;
mod listener;
pub mod peer_selection;
pub mod peer_store;
pub mod response;
pub mod settings;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use thiserror::Error;
use tokio::net::TcpListener;

pub use admission::{AdmitAll, Refusal, SwarmAdmission};
pub use settings::TrackerSettings;

use http::AppState;
use listener::BoundedListener;
use peer_store::PeerStore;

/// Why the tracker could not start or stopped; each says what to change.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrackerError {
    #[error("cannot listen on {addr}: {source}; choose another address or port (--listen) or stop the program using it")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the tracker's HTTP server failed: {0}")]
    Serve(#[source] io::Error),
    #[error("invalid tracker settings: {0}")]
    InvalidSettings(String),
}

/// A tracker to be started: settings plus the pluggable parts.
pub struct Tracker {
    settings: TrackerSettings,
    admission: Arc<dyn SwarmAdmission>,
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
            rng_seed: None,
        }
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
        let state = AppState {
            store: Mutex::new(PeerStore::new(self.settings.peer_expiry(), rng)),
            settings: self.settings,
            admission: self.admission,
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
        let _sweeper = AbortOnDrop(tokio::spawn(sweep_expired_peers(Arc::clone(&self.state))));
        let app =
            http::router(self.state).into_make_service_with_connect_info::<listener::RemoteAddr>();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(TrackerError::Serve)
    }
}

/// Binds `settings.listen` and serves until `shutdown` completes.
pub async fn serve(
    settings: TrackerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), TrackerError> {
    Tracker::new(settings).bind().await?.run(shutdown).await
}

/// Lazy expiry on access keeps answers right; this sweep keeps memory
/// bounded for swarms nobody asks about any more.
async fn sweep_expired_peers(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.settings.sweep_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut store = state.store();
        let dropped = store.sweep(Instant::now());
        if dropped > 0 {
            tracing::debug!(
                dropped,
                swarms = store.swarm_count(),
                "expired peers dropped"
            );
        }
    }
}

/// Stops the sweep task when the server future ends or is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
