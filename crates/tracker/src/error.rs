//! Why the tracker could not start or stopped. Its own module so that
//! `settings` (which reports invalid settings with it) and the crate root
//! (which returns it) do not depend on each other.

use std::io;
use std::net::SocketAddr;

use thiserror::Error;

/// Why the tracker could not start or stopped; each says what to change.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrackerError {
    #[error("cannot listen on {addr}: {source}; choose another address or port (--listen) or stop the program using it")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the tracker's HTTP server failed: {0}")]
    Serve(#[source] io::Error),
    #[error("invalid tracker settings: {0}")]
    InvalidSettings(String),
    #[error("the tracker's database: {0}")]
    Store(String),
}
