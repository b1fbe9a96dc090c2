//! Hostile torrents: every input here is something an attacker could hand
//! to `shoal inspect` or to an agent. Each must come back as a clear `Err`
//! (naming the field or entry at fault), never a panic, and never cost
//! memory or time in proportion to sizes the torrent merely claims.

// Helpers here are not `#[test]` functions, so clippy's
// `allow-unwrap-in-tests` does not reach them; in a test a panic is the
// failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use bencode::Bencode;
use meta::create::{self, CreateSettings};
use meta::path::PathProblem;
use meta::{ReadTorrentError, Torrent, TorrentError, MAX_TORRENT_BYTES};
use rand::{rngs::StdRng, Rng, SeedableRng};

// ---------------------------------------------------------------------------
// Building torrents by hand
// ---------------------------------------------------------------------------

const P16K: i64 = 16 * 1024;

fn dict(entries: Vec<(&[u8], Bencode)>) -> Bencode {
    Bencode::Dict(entries.into_iter().map(|(k, v)| (k.to_vec(), v)).collect())
}

fn s(text: &str) -> Bencode {
    Bencode::string(text)
}

/// A whole torrent file around `info`.
fn torrent(info: Bencode) -> Vec<u8> {
    dict(vec![(b"info", info)]).encode()
}

fn torrent_with_layers(info: Bencode, layers: Bencode) -> Vec<u8> {
    dict(vec![(b"info", info), (b"piece layers", layers)]).encode()
}

/// `count` fake SHA-1 piece hashes.
fn pieces(count: usize) -> Bencode {
    Bencode::Bytes(vec![0xab; count * 20])
}

/// A v1 single-file info dictionary with a consistent piece count.
fn v1_single(name: &[u8], piece_length: i64, length: i64) -> Bencode {
    let count = (length as u64).div_ceil(piece_length as u64) as usize;
    dict(vec![
        (b"name", Bencode::Bytes(name.to_vec())),
        (b"piece length", Bencode::Int(piece_length)),
        (b"length", Bencode::Int(length)),
        (b"pieces", pieces(count)),
    ])
}

/// One v1 `files` entry with raw path components.
fn v1_file(path: &[&[u8]], length: i64) -> Bencode {
    dict(vec![
        (b"length", Bencode::Int(length)),
        (
            b"path",
            Bencode::List(path.iter().map(|c| Bencode::Bytes(c.to_vec())).collect()),
        ),
    ])
}

fn v1_pad(length: i64) -> Bencode {
    dict(vec![
        (b"attr", s("p")),
        (b"length", Bencode::Int(length)),
        (
            b"path",
            Bencode::List(vec![s(".pad"), s(&length.to_string())]),
        ),
    ])
}

/// A v1 multi-file info dictionary; `piece_count` hashes are supplied.
fn v1_multi(files: Vec<Bencode>, piece_length: i64, piece_count: usize) -> Bencode {
    dict(vec![
        (b"name", s("release")),
        (b"piece length", Bencode::Int(piece_length)),
        (b"files", Bencode::List(files)),
        (b"pieces", pieces(piece_count)),
    ])
}

/// A v2 file-tree leaf: `{"": {length, pieces root}}`.
fn leaf(length: i64, root: Option<[u8; 32]>) -> Bencode {
    let mut entries = vec![(&b"length"[..], Bencode::Int(length))];
    if let Some(root) = root {
        entries.push((b"pieces root", Bencode::Bytes(root.to_vec())));
    }
    dict(vec![(b"", dict(entries))])
}

/// A v2 file tree holding one file at `path` (raw components).
fn tree_with(path: &[&[u8]], file: Bencode) -> Bencode {
    path.iter()
        .rev()
        .fold(file, |child, component| dict(vec![(component, child)]))
}

fn v2_info(name: &str, piece_length: i64, tree: Bencode) -> Bencode {
    dict(vec![
        (b"name", s(name)),
        (b"piece length", Bencode::Int(piece_length)),
        (b"meta version", Bencode::Int(2)),
        (b"file tree", tree),
    ])
}

/// Adds the v1 keys to a v2 info dictionary, making it hybrid.
fn hybrid(v2: Bencode, v1_keys: Vec<(&[u8], Bencode)>) -> Bencode {
    let Bencode::Dict(mut map) = v2 else {
        panic!("v2 info is a dictionary")
    };
    for (k, v) in v1_keys {
        map.insert(k.to_vec(), v);
    }
    Bencode::Dict(map)
}

fn err(bytes: &[u8]) -> TorrentError {
    match Torrent::from_bytes(bytes) {
        Ok(t) => panic!("hostile torrent was accepted: {t:#?}"),
        Err(e) => e,
    }
}

/// Messages are shown to users and logged: they must be one printable line
/// of bounded size whatever the torrent holds.
fn assert_printable_and_bounded(message: &str) {
    assert!(
        !message.chars().any(char::is_control),
        "message holds control characters: {message:?}"
    );
    assert!(
        message.len() < 400,
        "message is {} bytes long: {message:?}",
        message.len()
    );
}

// ---------------------------------------------------------------------------
// A valid torrent to start from
// ---------------------------------------------------------------------------

const VALID_FILES: &[(&str, usize)] = &[("a.txt", 1000), ("sub/b.bin", 40_000), ("sub/empty", 0)];

fn file_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A hybrid multi-file torrent made by `meta::create` from files on disk:
/// pad files, a piece layer, trackers and web seeds all present.
fn valid_torrent() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("release");
    for (index, (path, len)) in VALID_FILES.iter().enumerate() {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, file_bytes(*len, index as u8)).unwrap();
    }
    let source = create::scan(&root).unwrap();
    let settings = CreateSettings {
        piece_length: Some(16 * 1024),
        trackers: vec!["https://tracker.example.com/announce".into()],
        web_seeds: vec!["https://dl.example.com/release/".into()],
        creation_date: Some(1_700_000_000),
        threads: 1,
        ..CreateSettings::default()
    };
    create::create(&source, &settings, &|_| {})
        .unwrap()
        .encode(None)
}

#[test]
fn positive_control_the_valid_torrent_parses_with_its_files() {
    // Without this, every "is refused" below could pass on a parser that
    // refuses everything.
    let torrent = Torrent::from_bytes(&valid_torrent()).unwrap();
    assert_eq!(torrent.name, "release");
    assert!(torrent.multi_file);
    let files: Vec<(String, u64)> = torrent
        .data_files()
        .map(|f| (f.path.to_string(), f.length))
        .collect();
    let expected: Vec<(String, u64)> = VALID_FILES
        .iter()
        .map(|(p, l)| (p.to_string(), *l as u64))
        .collect();
    assert_eq!(files, expected);
    assert_eq!(torrent.total_size(), 41_000);
    assert_eq!(torrent.trackers.len(), 1);
    assert_eq!(torrent.web_seeds, ["https://dl.example.com/release/"]);
}

// ---------------------------------------------------------------------------
// Unsafe paths: in v1 `files`, in v2 `file tree` keys, and in `name`
// ---------------------------------------------------------------------------

struct PathCase {
    raw: Vec<u8>,
    /// What the error message must show of the entry, in printable form.
    shows: String,
}

fn case(raw: impl Into<Vec<u8>>, shows: &str) -> PathCase {
    PathCase {
        raw: raw.into(),
        shows: shows.to_owned(),
    }
}

fn hostile_names() -> Vec<PathCase> {
    vec![
        case("..", "\"..\""),
        case(".", "\".\""),
        case("/etc/passwd", "\"/etc/passwd\""),
        case("a/../b", "\"a/../b\""),
        // Backslashes are shown escaped, Rust style.
        case("C:\\x", r#""C:\\x""#),
        case("C:", "\"C:\""),
        case(r"\\?\C:\x", r#""\\\\?\\C:\\x""#),
        case("CON", "\"CON\""),
        case("nul.txt", "\"nul.txt\""),
        case("lpt1", "\"lpt1\""),
        // Control characters are shown as escapes, never raw.
        case("a\0b", r#""a\u{0}b""#),
        case("a\nb", r#""a\nb""#),
        case("trailing.", "\"trailing.\""),
        case("trailing ", "\"trailing \""),
        case("...", "\"...\""),
        case("release..", "\"release..\""),
        // UNC and device-namespace prefixes, and a bare root.
        case(r"\\server\share", r#""\\\\server\\share""#),
        case(r"\\.\PhysicalDrive0", r#""\\\\.\\PhysicalDrive0""#),
        case("/", "\"/\""),
        case("AUX.tar.gz", "\"AUX.tar.gz\""),
        // 4,000 bytes: the message shows a bounded prefix.
        case("x".repeat(4000), "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        // Not UTF-8: shown with replacement characters, escaped.
        case(b"ok\xff\xfeok".to_vec(), r"ok\u{fffd}\u{fffd}ok"),
        case("", "\"\""),
    ]
}

/// Checks that `error` refuses `case`, naming it. `UnsafePath` is the
/// expected variant; `allow_malformed` also accepts a structural error that
/// names the entry's place (a v2 tree key cannot be empty without being
/// read as a file leaf).
fn assert_refuses_entry(error: &TorrentError, case: &PathCase, allow_malformed: bool) {
    let message = error.to_string();
    let label = String::from_utf8_lossy(&case.raw);
    match error {
        TorrentError::UnsafePath(_) => {
            assert!(
                message.contains(&case.shows),
                "message for {label:?} does not show {:?}: {message}",
                case.shows
            );
        }
        TorrentError::Malformed { field, .. } if allow_malformed => {
            assert!(field.starts_with("info.file tree"), "{label:?}: {message}");
        }
        other => panic!("{label:?}: expected UnsafePath, got {other:?}"),
    }
    assert_printable_and_bounded(&message);
}

#[test]
fn unsafe_names_in_v1_file_paths_are_refused_and_named() {
    for case in hostile_names() {
        let files = vec![v1_file(&[b"dir", &case.raw], 5)];
        let bytes = torrent(v1_multi(files, P16K, 1));
        assert_refuses_entry(&err(&bytes), &case, false);
    }
}

#[test]
fn unsafe_names_preferred_under_path_utf8_are_refused() {
    // `path.utf-8` wins over `path`: a benign `path` must not hide it.
    for case in hostile_names() {
        let entry = dict(vec![
            (b"length", Bencode::Int(5)),
            (b"path", Bencode::List(vec![s("benign.txt")])),
            (
                b"path.utf-8",
                Bencode::List(vec![Bencode::Bytes(case.raw.clone())]),
            ),
        ]);
        let bytes = torrent(v1_multi(vec![entry], P16K, 1));
        assert_refuses_entry(&err(&bytes), &case, false);
    }
}

#[test]
fn unsafe_keys_in_v2_file_trees_are_refused_and_named() {
    for case in hostile_names() {
        let tree = tree_with(&[b"dir", &case.raw], leaf(5, Some([7; 32])));
        let bytes = torrent(v2_info("release", P16K, tree));
        // An empty key is the file-leaf marker, so `dir/""` is refused as a
        // malformed tree, naming `info.file tree/dir`.
        assert_refuses_entry(&err(&bytes), &case, case.raw.is_empty());
    }
}

#[test]
fn unsafe_names_in_hybrid_trees_are_refused() {
    for case in hostile_names().into_iter().filter(|c| !c.raw.is_empty()) {
        let tree = tree_with(&[b"dir", &case.raw], leaf(5, Some([7; 32])));
        let info = hybrid(
            v2_info("release", P16K, tree),
            vec![
                (
                    b"files",
                    Bencode::List(vec![v1_file(&[b"dir", &case.raw], 5)]),
                ),
                (b"pieces", pieces(1)),
            ],
        );
        assert_refuses_entry(&err(&torrent(info)), &case, false);
    }
}

#[test]
fn unsafe_release_names_are_refused_and_named() {
    for case in hostile_names() {
        let bytes = torrent(v1_single(&case.raw, P16K, 5));
        assert_refuses_entry(&err(&bytes), &case, false);
    }
}

#[test]
fn unsafe_names_preferred_under_name_utf8_are_refused() {
    for case in hostile_names() {
        let Bencode::Dict(mut info) = v1_single(b"benign", P16K, 5) else {
            unreachable!()
        };
        info.insert(b"name.utf-8".to_vec(), Bencode::Bytes(case.raw.clone()));
        assert_refuses_entry(&err(&torrent(Bencode::Dict(info))), &case, false);
    }
}

#[test]
fn v1_paths_nested_deeper_than_64_folders_are_refused() {
    let deep: Vec<&[u8]> = vec![b"d"; 65];
    let bytes = torrent(v1_multi(vec![v1_file(&deep, 5)], P16K, 1));
    match err(&bytes) {
        TorrentError::UnsafePath(e) => {
            assert_eq!(e.problem, PathProblem::TooDeep);
            assert!(e.to_string().contains("d/d/d/d"), "{e}");
            assert_printable_and_bounded(&e.to_string());
        }
        other => panic!("expected UnsafePath(TooDeep), got {other:?}"),
    }
    // 64 is still fine: the limit is the documented one, not lower.
    let ok: Vec<&[u8]> = vec![b"d"; 64];
    Torrent::from_bytes(&torrent(v1_multi(vec![v1_file(&ok, 5)], P16K, 1))).unwrap();
}

#[test]
fn v2_trees_nested_deeper_than_64_folders_are_refused() {
    // Each folder is a bencode dictionary, so the decoder's depth limit
    // stops this before the path check sees it; either refusal is fine,
    // but it must be a refusal, not a stack overflow.
    let deep: Vec<&[u8]> = vec![b"d"; 100];
    let bytes = torrent(v2_info(
        "release",
        P16K,
        tree_with(&deep, leaf(5, Some([7; 32]))),
    ));
    match err(&bytes) {
        TorrentError::UnsafePath(e) => assert_eq!(e.problem, PathProblem::TooDeep),
        TorrentError::Bencode(e) => {
            assert!(
                matches!(e.kind, bencode::DecodeErrorKind::TooDeep(_)),
                "{e}"
            )
        }
        other => panic!("expected a depth error, got {other:?}"),
    }
}

#[test]
fn symlink_entries_are_refused() {
    let link = dict(vec![
        (b"attr", s("l")),
        (b"length", Bencode::Int(0)),
        (b"path", Bencode::List(vec![s("link")])),
        (b"symlink path", Bencode::List(vec![s(".."), s("etc")])),
    ]);
    let bytes = torrent(v1_multi(vec![v1_file(&[b"a"], 5), link], P16K, 1));
    let e = err(&bytes);
    assert!(e.to_string().contains("info.files[1]"), "{e}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
}

// ---------------------------------------------------------------------------
// Piece lengths
// ---------------------------------------------------------------------------

fn assert_piece_length_error(bytes: &[u8]) {
    match err(bytes) {
        e @ TorrentError::Malformed { .. } => {
            assert!(e.to_string().contains("piece length"), "{e}");
            assert_printable_and_bounded(&e.to_string());
        }
        other => panic!("expected a `piece length` error, got {other:?}"),
    }
}

#[test]
fn out_of_range_piece_lengths_are_refused_in_v1() {
    for piece_length in [1i64 << 40, 0, -1, -16384, i64::MIN] {
        let info = dict(vec![
            (b"name", s("f")),
            (b"piece length", Bencode::Int(piece_length)),
            (b"length", Bencode::Int(5)),
            (b"pieces", pieces(1)),
        ]);
        assert_piece_length_error(&torrent(info));
    }
    // Not an integer at all.
    let info = dict(vec![
        (b"name", s("f")),
        (b"piece length", s("16384")),
        (b"length", Bencode::Int(5)),
        (b"pieces", pieces(1)),
    ]);
    assert_piece_length_error(&torrent(info));
}

/// A `pieces` string must be whole SHA-1 hashes, exactly as many as the
/// length needs: not a partial hash, not a million spare ones.
#[test]
fn v1_piece_counts_that_do_not_match_the_length_are_refused() {
    let with_pieces = |bytes: Vec<u8>| {
        torrent(dict(vec![
            (b"name", s("f.bin")),
            (b"piece length", Bencode::Int(P16K)),
            (b"length", Bencode::Int(P16K)),
            (b"pieces", Bencode::Bytes(bytes)),
        ]))
    };
    for (bytes, mentions) in [
        (vec![1u8; 19], "19 bytes"),
        (vec![1u8; 20 * 1_000_000 + 1], "20000001 bytes"),
        (vec![1u8; 20 * 1_000_000], "1000000"),
        (Vec::new(), "0"),
    ] {
        match err(&with_pieces(bytes)) {
            e @ TorrentError::Malformed { .. } => {
                let message = e.to_string();
                assert!(message.contains("info.pieces"), "{message}");
                assert!(message.contains(mentions), "{message}");
            }
            other => panic!("expected an `info.pieces` error, got {other:?}"),
        }
    }
}

#[test]
fn v2_piece_lengths_must_be_powers_of_two_of_at_least_16k() {
    for piece_length in [1i64 << 40, 0, -1, 3 * 16 * 1024, 16 * 1024 + 1, 8 * 1024, 1] {
        let tree = tree_with(&[b"f"], leaf(5, Some([7; 32])));
        assert_piece_length_error(&torrent(v2_info("f", piece_length, tree)));
    }
}

// ---------------------------------------------------------------------------
// Declared sizes out of proportion to the torrent
// ---------------------------------------------------------------------------

/// A v1 torrent claiming 2^45 bytes in 16 KiB pieces (2^31 pieces, 40 GiB
/// of hashes) while carrying three hashes.
fn huge_v1_single() -> Vec<u8> {
    let info = dict(vec![
        (b"name", s("huge.iso")),
        (b"piece length", Bencode::Int(P16K)),
        (b"length", Bencode::Int(1 << 45)),
        (b"pieces", pieces(3)),
    ]);
    torrent(info)
}

fn huge_v1_multi() -> Vec<u8> {
    let files = (0..4)
        .map(|i| v1_file(&[format!("part{i}").as_bytes()], 1 << 43))
        .collect();
    torrent(v1_multi(files, P16K, 3))
}

/// A v2 torrent whose one file claims 2^50 bytes, with `layer_hashes`
/// piece-layer hashes (none: no `piece layers` at all).
fn huge_v2(layer_hashes: Option<usize>) -> Vec<u8> {
    let root = [9u8; 32];
    let info = v2_info(
        "big.bin",
        P16K,
        tree_with(&[b"big.bin"], leaf(1 << 50, Some(root))),
    );
    match layer_hashes {
        None => torrent(info),
        Some(n) => torrent_with_layers(
            info,
            dict(vec![(&root[..], Bencode::Bytes(vec![1; n * 32]))]),
        ),
    }
}

/// Parses `bytes` expecting an error and returns it with the time taken.
fn timed_err(bytes: &[u8]) -> (TorrentError, Duration) {
    let started = Instant::now();
    let e = err(bytes);
    (e, started.elapsed())
}

/// Allocating or hashing in proportion to 2^31 pieces takes seconds at
/// least; a parser that checks the claim against the bytes present is done
/// in microseconds. (Peak memory is measured by the child-process test below.)
const FAST: Duration = Duration::from_millis(500);

#[test]
fn v1_total_length_out_of_proportion_to_piece_hashes_is_refused_fast() {
    for bytes in [huge_v1_single(), huge_v1_multi()] {
        let (e, took) = timed_err(&bytes);
        match &e {
            TorrentError::Malformed { field, problem } => {
                assert_eq!(field, "info.pieces");
                // 2^45 / 2^14 = 2^31 pieces needed, 3 present.
                assert!(problem.contains("2147483648"), "{e}");
                assert!(problem.contains('3'), "{e}");
            }
            other => panic!("expected a piece-count mismatch, got {other:?}"),
        }
        assert!(took < FAST, "took {took:?}");
    }
}

#[test]
fn v2_file_of_2_pow_50_bytes_without_its_piece_layer_is_refused_fast() {
    for layers in [None, Some(0), Some(3)] {
        let (e, took) = timed_err(&huge_v2(layers));
        match &e {
            TorrentError::PieceLayer { file, .. } => assert_eq!(file, "big.bin"),
            other => panic!("expected a piece-layer error, got {other:?}"),
        }
        let message = e.to_string();
        assert!(message.contains("piece layers"), "{message}");
        assert!(message.contains("big.bin"), "{message}");
        assert!(took < FAST, "took {took:?}");
    }
}

#[test]
fn piece_layer_that_does_not_hash_to_the_pieces_root_is_refused() {
    // Three pieces of 16 KiB: the layer has the right length, but its
    // hashes do not add up to the root the info-hash pins.
    let layer: Vec<[u8; 32]> = vec![[1; 32], [2; 32], [3; 32]];
    let true_root = meta::merkle::root_from_piece_layer(&layer, 1);
    let wrong_root = [0x55; 32];
    let build = |root: [u8; 32]| {
        let info = v2_info(
            "f.bin",
            P16K,
            tree_with(&[b"f.bin"], leaf(3 * P16K, Some(root))),
        );
        torrent_with_layers(
            info,
            dict(vec![(&root[..], Bencode::Bytes(layer.concat()))]),
        )
    };
    // Control: with the true root the same layer is accepted.
    let ok = Torrent::from_bytes(&build(true_root)).unwrap();
    assert_eq!(ok.piece_layers[&true_root], layer);

    match err(&build(wrong_root)) {
        e @ TorrentError::PieceLayer { .. } => {
            let message = e.to_string();
            assert!(message.contains("f.bin"), "{message}");
            assert!(message.contains("pieces root"), "{message}");
        }
        other => panic!("expected a piece-layer error, got {other:?}"),
    }
}

#[test]
fn file_lengths_adding_up_past_2_pow_64_are_refused() {
    let files = (0..3)
        .map(|i| v1_file(&[format!("f{i}").as_bytes()], i64::MAX))
        .collect();
    let e = err(&torrent(v1_multi(files, P16K, 1)));
    assert!(e.to_string().contains("2^64"), "{e}");

    // The same in a v2 tree, where each file is also rounded up to pieces.
    let mut tree = BTreeMap::new();
    for i in 0..3 {
        tree.insert(
            format!("f{i}").into_bytes(),
            leaf(i64::MAX - 5, Some([i as u8 + 1; 32])),
        );
    }
    let e = err(&torrent(v2_info("release", P16K, Bencode::Dict(tree))));
    assert!(e.to_string().contains("2^64"), "{e}");
}

#[test]
fn negative_file_lengths_are_refused() {
    let e = err(&torrent(v1_single(b"f", P16K, 5).pipe(|info| {
        let Bencode::Dict(mut map) = info else {
            unreachable!()
        };
        map.insert(b"length".to_vec(), Bencode::Int(-1));
        Bencode::Dict(map)
    })));
    assert!(e.to_string().contains("negative"), "{e}");

    let e = err(&torrent(v1_multi(
        vec![v1_file(&[b"ok"], 5), v1_file(&[b"bad"], -5)],
        P16K,
        1,
    )));
    let message = e.to_string();
    assert!(message.contains("info.files[1]"), "{message}");
    assert!(message.contains("-5"), "{message}");

    let tree = tree_with(&[b"dir", b"bad"], leaf(-5, Some([1; 32])));
    let e = err(&torrent(v2_info("release", P16K, tree)));
    let message = e.to_string();
    assert!(message.contains("dir/bad"), "{message}");
    assert!(message.contains("negative"), "{message}");
}

/// Lets a builder be tweaked inline.
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl Pipe for Bencode {}

// ---------------------------------------------------------------------------
// Hybrid torrents whose two halves disagree
// ---------------------------------------------------------------------------

fn hybrid_pair(v2_files: &[(&str, i64)], v1_files: Vec<Bencode>, piece_count: usize) -> Vec<u8> {
    let mut tree = BTreeMap::new();
    for (index, (name, length)) in v2_files.iter().enumerate() {
        tree.insert(
            name.as_bytes().to_vec(),
            leaf(*length, Some([index as u8 + 1; 32])),
        );
    }
    let info = hybrid(
        v2_info("release", P16K, Bencode::Dict(tree)),
        vec![
            (b"files", Bencode::List(v1_files)),
            (b"pieces", pieces(piece_count)),
        ],
    );
    torrent(info)
}

fn assert_hybrid_mismatch(bytes: &[u8], mentions: &str) {
    match err(bytes) {
        e @ TorrentError::HybridMismatch(_) => {
            assert!(e.to_string().contains(mentions), "{e}");
            assert_printable_and_bounded(&e.to_string());
        }
        other => panic!("expected HybridMismatch, got {other:?}"),
    }
}

#[test]
fn hybrid_control_with_pad_files_parses() {
    let bytes = hybrid_pair(
        &[("a", 100), ("b", 100)],
        vec![
            v1_file(&[b"a"], 100),
            v1_pad(P16K - 100),
            v1_file(&[b"b"], 100),
        ],
        2,
    );
    let t = Torrent::from_bytes(&bytes).unwrap();
    assert_eq!(t.data_files().count(), 2);
    assert_eq!(t.files[2].offset, P16K as u64);
}

#[test]
fn hybrid_with_different_lengths_is_refused() {
    let bytes = hybrid_pair(
        &[("a", 100), ("b", 100)],
        vec![
            v1_file(&[b"a"], 100),
            v1_pad(P16K - 100),
            v1_file(&[b"b"], 101),
        ],
        2,
    );
    assert_hybrid_mismatch(&bytes, "b (101 bytes)");
}

#[test]
fn hybrid_with_a_missing_pad_file_is_refused() {
    let bytes = hybrid_pair(
        &[("a", 100), ("b", 100)],
        vec![v1_file(&[b"a"], 100), v1_file(&[b"b"], 100)],
        1,
    );
    assert_hybrid_mismatch(&bytes, "piece boundary");
}

#[test]
fn hybrid_with_different_file_counts_is_refused() {
    let bytes = hybrid_pair(&[("a", 100)], vec![v1_file(&[b"a"], 100)], 1);
    Torrent::from_bytes(&bytes).unwrap(); // control
    let bytes = hybrid_pair(
        &[("a", 100)],
        vec![
            v1_file(&[b"a"], 100),
            v1_pad(P16K - 100),
            v1_file(&[b"b"], 100),
        ],
        2,
    );
    assert_hybrid_mismatch(&bytes, "2 files in v1, 1 in v2");
}

#[test]
fn hybrid_with_different_paths_is_refused() {
    let bytes = hybrid_pair(
        &[("a", 100), ("b", 100)],
        vec![
            v1_file(&[b"a"], 100),
            v1_pad(P16K - 100),
            v1_file(&[b"c"], 100),
        ],
        2,
    );
    assert_hybrid_mismatch(&bytes, "v1 has c");
}

#[test]
fn hybrid_single_file_with_different_length_is_refused() {
    let info = hybrid(
        v2_info("f", P16K, tree_with(&[b"f"], leaf(100, Some([1; 32])))),
        vec![(b"length", Bencode::Int(200)), (b"pieces", pieces(1))],
    );
    assert_hybrid_mismatch(&torrent(info), "200 bytes");
}

/// Regression: a hybrid torrent whose v1 pad file is longer than a piece
/// keeps every data file aligned, and once made the piece-layer check visit
/// the pad file and panic. Such a pad puts v1 pieces of zeros where v2 has
/// none, so it is refused.
#[test]
fn hybrid_pad_file_longer_than_a_piece_is_refused_not_a_panic() {
    let bytes = hybrid_pair(
        &[("a", P16K), ("b", 100)],
        vec![
            v1_file(&[b"a"], P16K),
            v1_pad(2 * P16K),
            v1_file(&[b"b"], 100),
        ],
        4,
    );
    assert_hybrid_mismatch(&bytes, "not shorter than a piece");
}

/// A v2 torrent of `n` two-piece files, each with its correct piece layer.
fn many_layered_files(n: usize) -> Vec<u8> {
    let mut tree = BTreeMap::new();
    let mut layers = BTreeMap::new();
    for i in 0..n {
        let mut layer = [[1u8; 32]; 2];
        layer[0][..8].copy_from_slice(&(i as u64).to_le_bytes());
        let root = meta::merkle::root_from_piece_layer(&layer, 1);
        tree.insert(format!("f{i:07}").into_bytes(), leaf(2 * P16K, Some(root)));
        layers.insert(root.to_vec(), Bencode::Bytes(layer.concat()));
    }
    torrent_with_layers(
        v2_info("release", P16K, Bencode::Dict(tree)),
        Bencode::Dict(layers),
    )
}

/// Regression: `parse_piece_layers` once found each file's layer by a
/// linear scan of the `piece layers` dictionary, so parsing was quadratic in
/// the file count: 40,000 files took seconds, and the ~350,000 that fit in
/// `MAX_TORRENT_BYTES` would take minutes. Parsing 4x the files should take
/// about 4x the time, not 16x.
#[test]
fn parse_time_grows_linearly_with_layered_files() {
    let time = |n| {
        let bytes = many_layered_files(n);
        let started = Instant::now();
        Torrent::from_bytes(&bytes).unwrap();
        started.elapsed()
    };
    let small = time(10_000);
    let large = time(40_000);
    assert!(
        large < small * 8,
        "10,000 files: {small:?}; 40,000 files: {large:?}"
    );
}

// ---------------------------------------------------------------------------
// Malformed encodings
// ---------------------------------------------------------------------------

#[test]
fn every_truncation_of_a_valid_torrent_is_a_bencode_error() {
    let bytes = valid_torrent();
    Torrent::from_bytes(&bytes).unwrap();
    for len in 0..bytes.len() {
        match Torrent::from_bytes(&bytes[..len]) {
            Err(TorrentError::Bencode(_)) => {}
            other => panic!("prefix of {len} of {} bytes: {other:?}", bytes.len()),
        }
    }
}

fn nested_lists(depth: usize) -> Vec<u8> {
    let mut out = vec![b'l'; depth];
    out.resize(2 * depth, b'e');
    out
}

fn assert_too_deep(result: Result<Torrent, TorrentError>) {
    match result {
        Err(TorrentError::Bencode(e)) => {
            assert!(
                matches!(e.kind, bencode::DecodeErrorKind::TooDeep(_)),
                "{e}"
            )
        }
        other => panic!("expected a depth error, got {other:?}"),
    }
}

#[test]
fn deeply_nested_lists_are_refused_without_overflowing_the_stack() {
    assert_too_deep(Torrent::from_bytes(&nested_lists(100_000)));
    let mut as_info = b"d4:info".to_vec();
    as_info.extend(nested_lists(100_000));
    as_info.push(b'e');
    assert_too_deep(Torrent::from_bytes(&as_info));
    // Unclosed nesting too.
    assert_too_deep(Torrent::from_bytes(&vec![b'l'; 100_000]));
}

#[test]
fn torrents_larger_than_the_limit_are_refused_before_decoding() {
    // Valid-looking start; the size check must come first either way.
    let mut bytes = vec![b'0'; MAX_TORRENT_BYTES as usize + 1];
    bytes[..2].copy_from_slice(b"d4");
    let started = Instant::now();
    match Torrent::from_bytes(&bytes) {
        Err(TorrentError::TooLarge { size, max }) => {
            assert_eq!(size, MAX_TORRENT_BYTES + 1);
            assert_eq!(max, MAX_TORRENT_BYTES);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(started.elapsed() < FAST);
}

#[test]
fn reading_a_huge_sparse_file_stops_at_the_limit() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().set_len(1 << 30).unwrap();
    file.flush().unwrap();
    let started = Instant::now();
    let result = meta::read_torrent_file(file.path());
    let took = started.elapsed();
    match result {
        Err(e @ ReadTorrentError::Invalid { .. }) => {
            let ReadTorrentError::Invalid { source, path } = &e else {
                unreachable!()
            };
            assert!(matches!(source, TorrentError::TooLarge { .. }), "{e}");
            assert_eq!(path, file.path());
            assert!(
                e.to_string().contains(&*file.path().to_string_lossy()),
                "{e}"
            );
        }
        other => panic!("expected a too-large error, got {other:?}"),
    }
    // Reading the whole GiB would take seconds; reading up to the 64 MiB
    // limit of a sparse file is quick.
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn missing_torrent_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.torrent");
    match meta::read_torrent_file(&path) {
        Err(e @ ReadTorrentError::Io { .. }) => {
            assert!(e.to_string().contains("absent.torrent"), "{e}")
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let original = valid_torrent();
    let mut rng = StdRng::seed_from_u64(0x0054_07a1);
    let (mut accepted, mut refused) = (0, 0);
    for iteration in 0..2000 {
        let mut bytes = original.clone();
        for _ in 0..rng.gen_range(1..=4) {
            let at = rng.gen_range(0..bytes.len());
            bytes[at] ^= rng.gen_range(1..=255u8);
        }
        let outcome = std::panic::catch_unwind(|| Torrent::from_bytes(&bytes).map(|_| ()));
        match outcome {
            Ok(Ok(())) => accepted += 1,
            Ok(Err(e)) => {
                assert_printable_and_bounded(&e.to_string());
                refused += 1;
            }
            Err(_) => panic!(
                "iteration {iteration}: parser panicked on {}",
                hex::encode(&bytes)
            ),
        }
    }
    // Sanity: the mutations do reach the checks (most flips break something).
    assert!(refused > 1000, "accepted {accepted}, refused {refused}");
}

// ---------------------------------------------------------------------------
// Peak memory, measured in a child process
// ---------------------------------------------------------------------------

/// The process's peak virtual memory in KiB (Linux `VmPeak`).
#[cfg(target_os = "linux")]
fn vm_peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmPeak:"))
        .unwrap()
        .to_owned();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs in its own process (started by the test below) so that nothing
/// else moves the high-water mark. A counting `#[global_allocator]` would be
/// the direct proof, but it needs `unsafe impl GlobalAlloc`, which the
/// workspace's `unsafe_code = "forbid"` rules out even in tests; `VmPeak`
/// counts every mapping, including a lazily zeroed `vec![0; 2^31 * 20]`
/// that would never show in resident memory or in timings.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "run in a child process by `declared_sizes_do_not_raise_peak_memory`"]
fn peak_memory_probe() {
    let inputs = [
        huge_v1_single(),
        huge_v1_multi(),
        huge_v2(None),
        huge_v2(Some(3)),
        nested_lists(100_000),
    ];
    // Warm up on a small valid torrent, so one-time setup is not counted.
    Torrent::from_bytes(&torrent(v1_single(b"warm", P16K, 5))).unwrap();
    let before = vm_peak_kib();
    for bytes in &inputs {
        for _ in 0..10 {
            assert!(Torrent::from_bytes(bytes).is_err());
        }
    }
    let grew_kib = vm_peak_kib() - before;
    // Proportional allocation would be 40 GiB (v1 hashes) or 2 TiB (v2 layer).
    assert!(grew_kib < 16 * 1024, "peak grew by {grew_kib} KiB");
    println!("peak grew by {grew_kib} KiB");
}

#[cfg(target_os = "linux")]
#[test]
fn declared_sizes_do_not_raise_peak_memory() {
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new(exe)
        .args([
            "peak_memory_probe",
            "--exact",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "probe failed: {}\n{stdout}\n{stderr}",
        output.status
    );
}
