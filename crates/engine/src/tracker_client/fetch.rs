//! The one function here that does I/O: send an announce, read the reply
//! with a hard size cap and an overall deadline, parse it.

use std::time::Duration;

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
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, TrackerError> {
    let url = response.url().to_string();
    let too_large = || TrackerError::TooLarge {
        url: String::new(),
        limit,
    };
    // Refuse up front when the server admits the size, so nothing is read.
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    // Each chunk is what the socket delivered; the loop ends at the end of
    // the body, at the cap, or at the caller's deadline.
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| TrackerError::Unreachable {
            url: url.clone(),
            source,
        })?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
