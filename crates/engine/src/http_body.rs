//! Reading an HTTP response body from a server we do not trust (a tracker,
//! a web page that hands off a torrent, an origin's `.well-known` file):
//! the body is refused as soon as it passes a byte limit, before the rest is
//! read or buffered. Every client-side body read in shoal goes through
//! [`read_capped`].

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The server sent, or announced, more than the caller allows.
    #[error("larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The connection failed while the body streamed in.
    #[error(transparent)]
    Network(#[from] reqwest::Error),
}

/// Reads `response`'s body, failing with [`BodyError::TooLarge`] as soon as
/// it passes `limit` bytes (at once when `Content-Length` says so).
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, BodyError> {
    let too_large = || BodyError::TooLarge { limit };
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    // Each chunk is what the socket delivered; the loop ends at the end of
    // the body, at the cap, or at the caller's deadline.
    while let Some(chunk) = response.chunk().await? {
        if (body.len() as u64).saturating_add(chunk.len() as u64) > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
