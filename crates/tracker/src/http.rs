//! The HTTP face of the tracker: `/announce` and `/scrape` over axum, plus
//! `/metrics` (operator token only), and with a database the publisher API
//! and dashboard (`api`, `dashboard`).
//!
//! The client's address is the connection's, or what a trusted proxy says
//! (`client_addr`). An announce is applied to the peer store first, which
//! decides whether this client may use the peer id and open one more
//! session; only an accepted announce reaches the accounting, under a
//! session id bound to the peer id, the IP and the `key`.
//!
//! Handlers parse the raw query, ask the admission hook, then take the
//! peer-store lock for a moment to apply the announce; nothing awaits while
//! the lock is held. Every answer to a tracker request is HTTP 200 with a
//! bencoded body, failures included, because that is what clients read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::announce_query::{parse_announce_query, parse_scrape_query};
use crate::client_addr::{client_ip, ip_bytes, key_digest, session_id};
use crate::control::Control;
use crate::listener::RemoteAddr;
use crate::metrics::{Gauges, Metrics};
use crate::peer_store::{Announce, AnnounceRefusal};
use crate::response::{announce_body, failure_body, scrape_body, PeerListForm};
use crate::state::AppState;

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
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = uri.query().unwrap_or("").as_bytes();
    Metrics::add(&state.metrics.announces, 1);
    let client = client_ip(remote.ip(), &headers, &state.settings.trusted_proxies);
    let body = handle_announce(&state, client, query, Instant::now()).unwrap_or_else(|reason| {
        Metrics::add(&state.metrics.announces_refused, 1);
        tracing::debug!(%remote, %reason, "announce refused");
        failure_body(&reason)
    });
    bencoded(body)
}

async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(expected) = &state.settings.metrics_token else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off: start the tracker with --metrics-token-file to serve them\n",
        )
            .into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "send the operator's metrics token as Authorization: Bearer TOKEN\n",
        )
            .into_response();
    }
    let (swarms, peers) = {
        let peers = state.peers();
        (peers.swarm_count(), peers.peer_count())
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

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Announce logic minus HTTP: `Err` is the failure reason for the client.
/// `ip` is the client's address (see `client_addr`).
fn handle_announce(
    state: &AppState,
    ip: std::net::IpAddr,
    query: &[u8],
    now: Instant,
) -> Result<Vec<u8>, String> {
    let query = parse_announce_query(query).map_err(|e| e.to_string())?;
    let admitted = state.admission.admit(&query.info_hash).map_err(|r| r.0)?;
    let settings = &state.settings;
    let numwant = query
        .numwant
        .unwrap_or(settings.default_numwant)
        .min(settings.max_numwant);
    // The `ip` parameter is ignored on purpose: trusting it would let anyone
    // list a victim's address in every swarm.
    let announce = Announce {
        info_hash: admitted.swarm,
        peer_id: query.peer_id,
        addr: SocketAddr::new(ip, query.port),
        key: query.key.as_deref().map(key_digest),
        left: query.left,
        event: query.event,
        numwant: usize::try_from(numwant).unwrap_or(usize::MAX),
        totals: [
            query.uploaded,
            query.downloaded,
            query.origin_bytes.unwrap_or(0),
        ],
    };
    let outcome = state.peers().announce(now, &announce).map_err(|refusal| {
        let counter = match refusal {
            AnnounceRefusal::PeerIdTaken => &state.metrics.peer_id_refused,
            _ => &state.metrics.sessions_refused,
        };
        Metrics::add(counter, 1);
        refusal.to_string()
    })?;
    let account = admitted.account.filter(|_| !outcome.report_unchanged);
    if let (Some(control), Some(account)) = (&state.control, account) {
        let session = session_id(&query.peer_id, ip, query.key.as_deref());
        if !control.record(
            account,
            &query,
            session,
            ip_bytes(ip),
            settings.max_pending_sessions,
        ) {
            return Err("the tracker is overloaded; announce again later".to_owned());
        }
    }
    tracing::debug!(
        %ip,
        info_hash = %hex::encode(query.info_hash),
        event = ?query.event,
        peers = outcome.peers.len(),
        "announce"
    );
    let form = PeerListForm {
        compact: query.compact,
        no_peer_id: query.no_peer_id || !settings.share_peer_ids,
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
    let mut peers = state.peers();
    let files: Vec<_> = admitted
        .iter()
        .map(|(asked, swarm)| (*asked, peers.stats(now, swarm)))
        .collect();
    Ok(scrape_body(&files))
}

fn bencoded(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}
