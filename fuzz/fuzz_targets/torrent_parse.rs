//! Torrent parsing (v1, v2, hybrid): never panics, and what it accepts is
//! self-consistent: every file path is safe, files are laid out in order,
//! and the piece count matches the hashes and sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meta::{MetaVersion, Torrent, MAX_PIECE_LENGTH};

fuzz_target!(|data: &[u8]| {
    let Ok(torrent) = Torrent::from_bytes(data) else {
        return;
    };
    assert!(torrent.piece_length > 0 && torrent.piece_length <= MAX_PIECE_LENGTH);
    assert!(meta::path::check_component(&torrent.name).is_ok());
    let mut offset = 0u64;
    for file in &torrent.files {
        for component in file.path.components() {
            assert!(
                meta::path::check_component(component).is_ok(),
                "{component:?}"
            );
        }
        assert!(file.offset >= offset, "files overlap");
        offset = file
            .offset
            .checked_add(file.length)
            .expect("offset overflow");
    }
    match torrent.version() {
        MetaVersion::V1 | MetaVersion::Hybrid => {
            let stream = torrent.files.iter().map(|f| f.length).sum::<u64>();
            assert_eq!(
                torrent.v1_piece_hashes.len() as u64,
                stream.div_ceil(torrent.piece_length)
            );
        }
        MetaVersion::V2 => assert!(torrent.v1_piece_hashes.is_empty()),
    }
    let _ = torrent.piece_count();
    let _ = torrent.tracker_urls();
});
