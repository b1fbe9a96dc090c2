//! The one function here that does I/O: send an announce, read the reply
//! with a hard size cap and an overall deadline, parse it.

use std::time::Duration;

use crate::http_body::BodyError;

use super::MAX_RESPONSE_BYTES;
use super::{
    announce_url, parse_announce_response, AnnounceRequest, AnnounceResponse, TrackerError,
};

/// Announces to the tracker at `base_url` and returns its parsed reply.
///
/// `timeout` covers everything: connecting, the status line and the whole
/// body. Errors name `base_url` (without our added parameters).
pub async fn announce(
    client: &reqwest::Client,
    base_url: &str,
    req: &AnnounceRequest,
    timeout: Duration,
) -> Result<AnnounceResponse, TrackerError> {
    let url = announce_url(base_url, req)?;
    let body = match tokio::time::timeout(timeout, fetch(client, &url, base_url, timeout)).await {
        Ok(body) => body?,
        Err(_elapsed) => {
            return Err(TrackerError::Timeout {
                url: base_url.to_owned(),
                after: timeout,
            })
        }
    };
    parse_announce_response(&body).map_err(|e| e.at_url(base_url))
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    tracker: &str,
    timeout: Duration,
) -> Result<Vec<u8>, TrackerError> {
    let network = |source: reqwest::Error| {
        if source.is_timeout() {
            TrackerError::Timeout {
                url: tracker.to_owned(),
                after: timeout,
            }
        } else {
            TrackerError::Unreachable {
                url: tracker.to_owned(),
                source,
            }
        }
    };
    let response = client.get(url).send().await.map_err(network)?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(TrackerError::HttpStatus {
            url: tracker.to_owned(),
            status: status.as_u16(),
        });
    }
    match read_capped(response, MAX_RESPONSE_BYTES).await {
        Err(TrackerError::Unreachable { source, .. }) => Err(network(source)),
        other => other.map_err(|e| e.at_url(tracker)),
    }
}

/// Reads a response body, failing with [`TrackerError::TooLarge`] as soon
/// as it passes `limit` bytes; the rest is never read or buffered.
pub async fn read_capped(
    response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, TrackerError> {
    let url = response.url().to_string();
    crate::http_body::read_capped(response, limit as u64)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { .. } => TrackerError::TooLarge {
                url: String::new(),
                limit,
            },
            BodyError::Network(source) => TrackerError::Unreachable { url, source },
        })
}
