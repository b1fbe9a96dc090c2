//! The publisher API, `/api/v1/…`: register and withdraw releases, read
//! usage as JSON. A publisher proves who it is with the token the operator
//! printed at `publisher add`, as `Authorization: Bearer TOKEN` (or the
//! dashboard's cookie).
//!
//! The token is checked from the headers before a byte of the body is
//! read: a stranger's upload is refused after its headers, so memory per
//! request stays bounded by what a publisher may send
//! ([`MAX_TORRENT_BYTES`]), and only publishers may send that much.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::accounting::{day_of, UsageDelta};
use crate::control::{unix_now, Control};
use crate::metrics::Metrics;
use crate::release_check::{check_release, MAX_TORRENT_BYTES};
use crate::state::AppState;
use crate::store::{Publisher, StoreError};
use units::days::{format_day, parse_day};

/// Days shown when the request names none.
const DEFAULT_DAYS: i64 = 30;
/// Longest range one usage request may cover.
const MAX_DAYS: i64 = 3660;
/// The dashboard's cookie.
pub(crate) const TOKEN_COOKIE: &str = "shoal_token";

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        // The limit is applied in `register`, after the token check.
        .route(
            "/api/v1/releases",
            post(register).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/releases/{info_hash}", delete(withdraw))
        .route("/api/v1/usage", get(usage))
}

/// The stored form of a token: its SHA-256, so a database leak does not
/// leak working tokens.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh API token: 32 random bytes, hex.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// An API error: a status and a JSON `{"error": …}` body.
pub(crate) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.1 }).to_string();
        (self.0, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(why) => ApiError(StatusCode::CONFLICT, why),
            other => {
                tracing::error!(error = %other, "database error in the API");
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the tracker's database is unavailable; try again later".into(),
                )
            }
        }
    }
}

fn control(state: &AppState) -> Result<&Control, ApiError> {
    state.control.as_ref().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "this is an open tracker without a database: no publishers or releases".into(),
        )
    })
}

/// The token from `Authorization: Bearer` or the dashboard cookie.
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == TOKEN_COOKIE).then(|| value.to_owned())
    })
}

pub(crate) async fn authenticate(
    control: &Control,
    headers: &HeaderMap,
) -> Result<Publisher, ApiError> {
    let unauthorized = |why: &str| ApiError(StatusCode::UNAUTHORIZED, why.to_owned());
    let token = presented_token(headers)
        .ok_or_else(|| unauthorized("send the publisher token as Authorization: Bearer TOKEN"))?;
    if token.len() > 128 {
        return Err(unauthorized("unknown token"));
    }
    let hash = token_hash(&token);
    control
        .with_db(move |db| db.publisher_by_token(&hash))
        .await?
        .ok_or_else(|| unauthorized("unknown token; ask the operator for yours"))
}

async fn register(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let control = control(&state)?;
    let publisher = authenticate(control, &headers).await?;
    let too_large = || {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a torrent file is at most {MAX_TORRENT_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_TORRENT_BYTES as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, MAX_TORRENT_BYTES)
        .await
        .map_err(|_| too_large())?;
    let release = match check_release(&body, &publisher, unix_now()) {
        Ok(release) => release,
        Err(error) => {
            Metrics::add(&state.metrics.registrations_refused, 1);
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                error.to_string(),
            ));
        }
    };
    let (swarm, alias, name) = (release.swarm, release.alias, release.name.clone());
    let (id, releases) = control
        .with_db(move |db| {
            let id = db.add_release(&release)?;
            Ok::<_, StoreError>((id, db.releases()?))
        })
        .await?;
    control.registry.load(&releases);
    Metrics::add(&state.metrics.registrations, 1);
    tracing::info!(publisher = %publisher.name, release = %name, "release registered");
    let body = serde_json::json!({
        "release": id,
        "name": name,
        "info_hash": hex::encode(swarm),
        "alias": alias.map(hex::encode),
    });
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

async fn withdraw(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(info_hash): Path<String>,
) -> Result<StatusCode, ApiError> {
    let control = control(&state)?;
    let publisher = authenticate(control, &headers).await?;
    let swarm: [u8; 20] = hex::decode(&info_hash)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "the info-hash must be 40 hex digits".into(),
            )
        })?;
    let (found, releases) = control
        .with_db(move |db| {
            let found = db.withdraw_release(publisher.id, &swarm, unix_now())?;
            Ok::<_, StoreError>((found, db.releases()?))
        })
        .await?;
    control.registry.load(&releases);
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            "you have no release with this info-hash".into(),
        ))
    }
}

/// Usage of one publisher over a range of days, as JSON and dashboard show it.
#[derive(Debug, Serialize)]
pub(crate) struct UsageReport {
    pub publisher: String,
    pub from: String,
    pub to: String,
    pub totals: Totals,
    pub days: Vec<DayRow>,
    pub releases: Vec<ReleaseRow>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Totals {
    #[serde(flatten)]
    pub usage: UsageDelta,
    /// Distinct peers per day, summed over the days.
    pub peer_days: u64,
    /// peer bytes / (peer + origin bytes), in percent; `None` before any.
    pub offload_percent: Option<f64>,
}

impl Totals {
    /// Saturating, like every sum of figures clients reported.
    fn add(&mut self, usage: &UsageDelta, distinct_peers: u64) {
        self.usage.add(usage);
        self.peer_days = self.peer_days.saturating_add(distinct_peers);
        let (peer, origin) = (self.usage.peer_bytes as f64, self.usage.origin_bytes as f64);
        self.offload_percent = (peer + origin > 0.0).then(|| 100.0 * peer / (peer + origin));
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct DayRow {
    pub day: String,
    pub totals: Totals,
}

#[derive(Debug, Serialize)]
pub(crate) struct ReleaseRow {
    pub name: String,
    pub info_hash: String,
    pub size: u64,
    pub withdrawn: bool,
    pub totals: Totals,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// Reads the day range of a request: `from`/`to` as `YYYY-MM-DD`,
/// defaulting to the last 30 days.
pub(crate) fn day_range(range: &Range) -> Result<(i64, i64), ApiError> {
    let bad = |what: &str| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("{what} must be a date as YYYY-MM-DD"),
        )
    };
    let to = match &range.to {
        Some(text) => parse_day(text).ok_or_else(|| bad("to"))?,
        None => day_of(unix_now()),
    };
    let from = match &range.from {
        Some(text) => parse_day(text).ok_or_else(|| bad("from"))?,
        None => to - (DEFAULT_DAYS - 1),
    };
    if from > to || to - from >= MAX_DAYS {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("from must not be after to, and the range at most {MAX_DAYS} days"),
        ));
    }
    Ok((from, to))
}

pub(crate) async fn usage_report(
    control: &Control,
    publisher: Publisher,
    from: i64,
    to: i64,
) -> Result<UsageReport, ApiError> {
    let id = publisher.id;
    let (rows, releases) = control
        .with_db(move |db| Ok::<_, StoreError>((db.usage(id, from, to)?, db.releases()?)))
        .await?;
    let mut totals = Totals::default();
    let mut days: BTreeMap<i64, Totals> = BTreeMap::new();
    let mut by_release: BTreeMap<i64, Totals> = BTreeMap::new();
    for row in &rows {
        totals.add(&row.usage, row.distinct_peers);
        days.entry(row.day)
            .or_default()
            .add(&row.usage, row.distinct_peers);
        by_release
            .entry(row.release)
            .or_default()
            .add(&row.usage, row.distinct_peers);
    }
    let releases = releases
        .into_iter()
        .filter(|r| r.publisher == id)
        .map(|r| ReleaseRow {
            name: r.name,
            info_hash: hex::encode(r.swarm),
            size: r.size,
            withdrawn: r.withdrawn_unix.is_some(),
            totals: by_release.remove(&r.id).unwrap_or_default(),
        })
        .collect();
    Ok(UsageReport {
        publisher: publisher.name,
        from: format_day(from),
        to: format_day(to),
        totals,
        days: days
            .into_iter()
            .map(|(day, totals)| DayRow {
                day: format_day(day),
                totals,
            })
            .collect(),
        releases,
    })
}

async fn usage(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(range): Query<Range>,
) -> Result<Response, ApiError> {
    let control = control(&state)?;
    let publisher = authenticate(control, &headers).await?;
    let (from, to) = day_range(&range)?;
    let report = usage_report(control, publisher, from, to).await?;
    let body = serde_json::to_string(&report)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
