//! Swarm interoperability: shoal exchanging real data with other
//! BitTorrent clients over TCP on 127.0.0.1.
//!
//! * libtorrent (through `tests/interop/lt_driver.py`), with a hybrid torrent
//!   published and signed by shoal, in both directions, peers given directly;
//! * Transmission (`transmission-cli`) and aria2 (`aria2c`), with a v1-only
//!   torrent made by libtorrent and an unsigned release, in both directions,
//!   peers found through a `shoal-tracker` on loopback.
//!
//! Every test checks the downloaded files byte for byte. Every wait has a
//! deadline, and every process is killed when its test ends, passed or
//! not; a failing test prints the logs of all its processes. These tests
//! never skip: a missing client is a broken setup, and `scripts/test.sh`
//! installs them all.
//!
//! Loopback quirks the setup works around (each also noted where it bites):
//! every peer shares 127.0.0.1, so libtorrent needs
//! `allow_multiple_connections_per_ip`; Transmission 3.00 never dials peers
//! a tracker lists at 127.x (its `isMartianAddr` filter) but accepts them
//! incoming, so a Transmission leecher depends on shoal dialling it, which
//! only a shoal that is still downloading does; aria2 dials loopback peers
//! from a tracker as they are.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::content::{assert_same_content, same_content};
use testkit::interop::{aria2c, lt_driver, require_program, transmission_cli};
use testkit::tracker::{info_hash_v1, LocalTracker};
use testkit::{field, run, run_json, shoal, wait_until, write_tree, Proc, Scene};

/// The release every test moves: a few MiB in a folder, with sizes that
/// are not multiples of the piece size, so pieces straddle files (v1) or
/// end in pad files (hybrid).
const RELEASE_NAME: &str = "release";
const RELEASE_FILES: &[(&str, u64)] = &[
    ("bin/tool", 2_000_003),
    ("lib/data.bin", 1_048_576),
    ("share/doc/README", 4_321),
];
/// The hybrid release also carries an empty file, which has no pieces but
/// must still be created.
const HYBRID_EXTRA_FILES: &[(&str, u64)] = &[("empty.cfg", 0)];
const PIECE_SIZE: u64 = 64 * 1024;

/// Time for a process to start listening or a tracker to list a peer.
const STARTUP: Duration = Duration::from_secs(30);
/// Time for a whole transfer; a few MiB on loopback takes seconds.
const TRANSFER: Duration = Duration::from_secs(120);
/// Time for a process to exit after it finished or got SIGTERM.
const EXIT_GRACE: Duration = Duration::from_secs(20);

fn total_size(files: &[(&str, u64)]) -> u64 {
    files.iter().map(|(_, len)| len).sum()
}

/// A release on disk and its torrent.
struct Release {
    /// The folder holding the release folder: what seeds get as `--data`.
    data_dir: PathBuf,
    /// `data_dir/NAME`.
    root: PathBuf,
    torrent: PathBuf,
    total: u64,
    /// Publisher key for `--trust`, for signed releases.
    public_key: Option<String>,
    info_hash_v1: [u8; 20],
}

/// A hybrid torrent of the release, published and signed by shoal.
fn signed_hybrid_release(scene: &Scene) -> Release {
    let files: Vec<(&str, u64)> = RELEASE_FILES
        .iter()
        .chain(HYBRID_EXTRA_FILES)
        .copied()
        .collect();
    let data_dir = scene.dir("seed-data");
    let root = data_dir.join(RELEASE_NAME);
    write_tree(&root, &files, 7);
    let key = scene.path("publisher.key");
    let keygen = run_json(shoal().arg("keygen").arg("--out").arg(&key).arg("--json"));
    let public_key = field(&keygen, "public_key")
        .as_str()
        .expect("hex key")
        .to_owned();
    let torrent = scene.path("release-hybrid.torrent");
    run(shoal()
        .arg("publish")
        .arg(&root)
        .arg("--key")
        .arg(&key)
        .arg("--piece-size")
        .arg(PIECE_SIZE.to_string())
        .arg("--out")
        .arg(&torrent));
    let inspected = run_json(shoal().arg("inspect").arg(&torrent).arg("--json"));
    assert_eq!(field(&inspected, "meta_version"), "hybrid", "{inspected:#}");
    let v1 = field(&inspected, "info_hash_v1").as_str().expect("v1 hash");
    Release {
        info_hash_v1: info_hash_v1(v1),
        data_dir,
        root,
        torrent,
        total: total_size(&files),
        public_key: Some(public_key),
    }
}

/// A v1-only torrent of the release made by libtorrent, announcing to
/// `announce`, unsigned.
fn unsigned_v1_release(scene: &Scene, announce: &str) -> Release {
    let data_dir = scene.dir("seed-data");
    let root = data_dir.join(RELEASE_NAME);
    write_tree(&root, RELEASE_FILES, 11);
    let torrent = scene.path("release-v1.torrent");
    let made = run_json(
        lt_driver()
            .args(["make", "--mode", "v1", "--piece-size"])
            .arg(PIECE_SIZE.to_string())
            .args(["--announce", announce])
            .arg(&root)
            .arg(&torrent),
    );
    let v1 = field(&made, "info_hash_v1").as_str().expect("v1 hash");
    Release {
        info_hash_v1: info_hash_v1(v1),
        data_dir,
        root,
        torrent,
        total: total_size(RELEASE_FILES),
        public_key: None,
    }
}

impl Release {
    /// `--trust KEY` for a signed release, `--allow-unsigned` otherwise.
    fn trust_args(&self) -> Vec<String> {
        match &self.public_key {
            Some(key) => vec!["--trust".to_owned(), key.clone()],
            None => vec!["--allow-unsigned".to_owned()],
        }
    }
}

/// Starts `shoal get --json` for `release` into `out`, with `extra`
/// arguments (`--peer ADDR`, `--seed`).
fn start_shoal_get(scene: &Scene, release: &Release, out: &Path, extra: &[&str]) -> Proc {
    let mut cmd = shoal();
    cmd.env("RUST_LOG", "debug")
        .arg("get")
        .arg(&release.torrent)
        .arg("--out")
        .arg(out)
        .args(["--listen", "127.0.0.1:0", "--json"])
        .args(release.trust_args())
        .args(extra);
    scene.spawn("shoal-get", &mut cmd)
}

/// Waits for `shoal get` to report completion and exit 0; returns the
/// `complete` event after checking it against the release.
fn finish_shoal_get(get: &mut Proc, release: &Release) -> Value {
    let complete = finish_shoal_download(get, release);
    let status = get.wait_exit(Instant::now() + EXIT_GRACE);
    assert!(status.success(), "shoal get exited with {status}");
    complete
}

/// Waits for `shoal get` to report completion, checks the `complete` event
/// and the files against the release, and returns the event.
fn finish_shoal_download(get: &mut Proc, release: &Release) -> Value {
    let complete = get.next_json(Instant::now() + TRANSFER, |event| {
        (event.get("event")? == "complete").then(|| event.clone())
    });
    let path = field(&complete, "path").as_str().expect("path is a string");
    assert_eq!(
        Path::new(path).file_name(),
        Some(RELEASE_NAME.as_ref()),
        "{complete:#}"
    );
    let from_peers = field(&complete, "bytes_from_peers")
        .as_u64()
        .expect("a count");
    assert!(
        from_peers >= release.total,
        "only {from_peers} of {} bytes came from peers: {complete:#}",
        release.total
    );
    assert_same_content(&release.root, Path::new(path));
    complete
}

/// Asks a client we do not own to stop (SIGINT, which all of them handle)
/// and waits for it; how it exits is its own business.
fn stop_other_client(mut proc: Proc) {
    proc.signal("INT", EXIT_GRACE);
}

/// Starts `shoal seed --json` on `release` and returns it with the port
/// it reports listening on.
fn start_shoal_seed(scene: &Scene, release: &Release) -> (Proc, u16) {
    let mut cmd = shoal();
    cmd.env("RUST_LOG", "debug")
        .arg("seed")
        .arg(&release.torrent)
        .arg("--data")
        .arg(&release.data_dir)
        .args(["--listen", "127.0.0.1:0", "--json"])
        .args(release.trust_args());
    let mut seed = scene.spawn("shoal-seed", &mut cmd);
    let port = seed.next_json(Instant::now() + STARTUP, |event| {
        if event.get("event")? != "started" {
            return None;
        }
        let listen = event.get("listen")?.as_str()?;
        listen.rsplit_once(':')?.1.parse::<u16>().ok()
    });
    (seed, port)
}

/// Stops a seed with SIGTERM and asserts that it exits 0, as a service
/// manager stopping it expects.
fn stop_cleanly(mut proc: Proc) {
    let status = proc.terminate(EXIT_GRACE);
    assert!(
        status.success(),
        "{} exited with {status} on SIGTERM",
        proc.name()
    );
}

/// Starts the libtorrent seed on `release` and returns it with its port.
fn start_libtorrent_seed(scene: &Scene, release: &Release) -> (Proc, u16) {
    let mut cmd = lt_driver();
    cmd.arg("seed")
        .arg(&release.torrent)
        .arg(&release.data_dir)
        .args(["--timeout", "300"]);
    let mut seed = scene.spawn("libtorrent-seed", &mut cmd);
    let port = seed.next_json(Instant::now() + STARTUP, |line| {
        line.get("listening")?.as_u64()?.try_into().ok()
    });
    (seed, port)
}

#[test]
fn shoal_downloads_signed_hybrid_from_libtorrent() {
    let scene = Scene::new();
    let release = signed_hybrid_release(&scene);
    let (lt_seed, port) = start_libtorrent_seed(&scene, &release);

    let out = scene.dir("shoal-out");
    let peer = format!("127.0.0.1:{port}");
    let mut get = start_shoal_get(&scene, &release, &out, &["--peer", &peer]);
    finish_shoal_get(&mut get, &release);
    stop_cleanly(lt_seed);
}

#[test]
fn libtorrent_downloads_signed_hybrid_from_shoal() {
    let scene = Scene::new();
    let release = signed_hybrid_release(&scene);
    let (shoal_seed, port) = start_shoal_seed(&scene, &release);

    let out = scene.dir("libtorrent-out");
    let mut cmd = lt_driver();
    cmd.arg("download")
        .arg(&release.torrent)
        .arg(&out)
        .args(["--peer", &format!("127.0.0.1:{port}")])
        .args(["--timeout", &TRANSFER.as_secs().to_string()]);
    let mut download = scene.spawn("libtorrent-download", &mut cmd);
    let report = download.next_json(Instant::now() + TRANSFER + EXIT_GRACE, |line| {
        line.get("complete").map(|_| line.clone())
    });
    assert_eq!(field(&report, "complete"), true, "{report:#}");
    let status = download.wait_exit(Instant::now() + EXIT_GRACE);
    assert!(status.success(), "libtorrent download exited with {status}");
    assert_same_content(&release.root, &out.join(RELEASE_NAME));
    stop_cleanly(shoal_seed);
}

fn aria2(scene: &Scene, role: &str, release: &Release, dir: &Path) -> Command {
    aria2c(scene, role, &release.torrent, dir, "127.0.0.1")
}

fn transmission(scene: &Scene, role: &str, dir: &Path) -> Command {
    transmission_cli(scene, role, dir, "127.0.0.1")
}

/// aria2 announces its new pieces with a whole `bitfield` message, in the
/// middle of a connection, whenever that is no longer than the `have`
/// messages it replaces (`DefaultBtInteractive::checkHave`), which with few
/// pieces is as soon as it has two to announce. A seed must tolerate that.
#[test]
fn aria2_downloads_unsigned_v1_from_shoal_via_tracker() {
    require_program("aria2c", "aria2");
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let release = unsigned_v1_release(&scene, &tracker.announce);
    let (shoal_seed, _) = start_shoal_seed(&scene, &release);
    tracker.wait_for(&release.info_hash_v1, 1, 0, Instant::now() + STARTUP);

    let out = scene.dir("aria2-out");
    let mut cmd = aria2(&scene, "download", &release, &out);
    // Exit as soon as the download is complete instead of seeding.
    cmd.arg("--seed-time=0");
    let mut download = scene.spawn("aria2-download", &mut cmd);
    let status = download.wait_exit(Instant::now() + TRANSFER);
    assert!(status.success(), "aria2c exited with {status}");
    assert_same_content(&release.root, &out.join(RELEASE_NAME));
    stop_cleanly(shoal_seed);
}

/// Transmission 3.00 never dials a peer a tracker lists at 127.x, and a
/// complete shoal (`shoal seed`) waits to be dialled, so on loopback only a
/// shoal that is still downloading reaches a Transmission leecher. So: a
/// libtorrent seed starts first and a Transmission leecher announces next,
/// neither able to reach the other (libtorrent re-announces only after the
/// tracker's interval), then `shoal get --seed` dials both, downloads from
/// libtorrent, and is Transmission's only source.
#[test]
fn transmission_downloads_unsigned_v1_from_shoal_via_tracker() {
    require_program("transmission-cli", "transmission-cli");
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let release = unsigned_v1_release(&scene, &tracker.announce);
    let (lt_seed, _) = start_libtorrent_seed(&scene, &release);
    tracker.wait_for(&release.info_hash_v1, 1, 0, Instant::now() + STARTUP);

    let out = scene.dir("transmission-out");
    let mut leecher = scene.spawn(
        "transmission-download",
        transmission(&scene, "download", &out).arg(&release.torrent),
    );
    tracker.wait_for(&release.info_hash_v1, 1, 1, Instant::now() + STARTUP);

    let shoal_out = scene.dir("shoal-out");
    let mut shoal_peer = start_shoal_get(&scene, &release, &shoal_out, &["--seed"]);
    finish_shoal_download(&mut shoal_peer, &release);

    // Transmission keeps an incomplete file as NAME.part and renames it once
    // every piece verified, so equal final files mean it is done.
    let target = out.join(RELEASE_NAME);
    wait_until(
        Instant::now() + TRANSFER,
        "Transmission to finish the download",
        || {
            if let Some(status) = leecher.exited() {
                panic!("transmission-cli exited early with {status}");
            }
            same_content(&release.root, &target)
        },
    );
    assert_same_content(&release.root, &target);
    // Everything Transmission has came through shoal.
    shoal_peer.next_json(Instant::now() + STARTUP, |event| {
        (event.get("uploaded")?.as_u64()? >= release.total).then_some(())
    });
    stop_other_client(leecher);
    stop_cleanly(shoal_peer);
    stop_cleanly(lt_seed);
}

#[test]
fn shoal_downloads_unsigned_v1_from_aria2_via_tracker() {
    require_program("aria2c", "aria2");
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let release = unsigned_v1_release(&scene, &tracker.announce);
    let mut cmd = aria2(&scene, "seed", &release, &release.data_dir);
    // Check the data already on disk, then seed with no ratio or time limit.
    cmd.arg("--check-integrity=true").arg("--seed-ratio=0.0");
    let aria2_seed = scene.spawn("aria2-seed", &mut cmd);
    tracker.wait_for(&release.info_hash_v1, 1, 0, Instant::now() + STARTUP);

    let out = scene.dir("shoal-out");
    let mut get = start_shoal_get(&scene, &release, &out, &[]);
    finish_shoal_get(&mut get, &release);
    stop_other_client(aria2_seed);
}

#[test]
fn shoal_downloads_unsigned_v1_from_transmission_via_tracker() {
    require_program("transmission-cli", "transmission-cli");
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let release = unsigned_v1_release(&scene, &tracker.announce);
    let mut cmd = transmission(&scene, "seed", &release.data_dir);
    // Verify the data on disk first; it then seeds with no limit.
    cmd.arg("--verify").arg(&release.torrent);
    let transmission_seed = scene.spawn("transmission-seed", &mut cmd);
    tracker.wait_for(&release.info_hash_v1, 1, 0, Instant::now() + STARTUP);

    // Transmission accepts incoming connections from 127.0.0.1, so shoal
    // dials the address the tracker lists.
    let out = scene.dir("shoal-out");
    let mut get = start_shoal_get(&scene, &release, &out, &[]);
    finish_shoal_get(&mut get, &release);
    stop_other_client(transmission_seed);
}
