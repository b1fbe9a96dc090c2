//! The HTTP face of the tracker: `/announce` and `/scrape` over axum, plus
//! `/metrics`, and with a database the publisher API and dashboard
//! (`api`, `dashboard`).
//!
//! Handlers parse the raw query, ask the admission hook, then take the
//! peer-store lock for a moment to apply the announce; nothing awaits while
//! the lock is held. Every answer to a tracker request is HTTP 200 with a
//! bencoded body, failures included, because that is what clients read.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::admission::SwarmAdmission;
use crate::announce_query::{parse_announce_query, parse_scrape_query};
use crate::control::Control;
use crate::listener::RemoteAddr;
use crate::metrics::{Gauges, Metrics};
use crate::peer_store::{Announce, PeerStore};
use crate::response::{announce_body, failure_body, scrape_body, PeerListForm};
use crate::TrackerSettings;

/// What the handlers share.
pub(crate) struct AppState {
    pub(crate) store: Mutex<PeerStore>,
    pub(crate) settings: TrackerSettings,
    pub(crate) admission: Arc<dyn SwarmAdmission>,
    /// Present when the tracker has a database.
    pub(crate) control: Option<Control>,
    pub(crate) metrics: Metrics,
}

impl AppState {
    /// A panic while the lock was held cannot leave the store half-updated
    /// in a way that matters more than losing the tracker, so carry on.
    pub(crate) fn store(&self) -> MutexGuard<'_, PeerStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/announce", get(announce))
        .route("/scrape", get(scrape))
        .route("/metrics", get(metrics))
        .merge(crate::api::routes())
        .merge(crate::dashboard::routes())
        .fallback(not_found)
        .with_state(state)
}

async fn announce(
    State(state): State<Arc<AppState>>,
    ConnectInfo(RemoteAddr(remote)): ConnectInfo<RemoteAddr>,
    uri: Uri,
) -> Response {
    let query = uri.query().unwrap_or("").as_bytes();
    Metrics::add(&state.metrics.announces, 1);
    let body = handle_announce(&state, remote, query, Instant::now()).unwrap_or_else(|reason| {
        Metrics::add(&state.metrics.announces_refused, 1);
        tracing::debug!(%remote, %reason, "announce refused");
        failure_body(&reason)
    });
    bencoded(body)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let (swarms, peers) = {
        let store = state.store();
        (store.swarm_count(), store.peer_count())
    };
    let gauges = Gauges {
        swarms,
        peers,
        releases: state.control.as_ref().map_or(0, |c| c.registry.len()),
        pending_sessions: state.control.as_ref().map_or(0, Control::pending_len),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(gauges),
    )
        .into_response()
}

async fn scrape(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    Metrics::add(&state.metrics.scrapes, 1);
    let query = uri.query().unwrap_or("").as_bytes();
    let body =
        handle_scrape(&state, query, Instant::now()).unwrap_or_else(|reason| failure_body(&reason));
    bencoded(body)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found: this tracker serves /announce, /scrape, /metrics, /dashboard and /api/v1/\n",
    )
        .into_response()
}

/// Announce logic minus HTTP: `Err` is the failure reason for the client.
fn handle_announce(
    state: &AppState,
    remote: SocketAddr,
    query: &[u8],
    now: Instant,
) -> Result<Vec<u8>, String> {
    let query = parse_announce_query(query).map_err(|e| e.to_string())?;
    let admitted = state.admission.admit(&query.info_hash).map_err(|r| r.0)?;
    if let (Some(control), Some(account)) = (&state.control, admitted.account) {
        if !control.record(account, &query, state.settings.max_pending_sessions) {
            return Err("the tracker is overloaded; announce again later".to_owned());
        }
    }
    let settings = &state.settings;
    let numwant = query
        .numwant
        .unwrap_or(settings.default_numwant)
        .min(settings.max_numwant);
    // The `ip` parameter is ignored on purpose: trusting it would let anyone
    // list a victim's address in every swarm.
    let ip = remote.ip().to_canonical();
    let announce = Announce {
        info_hash: admitted.swarm,
        peer_id: query.peer_id,
        addr: SocketAddr::new(ip, query.port),
        left: query.left,
        event: query.event,
        numwant: usize::try_from(numwant).unwrap_or(usize::MAX),
    };
    let outcome = state.store().announce(now, &announce);
    tracing::debug!(
        %remote,
        info_hash = %hex(&query.info_hash),
        event = ?query.event,
        peers = outcome.peers.len(),
        "announce"
    );
    let form = PeerListForm {
        compact: query.compact,
        no_peer_id: query.no_peer_id,
    };
    Ok(announce_body(&outcome, settings, form))
}

fn handle_scrape(state: &AppState, query: &[u8], now: Instant) -> Result<Vec<u8>, String> {
    let hashes = parse_scrape_query(query).map_err(|e| e.to_string())?;
    // A refused swarm is left out of `files`, as if unknown.
    let admitted: Vec<([u8; 20], [u8; 20])> = hashes
        .into_iter()
        .filter_map(|h| state.admission.admit(&h).ok().map(|a| (h, a.swarm)))
        .collect();
    let mut store = state.store();
    let files: Vec<_> = admitted
        .iter()
        .map(|(asked, swarm)| (*asked, store.stats(now, swarm)))
        .collect();
    Ok(scrape_body(&files))
}

fn bencoded(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
