//! Interoperability with libtorrent, the reference BitTorrent v2
//! implementation, through `tests/interop/lt_driver.py`:
//!
//! * torrents published by shoal load in libtorrent with the same identity
//!   and files, and libtorrent verifies the published data against them,
//!   separately for the v1 and the v2 hashes of hybrid torrents;
//! * torrents created by libtorrent are read by `shoal inspect` exactly as
//!   libtorrent reads them.
//!
//! These tests never skip: a missing libtorrent is a broken test setup, and
//! `scripts/test.sh` installs it.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;
use testkit::interop::lt_driver;
use testkit::json::file_list;
use testkit::{field, run, run_json, shoal, write_random_file, write_tree};

const TRACKER: &str = "http://127.0.0.1:6969/announce";
const SMALL_PIECE: u64 = 16 * 1024;
const LARGE_PIECE: u64 = 4 * 1024 * 1024;

const SINGLE_FILE_NAME: &str = "tool-1.0.bin";
const SINGLE_FILE_SIZE: u64 = 1_000_003;

const TREE_NAME: &str = "bundle";
/// Nested directories, an empty file, and sizes that are not multiples of
/// any piece size, so that pad files and partial pieces are exercised.
const NESTED_TREE: &[(&str, u64)] = &[
    ("a/b/c.bin", 300_001),
    ("a/d.txt", 17),
    ("empty.dat", 0),
    ("z/big.bin", 5_000_000),
];
/// Names whose order as whole path strings ("a-b" < "a.txt" < "a/x") differs
/// from the per-component order BEP 52 file trees use ("a" < "a-b" <
/// "a.txt"), with upper case and punctuation sorting before lower case.
const SORT_ORDER_TREE: &[(&str, u64)] = &[
    ("B/y", 20_000),
    ("_c", 5),
    ("a/x", 40_000),
    ("a-b", 1),
    ("a.txt", 16_384),
];

#[derive(Debug, Clone, Copy)]
enum Fixture {
    SingleFile,
    Tree(&'static [(&'static str, u64)]),
}

impl Fixture {
    /// Writes the fixture under `dir` and returns the path to publish.
    fn create(self, dir: &Path) -> PathBuf {
        match self {
            Fixture::SingleFile => {
                let path = dir.join(SINGLE_FILE_NAME);
                write_random_file(&path, SINGLE_FILE_SIZE, 1);
                path
            }
            Fixture::Tree(files) => {
                let root = dir.join(TREE_NAME);
                write_tree(&root, files, 2);
                root
            }
        }
    }

    /// The files a torrent of this fixture must list, sorted by path.
    fn expected_files(self) -> Vec<(String, u64)> {
        let mut files: Vec<_> = match self {
            Fixture::SingleFile => vec![(SINGLE_FILE_NAME.to_owned(), SINGLE_FILE_SIZE)],
            Fixture::Tree(files) => files
                .iter()
                .map(|(path, size)| ((*path).to_owned(), *size))
                .collect(),
        };
        files.sort();
        files
    }
}

/// One test's scratch space: fixture data under `data/`, keys and torrents
/// under `out/`, so that checking a save path sees only the payload.
#[derive(Debug)]
struct Workspace {
    _tmp: TempDir,
    data: PathBuf,
    out: PathBuf,
}

impl Workspace {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("create temporary directory");
        let data = tmp.path().join("data");
        let out = tmp.path().join("out");
        for dir in [&data, &out] {
            std::fs::create_dir(dir).expect("create workspace directory");
        }
        Workspace {
            _tmp: tmp,
            data,
            out,
        }
    }
}

fn lt_info(torrent: &Path) -> Value {
    run_json(lt_driver().arg("info").arg(torrent))
}

fn shoal_inspect(torrent: &Path) -> Value {
    run_json(shoal().arg("inspect").arg(torrent).arg("--json"))
}

/// Asserts that libtorrent finds every piece of `torrent` present and valid
/// under `save_path`, in each of `expected_views` (as given, and the v1-only
/// and v2-only views of a hybrid torrent).
fn assert_libtorrent_seeds(torrent: &Path, save_path: &Path, expected_views: &[&str]) {
    let report = run_json(lt_driver().arg("check").arg(torrent).arg(save_path));
    let views = field(&report, "views")
        .as_object()
        .unwrap_or_else(|| panic!("views is not an object: {report:#}"));
    let mut names: Vec<&str> = views.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected: Vec<&str> = expected_views.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "checked views of {}", torrent.display());
    for (name, view) in views {
        let context = format!("{name} view of {}: {view:#}", torrent.display());
        assert_eq!(field(view, "error"), &Value::Null, "{context}");
        let num_pieces = field(view, "num_pieces").as_u64().unwrap_or(0);
        assert!(num_pieces > 0, "{context}");
        assert_eq!(
            field(view, "pieces_valid").as_u64(),
            Some(num_pieces),
            "{context}"
        );
        assert_eq!(field(view, "is_seed"), &Value::Bool(true), "{context}");
    }
}

/// Asserts that shoal and libtorrent agree on what `torrent` is.
fn assert_same_torrent(shoal_view: &Value, lt_view: &Value) {
    let context = format!("shoal inspect: {shoal_view:#}\nlibtorrent: {lt_view:#}");
    for key in [
        "name",
        "info_hash_v1",
        "info_hash_v2",
        "total_size",
        "piece_size",
    ] {
        assert_eq!(
            field(shoal_view, key),
            field(lt_view, key),
            "{key} differs\n{context}"
        );
    }
    assert_eq!(
        file_list(field(shoal_view, "files")),
        file_list(field(lt_view, "files")),
        "files differ (order matters)\n{context}"
    );
}

/// Publishes `fixture` with shoal and checks it against libtorrent.
fn shoal_to_libtorrent(fixture: Fixture, piece_size: u64, v2_only: bool) {
    let ws = Workspace::new();
    let source = fixture.create(&ws.data);
    let key = ws.out.join("publisher.key");
    let keygen = run_json(shoal().arg("keygen").arg("--out").arg(&key).arg("--json"));
    let public_key = field(&keygen, "public_key").clone();

    let torrent = ws.out.join("published.torrent");
    let mut publish = shoal();
    publish
        .arg("publish")
        .arg(&source)
        .arg("--key")
        .arg(&key)
        .args(["--tracker", TRACKER])
        .arg("--piece-size")
        .arg(piece_size.to_string())
        .arg("--out")
        .arg(&torrent);
    if v2_only {
        publish.arg("--v2-only");
    }
    run(&mut publish);

    let shoal_view = shoal_inspect(&torrent);
    let lt_view = lt_info(&torrent);
    assert_same_torrent(&shoal_view, &lt_view);

    let context = format!("libtorrent: {lt_view:#}");
    let mut published_files = file_list(field(&lt_view, "files"));
    published_files.sort();
    assert_eq!(
        published_files,
        fixture.expected_files(),
        "published files\n{context}"
    );
    assert_eq!(
        field(&lt_view, "piece_size").as_u64(),
        Some(piece_size),
        "{context}"
    );
    assert!(field(&lt_view, "info_hash_v2").is_string(), "{context}");
    assert_eq!(
        field(&lt_view, "info_hash_v1").is_null(),
        v2_only,
        "{context}"
    );
    assert_eq!(
        field(&shoal_view, "publisher"),
        &public_key,
        "{shoal_view:#}"
    );
    assert_eq!(field(&shoal_view, "signature"), "valid", "{shoal_view:#}");

    let views: &[&str] = if v2_only {
        &["as_given"]
    } else {
        &["as_given", "v1", "v2"]
    };
    let save_path = source.parent().expect("fixture has a parent directory");
    assert_libtorrent_seeds(&torrent, save_path, views);
}

/// Creates a torrent of `fixture` with libtorrent and checks that shoal
/// reads it the same way.
fn libtorrent_to_shoal(fixture: Fixture, mode: &str, piece_size: u64) {
    let ws = Workspace::new();
    let source = fixture.create(&ws.data);
    let torrent = ws.out.join(format!("libtorrent-{mode}.torrent"));
    run(lt_driver()
        .args(["make", "--mode", mode, "--piece-size"])
        .arg(piece_size.to_string())
        .arg(&source)
        .arg(&torrent));

    let lt_view = lt_info(&torrent);
    let context = format!("libtorrent: {lt_view:#}");
    // The driver is the oracle here; make sure it produced what was asked.
    assert_eq!(
        field(&lt_view, "info_hash_v1").is_string(),
        mode != "v2",
        "{context}"
    );
    assert_eq!(
        field(&lt_view, "info_hash_v2").is_string(),
        mode != "v1",
        "{context}"
    );

    let shoal_view = shoal_inspect(&torrent);
    assert_same_torrent(&shoal_view, &lt_view);
    assert_eq!(field(&shoal_view, "signature"), "absent", "{shoal_view:#}");
}

#[test]
fn shoal_hybrid_single_file_small_pieces_verifies_in_libtorrent() {
    shoal_to_libtorrent(Fixture::SingleFile, SMALL_PIECE, false);
}

#[test]
fn shoal_hybrid_single_file_large_pieces_verifies_in_libtorrent() {
    shoal_to_libtorrent(Fixture::SingleFile, LARGE_PIECE, false);
}

#[test]
fn shoal_hybrid_tree_small_pieces_verifies_in_libtorrent() {
    shoal_to_libtorrent(Fixture::Tree(NESTED_TREE), SMALL_PIECE, false);
}

#[test]
fn shoal_hybrid_tree_large_pieces_verifies_in_libtorrent() {
    shoal_to_libtorrent(Fixture::Tree(NESTED_TREE), LARGE_PIECE, false);
}

#[test]
fn shoal_v2_only_tree_verifies_in_libtorrent() {
    shoal_to_libtorrent(Fixture::Tree(NESTED_TREE), SMALL_PIECE, true);
}

#[test]
fn libtorrent_hybrid_tree_inspects_identically() {
    libtorrent_to_shoal(Fixture::Tree(NESTED_TREE), "hybrid", SMALL_PIECE);
}

#[test]
fn libtorrent_v2_tree_inspects_identically() {
    libtorrent_to_shoal(Fixture::Tree(NESTED_TREE), "v2", SMALL_PIECE);
}

#[test]
fn libtorrent_v1_tree_inspects_identically() {
    libtorrent_to_shoal(Fixture::Tree(NESTED_TREE), "v1", SMALL_PIECE);
}

#[test]
fn libtorrent_hybrid_single_file_inspects_identically() {
    libtorrent_to_shoal(Fixture::SingleFile, "hybrid", 2 * SMALL_PIECE);
}

#[test]
fn shoal_hybrid_sort_order_tree_verifies_in_libtorrent() {
    shoal_to_libtorrent(Fixture::Tree(SORT_ORDER_TREE), SMALL_PIECE, false);
}

#[test]
fn libtorrent_hybrid_sort_order_tree_inspects_identically() {
    libtorrent_to_shoal(Fixture::Tree(SORT_ORDER_TREE), "hybrid", SMALL_PIECE);
}

/// A folder holding a single file: libtorrent adds no pad file then, and
/// shoal must not either, or the two would name the same release differently.
const ONE_FILE_TREE: &[(&str, u64)] = &[("only/file.bin", 70_000)];

/// shoal and libtorrent, given the same data and piece size, must write the
/// same `info` dictionary: same info-hashes, so both can join one swarm for
/// a release no matter which of them made the torrent.
fn same_info_hashes_as_libtorrent(fixture: Fixture, mode: &str, piece_size: u64) {
    let ws = Workspace::new();
    let source = fixture.create(&ws.data);
    let key = ws.out.join("publisher.key");
    run(shoal().arg("keygen").arg("--out").arg(&key));
    let ours = ws.out.join("shoal.torrent");
    let mut publish = shoal();
    publish
        .arg("publish")
        .arg(&source)
        .arg("--key")
        .arg(&key)
        .arg("--piece-size")
        .arg(piece_size.to_string())
        .arg("--out")
        .arg(&ours);
    if mode == "v2" {
        publish.arg("--v2-only");
    }
    run(&mut publish);
    let theirs = ws.out.join("libtorrent.torrent");
    run(lt_driver()
        .args(["make", "--mode", mode, "--piece-size"])
        .arg(piece_size.to_string())
        .arg(&source)
        .arg(&theirs));
    let (ours, theirs) = (shoal_inspect(&ours), lt_info(&theirs));
    for key in ["info_hash_v1", "info_hash_v2"] {
        assert_eq!(
            field(&ours, key),
            field(&theirs, key),
            "{key}: shoal {ours:#} libtorrent {theirs:#}"
        );
    }
}

#[test]
fn hybrid_tree_has_the_same_info_hashes_as_libtorrent() {
    same_info_hashes_as_libtorrent(Fixture::Tree(NESTED_TREE), "hybrid", SMALL_PIECE);
    same_info_hashes_as_libtorrent(Fixture::Tree(SORT_ORDER_TREE), "hybrid", SMALL_PIECE);
}

#[test]
fn hybrid_single_file_has_the_same_info_hashes_as_libtorrent() {
    same_info_hashes_as_libtorrent(Fixture::SingleFile, "hybrid", SMALL_PIECE);
    same_info_hashes_as_libtorrent(Fixture::Tree(ONE_FILE_TREE), "hybrid", SMALL_PIECE);
}

#[test]
fn v2_only_tree_has_the_same_info_hashes_as_libtorrent() {
    same_info_hashes_as_libtorrent(Fixture::Tree(NESTED_TREE), "v2", LARGE_PIECE);
}
