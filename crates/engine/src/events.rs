//! What a running torrent reports to whoever started it.

use std::path::PathBuf;

/// A snapshot of a torrent's transfer, about once a second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Progress {
    /// Bytes of the release verified and kept.
    pub verified_bytes: u64,
    pub total_bytes: u64,
    /// Payload bytes downloaded from peers and kept.
    pub bytes_from_peers: u64,
    /// Payload bytes downloaded from the origin web server.
    pub bytes_from_origin: u64,
    /// Payload bytes uploaded to peers.
    pub uploaded: u64,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub peers: usize,
    pub pieces_verified: u32,
    pub piece_count: u32,
    /// Seconds since the torrent started.
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub enum TorrentEvent {
    /// Existing data is being checked (seeding, or resuming).
    Checking {
        checked_bytes: u64,
        total_bytes: u64,
    },
    Progress(Progress),
    /// Every piece is verified and the release is in its final place.
    Completed {
        path: PathBuf,
        progress: Progress,
    },
    /// Something the user should know that did not stop the torrent.
    Warning(String),
    /// The torrent stopped for good; `error` says why if it failed.
    Stopped {
        error: Option<String>,
        progress: Progress,
    },
}
