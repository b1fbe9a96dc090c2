//! Why a web seed fetch failed, sorted by who is at fault: the torrent or
//! the caller, the origin's answers, the network. [`WebSeedError::is_permanent`]
//! tells the caller whether asking again later can help.

use std::time::Duration;

/// A failed web seed fetch. Every message names the URL asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebSeedError {
    // The torrent or the caller.
    #[error("web seed {url} cannot be used: {detail}")]
    BadUrl { url: String, detail: String },
    #[error(
        "web seed {url}: bytes {offset}..+{length} are not inside piece {piece} (a bug in the caller)"
    )]
    OutsidePiece {
        url: String,
        piece: u32,
        offset: u32,
        length: u32,
    },

    // The origin answered, and retrying will not change its answer.
    #[error("web seed {url} does not have this file (404/410); the web seed URL or the origin's files are wrong")]
    NotFound { url: String },
    #[error("web seed {url} refused the byte range (416): its file is shorter than the torrent says, so it holds a different release")]
    RangeNotSatisfiable { url: String },
    #[error("web seed {url} ignored the byte range asked for (answered the whole file or another range); the origin must support HTTP Range requests")]
    NoRangeSupport { url: String },
    #[error("web seed {url} sent more than the {expected} bytes asked for; its range answers are broken")]
    LongBody { url: String, expected: u64 },
    #[error("web seed {url} redirected more than {limit} times (a redirect loop?)")]
    TooManyRedirects { url: String, limit: usize },
    #[error("web seed {url} answered HTTP {status}")]
    HttpStatus { url: String, status: u16 },

    // The network or an overloaded origin: worth trying again later.
    #[error("web seed {url} ended its answer after {got} of {expected} bytes")]
    ShortBody {
        url: String,
        expected: u64,
        got: u64,
    },
    #[error("web seed {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("web seed {url} stalled: no data for {after:?}")]
    Stalled { url: String, after: Duration },
    #[error("web seed {url} did not finish a request within {after:?}")]
    Timeout { url: String, after: Duration },
}

impl WebSeedError {
    /// True when retrying the same request cannot succeed: a wrong URL or
    /// torrent, a missing file, an origin without range support, a client
    /// error status. `408 Request Timeout` and `429 Too Many Requests` are
    /// the origin asking for patience, so they count as transient, as do
    /// `5xx` answers and network failures.
    pub fn is_permanent(&self) -> bool {
        match self {
            WebSeedError::BadUrl { .. }
            | WebSeedError::OutsidePiece { .. }
            | WebSeedError::NotFound { .. }
            | WebSeedError::RangeNotSatisfiable { .. }
            | WebSeedError::NoRangeSupport { .. }
            | WebSeedError::LongBody { .. }
            | WebSeedError::TooManyRedirects { .. } => true,
            WebSeedError::HttpStatus { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            WebSeedError::ShortBody { .. }
            | WebSeedError::Unreachable { .. }
            | WebSeedError::Stalled { .. }
            | WebSeedError::Timeout { .. } => false,
        }
    }

    /// The URL the failed request was for.
    pub fn url(&self) -> &str {
        match self {
            WebSeedError::BadUrl { url, .. }
            | WebSeedError::OutsidePiece { url, .. }
            | WebSeedError::NotFound { url }
            | WebSeedError::RangeNotSatisfiable { url }
            | WebSeedError::NoRangeSupport { url }
            | WebSeedError::LongBody { url, .. }
            | WebSeedError::TooManyRedirects { url, .. }
            | WebSeedError::HttpStatus { url, .. }
            | WebSeedError::ShortBody { url, .. }
            | WebSeedError::Unreachable { url, .. }
            | WebSeedError::Stalled { url, .. }
            | WebSeedError::Timeout { url, .. } => url,
        }
    }
}
