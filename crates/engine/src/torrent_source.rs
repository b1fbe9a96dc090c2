//! Where a download starts: a `.torrent` path or an http(s) URL to one. The
//! CLI and the agent both load torrents here, so both refuse the same
//! things: anything over [`meta::MAX_TORRENT_BYTES`] (or a smaller limit a
//! caller asks for), a failed fetch, or bytes that are not a torrent.

use std::net::SocketAddr;
use std::time::Duration;

use meta::{Torrent, TorrentError, MAX_TORRENT_BYTES};

use crate::http_body::{read_capped, BodyError};

/// How long a torrent fetch from a URL may take, all told.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed when fetching a torrent by URL.
pub const FETCH_REDIRECTS: usize = 5;

/// A torrent, the bytes it was parsed from, and (when fetched) the address
/// of the server that sent it.
#[derive(Debug)]
pub struct LoadedTorrent {
    pub torrent: Torrent,
    pub bytes: Vec<u8>,
    /// The server's address (of the last hop), for a fetched torrent.
    pub from: Option<SocketAddr>,
}

/// Why a torrent could not be loaded; `location` is the path or URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {location}")]
    Read {
        location: String,
        source: std::io::Error,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot fetch {location}: {reason}")]
    Unreachable { location: String, reason: String },
    /// The server answered, but not with a body (`status` is not 2xx).
    #[error("{location} answered {status}")]
    Status {
        location: String,
        status: reqwest::StatusCode,
    },
    /// More bytes than a torrent may have.
    #[error("{location} is larger than {limit} bytes")]
    TooLarge { location: String, limit: u64 },
    /// The bytes are not a usable torrent.
    #[error("{location} is not a usable torrent")]
    Invalid {
        location: String,
        source: TorrentError,
    },
}

/// An HTTP client for [`load`]: certificate checks (always on), the overall
/// deadline and a few redirects.
pub fn fetch_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(FETCH_REDIRECTS))
        .build()
}

/// Whether `source` names a URL rather than a file.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Loads the torrent at `source`, a path or an http(s) URL (fetched with
/// `client`), at most [`MAX_TORRENT_BYTES`].
pub async fn load(source: &str, client: &reqwest::Client) -> Result<LoadedTorrent, LoadError> {
    if is_url(source) {
        return fetch(client, source, MAX_TORRENT_BYTES).await;
    }
    let path = std::path::PathBuf::from(source);
    let read_error = |source| LoadError::Read {
        location: path.display().to_string(),
        source,
    };
    let bytes = tokio::task::spawn_blocking({
        let path = path.clone();
        move || meta::read_torrent_bytes(&path)
    })
    .await
    .map_err(|e| read_error(std::io::Error::other(e.to_string())))?
    .map_err(|e| match e {
        meta::ReadTorrentError::Io { source, .. } => read_error(source),
        other => read_error(std::io::Error::other(other.to_string())),
    })?;
    parse(source, bytes, None)
}

/// GETs the torrent at `url` with `client`, reading at most `limit` bytes.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    limit: u64,
) -> Result<LoadedTorrent, LoadError> {
    let unreachable = |e: reqwest::Error| LoadError::Unreachable {
        location: url.to_owned(),
        reason: describe(&e),
    };
    let response = client.get(url).send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(LoadError::Status {
            location: url.to_owned(),
            status: response.status(),
        });
    }
    let from = response.remote_addr();
    let bytes = read_capped(response, limit).await.map_err(|e| match e {
        BodyError::TooLarge { limit } => LoadError::TooLarge {
            location: url.to_owned(),
            limit,
        },
        BodyError::Network(e) => unreachable(e),
    })?;
    parse(url, bytes, from)
}

fn parse(
    location: &str,
    bytes: Vec<u8>,
    from: Option<SocketAddr>,
) -> Result<LoadedTorrent, LoadError> {
    match Torrent::from_bytes(&bytes) {
        Ok(torrent) => Ok(LoadedTorrent {
            torrent,
            bytes,
            from,
        }),
        Err(TorrentError::TooLarge { max, .. }) => Err(LoadError::TooLarge {
            location: location.to_owned(),
            limit: max,
        }),
        Err(source) => Err(LoadError::Invalid {
            location: location.to_owned(),
            source,
        }),
    }
}

/// reqwest's own message is terse; the causes say what failed.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
