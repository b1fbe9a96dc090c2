//! A lone `shoal seed` serves every client at full speed (issue 15).
//!
//! A release's first customer may use any BitTorrent client, and the seed
//! starts in initial seeding (BEP 16), which shows a peer only some pieces
//! at a time. Clients that announce what they got on a timer (Transmission
//! batches its `have`s about once a second) were held to a piece per
//! announcement: 262 kB/s, 13 minutes for 200 MB. Here Transmission,
//! aria2 and libtorrent each download a 200 MB release from a fresh lone
//! seed, one after another, byte-identical and within [`TRANSFER`] (at
//! least 4 MB/s), and the test prints each client's rate.
//!
//! Not asserted yet: Transmission and aria2 at half libtorrent's rate or
//! more (issue 15's target). Measured on a loaded 2-core machine, three
//! runs: libtorrent 165 to 270 MB/s, aria2 36 to 41 MB/s (its own average
//! 70 MiB/s: the rest is its start-up and an encrypted handshake shoal
//! resets), Transmission 8.3 to 8.7 MB/s: it connects about 2 s after it
//! starts, then asks for nothing for up to 10 s (Transmission 3.00 seems
//! to decide interest in its 10 s rechoke pulse), then ramps to about
//! 35 MB/s.
//!
//! Everything runs in a network namespace the test creates: Transmission
//! 3.00 drops every loopback peer a tracker lists, so the seed and the
//! tracker listen on the namespace's own address. The rates count from a
//! client's start to its completion, so each pays for its own start-up.
#![cfg(target_os = "linux")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use testkit::content::assert_same_content;
use testkit::interop::{aria2c, lt_driver, require_program, transmission_cli};
use testkit::netns::Namespace;
use testkit::tracker::{info_hash_v1, LocalTracker};
use testkit::{field, run_json, shoal, write_random_file, Proc, Scene};

const RELEASE_NAME: &str = "release.bin";
const RELEASE_BYTES: u64 = 200_000_000;
const PIECE_SIZE: u64 = 256 * 1024;
/// Each seed in turn listens here, so a tracker entry left by the previous
/// one names the next.
const SEED_PORT: u16 = 6881;
/// Time for a process to start listening or a tracker to list a peer.
const STARTUP: Duration = Duration::from_secs(30);
/// Time for one client's whole download (200 MB: at least 4 MB/s):
/// seconds on a free machine, more on a loaded one; the throttle this test
/// pins took 13 minutes.
const TRANSFER: Duration = Duration::from_secs(50);
const EXIT_GRACE: Duration = Duration::from_secs(20);
/// How often to look for a finished download.
const POLL: Duration = Duration::from_millis(20);

/// The release, the namespace and the tracker every download shares.
struct Stage {
    scene: Scene,
    namespace: Namespace,
    tracker: LocalTracker,
    data_dir: PathBuf,
    torrent: PathBuf,
    info_hash: [u8; 20],
}

impl Stage {
    fn new() -> Stage {
        let scene = Scene::new();
        let namespace = Namespace::create("lone-seed");
        let tracker = LocalTracker::start_in(&scene, &namespace);
        let data_dir = scene.dir("seed-data");
        write_random_file(&data_dir.join(RELEASE_NAME), RELEASE_BYTES, 15);
        let torrent = scene.path("release.torrent");
        let made = run_json(
            lt_driver()
                .args(["make", "--mode", "v1", "--piece-size"])
                .arg(PIECE_SIZE.to_string())
                .args(["--announce", &tracker.announce])
                .arg(data_dir.join(RELEASE_NAME))
                .arg(&torrent),
        );
        let info_hash = info_hash_v1(field(&made, "info_hash_v1").as_str().expect("v1 hash"));
        Stage {
            scene,
            namespace,
            tracker,
            data_dir,
            torrent,
            info_hash,
        }
    }

    fn spawn(&self, name: &str, cmd: &Command) -> Proc {
        self.scene.spawn(name, &mut self.namespace.wrap(cmd))
    }

    /// A fresh `shoal seed`, listening and listed by the tracker: each
    /// client meets a seed that starts in initial seeding.
    fn start_seed(&self, client: &str) -> Proc {
        let mut cmd = shoal();
        cmd.arg("seed")
            .arg(&self.torrent)
            .arg("--data")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(format!("{}:{SEED_PORT}", self.namespace.inner_addr))
            .args(["--allow-unsigned", "--json"]);
        let mut seed = self.spawn(&format!("shoal-seed-for-{client}"), &cmd);
        seed.wait_started(Instant::now() + STARTUP);
        self.tracker
            .wait_for(&self.info_hash, 1, 0, Instant::now() + STARTUP);
        seed
    }

    fn seed_addr(&self) -> String {
        format!("{}:{SEED_PORT}", self.namespace.inner_addr)
    }

    /// libtorrent's rate in bytes/s, from its start to its completion.
    fn libtorrent_rate(&self) -> f64 {
        let seed = self.start_seed("libtorrent");
        let out = self.scene.dir("libtorrent-out");
        let mut cmd = lt_driver();
        cmd.arg("download")
            .arg(&self.torrent)
            .arg(&out)
            .args(["--peer", &self.seed_addr()])
            .args(["--listen-ip", &self.namespace.inner_addr])
            .args(["--timeout", &TRANSFER.as_secs().to_string()]);
        let started = Instant::now();
        let mut download = self.spawn("libtorrent-download", &cmd);
        download.next_json(started + TRANSFER, |line| line.get("complete").map(|_| ()));
        let seconds = started.elapsed().as_secs_f64();
        let status = download.wait_exit(Instant::now() + EXIT_GRACE);
        assert!(
            status.success(),
            "the libtorrent driver exited with {status}"
        );
        self.finish(seed, &out, seconds)
    }

    /// Transmission's rate: it keeps an incomplete file as NAME.part and
    /// renames it once every piece verified.
    fn transmission_rate(&self) -> f64 {
        let seed = self.start_seed("transmission");
        let out = self.scene.dir("transmission-out");
        let mut cmd = transmission_cli(&self.scene, "download", &out, &self.namespace.inner_addr);
        cmd.arg(&self.torrent);
        let started = Instant::now();
        let mut download = self.spawn("transmission-download", &cmd);
        let done = out.join(RELEASE_NAME);
        while !done.exists() {
            if let Some(status) = download.exited() {
                panic!("transmission-cli exited early with {status}");
            }
            assert!(
                started.elapsed() < TRANSFER,
                "Transmission did not finish within {TRANSFER:?}"
            );
            thread::sleep(POLL);
        }
        let seconds = started.elapsed().as_secs_f64();
        download.signal("INT", EXIT_GRACE);
        self.finish(seed, &out, seconds)
    }

    /// aria2's rate: it exits once the download is complete.
    fn aria2_rate(&self) -> f64 {
        let seed = self.start_seed("aria2");
        let out = self.scene.dir("aria2-out");
        let mut cmd = aria2c(
            &self.scene,
            "download",
            &self.torrent,
            &out,
            &self.namespace.inner_addr,
        );
        cmd.arg("--seed-time=0");
        let started = Instant::now();
        let mut download = self.spawn("aria2-download", &cmd);
        let status = download.wait_exit(started + TRANSFER);
        let seconds = started.elapsed().as_secs_f64();
        assert!(status.success(), "aria2c exited with {status}");
        self.finish(seed, &out, seconds)
    }

    /// Stops the seed (it must exit cleanly), checks the download byte for
    /// byte, and returns its rate.
    fn finish(&self, mut seed: Proc, out: &Path, seconds: f64) -> f64 {
        let status = seed.terminate(EXIT_GRACE);
        assert!(
            status.success(),
            "shoal seed exited with {status} on SIGTERM"
        );
        assert_same_content(&self.data_dir.join(RELEASE_NAME), &out.join(RELEASE_NAME));
        // 200 MB per client would otherwise stay until the scene ends.
        let _ = fs::remove_file(out.join(RELEASE_NAME));
        RELEASE_BYTES as f64 / seconds
    }
}

#[test]
fn libtorrent_transmission_and_aria2_each_download_200_mb_from_a_lone_shoal_seed() {
    require_program("transmission-cli", "transmission-cli");
    require_program("aria2c", "aria2");
    let stage = Stage::new();
    // Transmission first: the tracker then lists the seed alone, and
    // Transmission, which dials listed peers slowly, tries no stale entry.
    let transmission = stage.transmission_rate();
    let aria2 = stage.aria2_rate();
    let libtorrent = stage.libtorrent_rate();
    let mb = |rate: f64| rate / 1e6;
    eprintln!(
        "lone shoal seed, 200 MB: libtorrent {:.1} MB/s, Transmission {:.1} MB/s ({:.2} of libtorrent's), aria2 {:.1} MB/s ({:.2})",
        mb(libtorrent),
        mb(transmission),
        transmission / libtorrent,
        mb(aria2),
        aria2 / libtorrent,
    );
}
