//! The publisher's signature, end to end through the real `shoal` binary:
//! `keygen` makes a key, `publish` signs, `inspect` reports and `--verify`
//! decides. Tampered, foreign-signed and unsigned torrents must be told
//! apart, and every user mistake must end in one clear line on stderr.

// Helpers here are not `#[test]` functions, so clippy's
// `allow-unwrap-in-tests` does not reach them; in a test a panic is the
// failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bencode::{Bencode, Limits};
use serde_json::Value;
use testkit::json::file_list;
use testkit::{field, run, run_json, shoal, write_tree};

const RELEASE: &str = "app-1.2";
const FILES: &[(&str, u64)] = &[("bin/app", 40_000), ("README", 1_000), ("empty", 0)];
const TRACKER_1: &str = "https://t1.example.com/announce";
const TRACKER_2: &str = "udp://t2.example.com:6969";
const WEB_SEED: &str = "https://dl.example.com/releases/";

struct Key {
    path: PathBuf,
    public: String,
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn keygen(dir: &Path, name: &str) -> Key {
    let path = dir.join(name);
    let output = run(shoal().arg("keygen").arg("--out").arg(&path));
    let public = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(is_hex(&public, 64), "keygen printed {public:?}");
    Key { path, public }
}

/// Writes the release folder under `dir` and returns its path.
fn release(dir: &Path) -> PathBuf {
    let root = dir.join(RELEASE);
    write_tree(&root, FILES, 7);
    root
}

/// `shoal publish` of `source` signed with `key`, with trackers, a web seed,
/// an origin and a version; returns the torrent path and the JSON report.
fn publish(source: &Path, key: &Key, out: &Path) -> Value {
    run_json(
        shoal()
            .arg("publish")
            .arg(source)
            .arg("--key")
            .arg(&key.path)
            .arg("--out")
            .arg(out)
            .args(["--tracker", TRACKER_1, "--tracker", TRACKER_2])
            .args(["--web-seed", WEB_SEED])
            .args(["--origin", "https://Downloads.Example.com/some/page"])
            .args(["--version", "1.2.3", "--piece-size", "16k", "--json"]),
    )
}

fn inspect_json(torrent: &Path) -> Value {
    run_json(shoal().arg("inspect").arg("--json").arg(torrent))
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Runs `cmd` expecting failure; checks that it failed cleanly (no panic,
/// one line on stderr) and returns that line.
fn fails(cmd: &mut Command) -> String {
    let out = output(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{cmd:?} panicked: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{cmd:?}: expected one line on stderr, got: {stderr}"
    );
    stderr
}

fn verify(torrent: &Path, trust: &[&str]) -> Output {
    let mut cmd = shoal();
    cmd.arg("inspect").arg("--verify").arg(torrent);
    for key in trust {
        cmd.args(["--trust", key]);
    }
    output(&mut cmd)
}

/// Writes a copy of the torrent at `from` to `to`, with `edit` applied to
/// its bytes.
fn rewrite(from: &Path, to: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(from).unwrap();
    edit(&mut bytes);
    std::fs::write(to, bytes).unwrap();
}

/// The span of `info.pieces`' value (the v1 hashes) in the torrent bytes.
fn pieces_span(bytes: &[u8]) -> std::ops::Range<usize> {
    let top = bencode::decode(bytes, Limits::default()).unwrap();
    top.get("info").unwrap().get("pieces").unwrap().span.clone()
}

// ---------------------------------------------------------------------------
// keygen
// ---------------------------------------------------------------------------

#[test]
fn keygen_prints_a_public_key_and_writes_a_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "publisher.key");
    let text = std::fs::read_to_string(&key.path).unwrap();
    // The file holds the secret seed, never the public key in its place.
    assert!(!text.contains(&key.public));
    assert!(text
        .lines()
        .any(|l| !l.starts_with('#') && is_hex(l.trim(), 64)));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode is {:o}", mode & 0o777);
    }

    // Two keys are never the same key.
    assert_ne!(keygen(dir.path(), "second.key").public, key.public);
}

#[test]
fn keygen_json_reports_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let report = run_json(shoal().arg("keygen").arg("--json").arg("--out").arg(&path));
    assert!(is_hex(field(&report, "public_key").as_str().unwrap(), 64));
    assert_eq!(
        field(&report, "key_file").as_str().unwrap(),
        path.display().to_string()
    );
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "publisher.key");
    let before = std::fs::read(&key.path).unwrap();

    let stderr = fails(shoal().arg("keygen").arg("--out").arg(&key.path));
    assert!(stderr.contains("publisher.key"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        std::fs::read(&key.path).unwrap(),
        before,
        "key file was changed"
    );

    let forced = run(shoal()
        .arg("keygen")
        .arg("--force")
        .arg("--out")
        .arg(&key.path));
    let public = String::from_utf8(forced.stdout).unwrap().trim().to_owned();
    assert_ne!(public, key.public);
    assert_ne!(std::fs::read(&key.path).unwrap(), before);
}

// ---------------------------------------------------------------------------
// publish + inspect
// ---------------------------------------------------------------------------

#[test]
fn published_torrent_reports_a_valid_signature_and_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "publisher.key");
    let torrent = dir.path().join("app.torrent");
    let published = publish(&release(dir.path()), &key, &torrent);
    let report = inspect_json(&torrent);

    assert_eq!(field(&report, "signature"), "valid");
    assert_eq!(field(&report, "publisher").as_str(), Some(&*key.public));
    assert_eq!(field(&report, "name"), RELEASE);
    assert_eq!(field(&report, "meta_version"), "hybrid");
    assert_eq!(field(&report, "version"), "1.2.3");
    // `--origin` is reduced to scheme://host, lower-cased.
    assert_eq!(
        field(&report, "origins"),
        &serde_json::json!(["https://downloads.example.com"])
    );
    assert_eq!(
        field(&report, "trackers"),
        &serde_json::json!([TRACKER_1, TRACKER_2])
    );
    assert_eq!(field(&report, "web_seeds"), &serde_json::json!([WEB_SEED]));
    assert_eq!(field(&report, "piece_size"), 16 * 1024);
    assert_eq!(field(&report, "total_size"), 41_000);
    // Storage order: by path, byte-wise ("README" before "bin").
    assert_eq!(
        file_list(field(&report, "files")),
        vec![
            ("README".to_owned(), 1_000),
            ("bin/app".to_owned(), 40_000),
            ("empty".to_owned(), 0),
        ]
    );
    assert_eq!(field(&report, "signature_problem"), &Value::Null);

    // The info-hashes are the torrent's, as the library computes them.
    let parsed = meta::read_torrent_file(&torrent).unwrap();
    let v1 = field(&report, "info_hash_v1").as_str().unwrap();
    let v2 = field(&report, "info_hash_v2").as_str().unwrap();
    assert!(is_hex(v1, 40) && is_hex(v2, 64), "{v1} {v2}");
    assert_eq!(Some(v1.to_owned()), parsed.info_hashes.v1.map(hex::encode));
    assert_eq!(Some(v2.to_owned()), parsed.info_hashes.v2.map(hex::encode));

    // `publish --json` reports what `inspect` reads back from the file.
    for key in [
        "name",
        "info_hash_v1",
        "info_hash_v2",
        "total_size",
        "piece_size",
        "files",
        "trackers",
        "web_seeds",
        "publisher",
        "signature",
        "version",
        "origins",
    ] {
        assert_eq!(field(&published, key), field(&report, key), "{key}");
    }
    assert_eq!(
        field(&published, "torrent").as_str().unwrap(),
        torrent.display().to_string()
    );

    assert!(verify(&torrent, &[]).status.success());
    assert!(verify(&torrent, &[&key.public]).status.success());
    let trusted = run_json(
        shoal()
            .arg("inspect")
            .arg("--json")
            .args(["--trust", &key.public])
            .arg(&torrent),
    );
    assert_eq!(field(&trusted, "trusted"), true);
}

#[test]
fn origins_default_to_the_web_seeds_origins() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "k");
    let torrent = dir.path().join("t.torrent");
    run(shoal()
        .arg("publish")
        .arg(release(dir.path()))
        .arg("--key")
        .arg(&key.path)
        .arg("--out")
        .arg(&torrent)
        .args(["--web-seed", "https://Mirror.Example.org:8443/a/b/"]));
    let report = inspect_json(&torrent);
    assert_eq!(
        field(&report, "origins"),
        &serde_json::json!(["https://mirror.example.org:8443"])
    );
    assert_eq!(field(&report, "version"), "");
    assert_eq!(field(&report, "signature"), "valid");
}

#[test]
fn v2_only_torrents_are_signed_too() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "k");
    let torrent = dir.path().join("t.torrent");
    run(shoal()
        .arg("publish")
        .arg("--v2-only")
        .arg(release(dir.path()))
        .arg("--key")
        .arg(&key.path)
        .arg("--out")
        .arg(&torrent));
    let report = inspect_json(&torrent);
    assert_eq!(field(&report, "meta_version"), "v2");
    assert_eq!(field(&report, "info_hash_v1"), &Value::Null);
    assert_eq!(field(&report, "signature"), "valid");
    assert!(verify(&torrent, &[&key.public]).status.success());
}

// ---------------------------------------------------------------------------
// What --verify refuses
// ---------------------------------------------------------------------------

/// A signed torrent in `dir`, and the key that signed it.
fn signed_torrent(dir: &Path) -> (PathBuf, Key) {
    let key = keygen(dir, "publisher.key");
    let torrent = dir.join("app.torrent");
    publish(&release(dir), &key, &torrent);
    (torrent, key)
}

fn assert_verify_fails(torrent: &Path, trust: &[&str], reason: &str) {
    let out = verify(torrent, trust);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--verify passed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let name = torrent.file_name().unwrap().to_string_lossy();
    assert!(
        stderr.contains(&*name),
        "stderr does not name the file: {stderr}"
    );
    assert!(stderr.contains("verification failed"), "{stderr}");
    assert!(stderr.contains(reason), "stderr lacks {reason:?}: {stderr}");
}

#[test]
fn a_torrent_whose_info_changed_after_signing_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let (torrent, key) = signed_torrent(dir.path());
    let tampered = dir.path().join("tampered.torrent");
    // One bit of one v1 piece hash: the torrent still parses (nothing
    // checks v1 hashes against data here) but its info-hashes change.
    rewrite(&torrent, &tampered, |bytes| {
        let span = pieces_span(bytes);
        bytes[span.end - 1] ^= 0x01;
    });

    let report = inspect_json(&tampered);
    assert_eq!(field(&report, "signature"), "invalid");
    // The claimed publisher is still shown, so the user knows whose name
    // was used.
    assert_eq!(field(&report, "publisher").as_str(), Some(&*key.public));
    let problem = field(&report, "signature_problem").as_str().unwrap();
    assert!(problem.contains("info"), "{problem}");
    assert_ne!(
        field(&report, "info_hash_v2"),
        field(&inspect_json(&torrent), "info_hash_v2")
    );

    assert_verify_fails(&tampered, &[], "invalid");
    assert_verify_fails(&tampered, &[&key.public], "invalid");
}

#[test]
fn a_torrent_whose_signature_bytes_changed_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let (torrent, key) = signed_torrent(dir.path());
    let tampered = dir.path().join("badsig.torrent");
    rewrite(&torrent, &tampered, |bytes| {
        let top = bencode::decode(bytes, Limits::default()).unwrap();
        let sig = top.get("shoal").unwrap().get("sig").unwrap().span.clone();
        bytes[sig.end - 1] ^= 0x80;
    });
    let report = inspect_json(&tampered);
    assert_eq!(field(&report, "signature"), "invalid");
    assert_verify_fails(&tampered, &[&key.public], "signature");
}

#[test]
fn a_torrent_signed_by_another_key_fails_trust_but_passes_plain_verify() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = keygen(dir.path(), "trusted.key");
    let other = keygen(dir.path(), "other.key");
    let torrent = dir.path().join("other.torrent");
    publish(&release(dir.path()), &other, &torrent);

    let report = inspect_json(&torrent);
    assert_eq!(field(&report, "signature"), "valid");
    assert_eq!(field(&report, "publisher").as_str(), Some(&*other.public));

    assert_verify_fails(&torrent, &[&trusted.public], "not among the --trust keys");
    let out = verify(&torrent, &[&trusted.public]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&other.public),
        "stderr should name the actual signer"
    );
    assert!(verify(&torrent, &[]).status.success());
    assert!(verify(&torrent, &[&trusted.public, &other.public])
        .status
        .success());

    let not_trusted = run_json(
        shoal()
            .arg("inspect")
            .arg("--json")
            .args(["--trust", &trusted.public])
            .arg(&torrent),
    );
    assert_eq!(field(&not_trusted, "trusted"), false);
}

#[test]
fn an_unsigned_torrent_reports_absent_and_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (torrent, key) = signed_torrent(dir.path());
    let unsigned = dir.path().join("unsigned.torrent");
    rewrite(&torrent, &unsigned, |bytes| {
        let top = bencode::decode(bytes, Limits::default()).unwrap();
        // Every other key kept verbatim, `info` above all: its bytes are
        // the info-hash.
        let kept: BTreeMap<Vec<u8>, Bencode> = top
            .as_dict()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != b"shoal")
            .map(|(k, v)| (k.to_vec(), Bencode::Raw(v.raw.to_vec())))
            .collect();
        assert_eq!(kept.len() + 1, top.as_dict().unwrap().len());
        *bytes = Bencode::Dict(kept).encode();
    });

    let report = inspect_json(&unsigned);
    assert_eq!(field(&report, "signature"), "absent");
    assert_eq!(field(&report, "publisher"), &Value::Null);
    assert_eq!(field(&report, "version"), &Value::Null);
    // Same release, same identity: only the signature is gone.
    let signed = inspect_json(&torrent);
    for key in ["info_hash_v1", "info_hash_v2", "files", "trackers"] {
        assert_eq!(field(&report, key), field(&signed, key), "{key}");
    }

    assert_verify_fails(&unsigned, &[], "not signed");
    assert_verify_fails(&unsigned, &[&key.public], "not signed");
}

// ---------------------------------------------------------------------------
// User mistakes: one clear line, no panic
// ---------------------------------------------------------------------------

#[test]
fn inspect_of_a_missing_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.torrent");
    let stderr = fails(shoal().arg("inspect").arg(&missing));
    assert!(stderr.contains("nowhere.torrent"), "{stderr}");
}

#[test]
fn inspect_of_a_non_torrent_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "just some text\n").unwrap();
    for args in [
        &["inspect"][..],
        &["inspect", "--json"],
        &["inspect", "--verify"],
    ] {
        let stderr = fails(shoal().args(args).arg(&notes));
        assert!(stderr.contains("notes.txt"), "{stderr}");
        assert!(stderr.contains("not a usable torrent"), "{stderr}");
    }
}

/// `shoal publish` with a working key, expecting failure; the torrent must
/// not be written.
fn publish_fails(dir: &Path, source: &Path, extra: &[&str]) -> String {
    let key = keygen(dir, "k");
    let out = dir.join("out.torrent");
    let stderr = fails(
        shoal()
            .arg("publish")
            .arg(source)
            .arg("--key")
            .arg(&key.path)
            .arg("--out")
            .arg(&out)
            .args(extra),
    );
    assert!(!out.exists(), "a torrent was written despite: {stderr}");
    stderr
}

#[test]
fn publish_of_a_missing_path_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = publish_fails(dir.path(), &dir.path().join("no-such-release"), &[]);
    assert!(stderr.contains("no-such-release"), "{stderr}");
}

#[test]
fn publish_with_a_bad_piece_size_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = release(dir.path());
    let stderr = publish_fails(dir.path(), &source, &["--piece-size", "1000"]);
    assert!(stderr.contains("1000"), "{stderr}");
    assert!(stderr.contains("--piece-size"), "{stderr}");
}

#[test]
fn publish_with_a_plain_http_origin_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let source = release(dir.path());
    let stderr = publish_fails(dir.path(), &source, &["--origin", "http://example.com"]);
    assert!(stderr.contains("--origin"), "{stderr}");
    assert!(stderr.contains("http://example.com"), "{stderr}");
    assert!(stderr.contains("https://"), "{stderr}");
}

#[test]
fn publish_with_a_missing_key_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = release(dir.path());
    let out = dir.path().join("out.torrent");
    let stderr = fails(
        shoal()
            .arg("publish")
            .arg(&source)
            .arg("--key")
            .arg(dir.path().join("lost.key"))
            .arg("--out")
            .arg(&out),
    );
    assert!(stderr.contains("lost.key"), "{stderr}");
    assert!(stderr.contains("shoal keygen"), "{stderr}");
    assert!(!out.exists());
}

/// Regression: `ReadTorrentError` and `CreateError::Io` once put
/// `{source}` in their own message *and* exposed it as `source()`, so the
/// `{:#}` chain printed by `main` stated every cause twice, e.g.
/// `x.torrent: No such file or directory (os error 2): No such file or
/// directory (os error 2)`.
#[test]
fn error_lines_state_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "just some text\n").unwrap();
    let cases = [
        (
            fails(
                shoal()
                    .arg("inspect")
                    .arg(dir.path().join("nowhere.torrent")),
            ),
            "os error",
        ),
        (fails(shoal().arg("inspect").arg(&notes)), "invalid bencode"),
        (
            publish_fails(dir.path(), &dir.path().join("no-such-release"), &[]),
            "os error",
        ),
    ];
    for (stderr, cause) in cases {
        assert_eq!(stderr.matches(cause).count(), 1, "{stderr}");
    }
}

/// `--max-origin-copies` is signed into the manifest and read back by
/// `inspect`; a torrent published without it reports none; a value that
/// is not a number of copies is refused before any hashing, in one line.
#[test]
fn the_publishers_ceiling_on_origin_copies_is_signed_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "publisher.key");
    let source = release(dir.path());
    let capped = dir.path().join("capped.torrent");
    run_json(
        shoal()
            .arg("publish")
            .arg(&source)
            .arg("--key")
            .arg(&key.path)
            .arg("--out")
            .arg(&capped)
            .args([
                "--web-seed",
                WEB_SEED,
                "--max-origin-copies",
                "1.5",
                "--json",
            ]),
    );
    let report = inspect_json(&capped);
    assert_eq!(field(&report, "signature"), "valid");
    assert_eq!(report["max_origin_copies"], serde_json::json!(1.5));
    assert!(verify(&capped, &[&key.public]).status.success());

    let plain = dir.path().join("plain.torrent");
    publish(&source, &key, &plain);
    assert!(inspect_json(&plain)["max_origin_copies"].is_null());

    for bad in ["0", "-1", "1.2345", "1e3", "1001", "lots"] {
        // clap's own message: the error line, then a hint to try --help.
        let out = output(
            shoal()
                .arg("publish")
                .arg(&source)
                .arg("--key")
                .arg(&key.path)
                .arg("--out")
                .arg(dir.path().join("bad.torrent"))
                .arg(format!("--max-origin-copies={bad}")),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(!stderr.contains("panicked"), "{bad}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.contains("--max-origin-copies"), "{bad}: {stderr}");
    }
    assert!(!dir.path().join("bad.torrent").exists());
}
