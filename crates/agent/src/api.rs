//! The local HTTP API, JSON in and out, under `/v1/`. The guard (see
//! `guard.rs`) runs before every handler, the fallback included. No
//! endpoint returns the token or the config file's contents.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::guard::{self, Guard};
use crate::releases::{Releases, SettingsUpdate};
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
}

pub fn router(state: ApiState, guard: Guard) -> Router {
    Router::new()
        .route("/v1/releases", get(list).post(add))
        .route("/v1/releases/{id}", delete(remove))
        .route("/v1/releases/{id}/pause", post(pause))
        .route("/v1/releases/{id}/resume", post(resume))
        .route("/v1/settings", get(get_settings).put(put_settings))
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
            AgentError::NotATorrent { .. }
            | AgentError::Unsigned { .. }
            | AgentError::BadSignature { .. }
            | AgentError::Untrusted { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AgentError::UnknownRelease { .. } => StatusCode::NOT_FOUND,
            AgentError::AlreadyAdded { .. } => StatusCode::CONFLICT,
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
    if request.torrent.is_empty() || request.torrent.len() > MAX_SOURCE_LEN {
        return Err(AgentError::Invalid(format!(
            "\"torrent\" must be a URL or path of 1 to {MAX_SOURCE_LEN} bytes"
        ))
        .into());
    }
    let release = state.releases.add(&request.torrent).await?;
    Ok((StatusCode::CREATED, Json(release)).into_response())
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

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "no such endpoint; the API lives under /v1/" })),
    )
        .into_response()
}
