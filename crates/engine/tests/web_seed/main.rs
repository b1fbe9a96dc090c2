//! The web seed fetcher against nginx, the reference origin, and against a
//! tiny hand-written HTTP server that misbehaves on cue. Loopback only.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_origin;
mod misbehaving;
mod nginx;
mod origin_download;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::web_seed::{WebSeed, WebSeedSettings};
use meta::create::{self, CreateSettings};
use meta::layout::{check_piece, Layout};
use meta::Torrent;

pub const PIECE: u64 = 16_384;

/// A hybrid torrent of the file or folder at `source`, 16 KiB pieces.
pub fn make_torrent(source: &Path) -> Arc<Torrent> {
    let settings = CreateSettings {
        piece_length: Some(PIECE),
        ..CreateSettings::default()
    };
    let new = create::create(&create::scan(source).unwrap(), &settings, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&new.encode(None)).unwrap())
}

/// Short waits, so the failure cases finish in well under a second each.
pub fn quick() -> WebSeedSettings {
    WebSeedSettings {
        request_timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_millis(300),
        max_redirects: 3,
        retries: 4,
        backoff_start: Duration::from_millis(10),
        ..WebSeedSettings::default()
    }
}

/// Fetches every piece whole and checks it against the torrent's hashes.
pub async fn fetch_all_verified(seed: &WebSeed, torrent: &Torrent) {
    let layout = Layout::new(torrent);
    for piece in 0..layout.piece_count() {
        let data = seed.fetch(piece, 0, layout.piece_len(piece)).await.unwrap();
        let info = layout.piece(torrent, piece);
        assert!(
            check_piece(&info, &data).ok,
            "piece {piece} from {}",
            seed.url()
        );
    }
}
