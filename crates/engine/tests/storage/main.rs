//! `PieceStore` on real files: downloads, resume state and seeding from a
//! publisher's folder. Below, what those tests share: release trees on
//! disk, torrents made from them, and pieces assembled from the source
//! files.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod download;
mod resume;
mod seed;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::resume::ResumeState;
use engine::storage::PieceStore;
use meta::create::{self, CreateSettings};
use meta::layout::Layout;
use meta::Torrent;
use testkit::data::write_pattern_file;

pub const BLOCK: u32 = 16_384;

/// A folder release with nested folders, an empty file and sizes that are
/// not multiples of any piece size. Returns its path (`root/release`).
pub fn release_tree(root: &Path) -> PathBuf {
    let release = root.join("release");
    write_pattern_file(&release.join("a/deep/one.bin"), 100_000, 1);
    write_pattern_file(&release.join("a/two.bin"), 16_384 * 3, 2);
    write_pattern_file(&release.join("c/empty"), 0, 3);
    write_pattern_file(&release.join("d.bin"), 5, 4);
    write_pattern_file(&release.join("e.bin"), 300_001, 5);
    release
}

pub fn make_torrent(source: &Path, piece_length: u64, v2_only: bool) -> Arc<Torrent> {
    let scanned = create::scan(source).unwrap();
    let settings = CreateSettings {
        piece_length: Some(piece_length),
        v2_only,
        ..CreateSettings::default()
    };
    let new = create::create(&scanned, &settings, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&new.encode(None)).unwrap())
}

/// Piece `index` as it should be, assembled from the files under `base`
/// (the folder holding the release root): file stretches, zeros between.
pub fn piece_bytes(torrent: &Torrent, base: &Path, index: u32) -> Vec<u8> {
    let layout = Layout::new(torrent);
    let mut piece = vec![0u8; layout.piece_len(index) as usize];
    for span in layout.spans(index) {
        let data = std::fs::read(source_path(torrent, base, span.file)).unwrap();
        let from = span.file_offset as usize;
        let at = span.piece_offset as usize;
        piece[at..at + span.length as usize]
            .copy_from_slice(&data[from..from + span.length as usize]);
    }
    piece
}

pub fn source_path(torrent: &Torrent, base: &Path, file: usize) -> PathBuf {
    if torrent.multi_file {
        torrent.files[file].path.under(&base.join(&torrent.name))
    } else {
        base.join(&torrent.name)
    }
}

/// Writes piece `index` in 16 KiB blocks, as peers would deliver it.
pub fn write_piece(store: &PieceStore, piece: &[u8], index: u32) {
    for (n, block) in piece.chunks(BLOCK as usize).enumerate() {
        store.write_block(index, n as u32 * BLOCK, block).unwrap();
    }
}

/// Downloads every piece from the source under `base`, checking each.
pub fn download_all(store: &PieceStore, torrent: &Torrent, base: &Path) -> ResumeState {
    let mut state = ResumeState::new(torrent);
    for index in 0..store.layout().piece_count() {
        write_piece(store, &piece_bytes(torrent, base, index), index);
        assert!(store.check_piece(index).unwrap().ok, "piece {index}");
        state.mark_verified(index);
    }
    state
}

/// Every regular file under `dir`, relative, with its bytes.
pub fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    } else {
        out.push((PathBuf::new(), std::fs::read(dir).unwrap()));
    }
    out.sort();
    out
}

/// Asserts two files or folders hold the same files with the same bytes,
/// naming the first difference instead of printing the bytes.
pub fn assert_same_files(got: &Path, want: &Path) {
    let (got, want) = (tree(got), tree(want));
    let names = |t: &[(PathBuf, Vec<u8>)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want), "file lists differ");
    for ((path, a), (_, b)) in got.iter().zip(&want) {
        assert!(
            a == b,
            "{} differs ({} vs {} bytes)",
            path.display(),
            a.len(),
            b.len()
        );
    }
}

/// Names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
