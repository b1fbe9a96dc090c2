//! [`PeerState`]: one connection as the swarm sees it, for tracing where
//! a link's capacity goes (`Swarm::peer_states`).

use std::net::SocketAddr;
use std::time::Duration;

use crate::PeerKey;

/// One connection, as the swarm sees it at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    pub key: PeerKey,
    pub addr: SocketAddr,
    pub am_choking: bool,
    pub peer_interested: bool,
    /// The peer's requests waiting to be served.
    pub upload_queue: usize,
    /// Blocks handed to the driver and not yet written.
    pub uploads_in_flight: usize,
    pub upload_rate: u64,
    pub peer_choking: bool,
    pub am_interested: bool,
    pub snubbed: bool,
    /// Our requests in flight to the peer.
    pub requests: usize,
    /// How long the oldest of them has waited.
    pub oldest_request_age: Duration,
    pub base_rtt: Option<Duration>,
    pub download_rate: u64,
}
