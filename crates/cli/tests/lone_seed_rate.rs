//! A lone `shoal seed` serves every client at full speed (issue 15).
//!
//! A release's first customer may use any BitTorrent client, and the seed
//! starts in initial seeding (BEP 16), which shows a peer only some pieces
//! at a time. Clients that announce what they got on a timer (Transmission
//! batches its `have`s about once a second) were held to a piece per
//! announcement: 262 kB/s, 13 minutes for 200 MB. Here Transmission,
//! aria2 and libtorrent each download a 200 MB release from a fresh lone
//! seed, one after another, byte-identical, and Transmission and aria2
//! each reach at least half libtorrent's rate from the same seed.
//!
//! The seed and the tracker run in one network namespace, each client in
//! another, joined by a veth pair capped at [`LINK_RATE`] each way: what is
//! measured is the seed across a link, not which of two processes on one
//! loopback gets more of a 2-core machine's CPU (there, libtorrent took
//! 165 to 346 MB/s, aria2 36 to 43 and Transmission 8 to 9).
//!
//! [`LINK_RATE`] is 80 Mbit/s, a fast home link (fibre or cable), and well
//! under what any of the three clients takes on this machine. The rates
//! count from a client's start to its completion, so each pays for its own
//! start-up, and Transmission 3.00's costs about 13 s whatever the seed
//! does (measured from a libtorrent seed too): 2.5 s to announce and dial,
//! then it decides whom it is interested in only in a pulse every 10 s
//! (`rechokeDownloads`; allowed-fast pieces do not help: its handler is
//! compiled out), and holds the `interested` message up to 2 s in its outgoing
//! batch. 200 MB at 100 Mbit/s take 16 s, too few next to 13 s: there
//! Transmission reached 0.48 of libtorrent's rate (6.1 MB/s; 6.0 from a
//! libtorrent seed). At 80 Mbit/s, once asking, it keeps the link full. aria2 first tries an
//! encrypted (MSE) handshake, which shoal does not speak, and retries in
//! plaintext a second later.
//!
//! Measured, three runs on the loaded 2-core machine, medians: at 80
//! Mbit/s libtorrent 9.4 MB/s, Transmission 5.4 (0.59 of libtorrent's),
//! aria2 7.9 (0.85). With no cap (set [`LINK_RATE_VAR`] to 0): libtorrent
//! 256 MB/s, Transmission 8.6 (0.03), aria2 39.6 (0.16); there each client
//! is bound by its own fixed costs (Transmission's 13 s start, aria2's 2 s
//! before and 1 s after 1.7 s of data): from a libtorrent seed,
//! Transmission took 8.5 MB/s (8.1 from shoal's in the same run) and aria2
//! 39.3 (33.2: shoal's one-second MSE retry).
//!
//! Transmission 3.00 also drops every loopback peer a tracker lists, so the
//! seed and the tracker listen on their namespace's own address.
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
/// The cap on the link between the seed and each client, each way, in
/// bytes/s: 80 Mbit/s (see the module comment).
const LINK_RATE: u64 = 10_000_000;
/// Set to another cap in bytes/s, or to 0 for none, to measure the same
/// downloads on another link; the test asserts the same of every link (so
/// with no cap it fails, printing the figures).
const LINK_RATE_VAR: &str = "SHOAL_LONE_SEED_LINK_RATE";
/// Time for one client's whole download: 16 s at [`LINK_RATE`], plus the
/// client's start-up (Transmission's up to 12 s) and room for a loaded
/// machine; the throttle this test pins took 13 minutes.
const TRANSFER: Duration = Duration::from_secs(60);
const EXIT_GRACE: Duration = Duration::from_secs(20);
/// How often to look for a finished download.
const POLL: Duration = Duration::from_millis(20);

/// The release, the namespaces and the tracker every download shares.
struct Stage {
    scene: Scene,
    /// Where the seed and the tracker run.
    seed_side: Namespace,
    /// Where each client runs, behind the capped link.
    client_side: Namespace,
    tracker: LocalTracker,
    data_dir: PathBuf,
    torrent: PathBuf,
    info_hash: [u8; 20],
}

impl Stage {
    fn new() -> Stage {
        let scene = Scene::new();
        let seed_side = Namespace::create("lone-seed");
        let client_side = Namespace::create_behind("lone-client", &seed_side, link_rate());
        let tracker = LocalTracker::start_in(&scene, &seed_side);
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
            seed_side,
            client_side,
            tracker,
            data_dir,
            torrent,
            info_hash,
        }
    }

    fn spawn_seed_side(&self, name: &str, cmd: &Command) -> Proc {
        self.scene.spawn(name, &mut self.seed_side.wrap(cmd))
    }

    fn spawn_client(&self, name: &str, cmd: &Command) -> Proc {
        self.scene.spawn(name, &mut self.client_side.wrap(cmd))
    }

    fn client_addr(&self) -> &str {
        &self.client_side.inner_addr
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
            .arg(self.seed_addr())
            .args(["--allow-unsigned", "--json"]);
        let mut seed = self.spawn_seed_side(&format!("shoal-seed-for-{client}"), &cmd);
        seed.wait_started(Instant::now() + STARTUP);
        self.tracker
            .wait_for(&self.info_hash, 1, 0, Instant::now() + STARTUP);
        seed
    }

    fn seed_addr(&self) -> String {
        format!("{}:{SEED_PORT}", self.seed_side.inner_addr)
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
            .args(["--listen-ip", self.client_addr()])
            .args(["--timeout", &TRANSFER.as_secs().to_string()]);
        let started = Instant::now();
        let mut download = self.spawn_client("libtorrent-download", &cmd);
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
        let mut cmd = transmission_cli(&self.scene, "download", &out, self.client_addr());
        cmd.arg(&self.torrent);
        let started = Instant::now();
        let mut download = self.spawn_client("transmission-download", &cmd);
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
            self.client_addr(),
        );
        cmd.arg("--seed-time=0");
        let started = Instant::now();
        let mut download = self.spawn_client("aria2-download", &cmd);
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

/// [`LINK_RATE`], or what [`LINK_RATE_VAR`] says (`None`: no cap).
fn link_rate() -> Option<u64> {
    let Ok(text) = std::env::var(LINK_RATE_VAR) else {
        return Some(LINK_RATE);
    };
    let rate: u64 = text
        .parse()
        .unwrap_or_else(|e| panic!("{LINK_RATE_VAR}={text:?} is not bytes/s: {e}"));
    (rate > 0).then_some(rate)
}

#[test]
fn transmission_and_aria2_download_from_a_lone_shoal_seed_at_half_libtorrents_rate_or_more() {
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
        "lone shoal seed, 200 MB over a link {}: libtorrent {:.1} MB/s, Transmission {:.1} MB/s ({:.2} of libtorrent's), aria2 {:.1} MB/s ({:.2})",
        link_rate().map_or("with no cap".to_owned(), |r| format!("capped at {:.1} MB/s", mb(r as f64))),
        mb(libtorrent),
        mb(transmission),
        transmission / libtorrent,
        mb(aria2),
        aria2 / libtorrent,
    );
    for (client, rate) in [("Transmission", transmission), ("aria2", aria2)] {
        assert!(
            rate >= 0.5 * libtorrent,
            "{client} got {:.1} MB/s from a lone shoal seed, under half libtorrent's {:.1} MB/s",
            mb(rate),
            mb(libtorrent),
        );
    }
}
