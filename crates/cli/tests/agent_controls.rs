//! The customer's controls on a running `shoal agent`, through its API:
//!
//! * download and upload caps changed mid-transfer take effect within a
//!   few seconds, the measured rate within 10 % of the cap;
//! * the disk quota for shared releases evicts the least recently used
//!   shared release, never a pinned or an unfinished one.
//!
//! Every wait has a deadline; child processes die with their guards.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

#[path = "common/agent_api.rs"]
mod agent_api;
mod common;
#[path = "common/swarm.rs"]
#[allow(unused_imports)]
mod swarm;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use agent_api::{bytes, keygen, publish, wait_release, write_config, Agent, MIB};
use common::{field, shoal, write_random_file};
use swarm::{assert_same_content, LocalTracker, Proc, Scene};

/// How long a new cap gets to take hold, then how long the rate is measured.
const SETTLE: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(4);

fn start_seed(scene: &Scene, name: &str, torrent: &Path, data: &Path, publisher: &str) -> Proc {
    let mut seed = scene.spawn(
        name,
        shoal()
            .arg("seed")
            .arg(torrent)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--json", "--trust", publisher]),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    seed.next_json(deadline, |event| {
        (event["event"] == "started").then_some(())
    });
    seed
}

/// Bytes per second `sample` grows by over about [`MEASURE`], after
/// [`SETTLE`]. The agent refreshes its counts once a second, so each end
/// of the window is taken the moment a fresh count shows, not at a random
/// point up to a second after it.
fn measured_rate(sample: impl Fn() -> u64) -> f64 {
    std::thread::sleep(SETTLE);
    let fresh = || {
        let stale = sample();
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let now = sample();
            if now != stale || Instant::now() > until {
                return (now, Instant::now());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let (from, start) = fresh();
    std::thread::sleep(MEASURE - Duration::from_millis(500));
    let (to, end) = fresh();
    to.saturating_sub(from) as f64 / end.duration_since(start).as_secs_f64()
}

fn assert_near_cap(what: &str, rate: f64, cap: u64) {
    let ratio = rate / cap as f64;
    eprintln!("{what}: {rate:.0} B/s against a cap of {cap} B/s ({ratio:.3}x)");
    assert!(
        (0.9..=1.1).contains(&ratio),
        "{what}: measured {rate:.0} B/s, cap {cap} B/s ({ratio:.3}x)"
    );
}

fn set(agent: &Agent, settings: Value) {
    agent.call("PUT", "/v1/settings", Some(settings), 200);
}

#[test]
fn caps_changed_through_the_api_hold_on_a_running_transfer() {
    const SIZE: u64 = 40 * MIB;
    let deadline = Instant::now() + Duration::from_secs(150);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let seed_dir = scene.dir("seed");
    let original = seed_dir.join("image.bin");
    write_random_file(&original, SIZE, 3);
    let torrent = publish(
        &original,
        &key,
        &tracker.announce,
        &scene.path("image.torrent"),
    );
    let mut seed = start_seed(&scene, "seed", &torrent, &seed_dir, &publisher);

    let (config, state, downloads) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);
    set(&agent, json!({ "max_download_bps": 2 * MIB }));
    let add = json!({ "torrent": torrent.to_str().unwrap() });
    agent.call("POST", "/v1/releases", Some(add), 201);
    wait_release(&agent, deadline, "the first bytes", |r| {
        bytes(r, "verified_bytes") > 0
    });
    let verified = || bytes(&agent.release(), "verified_bytes");
    assert_near_cap("download at 2 MiB/s", measured_rate(verified), 2 * MIB);
    set(&agent, json!({ "max_download_bps": MIB }));
    assert_near_cap("download cut to 1 MiB/s", measured_rate(verified), MIB);
    set(&agent, json!({ "max_download_bps": 0 }));
    wait_release(&agent, deadline, "completion", |r| r["state"] == "seeding");
    assert_same_content(&original, &downloads.join("image.bin"));

    // Now the agent is the only seed, and a leecher pulls from it.
    seed.terminate(Duration::from_secs(10));
    set(&agent, json!({ "max_upload_bps": 2 * MIB }));
    let settings = agent.call("GET", "/v1/settings", None, 200);
    let agent_peer = field(&settings, "listen").as_str().unwrap().to_owned();
    let leech_dir = scene.dir("leech");
    let mut leecher = scene.spawn(
        "leecher",
        shoal()
            .arg("get")
            .arg(&torrent)
            .arg("--out")
            .arg(&leech_dir)
            .args(["--listen", "127.0.0.1:0", "--json", "--trust", &publisher])
            .args(["--peer", &agent_peer]),
    );
    let uploaded = || bytes(&agent.release(), "uploaded");
    wait_until_positive(&uploaded, deadline);
    assert_near_cap("upload at 2 MiB/s", measured_rate(uploaded), 2 * MIB);
    set(&agent, json!({ "max_upload_bps": MIB }));
    assert_near_cap("upload cut to 1 MiB/s", measured_rate(uploaded), MIB);
    set(&agent, json!({ "max_upload_bps": 0 }));
    leecher.next_json(deadline, |event| {
        (event["event"] == "complete").then_some(())
    });
    assert_same_content(&original, &leech_dir.join("image.bin"));
}

fn wait_until_positive(sample: &impl Fn() -> u64, deadline: Instant) {
    while sample() == 0 {
        assert!(Instant::now() < deadline, "the leecher never got a byte");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One small signed release on disk, its torrent, and its seed's folder.
fn small_release(
    scene: &Scene,
    name: &str,
    key: &Path,
    announce: &str,
    seed: u64,
) -> (PathBuf, PathBuf) {
    let dir = scene.dir(&format!("seed-{name}"));
    write_random_file(&dir.join(name), MIB, seed);
    let torrent = publish(
        &dir.join(name),
        key,
        announce,
        &scene.path(&format!("{name}.torrent")),
    );
    (torrent, dir)
}

fn ids_and_states(agent: &Agent) -> Vec<(String, String)> {
    let list = agent.call("GET", "/v1/releases", None, 200);
    let mut named: Vec<(String, String)> = field(&list, "releases")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                field(r, "name").as_str().unwrap().to_owned(),
                field(r, "state").as_str().unwrap().to_owned(),
            )
        })
        .collect();
    named.sort();
    named
}

fn wait_state(agent: &Agent, name: &str, state: &str, deadline: Instant) {
    loop {
        let now = ids_and_states(agent);
        if now.iter().any(|(n, s)| n == name && s == state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became {state}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_quota_evicts_the_least_recently_used_shared_release_only() {
    let deadline = Instant::now() + Duration::from_secs(120);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let mut seeds = Vec::new();
    let mut torrents = Vec::new();
    for (n, name) in ["pinned.bin", "older.bin", "newer.bin", "unseeded.bin"]
        .iter()
        .enumerate()
    {
        let (torrent, dir) = small_release(&scene, name, &key, &tracker.announce, n as u64);
        if *name != "unseeded.bin" {
            seeds.push(start_seed(
                &scene,
                &format!("seed-{name}"),
                &torrent,
                &dir,
                &publisher,
            ));
        }
        torrents.push(torrent);
    }
    let (config, state, downloads) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);
    // Room for two and a half shared releases.
    set(&agent, json!({ "shared_quota_bytes": 5 * MIB / 2 }));
    let add = |torrent: &PathBuf| {
        let body = json!({ "torrent": torrent.to_str().unwrap() });
        field(
            &agent.call("POST", "/v1/releases", Some(body), 201),
            "info_hash",
        )
        .as_str()
        .unwrap()
        .to_owned()
    };
    let pinned = add(&torrents[0]);
    wait_state(&agent, "pinned.bin", "seeding", deadline);
    agent.call("POST", &format!("/v1/releases/{pinned}/pin"), None, 200);
    // Ages are kept in seconds: one apart, so "least recently used" is clear.
    for (torrent, name) in [(&torrents[1], "older.bin"), (&torrents[2], "newer.bin")] {
        std::thread::sleep(Duration::from_millis(1100));
        add(torrent);
        wait_state(&agent, name, "seeding", deadline);
    }
    let all_seeding: Vec<(String, String)> = ["newer.bin", "older.bin", "pinned.bin"]
        .iter()
        .map(|n| (n.to_string(), "seeding".to_owned()))
        .collect();
    assert_eq!(
        ids_and_states(&agent),
        all_seeding,
        "within the quota, all stay"
    );

    // A fourth release needs room: the oldest shared one goes, files too.
    std::thread::sleep(Duration::from_millis(1100));
    add(&torrents[3]);
    let after = ids_and_states(&agent);
    let names: Vec<&str> = after.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["newer.bin", "pinned.bin", "unseeded.bin"],
        "{after:?}"
    );
    assert!(
        !downloads.join("older.bin").exists(),
        "the evicted release's file is still there"
    );
    assert!(downloads.join("pinned.bin").exists());

    // A quota too small for anything: every shared release goes, but the
    // pinned and the unfinished stay.
    set(&agent, json!({ "shared_quota_bytes": MIB / 2 }));
    let after = ids_and_states(&agent);
    let names: Vec<&str> = after.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["pinned.bin", "unseeded.bin"], "{after:?}");
    assert!(
        after.contains(&("unseeded.bin".to_owned(), "downloading".to_owned())),
        "{after:?}"
    );
    assert_same_content(
        &scene.path("seed-pinned.bin").join("pinned.bin"),
        &downloads.join("pinned.bin"),
    );
    let settings = agent.call("GET", "/v1/settings", None, 200);
    assert_eq!(field(&settings, "shared_quota_bytes"), MIB / 2);
}
