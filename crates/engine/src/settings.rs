//! The engine's settings: one struct, built by the CLI and the agent.

use std::net::SocketAddr;
use std::time::Duration;

use swarm::SwarmSettings;

use crate::web_seed::WebSeedSettings;

/// The engine's usual peer port, BitTorrent's customary first one.
pub const DEFAULT_LISTEN_PORT: u16 = 6881;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Where to accept peer connections. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Total upload cap in bytes/s over every connection; 0 = unlimited.
    pub max_upload_bps: u64,
    /// Total download cap in bytes/s; 0 = unlimited.
    pub max_download_bps: u64,
    /// Giving up on a peer that does not complete TCP and the handshake.
    pub connect_timeout: Duration,
    /// Closing a connection on which nothing arrived for this long
    /// (peers send keep-alives every two minutes at most).
    pub idle_timeout: Duration,
    /// Sending a keep-alive when we sent nothing for this long.
    pub keepalive_interval: Duration,
    /// Most incoming connections being handshaken at once.
    pub max_pending_handshakes: usize,
    /// How often, at most, verified pieces are recorded in the resume state.
    pub resume_save_interval: Duration,
    /// Tracker requests give up after this long.
    pub tracker_timeout: Duration,
    pub swarm: SwarmSettings,
    /// Fetching from the origin web server (timeouts, retries).
    pub web_seed: WebSeedSettings,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_LISTEN_PORT)),
            max_upload_bps: 0,
            max_download_bps: 0,
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(180),
            keepalive_interval: Duration::from_secs(60),
            max_pending_handshakes: 64,
            resume_save_interval: Duration::from_millis(200),
            tracker_timeout: Duration::from_secs(15),
            swarm: SwarmSettings::default(),
            web_seed: WebSeedSettings::default(),
        }
    }
}
