//! The customer's controls on a running `shoal agent`, through its API:
//!
//! * download and upload caps changed mid-transfer take effect within a
//!   few seconds, the measured rate within 10 % of the cap;
//! * the disk quota for shared releases evicts the least recently used
//!   copy kept from a browser hand-off, and never a release the customer
//!   added: a hand-off neither deletes nor resumes the customer's paused
//!   release.
//!
//! Every wait has a deadline; child processes die with their guards.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::agent::{
    bytes, keygen, publish, publish_with, start_seed, wait_release, write_config, Agent,
};
use testkit::content::assert_same_content;
use testkit::http::exchange;
use testkit::publisher_site::PublisherSite;
use testkit::tracker::LocalTracker;
use testkit::{field, shoal, write_random_file, Scene, MIB};

/// How long a new cap gets to take hold, then how long the rate is measured.
const SETTLE: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(4);
/// How long a seed may take to start serving.
const SEED_START: Duration = Duration::from_secs(60);

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
    let (mut seed, _) = start_seed(
        &scene,
        "seed",
        &torrent,
        &seed_dir,
        &publisher,
        Instant::now() + SEED_START,
    );

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

/// One small signed release on disk (origin `origin`), its torrent, and
/// its seed's folder.
fn small_release(
    scene: &Scene,
    name: &str,
    key: &Path,
    announce: &str,
    origin: &str,
    seed: u64,
) -> (PathBuf, PathBuf) {
    let dir = scene.dir(&format!("seed-{name}"));
    write_random_file(&dir.join(name), MIB, seed);
    let torrent = publish_with(
        &dir.join(name),
        key,
        announce,
        &scene.path(&format!("{name}.torrent")),
        &["--origin", origin],
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

/// A page on `site` hands `name` off; returns the status and, when
/// accepted, the stream's path.
fn hand_off(agent: &Agent, site: &PublisherSite, name: &str) -> (u16, Option<String>) {
    let path = format!(
        "/v1/handoff?torrent={}/{name}.torrent",
        site.origin().replace(':', "%3A").replace('/', "%2F")
    );
    let answer = exchange(
        agent.addr,
        "POST",
        &path,
        &agent.host(),
        &[("Origin", site.origin())],
        b"",
    );
    let stream = (answer.status == 200).then(|| {
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        let url = field(&body, "stream_url").as_str().unwrap().to_owned();
        url.strip_prefix(&format!("http://{}", agent.host()))
            .unwrap()
            .to_owned()
    });
    (answer.status, stream)
}

#[test]
fn the_quota_evicts_only_handed_off_copies_never_the_customers_releases() {
    let deadline = Instant::now() + Duration::from_secs(120);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let site = PublisherSite::start();
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let mut seeds = Vec::new();
    let mut torrents = Vec::new();
    for (n, name) in ["user.bin", "older.bin", "newer.bin"].iter().enumerate() {
        let (torrent, dir) = small_release(
            &scene,
            name,
            &key,
            &tracker.announce,
            &site.origin(),
            n as u64,
        );
        let (seed, _) = start_seed(
            &scene,
            &format!("seed-{name}"),
            &torrent,
            &dir,
            &publisher,
            Instant::now() + SEED_START,
        );
        seeds.push(seed);
        site.put(
            &format!("/{name}.torrent"),
            std::fs::read(&torrent).unwrap(),
        );
        torrents.push(torrent);
    }
    let (config, state, downloads) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);

    // The customer's own release: added through the API, complete, paused.
    let body = json!({ "torrent": torrents[0].to_str().unwrap() });
    let user = agent.call("POST", "/v1/releases", Some(body), 201);
    let user_id = field(&user, "info_hash").as_str().unwrap().to_owned();
    wait_state(&agent, "user.bin", "seeding", deadline);
    // A page offering it while it runs gets it streamed as it is: the
    // release stays the customer's, pinned, seeding.
    let (status, stream) = hand_off(&agent, &site, "user.bin");
    assert_eq!(status, 200, "a hand-off of a running release");
    let got = exchange(agent.addr, "GET", &stream.unwrap(), &agent.host(), &[], b"");
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len() as u64, MIB);
    let listed = agent.release();
    assert_eq!(field(&listed, "state"), "seeding");
    assert_eq!(field(&listed, "pinned"), true);
    assert_eq!(field(&listed, "handed_off"), false);
    agent.call("POST", &format!("/v1/releases/{user_id}/pause"), None, 200);
    // Room for one and a half shared copies: the customer's release does
    // not count, however large.
    set(&agent, json!({ "shared_quota_bytes": 3 * MIB / 2 }));
    let user_is_untouched = |agent: &Agent| {
        assert!(
            ids_and_states(agent).contains(&("user.bin".to_owned(), "paused".to_owned())),
            "the customer's paused release changed: {:?}",
            ids_and_states(agent)
        );
        assert_same_content(
            &scene.path("seed-user.bin").join("user.bin"),
            &downloads.join("user.bin"),
        );
    };

    // A page offering the customer's paused release is refused (the page
    // falls back to the origin), and the release stays paused.
    let (status, _) = hand_off(&agent, &site, "user.bin");
    assert_eq!(status, 409, "a hand-off of a paused release");
    user_is_untouched(&agent);

    // Hand-offs opened in the browser: copies kept for sharing. Ages are
    // kept in seconds: one apart, so "least recently used" is clear.
    for name in ["older.bin", "newer.bin"] {
        std::thread::sleep(Duration::from_millis(1100));
        let (status, stream) = hand_off(&agent, &site, name);
        assert_eq!(status, 200, "hand-off of {name}");
        let got = exchange(agent.addr, "GET", &stream.unwrap(), &agent.host(), &[], b"");
        assert_eq!(got.status, 200);
        assert_eq!(got.body.len() as u64, MIB);
        wait_state(&agent, name, "seeding", deadline);
    }
    // Two copies of 1 MiB in a quota of 1.5: the older went.
    wait_until_gone(&agent, "older.bin", deadline);
    assert!(
        !downloads.join("older.bin").exists(),
        "the evicted copy's file is still there"
    );
    assert!(downloads.join("newer.bin").exists());
    user_is_untouched(&agent);

    // A quota too small for anything: every shared copy goes; the
    // customer's release stays, paused, its file whole.
    set(&agent, json!({ "shared_quota_bytes": MIB / 2 }));
    wait_until_gone(&agent, "newer.bin", deadline);
    assert!(!downloads.join("newer.bin").exists());
    user_is_untouched(&agent);
    let settings = agent.call("GET", "/v1/settings", None, 200);
    assert_eq!(field(&settings, "shared_quota_bytes"), MIB / 2);
}

fn wait_until_gone(agent: &Agent, name: &str, deadline: Instant) {
    loop {
        let now = ids_and_states(agent);
        if !now.iter().any(|(n, _)| n == name) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} was never evicted: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
