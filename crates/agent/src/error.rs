//! Why the agent refused or failed a request, sorted so that the API can
//! answer with the right status and the customer with what to do.

use std::net::SocketAddr;

/// Why the agent refused or failed a request. Each says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    #[error("cannot get the torrent from {location}: {reason}")]
    Fetch { location: String, reason: String },
    #[error("{location} is not a usable torrent: {reason}")]
    NotATorrent { location: String, reason: String },
    #[error("{location} is not signed by a publisher; the agent accepts only signed releases")]
    Unsigned { location: String },
    #[error(
        "{location} has an invalid publisher signature ({reason}); it may have been tampered with"
    )]
    BadSignature { location: String, reason: String },
    #[error(
        "{location} is signed by publisher {publisher}, which is not trusted; \
         add it to trusted_publishers in the agent's config to accept it"
    )]
    Untrusted { location: String, publisher: String },
    #[error("no release {id} in this agent; GET /v1/releases lists them")]
    UnknownRelease { id: String },
    #[error("release {id} is already in this agent")]
    AlreadyAdded { id: String },
    /// A hand-off the agent will not take as things stand (the release
    /// is the customer's and paused, a file of its name is in the way):
    /// the page falls back to its origin.
    #[error("{0}")]
    HandoffRefused(String),
    /// Too many hand-offs from one origin: try again in a minute.
    #[error("{0}")]
    TooManyHandoffs(String),
    /// Every slot for hand-off work is taken: try again shortly.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Invalid(String),
    /// A web page asked for something its origin may not have.
    #[error("{0}")]
    Forbidden(String),
    #[error("cannot listen for the API on {addr}: {source}; choose another address with --api")]
    ApiListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error("internal error: {0}")]
    Internal(String),
}
