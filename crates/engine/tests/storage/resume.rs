//! Saved progress: survives a restart, never takes a damaged or foreign
//! file for progress, and is replaced atomically.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use engine::resume::{ResumeState, ResumeWarning};
use engine::storage::PieceStore;
use meta::Torrent;
use testkit::data::write_pattern_file;

use crate::{listing, make_torrent, piece_bytes, release_tree, write_piece};

/// Downloads and verifies the pieces in `pieces`, saves progress, and
/// returns the path of the resume file.
fn partial(torrent: &Arc<Torrent>, src: &Path, out: &Path, pieces: &[u32]) -> std::path::PathBuf {
    let (store, _) = PieceStore::open_download(Arc::clone(torrent), out).unwrap();
    let mut state = ResumeState::new(torrent);
    for &index in pieces {
        write_piece(&store, &piece_bytes(torrent, src, index), index);
        assert!(store.check_piece(index).unwrap().ok);
        state.mark_verified(index);
    }
    store.save_resume(&state).unwrap();
    store.resume_path().unwrap().to_path_buf()
}

fn verified(state: &ResumeState) -> Vec<u32> {
    (0..state.piece_count())
        .filter(|&p| state.is_verified(p))
        .collect()
}

#[test]
fn progress_survives_a_restart() {
    let src = tempfile::tempdir().unwrap();
    let torrent = make_torrent(&release_tree(src.path()), 16_384, false);
    let out = tempfile::tempdir().unwrap();
    partial(&torrent, src.path(), out.path(), &[0, 3, 7, 8]);
    let (store, loaded) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    assert!(loaded.warning.is_none(), "{:?}", loaded.warning);
    assert_eq!(verified(&loaded.state), [0, 3, 7, 8]);
    assert_eq!(loaded.state.verified_count(), 4);
    for piece in [0, 3, 7, 8] {
        assert!(store.check_piece(piece).unwrap().ok, "piece {piece} kept");
    }
}

#[test]
fn damaged_resume_files_mean_no_progress_and_a_warning() {
    let src = tempfile::tempdir().unwrap();
    let torrent = make_torrent(&release_tree(src.path()), 16_384, true);
    let out = tempfile::tempdir().unwrap();
    let path = partial(&torrent, src.path(), out.path(), &[1, 2]);
    let good = std::fs::read(&path).unwrap();
    let mut flipped = good.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x10;
    let damages: [(&str, Vec<u8>); 5] = [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("zero-length", Vec::new()),
        ("garbage", b"\x00\xffnot bencode at all".repeat(7)),
        ("one bit flipped", flipped),
        ("huge", vec![b'd'; 1 << 20]),
    ];
    for (what, bytes) in damages {
        std::fs::write(&path, &bytes).unwrap();
        let (_, loaded) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
        assert_eq!(loaded.state.verified_count(), 0, "{what}");
        assert!(
            matches!(loaded.warning, Some(ResumeWarning::Corrupt { .. })),
            "{what}: {:?}",
            loaded.warning
        );
        let message = loaded.warning.unwrap().to_string();
        assert!(message.contains("resume"), "{what}: {message}");
    }
}

#[test]
fn another_torrents_resume_file_is_ignored() {
    let src_a = tempfile::tempdir().unwrap();
    let src_b = tempfile::tempdir().unwrap();
    write_pattern_file(&src_a.path().join("setup.exe"), 100_000, 1);
    write_pattern_file(&src_b.path().join("setup.exe"), 100_000, 2);
    let a = make_torrent(&src_a.path().join("setup.exe"), 16_384, false);
    let b = make_torrent(&src_b.path().join("setup.exe"), 16_384, false);
    let out = tempfile::tempdir().unwrap();
    let a_resume = partial(&a, src_a.path(), out.path(), &[0, 1]);
    let (store_b, _) = PieceStore::open_download(Arc::clone(&b), out.path()).unwrap();
    let b_resume = store_b.resume_path().unwrap().to_path_buf();
    assert_ne!(
        a_resume.parent(),
        b_resume.parent(),
        "one staging folder each"
    );
    std::fs::copy(&a_resume, &b_resume).unwrap();
    drop(store_b);
    let (_, loaded) = PieceStore::open_download(Arc::clone(&b), out.path()).unwrap();
    assert_eq!(loaded.state.verified_count(), 0);
    assert!(
        matches!(loaded.warning, Some(ResumeWarning::OtherTorrent { .. })),
        "{:?}",
        loaded.warning
    );
}

#[test]
fn progress_on_files_gone_from_staging_is_dropped() {
    let src = tempfile::tempdir().unwrap();
    let torrent = make_torrent(&release_tree(src.path()), 65_536, false);
    let out = tempfile::tempdir().unwrap();
    let all: Vec<u32> = (0..u32::try_from(torrent.piece_count()).unwrap()).collect();
    let resume = partial(&torrent, src.path(), out.path(), &all);
    let gone = resume.parent().unwrap().join("data/release/e.bin");
    std::fs::remove_file(&gone).unwrap();
    let (_, loaded) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    let e_bin = torrent.files.iter().find(|f| f.length == 300_001).unwrap();
    let e_pieces = (e_bin.offset / 65_536) as u32..=((e_bin.offset + 300_000) / 65_536) as u32;
    for piece in all {
        assert_eq!(
            loaded.state.is_verified(piece),
            !e_pieces.contains(&piece),
            "piece {piece}"
        );
    }
    assert!(
        matches!(&loaded.warning, Some(ResumeWarning::DataMissing { path }) if path.ends_with("e.bin")),
        "{:?}",
        loaded.warning
    );
}

#[test]
fn temp_files_left_by_a_killed_save_are_ignored_and_removed() {
    let src = tempfile::tempdir().unwrap();
    let torrent = make_torrent(&release_tree(src.path()), 16_384, false);
    let out = tempfile::tempdir().unwrap();
    let resume = partial(&torrent, src.path(), out.path(), &[4]);
    let stale = resume.with_file_name("resume.tmp-999999-0");
    std::fs::write(&stale, b"d7:vers").unwrap();
    let (_, loaded) = PieceStore::open_download(Arc::clone(&torrent), out.path()).unwrap();
    assert_eq!(verified(&loaded.state), [4]);
    assert!(!stale.exists());
}

#[test]
fn concurrent_loads_always_see_a_whole_state() {
    let src = tempfile::tempdir().unwrap();
    write_pattern_file(&src.path().join("big.bin"), 64 * 16_384 - 100, 7);
    let torrent = make_torrent(&src.path().join("big.bin"), 16_384, false);
    let count = u32::try_from(torrent.piece_count()).unwrap();
    assert_eq!(count, 64);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resume");
    ResumeState::new(&torrent).save(&path).unwrap();
    let done = AtomicBool::new(false);
    let loads = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut loads = 0;
            let mut last = 0;
            while !done.load(Ordering::Acquire) || loads == 0 {
                let loaded = ResumeState::load(&path, &torrent).unwrap();
                assert!(loaded.warning.is_none(), "{:?}", loaded.warning);
                // Every saved state is a prefix 0..k with k growing.
                let k = loaded.state.verified_count();
                assert_eq!(verified(&loaded.state), (0..k).collect::<Vec<_>>());
                assert!(k >= last, "went back from {last} to {k}");
                last = k;
                loads += 1;
            }
            loads
        });
        let mut state = ResumeState::new(&torrent);
        for i in 0..200u32 {
            state.mark_verified((i * count / 200).min(count - 1));
            state.save(&path).unwrap();
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap()
    });
    assert!(loads > 0);
    let names = listing(dir.path());
    assert_eq!(names, ["resume"], "no temp files left");
    let final_state = ResumeState::load(&path, &torrent).unwrap().state;
    assert_eq!(final_state.verified_count(), count);
}
