//! Downloads through `PieceStore`: every block written and checked, the
//! release moved into place only by `finish`, never visible before.

use std::path::Path;
use std::sync::Arc;

use engine::resume::ResumeState;
use engine::storage::{PieceStore, StorageError};
use testkit::data::write_pattern_file;

use crate::{
    assert_same_files, download_all, listing, make_torrent, piece_bytes, release_tree, write_piece,
    BLOCK,
};

/// Downloads `source` (held in `src_base`) into a fresh folder and checks
/// the result byte for byte.
fn round_trip(src_base: &Path, source: &Path, piece_length: u64, v2_only: bool) {
    let torrent = make_torrent(source, piece_length, v2_only);
    let out = tempfile::tempdir().unwrap();
    let final_path = out.path().join(&torrent.name);
    let (store, loaded) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    assert!(loaded.warning.is_none());
    assert_eq!(loaded.state.verified_count(), 0);

    let state = download_all(&store, &torrent, src_base);
    assert!(
        !final_path.exists(),
        "nothing under the final name before finish"
    );
    let listed = listing(out.path());
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].starts_with('.') && listed[0].ends_with(".shoal-partial"));

    assert_eq!(store.finish(&state).unwrap(), final_path);
    assert_eq!(
        listing(out.path()),
        std::slice::from_ref(&torrent.name),
        "staging gone"
    );
    assert_same_files(&final_path, source);
    // Finishing again (say after a crash) changes nothing.
    assert_eq!(store.finish(&state).unwrap(), final_path);
    assert_same_files(&final_path, source);

    // The finished store serves the data from its final place.
    let last = store.layout().piece_count() - 1;
    let length = store.layout().piece_len(last);
    assert_eq!(
        store.read_block(last, 0, length).unwrap(),
        piece_bytes(&torrent, src_base, last)
    );
}

#[test]
fn hybrid_and_v2_folders_round_trip_and_appear_only_when_finished() {
    let src = tempfile::tempdir().unwrap();
    let release = release_tree(src.path());
    for v2_only in [false, true] {
        for piece_length in [16_384, 65_536] {
            round_trip(src.path(), &release, piece_length, v2_only);
        }
    }
}

#[test]
fn single_files_round_trip() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("setup.exe");
    write_pattern_file(&file, 250_000, 6);
    for v2_only in [false, true] {
        round_trip(src.path(), &file, 32_768, v2_only);
    }
}

#[test]
fn the_empty_file_exists_after_finish() {
    let src = tempfile::tempdir().unwrap();
    let release = release_tree(src.path());
    let torrent = make_torrent(&release, 16_384, false);
    let out = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    let state = download_all(&store, &torrent, src.path());
    let done = store.finish(&state).unwrap();
    let empty = std::fs::metadata(done.join("c/empty")).unwrap();
    assert!(empty.is_file() && empty.len() == 0);
}

#[test]
fn many_files_round_trip_through_a_bounded_handle_cache() {
    let src = tempfile::tempdir().unwrap();
    let release = src.path().join("many");
    for i in 0..300 {
        write_pattern_file(
            &release.join(format!("d{}/f{i:03}", i % 7)),
            1_000 + i * 37,
            i as u8,
        );
    }
    round_trip(src.path(), &release, 16_384, false);
}

#[test]
fn blocks_written_from_many_threads_land_in_place() {
    let src = tempfile::tempdir().unwrap();
    let release = release_tree(src.path());
    let torrent = make_torrent(&release, 16_384, false);
    let out = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    let store = Arc::new(store);
    let count = store.layout().piece_count();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (store, torrent, base) = (&store, &torrent, src.path());
            scope.spawn(move || {
                for index in (t..count).step_by(4) {
                    write_piece(store, &piece_bytes(torrent, base, index), index);
                }
            });
        }
    });
    let mut state = ResumeState::new(&torrent);
    for index in 0..count {
        assert!(store.check_piece(index).unwrap().ok, "piece {index}");
        state.mark_verified(index);
    }
    store.save_resume(&state).unwrap();
    let done = store.finish(&state).unwrap();
    assert_same_files(&done, &release);
}

#[test]
fn a_corrupt_block_fails_its_piece_only() {
    let src = tempfile::tempdir().unwrap();
    let release = release_tree(src.path());
    let torrent = make_torrent(&release, 65_536, false);
    let out = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    let state = download_all(&store, &torrent, src.path());
    let mut block = piece_bytes(&torrent, src.path(), 1)[..BLOCK as usize].to_vec();
    block[100] ^= 0x40;
    store.write_block(1, 0, &block).unwrap();
    assert!(!store.check_piece(1).unwrap().ok);
    assert!(store.check_piece(0).unwrap().ok);
    assert!(store.check_piece(2).unwrap().ok);
    drop(state);
}

#[test]
fn finish_refuses_an_incomplete_download() {
    let src = tempfile::tempdir().unwrap();
    let release = release_tree(src.path());
    let torrent = make_torrent(&release, 65_536, true);
    let out = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    let mut state = download_all(&store, &torrent, src.path());
    state.mark_unverified(2);
    let err = store.finish(&state).unwrap_err();
    assert!(
        matches!(err, StorageError::Incomplete { missing: 1, .. }),
        "{err:?}"
    );
    assert!(!out.path().join(&torrent.name).exists());
}

#[test]
fn an_existing_final_path_is_never_overwritten() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("setup.exe");
    write_pattern_file(&file, 70_000, 9);
    let torrent = make_torrent(&file, 16_384, false);
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("setup.exe"), b"the customer's own file").unwrap();
    let err = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap_err();
    match &err {
        StorageError::AlreadyExists { path } => assert!(path.ends_with("setup.exe")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert!(err.to_string().contains("setup.exe"));
    assert_eq!(listing(out.path()), ["setup.exe"], "no staging folder made");

    // It also appearing during the download stops the final move.
    let out = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    let state = download_all(&store, &torrent, src.path());
    std::fs::write(out.path().join("setup.exe"), b"mine").unwrap();
    assert!(matches!(
        store.finish(&state),
        Err(StorageError::AlreadyExists { .. })
    ));
    assert_eq!(
        std::fs::read(out.path().join("setup.exe")).unwrap(),
        b"mine"
    );
}

#[test]
fn a_crash_after_the_final_move_leaves_no_staging_behind() {
    let src = tempfile::tempdir().unwrap();
    let release = release_tree(src.path());
    let torrent = make_torrent(&release, 65_536, false);
    let out = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    let state = download_all(&store, &torrent, src.path());
    store.save_resume(&state).unwrap();
    let staging = out.path().join(listing(out.path()).remove(0));
    // Simulate the crash: files completed, the staged root renamed,
    // nothing cleaned up yet.
    std::fs::create_dir_all(staging.join("data/release/c")).unwrap();
    std::fs::File::create(staging.join("data/release/c/empty")).unwrap();
    std::fs::rename(
        staging.join("data").join(&torrent.name),
        out.path().join(&torrent.name),
    )
    .unwrap();
    drop(store);
    assert!(matches!(
        PieceStore::open_download(Arc::clone(&torrent), out.path()),
        Err(StorageError::AlreadyExists { .. })
    ));
    assert_eq!(listing(out.path()), std::slice::from_ref(&torrent.name));
    assert_same_files(&out.path().join(&torrent.name), &release);
}

#[test]
fn pad_bytes_read_as_zeros_and_are_never_stored() {
    let src = tempfile::tempdir().unwrap();
    let release = src.path().join("padded");
    write_pattern_file(&release.join("a.bin"), 20_000, 1); // a pad fills the rest of piece 0
    write_pattern_file(&release.join("b.bin"), 10, 2);
    let torrent = make_torrent(&release, 65_536, false);
    let out = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    assert_eq!(store.layout().piece_len(0), 65_536);
    // Garbage in the pad area is dropped, not stored.
    let mut piece = piece_bytes(&torrent, src.path(), 0);
    piece[40_000..].fill(0xee);
    write_piece(&store, &piece, 0);
    assert_eq!(
        store.read_block(0, 32_768, BLOCK).unwrap(),
        vec![0u8; BLOCK as usize]
    );
    let mixed = store.read_block(0, 16_384, BLOCK).unwrap();
    assert_eq!(mixed[..3_616], piece[16_384..20_000]);
    assert!(mixed[3_616..].iter().all(|&b| b == 0));
    // A spare buffer full of an earlier read's bytes reads the same: the
    // pad and the part past the file are zeroed, not left as they were.
    for stale in [vec![0xaa; 65_536], vec![0xbb; 100], vec![0xcc; 100_000]] {
        let reused = store.read_block_into(0, 16_384, BLOCK, stale).unwrap();
        assert_eq!(reused, mixed);
        let whole = store.read_block_into(0, 0, 65_536, reused).unwrap();
        assert_eq!(whole[..20_000], piece[..20_000]);
        assert!(whole[20_000..].iter().all(|&b| b == 0));
    }
    assert!(store.check_piece(0).unwrap().ok);
    let a_bin = store.file_path(
        torrent
            .files
            .iter()
            .position(|f| f.length == 20_000)
            .unwrap(),
    );
    assert_eq!(std::fs::metadata(a_bin).unwrap().len(), 20_000);
}

#[test]
fn out_of_range_requests_are_bad_blocks() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("f.bin");
    write_pattern_file(&file, 40_000, 3);
    let torrent = make_torrent(&file, 32_768, false);
    let out = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    let bad = |r: Result<_, StorageError>| matches!(r, Err(StorageError::BadBlock { .. }));
    assert!(
        bad(store.read_block(0, 32_000, 1_000)),
        "past the piece end"
    );
    assert!(
        bad(store.read_block(1, 0, 7_233)),
        "past the short last piece"
    );
    assert!(!bad(store.read_block(1, 0, 7_232)));
    assert!(bad(store.read_block(2, 0, 1)), "no such piece");
    assert!(bad(store.read_block(0, u32::MAX, 2)), "offset overflow");
    assert!(bad(store.read_block(0, 0, 0)), "empty request");
    assert!(bad(store
        .write_block(0, 30_000, &[0u8; 4_000])
        .map(|_| Vec::<u8>::new())));
    assert!(bad(store.check_piece(2).map(|_| Vec::<u8>::new())));
}

#[test]
fn a_finished_download_is_served_and_guarded_like_a_seed() {
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("setup.exe");
    write_pattern_file(&file, 100_000, 4);
    let torrent = make_torrent(&file, 16_384, false);
    let out = tempfile::tempdir().unwrap();
    let (store, _) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    let state = download_all(&store, &torrent, src.path());
    let done = store.finish(&state).unwrap();
    assert!(matches!(
        store.write_block(0, 0, &[1]),
        Err(StorageError::ReadOnly { .. })
    ));
    let mut bytes = std::fs::read(&done).unwrap();
    bytes[50_000] ^= 1; // piece 3
    std::fs::write(&done, &bytes).unwrap();
    let edited = std::fs::OpenOptions::new().write(true).open(&done).unwrap();
    edited
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(2))
        .unwrap();
    assert!(matches!(
        store.read_block(3, 0, BLOCK),
        Err(StorageError::PieceChanged { piece: 3, .. })
    ));
    assert_eq!(
        store.read_block(0, 0, BLOCK).unwrap(),
        piece_bytes(&torrent, src.path(), 0)[..BLOCK as usize]
    );
}
