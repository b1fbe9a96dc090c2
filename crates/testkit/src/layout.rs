//! Layouts for the sans-IO tests, which need a torrent's shape and none of
//! its bytes.

use std::collections::HashMap;

use meta::layout::Layout;
use meta::path::SafePath;
use meta::{FileEntry, InfoHashes, SignatureStatus, Torrent};

/// A torrent of `pieces` pieces of `piece_length` bytes, enough for a Layout.
pub fn synthetic_layout(pieces: u32, piece_length: u64) -> Layout {
    let total = u64::from(pieces) * piece_length;
    let torrent = Torrent {
        info_hashes: InfoHashes {
            v1: Some([0; 20]),
            v2: None,
        },
        name: "sim".into(),
        multi_file: false,
        piece_length,
        files: vec![FileEntry {
            path: SafePath::new(vec!["sim".into()]).unwrap(),
            length: total,
            offset: 0,
            pad: false,
            pieces_root: None,
        }],
        v1_piece_hashes: vec![[0; 20]; pieces as usize],
        piece_layers: HashMap::new(),
        trackers: Vec::new(),
        web_seeds: Vec::new(),
        creation_date: None,
        created_by: None,
        comment: None,
        signature: SignatureStatus::Absent,
        info_bytes: Vec::new(),
    };
    Layout::new(&torrent)
}
