//! The hand-off's memory and the types it holds: live stream URLs,
//! pending offers, origins' published keys and hand-off counts, and the
//! fetch slots. The rules that use them are in the sibling files; the
//! state stands apart so that those files and `mod.rs` never import each
//! other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use meta::Torrent;
use tokio::sync::Semaphore;

/// Torrent fetches for hand-offs at once; more are refused (503).
const MAX_FETCHES: usize = 2;

/// Why a hand-off was turned away before any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    TooMany,
    Busy,
}

/// A checked hand-off waiting for the browser to open its stream.
#[derive(Debug)]
pub struct Offer {
    pub torrent: Arc<Torrent>,
    pub bytes: Vec<u8>,
    /// Its trackers and web seeds must be on public addresses.
    pub public_remotes_only: bool,
    /// The file streamed: its index in `torrent.files` (never a pad file).
    pub file: usize,
    pub(super) created: Instant,
}

impl Offer {
    pub fn new(torrent: Torrent, bytes: Vec<u8>, public_remotes_only: bool, file: usize) -> Offer {
        Offer {
            torrent: Arc::new(torrent),
            bytes,
            public_remotes_only,
            file,
            created: Instant::now(),
        }
    }
}

/// What a stream URL serves: one file of one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTarget {
    /// The release's id (`source::release_id`).
    pub release: String,
    /// The file's index in the release's `files` (never a pad file).
    pub file: usize,
}

#[derive(Debug, Clone)]
pub(super) struct Ticket {
    pub(super) target: StreamTarget,
    pub(super) created: Instant,
}

/// Keys an origin published, and when we fetched them.
pub(super) type PublishedKeys = (Instant, Vec<[u8; 32]>);

/// The hand-off's memory: live stream URLs, pending offers, origins'
/// published keys and hand-off counts, and the fetch slots.
#[derive(Debug)]
pub struct Handoffs {
    pub(super) tickets: Mutex<HashMap<String, Ticket>>,
    pub(super) offers: Mutex<HashMap<String, Offer>>,
    pub(super) well_known: Mutex<HashMap<String, PublishedKeys>>,
    /// Per origin: when its window started, hand-offs in it.
    pub(super) rates: Mutex<HashMap<String, (Instant, u32)>>,
    pub(super) per_origin_per_minute: u32,
    pub(super) fetches: Arc<Semaphore>,
}

impl Handoffs {
    pub fn new(per_origin_per_minute: u32) -> Handoffs {
        Handoffs {
            tickets: Mutex::default(),
            offers: Mutex::default(),
            well_known: Mutex::default(),
            rates: Mutex::default(),
            per_origin_per_minute,
            fetches: Arc::new(Semaphore::new(MAX_FETCHES)),
        }
    }
}
