//! The local HTTP API, JSON in and out, under `/v1/`. The guard (see
//! `guard.rs`) runs before every handler, the fallback included. No
//! endpoint returns the token or the config file's contents. The server
//! around it (`server.rs`) bounds connections and slow clients.

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::guard::{self, Guard};
use crate::handoff::normalize_origin;
use crate::releases::{Releases, SettingsUpdate};
use crate::stream;
use crate::AgentError;

/// Largest request body: a URL or a few settings.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest torrent source (URL or path) accepted.
const MAX_SOURCE_LEN: usize = 4096;

/// What handlers share: the releases and the fixed settings to show.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub releases: Arc<Releases>,
    /// The settings that cannot change at run time, as shown by GET.
    pub fixed: serde_json::Value,
    /// Where the API answers: stream URLs point here.
    pub api_addr: SocketAddr,
    /// The updater's status, for `GET /v1/update`.
    pub update: crate::update::SharedStatus,
}

/// The web UI and the hand-off script, compiled in: the agent serves
/// itself, with nothing to install beside the binary.
const INDEX_HTML: &str = include_str!("../web/index.html");
const SHOAL_JS: &str = include_str!("../web/shoal.js");

pub fn router(state: ApiState, guard: Guard) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/shoal.js", get(script))
        .route("/v1/handoff", post(handoff).options(handoff_preflight))
        .route("/v1/stream/{secret}", get(stream_file).head(stream_file))
        .route("/v1/releases", get(list).post(add))
        .route("/v1/releases/{id}/pin", post(pin))
        .route("/v1/releases/{id}/unpin", post(unpin))
        .route("/v1/releases/{id}", delete(remove))
        .route("/v1/releases/{id}/pause", post(pause))
        .route("/v1/releases/{id}/resume", post(resume))
        .route("/v1/settings", get(get_settings).put(put_settings))
        .route("/v1/update", get(update_status))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
}

/// An error as the API answers it: a status that says whose fault it is,
/// and `{"error": message}`.
#[derive(Debug)]
struct ApiError(AgentError);

impl From<AgentError> for ApiError {
    fn from(error: AgentError) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            AgentError::Fetch { .. } | AgentError::Invalid(_) => StatusCode::BAD_REQUEST,
            AgentError::Forbidden(_) => StatusCode::FORBIDDEN,
            AgentError::NotATorrent { .. }
            | AgentError::Unsigned { .. }
            | AgentError::BadSignature { .. }
            | AgentError::Untrusted { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AgentError::UnknownRelease { .. } => StatusCode::NOT_FOUND,
            AgentError::AlreadyAdded { .. } | AgentError::HandoffRefused(_) => StatusCode::CONFLICT,
            AgentError::TooManyHandoffs(_) => StatusCode::TOO_MANY_REQUESTS,
            AgentError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.0.to_string() }))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

async fn list(State(state): State<ApiState>) -> ApiResult {
    let releases = state.releases.list().await;
    Ok(Json(json!({ "releases": releases })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    /// An http(s) URL or a local path to a `.torrent`.
    torrent: String,
}

async fn add(State(state): State<ApiState>, Json(request): Json<AddRequest>) -> ApiResult {
    check_source_length(&request.torrent)?;
    let release = state.releases.add(&request.torrent).await?;
    Ok((StatusCode::CREATED, Json(release)).into_response())
}

async fn pin(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(state.releases.pin(&id, true).await?).into_response())
}

async fn unpin(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(state.releases.pin(&id, false).await?).into_response())
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // The page runs only its own inline code and talks only to us.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SHOAL_JS,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct HandoffQuery {
    torrent: String,
    /// The file of a release of several files, as the page's link names
    /// it (`data-shoal-file`): a path inside the release, checked against
    /// the signed torrent's file list only.
    file: Option<String>,
}

/// The page's origin, from its `Origin` header, in the form browsers
/// compare; a request without one did not come from a page.
fn page_origin(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(normalize_origin)
        .ok_or_else(|| {
            ApiError(AgentError::Forbidden(
                "a hand-off comes from a web page, with its Origin header".to_owned(),
            ))
        })
}

fn check_source_length(torrent: &str) -> Result<(), ApiError> {
    if torrent.is_empty() || torrent.len() > MAX_SOURCE_LEN {
        return Err(AgentError::Invalid(format!(
            "\"torrent\" must be a URL or path of 1 to {MAX_SOURCE_LEN} bytes"
        ))
        .into());
    }
    Ok(())
}

/// CORS headers for `origin`, which passed every check: only that origin
/// may read the answer (never `*`).
fn cors_for(origin: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers
}

/// `POST /v1/handoff?torrent=URL[&file=PATH]` from a publisher's page.
async fn handoff(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<HandoffQuery>,
) -> ApiResult {
    let origin = page_origin(&headers)?;
    check_source_length(&query.torrent)?;
    crate::handoff::check_file_param(query.file.as_deref())?;
    let answer = state
        .releases
        .handoff(&origin, &query.torrent, query.file.as_deref())
        .await?;
    let body = json!({
        "stream_url": format!("http://{}{}", state.api_addr, answer.stream_path),
        "info_hash": answer.info_hash,
        "name": answer.name,
        "size": answer.size,
        "release": answer.release,
        "file": answer.file,
    });
    Ok((cors_for(&origin), Json(body)).into_response())
}

/// The CORS (and Private Network Access) preflight of a hand-off. It
/// does no network I/O at all (a page must not make the agent fetch
/// anything by asking whether it may ask): yes for a page asking about a
/// torrent on its own origin; the POST then checks the rest.
async fn handoff_preflight(headers: HeaderMap, Query(query): Query<HandoffQuery>) -> ApiResult {
    let origin = page_origin(&headers)?;
    check_source_length(&query.torrent)?;
    crate::handoff::check_file_param(query.file.as_deref())?;
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok());
    if asked != Some("POST") {
        return Err(AgentError::Forbidden("a hand-off is a POST".to_owned()).into());
    }
    crate::handoff::check_page_origin(&origin, &query.torrent)?;
    let mut answer = cors_for(&origin);
    answer.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    answer.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    answer.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    if headers.contains_key("access-control-request-private-network") {
        answer.insert(
            "access-control-allow-private-network",
            HeaderValue::from_static("true"),
        );
    }
    Ok((StatusCode::NO_CONTENT, answer).into_response())
}

/// `GET /v1/stream/SECRET`: the file, in order, as it is verified. The
/// first GET of a hand-off's stream starts its release, but only as a
/// browser download: a navigation (`Sec-Fetch-Mode: navigate` into a
/// document or frame), which the browser lists as a download; a fetch,
/// an image or a script from a page is refused. Browsers always send
/// these headers and pages cannot forge them; a program that is not a
/// browser sends none, and is taken as asking for the file itself.
async fn stream_file(
    State(state): State<ApiState>,
    method: Method,
    headers: HeaderMap,
    Path(secret): Path<String>,
) -> ApiResult {
    let fetch_header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let opened_as_download = match fetch_header("sec-fetch-mode") {
        None => true,
        Some(mode) => {
            mode == "navigate"
                && matches!(
                    fetch_header("sec-fetch-dest"),
                    None | Some("document" | "iframe" | "frame")
                )
        }
    };
    let plan = state
        .releases
        .stream(&secret, method == Method::HEAD, opened_as_download)
        .await?;
    Ok(stream::respond(
        plan.source,
        &plan.name,
        plan.length,
        &headers,
        method == Method::HEAD,
    ))
}

async fn pause(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(state.releases.pause(&id).await?).into_response())
}

async fn resume(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(state.releases.resume(&id).await?).into_response())
}

#[derive(Debug, Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    delete_files: bool,
}

async fn remove(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<RemoveQuery>,
) -> ApiResult {
    state.releases.remove(&id, query.delete_files).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn settings_json(state: &ApiState) -> serde_json::Value {
    let caps = state.releases.caps();
    let mut value = state.fixed.clone();
    if let Some(object) = value.as_object_mut() {
        object.insert("max_upload_bps".into(), caps.max_upload_bps.into());
        object.insert("max_download_bps".into(), caps.max_download_bps.into());
        object.insert("seeding".into(), caps.seeding.into());
        object.insert("shared_quota_bytes".into(), caps.shared_quota_bytes.into());
    }
    value
}

async fn get_settings(State(state): State<ApiState>) -> ApiResult {
    Ok(Json(settings_json(&state)).into_response())
}

async fn put_settings(
    State(state): State<ApiState>,
    Json(update): Json<SettingsUpdate>,
) -> ApiResult {
    state.releases.update_settings(update).await?;
    Ok(Json(settings_json(&state)).into_response())
}

/// The running version, what the feed offers, the last check and error.
async fn update_status(State(state): State<ApiState>) -> ApiResult {
    let status = state
        .update
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(Json(status).into_response())
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "no such endpoint; the API lives under /v1/" })),
    )
        .into_response()
}
