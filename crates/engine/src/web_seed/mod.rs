//! The origin as a BEP 19 web seed: fetch a run of a piece's bytes from a
//! plain HTTP(S) server with `Range` requests.
//!
//! This is a fetcher without policy: it fetches exactly what it is asked
//! for. Which pieces to take from the origin, and when, is the origin
//! planner's decision (`swarm`). A request is split per file the range
//! touches (one ranged GET each, issued in order); pad bytes (BEP 47) are
//! zeros and never fetched. Transient failures (`5xx`, network errors,
//! stalls, timeouts, cut-off bodies) are retried with doubling back-off, and
//! a retry asks only for the bytes still missing; permanent ones (a missing
//! file, a server that ignores ranges) return at once.
//!
//! **The bytes returned are not verified here.** An origin can serve a
//! different or tampered file; the caller checks piece hashes as it does
//! for any peer's data.

mod error;
mod file_url;
mod ranged_get;
pub(crate) mod settings;

use std::sync::Arc;
use std::time::Duration;

use meta::layout::Layout;
use meta::Torrent;

use crate::AddressPolicy;

pub use error::WebSeedError;
pub use settings::WebSeedSettings;

/// Longest pause between two attempts at one range.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// One origin URL from a torrent's `url-list`. Cheap to share behind an
/// `Arc`: concurrent [`WebSeed::fetch`] calls use separate keep-alive
/// connections from one pool.
pub struct WebSeed {
    url: String,
    client: reqwest::Client,
    torrent: Arc<Torrent>,
    layout: Layout,
    settings: WebSeedSettings,
}

impl std::fmt::Debug for WebSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSeed")
            .field("url", &self.url)
            .field("torrent", &self.torrent.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl WebSeed {
    /// A web seed for `torrent` at `url`, which must be an `http` or
    /// `https` URL (BEP 19 lets clients skip other schemes, such as `ftp`).
    pub fn new(
        url: &str,
        torrent: Arc<Torrent>,
        settings: WebSeedSettings,
    ) -> Result<WebSeed, WebSeedError> {
        WebSeed::with_policy(url, torrent, settings, AddressPolicy::Any)
    }

    /// [`WebSeed::new`] reaching only the addresses `policy` allows, at
    /// the URL and at every redirect and name resolution.
    pub fn with_policy(
        url: &str,
        torrent: Arc<Torrent>,
        settings: WebSeedSettings,
        policy: AddressPolicy,
    ) -> Result<WebSeed, WebSeedError> {
        let client =
            crate::http_client::build(policy, &settings).map_err(|e| WebSeedError::BadUrl {
                url: url.to_owned(),
                detail: format!("cannot start an HTTP client: {e}"),
            })?;
        WebSeed::with_client(url, torrent, settings, policy, client)
    }

    /// [`WebSeed::with_policy`] on a `client` the caller shares with
    /// others; it must have been built for `policy`
    /// ([`crate::http_client::build`]).
    pub(crate) fn with_client(
        url: &str,
        torrent: Arc<Torrent>,
        settings: WebSeedSettings,
        policy: AddressPolicy,
        client: reqwest::Client,
    ) -> Result<WebSeed, WebSeedError> {
        file_url::check_base(url, &torrent)?;
        let parsed = reqwest::Url::parse(url).map_err(|e| WebSeedError::BadUrl {
            url: url.to_owned(),
            detail: e.to_string(),
        })?;
        policy
            .check_url(&parsed)
            .map_err(|detail| WebSeedError::BadUrl {
                url: url.to_owned(),
                detail,
            })?;
        Ok(WebSeed {
            url: url.to_owned(),
            client,
            layout: Layout::new(&torrent),
            torrent,
            settings,
        })
    }

    /// The origin URL, as listed in the torrent.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches `length` bytes at `offset` of piece `piece` (usually a run
    /// of many blocks, up to the whole piece): one ranged GET per file the
    /// range touches, pad bytes filled with zeros. Transient failures are
    /// retried per [`WebSeedSettings`]; the first permanent one is returned.
    ///
    /// The bytes are **not verified**: check the piece hash before use.
    pub async fn fetch(
        &self,
        piece: u32,
        offset: u32,
        length: u32,
    ) -> Result<Vec<u8>, WebSeedError> {
        let end = u64::from(offset) + u64::from(length);
        if piece >= self.layout.piece_count() || end > u64::from(self.layout.piece_len(piece)) {
            return Err(WebSeedError::OutsidePiece {
                url: self.url.clone(),
                piece,
                offset,
                length,
            });
        }
        let mut out = vec![0u8; length as usize];
        for span in self.layout.spans(piece) {
            let from = span.piece_offset.max(offset);
            let to = (span.piece_offset + span.length).min(offset + length);
            if from >= to {
                continue;
            }
            let url = file_url::file_url(&self.url, &self.torrent, span.file)?;
            let file_offset = span.file_offset + u64::from(from - span.piece_offset);
            let dest = &mut out[(from - offset) as usize..(to - offset) as usize];
            self.fetch_with_retries(&url, file_offset, dest).await?;
        }
        Ok(out)
    }

    /// Fills `dest` with the file at `url` from `file_offset` on.
    async fn fetch_with_retries(
        &self,
        url: &reqwest::Url,
        file_offset: u64,
        dest: &mut [u8],
    ) -> Result<(), WebSeedError> {
        let settings = &self.settings;
        let mut filled = 0;
        let mut backoff = settings.backoff_start;
        let mut attempt = 1;
        loop {
            let request = ranged_get::fetch_into(
                &self.client,
                url,
                file_offset,
                dest,
                &mut filled,
                settings.stall_timeout,
                settings.max_redirects,
            );
            let result = tokio::time::timeout(settings.request_timeout, request)
                .await
                .unwrap_or_else(|_elapsed| {
                    Err(WebSeedError::Timeout {
                        url: url.to_string(),
                        after: settings.request_timeout,
                    })
                });
            let error = match result {
                Ok(()) => return Ok(()),
                Err(e) if e.is_permanent() || attempt >= settings.retries => return Err(e),
                Err(e) => e,
            };
            tracing::debug!(
                "{error}; attempt {attempt} of {}, again in {backoff:?}",
                settings.retries
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }
}
