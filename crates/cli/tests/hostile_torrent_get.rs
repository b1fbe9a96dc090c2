//! `shoal get` of hostile torrents (issue 8): a torrent naming a file
//! outside the output folder, in any of the usual forms, makes the real
//! binary exit non-zero with an error that names the entry, and nothing is
//! written: not in the output folder, not next to it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bencode::Bencode;
use testkit::shoal;

fn text(s: &str) -> Bencode {
    Bencode::string(s)
}

/// A v1 multi-file torrent (fake piece hashes: it is refused before any
/// hash matters) whose one file has the path `components`.
fn v1_with_path(release: &str, components: &[&str]) -> Vec<u8> {
    let file = Bencode::dict([
        ("length", Bencode::int(5)),
        (
            "path",
            Bencode::List(components.iter().map(|c| text(c)).collect()),
        ),
    ]);
    let info = Bencode::dict([
        ("name", text(release)),
        ("piece length", Bencode::int(16 * 1024)),
        ("pieces", Bencode::bytes(vec![7u8; 20])),
        ("files", Bencode::List(vec![file])),
    ]);
    torrent(info)
}

/// A v2 torrent whose file tree holds `key` as a file name.
fn v2_with_key(key: &str) -> Vec<u8> {
    let leaf = Bencode::dict([(
        "",
        Bencode::dict([
            ("length", Bencode::int(5)),
            ("pieces root", Bencode::bytes(vec![3u8; 32])),
        ]),
    )]);
    let info = Bencode::dict([
        ("name", text("release")),
        ("meta version", Bencode::int(2)),
        ("piece length", Bencode::int(16 * 1024)),
        ("file tree", Bencode::dict([(key, leaf)])),
    ]);
    torrent(info)
}

fn torrent(info: Bencode) -> Vec<u8> {
    Bencode::dict([
        ("announce", text("http://127.0.0.1:9/announce")),
        ("info", info),
    ])
    .encode()
}

/// Every path below `root`, relative to it.
fn listing(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("read a folder entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.insert(path.strip_prefix(root).expect("below root").to_path_buf());
        }
    }
    found
}

struct Hostile {
    what: &'static str,
    bytes: Vec<u8>,
    /// What the error must quote of the offending entry.
    entry: &'static str,
}

fn hostile_torrents() -> Vec<Hostile> {
    vec![
        Hostile {
            what: "a `..` folder in a v1 path",
            bytes: v1_with_path("release", &["..", "..", "escaped.txt"]),
            entry: "\"..\"",
        },
        Hostile {
            what: "an absolute v1 path component",
            bytes: v1_with_path("release", &["/tmp/escaped.txt"]),
            entry: "/tmp/escaped.txt",
        },
        Hostile {
            what: "a drive path",
            bytes: v1_with_path("release", &["C:\\escaped.txt"]),
            entry: "C:\\\\escaped.txt",
        },
        Hostile {
            what: "a `..` release name",
            bytes: v1_with_path("..", &["escaped.txt"]),
            entry: "\"..\"",
        },
        Hostile {
            what: "a traversing key in a v2 file tree",
            bytes: v2_with_key("../escaped.txt"),
            entry: "../escaped.txt",
        },
        Hostile {
            what: "a Windows device name",
            bytes: v2_with_key("CON"),
            entry: "CON",
        },
    ]
}

#[test]
fn shoal_get_of_a_hostile_torrent_fails_naming_the_entry_and_writes_nothing() {
    for hostile in hostile_torrents() {
        let scratch = tempfile::tempdir().expect("temp dir");
        // parent/out is the output folder; parent is where `..` would land.
        let parent = scratch.path().join("parent");
        let out = parent.join("out");
        std::fs::create_dir_all(&out).expect("create the output folder");
        let torrent = scratch.path().join("hostile.torrent");
        std::fs::write(&torrent, &hostile.bytes).expect("write the torrent");
        let before = listing(scratch.path());

        let output = shoal()
            .arg("get")
            .arg(&torrent)
            .arg("--out")
            .arg(&out)
            .arg("--allow-unsigned")
            .output()
            .expect("run shoal get");

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{}: shoal get succeeded\n{stderr}",
            hostile.what
        );
        assert!(
            stderr.contains("unsafe file name") && stderr.contains(hostile.entry),
            "{}: the error does not name {:?}:\n{stderr}",
            hostile.what,
            hostile.entry
        );
        assert!(
            stderr.contains("hostile.torrent"),
            "{}: the error does not name the torrent:\n{stderr}",
            hostile.what
        );
        assert!(!stderr.contains("panicked"), "{}: {stderr}", hostile.what);
        assert_eq!(
            listing(scratch.path()),
            before,
            "{}: files appeared or vanished around the output folder",
            hostile.what
        );
        assert!(!Path::new("/tmp/escaped.txt").exists());
    }
}
