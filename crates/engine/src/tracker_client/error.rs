//! Tracker client errors, sorted by whose fault they are: the tracker's
//! (refused, broken reply, oversized, bad status: try another tracker), the
//! network's (retry later), or ours (a bad URL in the torrent or config).

use std::time::Duration;

use thiserror::Error;

/// What went wrong talking to a tracker. `url` is the announce URL; the
/// pure parser does not know it and leaves it empty, [`announce`] fills it.
///
/// [`announce`]: super::announce
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrackerError {
    // The tracker's fault.
    #[error("tracker{} refused the announce: {reason}", at(url))]
    Failure { url: String, reason: String },
    #[error("tracker{} sent a reply that is not a valid announce response ({detail}); try another tracker or tell its operator", at(url))]
    Malformed { url: String, detail: String },
    #[error(
        "tracker{} sent more than {limit} bytes; stopped reading; try another tracker",
        at(url)
    )]
    TooLarge { url: String, limit: usize },
    #[error(
        "tracker{} answered HTTP {status}; check the announce URL or try again later",
        at(url)
    )]
    HttpStatus { url: String, status: u16 },

    // The network's fault.
    #[error(
        "could not reach tracker{}: {source}; check the address and your network, then retry",
        at(url)
    )]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("tracker{} did not answer within {after:?}; retry later", at(url))]
    Timeout { url: String, after: Duration },

    // Ours: the URL came from a torrent or our configuration.
    #[error("bad tracker URL {url:?}: {detail}; fix the announce URL in the torrent or settings")]
    BadUrl { url: String, detail: String },
}

fn at(url: &str) -> String {
    if url.is_empty() {
        String::new()
    } else {
        format!(" {url}")
    }
}

impl TrackerError {
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        TrackerError::Malformed {
            url: String::new(),
            detail: detail.into(),
        }
    }

    /// Names the tracker in an error from the pure parser.
    pub(crate) fn at_url(mut self, tracker: &str) -> Self {
        match &mut self {
            TrackerError::Failure { url, .. }
            | TrackerError::Malformed { url, .. }
            | TrackerError::TooLarge { url, .. }
            | TrackerError::HttpStatus { url, .. }
            | TrackerError::Unreachable { url, .. }
            | TrackerError::Timeout { url, .. }
            | TrackerError::BadUrl { url, .. } => {
                if url.is_empty() {
                    *url = tracker.to_owned();
                }
            }
        }
        self
    }

    /// True when retrying the same tracker later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TrackerError::Unreachable { .. }
                | TrackerError::Timeout { .. }
                | TrackerError::HttpStatus { .. }
        )
    }
}
