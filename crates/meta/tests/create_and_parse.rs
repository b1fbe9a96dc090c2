//! Round trips: files on disk → `meta::create` → bytes → `Torrent::from_bytes`.
//! Everything the parser reports is checked against values computed here,
//! independently of the crate (SHA-1 of zero-padded pieces, BEP 52 merkle
//! roots over 16 KiB blocks), so a bug shared by creator and parser cannot
//! hide behind a successful round trip.

// Helpers here are not `#[test]` functions, so clippy's
// `allow-unwrap-in-tests` does not reach them; in a test a panic is the
// failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use meta::create::{self, CreateError, CreateSettings};
use meta::{MetaVersion, Torrent};
use rand::{rngs::StdRng, RngCore, SeedableRng};
use sha1::Sha1;
use sha2::{Digest, Sha256};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const BLOCK: usize = 16 * 1024;

/// Deterministic, distinct content per file, so a misplaced piece shows.
fn content(len: u64, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len as usize];
    StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// A release written to disk: its root and its files as (components, bytes).
struct Release {
    _dir: tempfile::TempDir,
    root: PathBuf,
    files: Vec<(Vec<String>, Vec<u8>)>,
}

/// Writes `files` (relative `/`-separated paths) under a folder `release`,
/// in the order given (deliberately not sorted).
fn folder(files: &[(&str, u64)]) -> Release {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("release");
    std::fs::create_dir(&root).unwrap();
    let mut written = Vec::new();
    for (seed, (relative, len)) in (1u64..).zip(files) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let data = content(*len, seed);
        std::fs::write(&path, &data).unwrap();
        let components = relative.split('/').map(str::to_owned).collect();
        written.push((components, data));
    }
    Release {
        _dir: dir,
        root,
        files: written,
    }
}

fn single(name: &str, len: u64) -> Release {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(name);
    let data = content(len, 99);
    std::fs::write(&root, &data).unwrap();
    Release {
        _dir: dir,
        root,
        files: vec![(vec![name.to_owned()], data)],
    }
}

fn settings(piece_length: u64, v2_only: bool) -> CreateSettings {
    CreateSettings {
        piece_length: Some(piece_length),
        v2_only,
        threads: 2,
        ..CreateSettings::default()
    }
}

/// Creates, encodes and parses; returns the encoded bytes and the parse.
fn round_trip(root: &Path, settings: &CreateSettings) -> (create::NewTorrent, Vec<u8>, Torrent) {
    let source = create::scan(root).unwrap();
    let new = create::create(&source, settings, &|_| {}).unwrap();
    let bytes = new.encode(None);
    let torrent = Torrent::from_bytes(&bytes).unwrap();
    (new, bytes, torrent)
}

// ---------------------------------------------------------------------------
// Independent reference computations
// ---------------------------------------------------------------------------

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hash_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Reduces `leaves` (zero-padded to `width`, a power of two) to one node.
fn merkle_root(leaves: &[[u8; 32]], width: usize) -> [u8; 32] {
    let mut layer = leaves.to_vec();
    layer.resize(width, [0; 32]);
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| hash_pair(&pair[0], &pair[1]))
            .collect();
    }
    layer[0]
}

fn leaf_hashes(data: &[u8]) -> Vec<[u8; 32]> {
    data.chunks(BLOCK).map(sha256).collect()
}

/// BEP 52 pieces root: the full tree over the file's 16 KiB blocks, padded
/// with zero leaves to a power of two.
fn reference_pieces_root(data: &[u8]) -> [u8; 32] {
    let leaves = leaf_hashes(data);
    merkle_root(&leaves, leaves.len().next_power_of_two())
}

/// BEP 52 piece layer: one node per piece, each the root of a piece-wide
/// subtree with zero leaves past the end of the file.
fn reference_piece_layer(data: &[u8], piece_length: u64) -> Vec<[u8; 32]> {
    let per_piece = piece_length as usize / BLOCK;
    data.chunks(piece_length as usize)
        .map(|piece| merkle_root(&leaf_hashes(piece), per_piece))
        .collect()
}

/// v1 piece hashes: SHA-1 over the file stream, each non-empty file
/// zero-padded to a piece boundary when `padded` (multi-file hybrid, where
/// pad files follow), the last piece left short otherwise.
fn reference_v1_pieces(files: &[&[u8]], piece_length: u64, padded: bool) -> Vec<[u8; 20]> {
    let mut stream = Vec::new();
    for data in files {
        stream.extend_from_slice(data);
        let tail = data.len() as u64 % piece_length;
        if padded && tail != 0 {
            stream.resize(stream.len() + (piece_length - tail) as usize, 0);
        }
    }
    stream
        .chunks(piece_length as usize)
        .map(|piece| Sha1::digest(piece).into())
        .collect()
}

/// `files` sorted as a torrent stores them: component by component.
fn storage_order(files: &[(Vec<String>, Vec<u8>)]) -> Vec<(Vec<String>, Vec<u8>)> {
    let mut sorted = files.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
}

// ---------------------------------------------------------------------------
// The round-trip check shared by every layout
// ---------------------------------------------------------------------------

fn check_round_trip(release: &Release, piece_length: u64, v2_only: bool) -> Torrent {
    let (new, bytes, t) = round_trip(&release.root, &settings(piece_length, v2_only));
    let multi = release.root.is_dir();
    let expected = storage_order(&release.files);

    // Identity: the info-hashes are the hashes of the info bytes, which are
    // exactly the bytes the creator wrote (and appear verbatim in the file).
    assert_eq!(t.info_bytes, new.info_bytes);
    assert!(bytes
        .windows(t.info_bytes.len())
        .any(|w| w == t.info_bytes.as_slice()));
    assert_eq!(t.info_hashes.v2, Some(sha256(&t.info_bytes)));
    assert_eq!(t.info_hashes.v2, Some(new.info_hash_v2()));
    if v2_only {
        assert_eq!(t.version(), MetaVersion::V2);
        assert_eq!(t.info_hashes.v1, None);
        assert!(t.v1_piece_hashes.is_empty());
    } else {
        assert_eq!(t.version(), MetaVersion::Hybrid);
        let v1: [u8; 20] = Sha1::digest(&t.info_bytes).into();
        assert_eq!(t.info_hashes.v1, Some(v1));
    }

    assert_eq!(t.multi_file, multi);
    assert_eq!(t.piece_length, piece_length);
    let name = release.root.file_name().unwrap().to_str().unwrap();
    assert_eq!(t.name, name);

    // Files, sizes and order (pad files aside).
    let data: Vec<(Vec<String>, u64)> = t
        .data_files()
        .map(|f| (f.path.components().to_vec(), f.length))
        .collect();
    let wanted: Vec<(Vec<String>, u64)> = expected
        .iter()
        .map(|(p, d)| (p.clone(), d.len() as u64))
        .collect();
    assert_eq!(data, wanted);
    assert_eq!(t.total_size(), wanted.iter().map(|(_, l)| l).sum::<u64>());

    // Layout: pad files exactly after each non-empty file that does not end
    // on a piece boundary (hybrid folders of more than one file only: one
    // file has nothing to align, and libtorrent adds none either), offsets
    // contiguous, and every non-empty file starting on a piece boundary.
    let pads_expected = multi && !v2_only && expected.len() > 1;
    let mut at = 0;
    let mut offset = 0u64;
    for (path, data) in &expected {
        let file = &t.files[at];
        assert!(!file.pad, "{path:?}: unexpected pad at {at}");
        assert_eq!(file.path.components(), path.as_slice());
        assert_eq!(file.offset, offset, "{path:?}");
        if !data.is_empty() {
            assert_eq!(file.offset % piece_length, 0, "{path:?} is not aligned");
        }
        offset += data.len() as u64;
        at += 1;
        let tail = data.len() as u64 % piece_length;
        if pads_expected && tail != 0 {
            let pad = &t.files[at];
            assert!(pad.pad, "no pad file after {path:?}");
            assert_eq!(pad.length, piece_length - tail, "pad after {path:?}");
            assert_eq!(pad.path.components()[0], ".pad");
            assert_eq!(pad.pieces_root, None);
            offset += pad.length;
            at += 1;
        } else if v2_only {
            // v2 offsets round each file up to whole pieces.
            offset += (piece_length - tail) % piece_length;
        }
    }
    assert_eq!(at, t.files.len(), "extra entries: {:?}", &t.files[at..]);

    // v1 piece hashes, computed here from the file contents.
    if !v2_only {
        let contents: Vec<&[u8]> = expected.iter().map(|(_, d)| d.as_slice()).collect();
        let reference = reference_v1_pieces(&contents, piece_length, pads_expected);
        assert_eq!(t.v1_piece_hashes.len(), reference.len());
        assert!(t.v1_piece_hashes == reference, "v1 piece hashes differ");
        assert_eq!(t.piece_count(), reference.len() as u64);
    }

    // v2 roots and piece layers: a layer exactly for each file longer than
    // one piece, and it is the reference layer.
    let mut layered = HashSet::new();
    for ((path, data), file) in expected.iter().zip(t.data_files()) {
        if data.is_empty() {
            assert_eq!(file.pieces_root, None, "{path:?}");
            continue;
        }
        let root = file.pieces_root.unwrap();
        assert_eq!(root, reference_pieces_root(data), "{path:?} root");
        if data.len() as u64 > piece_length {
            assert_eq!(
                t.piece_layers.get(&root),
                Some(&reference_piece_layer(data, piece_length)),
                "{path:?} layer"
            );
            layered.insert(root);
        } else {
            assert!(!t.piece_layers.contains_key(&root), "{path:?} has a layer");
        }
    }
    assert_eq!(
        t.piece_layers.keys().copied().collect::<HashSet<_>>(),
        layered
    );
    t
}

// ---------------------------------------------------------------------------
// Layouts
// ---------------------------------------------------------------------------

/// Names chosen so that component order differs from whole-string order:
/// `a/…` sorts before `a-b` and `a.txt` by component, after them as a string.
const NESTED: &[(&str, u64)] = &[
    ("z-last.bin", 16 * KIB + 1),
    ("a.txt", 1000),
    ("a/b/deep/file.dat", 50_000),
    ("a-b", 3 * 16 * KIB), // exact multiple: no pad after it
    ("empty.txt", 0),
    ("a/c.bin", 7),
    ("a/b/empty-too", 0),
    ("m/exactly-one-piece", 16 * KIB),
];

#[test]
fn single_file_hybrid_16k_round_trips() {
    let t = check_round_trip(&single("app.bin", 100_000), 16 * KIB, false);
    assert_eq!(t.files.len(), 1, "single-file torrents carry no pad file");
    assert_eq!(t.piece_count(), 7);
}

#[test]
fn single_file_v2_only_16k_round_trips() {
    check_round_trip(&single("app.bin", 100_000), 16 * KIB, true);
}

#[test]
fn single_file_smaller_than_a_block_round_trips() {
    check_round_trip(&single("tiny", 5), 16 * KIB, false);
    check_round_trip(&single("tiny", 5), 4 * MIB, true);
}

#[test]
fn single_file_hybrid_4m_round_trips() {
    let t = check_round_trip(&single("big.iso", 9 * MIB + 5), 4 * MIB, false);
    assert_eq!(t.piece_layers.len(), 1);
    assert_eq!(t.piece_count(), 3);
}

#[test]
fn multi_file_hybrid_16k_round_trips_with_pad_files() {
    let t = check_round_trip(&folder(NESTED), 16 * KIB, false);
    // Six non-empty files, two of which (a-b, exactly-one-piece) end on a
    // piece boundary: four pads.
    assert_eq!(t.files.iter().filter(|f| f.pad).count(), 4);
}

#[test]
fn multi_file_v2_only_16k_round_trips_without_pad_files() {
    let t = check_round_trip(&folder(NESTED), 16 * KIB, true);
    assert!(t.files.iter().all(|f| !f.pad));
}

#[test]
fn multi_file_hybrid_4m_round_trips() {
    let files = [
        ("big", 8 * MIB + 7),
        ("small", 10),
        ("x/exact", 4 * MIB),
        ("x/y/empty", 0),
    ];
    let t = check_round_trip(&folder(&files), 4 * MIB, false);
    assert_eq!(t.piece_layers.len(), 1, "only `big` is longer than a piece");
}

#[test]
fn multi_file_v2_only_4m_round_trips() {
    let files = [("big", 4 * MIB + 1), ("small", 10), ("x/exact", 4 * MIB)];
    check_round_trip(&folder(&files), 4 * MIB, true);
}

#[test]
fn a_folder_holding_one_file_is_still_multi_file() {
    let t = check_round_trip(&folder(&[("only.bin", 20_000)]), 16 * KIB, false);
    assert!(t.multi_file);
    assert!(t.files.iter().all(|f| !f.pad), "nothing to align: no pad");
    // A second file, even an empty one, brings pad files back.
    let t = check_round_trip(&folder(&[("only.bin", 20_000), ("z", 0)]), 16 * KIB, false);
    assert!(t.files[1].pad);
    assert_eq!(t.data_files().next().unwrap().path.to_string(), "only.bin");
}

#[test]
fn identical_files_share_a_root_and_a_layer() {
    let release = folder(&[("one", 40_000), ("two", 40_000)]);
    std::fs::copy(release.root.join("one"), release.root.join("two")).unwrap();
    let t = Torrent::from_bytes(
        &create::create(
            &create::scan(&release.root).unwrap(),
            &settings(16 * KIB, false),
            &|_| {},
        )
        .unwrap()
        .encode(None),
    )
    .unwrap();
    let roots: Vec<_> = t.data_files().map(|f| f.pieces_root.unwrap()).collect();
    assert_eq!(roots[0], roots[1]);
    assert_eq!(t.piece_layers.len(), 1);
}

#[test]
fn top_level_fields_round_trip() {
    let release = single("app.bin", 1000);
    let settings = CreateSettings {
        trackers: vec![
            "https://t1.example.com/announce".into(),
            "udp://t2.example.com:6969".into(),
        ],
        web_seeds: vec!["https://dl.example.com/app.bin".into()],
        comment: Some("release notes: ünïcode".into()),
        creation_date: Some(1_700_000_123),
        ..CreateSettings::default()
    };
    let (_, _, t) = round_trip(&release.root, &settings);
    assert_eq!(
        t.trackers,
        vec![
            vec!["https://t1.example.com/announce".to_owned()],
            vec!["udp://t2.example.com:6969".to_owned()],
        ]
    );
    assert_eq!(t.web_seeds, ["https://dl.example.com/app.bin"]);
    assert_eq!(t.comment.as_deref(), Some("release notes: ünïcode"));
    assert_eq!(t.creation_date, Some(1_700_000_123));
    assert!(t.created_by.unwrap().starts_with("shoal/"));
    assert_eq!(t.signature, meta::SignatureStatus::Absent);
}

// ---------------------------------------------------------------------------
// Determinism and settings
// ---------------------------------------------------------------------------

#[test]
fn hashing_with_1_or_4_threads_gives_identical_bytes() {
    // Enough 16 KiB pieces that chunks really are spread over workers.
    let release = folder(&[("a", 5 * MIB + 3), ("b/c", 3 * MIB), ("b/d", 123), ("e", 0)]);
    let source = create::scan(&release.root).unwrap();
    for v2_only in [false, true] {
        let encode = |threads| {
            let s = CreateSettings {
                threads,
                ..settings(16 * KIB, v2_only)
            };
            create::create(&source, &s, &|_| {}).unwrap().encode(None)
        };
        let one = encode(1);
        assert!(one == encode(4), "threads=4 differs (v2_only={v2_only})");
        assert!(one == encode(0), "threads=0 differs (v2_only={v2_only})");
    }
}

#[test]
fn progress_reports_every_byte_once() {
    let release = folder(&[("a", 5 * MIB + 3), ("b", 1), ("c", 0)]);
    let source = create::scan(&release.root).unwrap();
    let total = std::sync::atomic::AtomicU64::new(0);
    create::create(&source, &settings(16 * KIB, false), &|n| {
        total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(total.into_inner(), 5 * MIB + 4);
}

#[test]
fn default_piece_length_is_a_growing_power_of_two() {
    let sizes = [
        0,
        1,
        16 * KIB,
        MIB,
        32 * MIB,
        100 * MIB,
        GIB,
        10 * GIB,
        100 * GIB,
        10 * 1024 * GIB,
        u64::MAX,
    ];
    let mut previous = 0;
    for size in sizes {
        let length = create::default_piece_length(size);
        assert!(length.is_power_of_two(), "{size}: {length}");
        assert!((16 * KIB..=16 * MIB).contains(&length), "{size}: {length}");
        assert!(length >= previous, "{size}: {length} < {previous}");
        if length < 16 * MIB {
            assert!(size.div_ceil(length) <= 2000, "{size}: too many pieces");
        }
        previous = length;
    }
    assert!(create::default_piece_length(10 * GIB) > create::default_piece_length(MIB));
    assert_eq!(create::default_piece_length(MIB), 16 * KIB);
    assert_eq!(create::default_piece_length(u64::MAX), 16 * MIB);
}

const GIB: u64 = 1024 * MIB;

#[test]
fn bad_piece_lengths_are_refused_by_create() {
    let release = single("f", 10);
    let source = create::scan(&release.root).unwrap();
    for bad in [0, 1000, 8 * KIB, 16 * KIB + 1, 3 * 16 * KIB, 512 * MIB] {
        match create::create(&source, &settings(bad, false), &|_| {}) {
            Err(e @ CreateError::BadPieceLength(_)) => {
                assert!(e.to_string().contains(&bad.to_string()), "{e}")
            }
            other => panic!("piece length {bad}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// What cannot be published
// ---------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn symlinks_are_refused() {
    let release = folder(&[("real.bin", 100)]);
    let link = release.root.join("link.bin");
    std::os::unix::fs::symlink(release.root.join("real.bin"), &link).unwrap();
    match create::scan(&release.root) {
        Err(CreateError::NotRegularFile(path)) => assert_eq!(path, link),
        other => panic!("expected NotRegularFile, got {other:?}"),
    }
    // A symlink given as the release itself is refused too.
    match create::scan(&link) {
        Err(e @ CreateError::NotRegularFile(_)) => {
            assert!(e.to_string().contains("link.bin"), "{e}")
        }
        other => panic!("expected NotRegularFile, got {other:?}"),
    }
}

#[test]
fn folders_without_data_are_refused() {
    let empty_files = folder(&[("a", 0), ("b/c", 0)]);
    match create::scan(&empty_files.root) {
        Err(e @ CreateError::NoData(_)) => assert!(e.to_string().contains("release"), "{e}"),
        other => panic!("expected NoData, got {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("hollow/sub")).unwrap();
    assert!(matches!(
        create::scan(&dir.path().join("hollow")),
        Err(CreateError::NoData(_))
    ));
    assert!(matches!(
        create::scan(&single("zero", 0).root),
        Err(CreateError::NoData(_))
    ));
}

#[cfg(unix)]
#[test]
fn names_other_platforms_cannot_create_are_refused() {
    for bad in ["CON", "a:b", "nul.txt", "trailing.", "sub/Aux"] {
        let release = folder(&[("fine.bin", 10), (bad, 10)]);
        match create::scan(&release.root) {
            Err(e @ CreateError::UnsafeName { .. }) => {
                let last = bad.rsplit('/').next().unwrap();
                assert!(e.to_string().contains(last), "{bad}: {e}");
                assert!(e.to_string().contains("rename"), "{bad}: {e}");
            }
            other => panic!("{bad}: expected UnsafeName, got {other:?}"),
        }
    }
}

#[test]
fn missing_paths_are_io_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-here");
    match create::scan(&missing) {
        Err(e @ CreateError::Io { .. }) => assert!(e.to_string().contains("not-here"), "{e}"),
        other => panic!("expected Io, got {other:?}"),
    }
}
