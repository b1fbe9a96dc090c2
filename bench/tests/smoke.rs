//! Smoke test of the swarm benchmark: three peers, a few MiB, a `bt`
//! origin, shoal and libtorrent, on real namespaces and tc caps. It only
//! checks that the harness works end to end (every peer byte-identical,
//! the record complete), not how fast anything is.
//!
//! Needs root (as CI runs it); as another user it checks that shoal-bench
//! refuses with a message saying why, then fails for want of root unless
//! `SHOAL_TEST_SKIP_ROOT=1` skips it knowingly.
//! It runs the `shoal` and `shoal-tracker` binaries of the same profile,
//! which `cargo test --workspace` builds before running tests (they are
//! binaries of the workspace's cli package); `cargo test -p shoal-bench`
//! alone does not, so build them first in that case.

use std::process::{Command, Stdio};

use testkit::bins::cargo_bin;
use testkit::root::not_root;

#[test]
fn three_peers_both_implementations_bt_origin() {
    let shoal = cargo_bin("shoal");
    let tracker = cargo_bin("shoal-tracker");
    let out = tempfile::tempdir().expect("temp dir");
    let started = std::time::Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_shoal-bench"))
        .args([
            "--peers", "3", "--size", "3M", "--origin", "bt", "--impl", "all",
        ])
        .args(["--timeout", "40"])
        .arg("--out")
        .arg(out.path())
        .arg("--shoal-bin")
        .arg(&shoal)
        .arg("--tracker-bin")
        .arg(&tracker)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting shoal-bench");
    // Its namespaces are named sb-<its pid>-…; other runs may be going on.
    let prefix = format!("sb-{}-", child.id());
    let output = child.wait_with_output().expect("running shoal-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("needs root") {
        // Not root: the one outcome to check is a clear refusal.
        assert!(!output.status.success(), "refused yet exited 0:\n{stderr}");
        assert!(stderr.contains("run it with sudo"), "{stderr}");
        not_root(
            "the swarm benchmark smoke test",
            "to build network namespaces and tc caps",
        );
        return;
    }
    assert!(output.status.success(), "shoal-bench failed:\n{stderr}");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
        .collect();
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["implementation"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["shoal", "libtorrent"], "{stderr}");
    for record in &records {
        for field in [
            "date",
            "origin",
            "peers",
            "size_bytes",
            "piece_size",
            "t_min_s",
            "last_s",
            "mean_s",
            "last_over_t_min",
            "mean_over_t_min",
            "origin_tx_bytes",
            "origin_over_size",
            "peer_cpu_s_mean",
            "peer_peak_rss_kib_max",
            "machine_busy_fraction",
            "process_cpu_s",
        ] {
            assert!(!record[field].is_null(), "{field} missing in {record}");
        }
        assert_eq!(record["origin"], "bt");
        assert_eq!(record["completed"], 3, "{record}");
        assert_eq!(record["all_identical"], true, "{record}");
        // The origin sent at least one copy of the release.
        assert!(
            record["origin_over_size"].as_f64().unwrap_or(0.0) >= 0.9,
            "{record}"
        );
        let peers = record["peers_detail"].as_array().expect("peers_detail");
        assert_eq!(peers.len(), 3);
        for peer in peers {
            assert_eq!(peer["identical"], true, "{peer}");
            assert!(peer["peak_rss_kib"].as_u64().unwrap_or(0) > 0, "{peer}");
        }
    }
    // Results file, table and plot are written too.
    let results = std::fs::read_to_string(out.path().join("results.jsonl")).expect("results.jsonl");
    assert_eq!(results.lines().count(), 2);
    let table = std::fs::read_to_string(out.path().join("table.md")).expect("table.md");
    assert!(
        table.contains("| shoal | bt | 3/3 |") && table.contains("| libtorrent | bt | 3/3 |"),
        "{table}"
    );
    let png = std::fs::read(out.path().join("cdf.png")).expect("cdf.png");
    assert!(png.starts_with(b"\x89PNG"));
    // No namespace of this run is left behind.
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let leftover = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !leftover.lines().any(|l| l.starts_with(&prefix)),
        "left behind: {leftover}"
    );
    assert!(
        started.elapsed().as_secs() < 50,
        "smoke run took {:?}",
        started.elapsed()
    );
}

/// One peer and a web origin (nginx), nobody else: the download comes from
/// the origin alone, byte-identical, and keeps the emulated origin link
/// (4 MiB/s) full, so it takes about F / 4 MiB/s. Allowed: TCP's start,
/// and the first 2 s in which a download without peers yet asks the
/// origin for one piece at a time while it waits for the tracker.
#[test]
fn a_lone_peer_fills_the_emulated_link_from_a_web_origin() {
    let out = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_shoal-bench"))
        .args([
            "--peers",
            "1",
            "--size",
            "24M",
            "--origin",
            "web",
            "--impl",
            "shoal",
            "--origin-up",
            "4M",
            "--peer-down",
            "8M",
            "--timeout",
            "40",
        ])
        .arg("--out")
        .arg(out.path())
        .arg("--shoal-bin")
        .arg(cargo_bin("shoal"))
        .arg("--tracker-bin")
        .arg(cargo_bin("shoal-tracker"))
        .output()
        .expect("running shoal-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("needs root") {
        assert!(!output.status.success(), "refused yet exited 0:\n{stderr}");
        not_root(
            "the web origin benchmark smoke test",
            "to build network namespaces and tc caps",
        );
        return;
    }
    assert!(output.status.success(), "shoal-bench failed:\n{stderr}");
    let record: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON record");
    assert_eq!(record["completed"], 1, "{record}");
    assert_eq!(record["all_identical"], true, "{record}");
    // Payload exactly one copy; on the wire headers add about 4 %.
    let payload = record["origin_payload_over_size"].as_f64().unwrap_or(0.0);
    assert!(
        (0.999..=1.001).contains(&payload),
        "origin payload {payload} copies: {record}"
    );
    let wire = record["origin_over_size"].as_f64().unwrap_or(0.0);
    assert!(
        (1.0..=1.10).contains(&wire),
        "origin sent {wire} copies: {record}"
    );
    let over = record["last_over_t_min"].as_f64().unwrap_or(f64::MAX);
    eprintln!("lone peer from a web origin: {over:.3} x F / origin rate");
    assert!(over <= 1.35, "took {over:.2} x F / origin rate: {record}");
}
