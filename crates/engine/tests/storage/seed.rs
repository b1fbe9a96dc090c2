//! Seeding a customer's existing files: verified once on open, and a file
//! edited afterwards is caught before any of its bad bytes are served.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use engine::storage::{PieceStore, StorageError};
use meta::Torrent;
use testkit::data::write_pattern_file;

use crate::{make_torrent, piece_bytes, release_tree, BLOCK};

fn open(torrent: &Arc<Torrent>, data_dir: &Path) -> Result<(PieceStore, Vec<bool>), StorageError> {
    PieceStore::open_seed(Arc::clone(torrent), data_dir, &|_| {})
}

fn index_of(torrent: &Torrent, length: u64) -> usize {
    torrent
        .files
        .iter()
        .position(|f| f.length == length && !f.pad)
        .unwrap()
}

/// The first piece of file `index`.
fn first_piece(torrent: &Torrent, index: usize) -> u32 {
    (torrent.files[index].offset / torrent.piece_length) as u32
}

/// Rewrites one byte of `path` in place and moves its mtime forward, as an
/// editor or a careless script would.
fn edit(path: &Path, at: u64, seconds_ahead: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut data = std::fs::read(path).unwrap();
    data[at as usize] ^= 0xff;
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&data[at as usize..at as usize + 1]).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(seconds_ahead))
        .unwrap();
}

#[test]
fn original_data_is_all_valid_and_progress_counts_every_byte() {
    let src = tempfile::tempdir().unwrap();
    let release = release_tree(src.path());
    write_pattern_file(&src.path().join("single.bin"), 250_000, 6);
    let cases = [
        (make_torrent(&release, 16_384, false), src.path()),
        (make_torrent(&release, 65_536, true), src.path()),
        (
            make_torrent(&src.path().join("single.bin"), 32_768, false),
            src.path(),
        ),
    ];
    for (torrent, data_dir) in cases {
        let checked = AtomicU64::new(0);
        let (store, valid) = PieceStore::open_seed(Arc::clone(&torrent), data_dir, &|n| {
            checked.fetch_add(n, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(valid.len() as u64, torrent.piece_count());
        assert!(valid.iter().all(|&v| v), "{}", torrent.name);
        let layout = store.layout();
        assert_eq!(checked.load(Ordering::Relaxed), torrent.total_size());
        assert!(store.resume_path().is_none());
        let last = layout.piece_count() - 1;
        assert_eq!(
            store.read_block(last, 0, layout.piece_len(last)).unwrap(),
            piece_bytes(&torrent, data_dir, last)
        );
    }
}

#[test]
fn data_damaged_before_opening_fails_only_its_piece() {
    let src = tempfile::tempdir().unwrap();
    let release = release_tree(src.path());
    let torrent = make_torrent(&release, 16_384, false);
    edit(&release.join("e.bin"), 20_000, 0);
    let (store, valid) = open(&torrent, src.path()).unwrap();
    let bad = first_piece(&torrent, index_of(&torrent, 300_001)) + 1;
    for (piece, ok) in valid.iter().enumerate() {
        assert_eq!(*ok, piece as u32 != bad, "piece {piece}");
    }
    assert!(store.is_known_bad(bad));
    assert!(matches!(
        store.read_block(bad, 0, BLOCK),
        Err(StorageError::PieceChanged { .. })
    ));
}

#[test]
fn a_file_edited_while_seeding_is_caught_before_a_bad_block_is_sent() {
    let src = tempfile::tempdir().unwrap();
    let release = release_tree(src.path());
    let torrent = make_torrent(&release, 16_384, false);
    let (store, valid) = open(&torrent, src.path()).unwrap();
    assert!(valid.iter().all(|&v| v));
    let e_bin = first_piece(&torrent, index_of(&torrent, 300_001));
    let one_bin = first_piece(&torrent, index_of(&torrent, 100_000));
    // Read once so the handle is open and cached: the change must be seen
    // through it, not only on a fresh open.
    let before = store.read_block(e_bin + 2, 0, BLOCK).unwrap();

    edit(&release.join("e.bin"), 2 * 16_384 + 5, 2);
    match store.read_block(e_bin + 2, 0, BLOCK) {
        Err(StorageError::PieceChanged { piece, file }) => {
            assert_eq!(piece, e_bin + 2);
            assert!(file.ends_with("e.bin"), "{}", file.display());
        }
        other => panic!("expected PieceChanged, got {:?}", other.map(|b| b.len())),
    }
    assert!(store.is_known_bad(e_bin + 2));
    // Other blocks of the piece are refused too: the piece is known bad.
    assert!(matches!(
        store.read_block(e_bin + 2, 8_192, 100),
        Err(StorageError::PieceChanged { .. })
    ));
    // Untouched pieces of the same file are re-verified and still served,
    // as are other files.
    assert_eq!(
        store.read_block(e_bin, 0, BLOCK).unwrap(),
        piece_bytes(&torrent, src.path(), e_bin)[..BLOCK as usize]
    );
    assert_eq!(
        store.read_block(one_bin, 0, BLOCK).unwrap(),
        piece_bytes(&torrent, src.path(), one_bin)[..BLOCK as usize]
    );
    assert!(!store.check_piece(e_bin + 2).unwrap().ok);

    // Putting the byte back (a new change) makes the piece good again.
    edit(&release.join("e.bin"), 2 * 16_384 + 5, 4);
    assert_eq!(store.read_block(e_bin + 2, 0, BLOCK).unwrap(), before);
    assert!(!store.is_known_bad(e_bin + 2));
}

#[test]
fn a_file_truncated_while_seeding_is_caught() {
    let src = tempfile::tempdir().unwrap();
    write_pattern_file(&src.path().join("disk.img"), 200_000, 8);
    let torrent = make_torrent(&src.path().join("disk.img"), 32_768, true);
    let (store, _) = open(&torrent, src.path()).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(src.path().join("disk.img"))
        .unwrap();
    file.set_len(100_000).unwrap();
    drop(file);
    assert!(matches!(
        store.read_block(4, 0, BLOCK),
        Err(StorageError::PieceChanged { piece: 4, .. })
    ));
    assert!(store.read_block(0, 0, BLOCK).is_ok(), "before the cut");
}

#[test]
fn missing_or_resized_files_are_named() {
    let src = tempfile::tempdir().unwrap();
    let release = release_tree(src.path());
    let torrent = make_torrent(&release, 16_384, false);

    std::fs::remove_file(release.join("a/two.bin")).unwrap();
    let err = open(&torrent, src.path()).unwrap_err();
    match &err {
        StorageError::MissingFile { path } => assert!(path.ends_with("a/two.bin")),
        other => panic!("expected MissingFile, got {other:?}"),
    }
    assert!(err.to_string().contains("two.bin"), "{err}");

    write_pattern_file(&release.join("a/two.bin"), 16_384 * 3 - 1, 2);
    match open(&torrent, src.path()).unwrap_err() {
        StorageError::WrongSize {
            path,
            expected,
            found,
        } => {
            assert!(path.ends_with("a/two.bin"));
            assert_eq!((expected, found), (16_384 * 3, 16_384 * 3 - 1));
        }
        other => panic!("expected WrongSize, got {other:?}"),
    }

    let elsewhere = tempfile::tempdir().unwrap();
    assert!(matches!(
        open(&torrent, elsewhere.path()),
        Err(StorageError::MissingFile { .. })
    ));
}

#[test]
fn a_seed_is_never_written_to() {
    let src = tempfile::tempdir().unwrap();
    write_pattern_file(&src.path().join("setup.exe"), 50_000, 1);
    let torrent = make_torrent(&src.path().join("setup.exe"), 16_384, false);
    let (store, _) = open(&torrent, src.path()).unwrap();
    assert!(matches!(
        store.write_block(0, 0, &[0u8; 100]),
        Err(StorageError::ReadOnly { .. })
    ));
    let (store, valid) = open(&torrent, src.path()).unwrap();
    assert!(valid.iter().all(|&v| v));
    drop(store);
}
