//! Why an update did not happen, sorted by who is at fault, so that the
//! status the API shows says whom to blame and what will happen next.

use serde::Serialize;

/// Who is at fault for a failed update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// This machine or its network: the feed unreachable, a disk full, a
    /// binary the agent may not replace. Retried at the next check.
    Environment,
    /// The feed or a mirror: a malformed feed, a build not signed by the
    /// project key, an older build offered as new, another target's.
    Feed,
    /// The offered build itself: it failed its trial or did not come up
    /// healthy after the swap. Not retried until the feed changes.
    Build,
    /// A bug in this agent.
    Agent,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    #[error("cannot reach the update feed {url}: {reason}")]
    FeedUnreachable { url: String, reason: String },
    #[error("the update feed {url} is not valid: {reason}")]
    FeedInvalid { url: String, reason: String },
    #[error("cannot get the offered build's torrent {location}: {reason}")]
    TorrentUnreachable { location: String, reason: String },
    #[error("the build offered at {location} is refused: {reason}")]
    Refused { location: String, reason: String },
    #[error("the build {name} did not download: {reason}")]
    Download { name: String, reason: String },
    #[error(
        "the build {version} failed its trial run ({reason}); it stays unused until the \
         feed offers another build"
    )]
    TrialFailed { version: String, reason: String },
    #[error("the update to {version} did not come up healthy ({reason}); rolled back")]
    RolledBack { version: String, reason: String },
    #[error("cannot {action} {path}: {source}")]
    Disk {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl UpdateError {
    pub fn fault(&self) -> Fault {
        match self {
            UpdateError::FeedUnreachable { .. }
            | UpdateError::TorrentUnreachable { .. }
            | UpdateError::Download { .. }
            | UpdateError::Disk { .. } => Fault::Environment,
            UpdateError::FeedInvalid { .. } | UpdateError::Refused { .. } => Fault::Feed,
            UpdateError::TrialFailed { .. } | UpdateError::RolledBack { .. } => Fault::Build,
            UpdateError::Internal(_) => Fault::Agent,
        }
    }
}

/// A disk error naming its path, for `map_err`.
pub fn disk(
    path: &std::path::Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> UpdateError {
    let path = path.display().to_string();
    move |source| UpdateError::Disk {
        path,
        action,
        source,
    }
}
