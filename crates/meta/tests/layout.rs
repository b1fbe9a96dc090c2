#![allow(clippy::unwrap_used)]
//! The piece layout agrees with the torrents `meta::create` makes: every
//! piece assembled from the source files through `Layout::spans` passes
//! `check_piece`, and one flipped byte fails it.

use std::path::Path;

use meta::create::{self, CreateSettings};
use meta::layout::{check_piece, check_piece_with, Layout, PieceHashes};
use meta::Torrent;

fn write(path: &Path, len: usize, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    std::fs::write(path, data).unwrap();
}

fn make(root: &Path, piece_length: u64, v2_only: bool) -> Torrent {
    let source = create::scan(root).unwrap();
    let settings = CreateSettings {
        piece_length: Some(piece_length),
        v2_only,
        ..CreateSettings::default()
    };
    let new = create::create(&source, &settings, &|_| {}).unwrap();
    Torrent::from_bytes(&new.encode(None)).unwrap()
}

/// Reads a piece the way storage will: file stretches, zeros between.
fn assemble(torrent: &Torrent, layout: &Layout, base: &Path, index: u32) -> Vec<u8> {
    let mut piece = vec![0u8; layout.piece_len(index) as usize];
    for span in layout.spans(index) {
        let file = &torrent.files[span.file];
        let path = if torrent.multi_file {
            file.path.under(&base.join(&torrent.name))
        } else {
            base.join(&torrent.name)
        };
        let data = std::fs::read(path).unwrap();
        let from = span.file_offset as usize;
        let at = span.piece_offset as usize;
        piece[at..at + span.length as usize]
            .copy_from_slice(&data[from..from + span.length as usize]);
    }
    piece
}

fn check_every_piece(torrent: &Torrent, base: &Path) {
    let layout = Layout::new(torrent);
    assert_eq!(u64::from(layout.piece_count()), torrent.piece_count());
    let mut data_bytes = 0u64;
    for index in 0..layout.piece_count() {
        let info = layout.piece(torrent, index);
        data_bytes += info.spans.iter().map(|s| u64::from(s.length)).sum::<u64>();
        let mut piece = assemble(torrent, &layout, base, index);
        assert!(
            check_piece(&info, &piece).ok,
            "piece {index} of {}",
            torrent.name
        );
        // What `shoal publish` guarantees a signed hybrid: its v1 list
        // agrees with its merkle tree, each alone passes the same bytes.
        assert!(check_piece_with(&info, &piece, PieceHashes::V2Only).ok);
        if let Some(v1) = info.v1_hash {
            use sha1::Digest as _;
            assert_eq!(<[u8; 20]>::from(sha1::Sha1::digest(&piece)), v1);
        }
        piece[0] ^= 1;
        assert!(
            !check_piece(&info, &piece).ok,
            "piece {index} with a flipped byte"
        );
        assert!(
            !check_piece_with(&info, &piece, PieceHashes::V2Only).ok,
            "piece {index} with a flipped byte, merkle tree alone"
        );
    }
    assert_eq!(
        data_bytes,
        torrent.total_size(),
        "spans cover every data byte once"
    );
}

#[test]
fn every_piece_of_hybrid_and_v2_torrents_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("release");
    write(&root.join("a/one.bin"), 100_000, 1);
    write(&root.join("b.bin"), 16_384 * 3, 2);
    write(&root.join("c/empty"), 0, 3);
    write(&root.join("d.bin"), 5, 4);
    write(&root.join("e.bin"), 300_001, 5);
    for v2_only in [false, true] {
        for piece_length in [16_384, 65_536, 4 << 20] {
            check_every_piece(&make(&root, piece_length, v2_only), dir.path());
        }
    }
    write(&dir.path().join("single.bin"), 250_000, 6);
    for v2_only in [false, true] {
        check_every_piece(
            &make(&dir.path().join("single.bin"), 32_768, v2_only),
            dir.path(),
        );
    }
}

#[test]
fn pad_blocks_are_known_without_asking() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("release");
    write(&root.join("a.bin"), 20_000, 1); // one block and a bit, then a pad
    write(&root.join("b.bin"), 10, 2);
    let torrent = make(&root, 65_536, false);
    let layout = Layout::new(&torrent);
    assert_eq!(layout.piece_len(0), 65_536, "hybrid pieces include the pad");
    assert!(!layout.block_is_padding(0, 0));
    assert!(
        !layout.block_is_padding(0, 16_384),
        "holds the last 3,616 bytes of a.bin"
    );
    assert!(layout.block_is_padding(0, 32_768));
    assert!(layout.block_is_padding(0, 49_152));
    let v2 = make(&root, 65_536, true);
    let v2_layout = Layout::new(&v2);
    assert_eq!(
        v2_layout.piece_len(0),
        20_000,
        "v2 pieces end with their file"
    );
    assert_eq!(v2_layout.block_count(0), 2);
    assert_eq!(v2_layout.piece_len(1), 10);
}
