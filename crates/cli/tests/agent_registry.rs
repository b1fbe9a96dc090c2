//! The agent's release registry under a release that is slow to stop.
//!
//! A release stops by saying `stopped` to its trackers, which may take a
//! few seconds (the engine bounds that announce). A tracker that accepts
//! connections and never answers makes every stop take that long: here
//! it is the seam that makes a stop slow, with real `shoal agent`
//! processes and real engine sessions. Regression tests for the review
//! of issue 14, which found the registry's one lock held across a stop:
//!
//! * while one release is being paused, listing, changing caps, pausing
//!   and resuming another answer at once;
//! * shutdown stops every release at once: with three slow releases it
//!   takes about one stop, not three;
//! * removing a release with its files deletes its staging folder, found
//!   by the engine's own naming, and leaves another release's alone.
//!
//! Every wait has a deadline; child processes die with their guards.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use testkit::agent::{http, keygen, publish, write_config, Agent};
use testkit::{field, wait_until, write_random_file, Scene};

/// A stop shorter than this would not show a lock held across it.
const SLOW_STOP: Duration = Duration::from_secs(3);
/// How long a call that waits for no stop may take on a busy machine.
const PROMPT: Duration = Duration::from_secs(2);

/// An HTTP tracker that accepts every connection and never answers:
/// each announce to it lasts until the announcer's own timeout.
struct SilentTracker {
    announce: String,
    accepted: Arc<AtomicUsize>,
}

impl SilentTracker {
    fn start() -> SilentTracker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let announce = format!("http://{}/announce", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        SilentTracker { announce, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A tracker URL whose port refuses connections: announces fail at once,
/// so a release announcing there stops at once.
fn refusing_tracker() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/announce")
}

/// A signed release of `name` (256 KiB) announcing to `tracker`.
fn release(scene: &Scene, key: &Path, name: &str, tracker: &str, seed: u64) -> PathBuf {
    let data = scene.dir("data").join(name);
    write_random_file(&data, 256 * 1024, seed);
    publish(&data, key, tracker, &scene.path(&format!("{name}.torrent")))
}

/// Adds `torrent`; returns its id.
fn add(agent: &Agent, torrent: &Path) -> String {
    let body = json!({ "torrent": torrent.to_str().unwrap() });
    let view = agent.call("POST", "/v1/releases", Some(body), 201);
    field(&view, "info_hash").as_str().unwrap().to_owned()
}

fn releases(agent: &Agent) -> Vec<Value> {
    let list = agent.call("GET", "/v1/releases", None, 200);
    field(&list, "releases").as_array().unwrap().clone()
}

/// Waits until every release is downloading and the silent tracker has
/// taken `announcing` connections (their announces now hang).
fn wait_running(agent: &Agent, tracker: &SilentTracker, announcing: usize) {
    wait_until(
        Instant::now() + Duration::from_secs(30),
        "every release downloading, announcing to the silent tracker",
        || {
            tracker.accepted() >= announcing
                && releases(agent)
                    .iter()
                    .all(|r| field(r, "state") == "downloading")
        },
    );
}

/// POSTs `path` to `agent` from another thread; the receiver gets how
/// long the call took once it answered 200.
fn post_in_background(agent: &Agent, path: String) -> mpsc::Receiver<Duration> {
    let (done, took) = mpsc::channel();
    let (addr, host, token) = (agent.addr, agent.host(), agent.token.clone());
    std::thread::spawn(move || {
        let start = Instant::now();
        let (status, text) = http(addr, "POST", &path, &host, Some(&token), None);
        assert_eq!(status, 200, "POST {path} answered: {text}");
        let _ = done.send(start.elapsed());
    });
    took
}

/// How long `call` takes, asserting it is [`PROMPT`].
fn prompt(what: &str, call: impl FnOnce()) {
    let start = Instant::now();
    call();
    let took = start.elapsed();
    eprintln!("{what}: {took:?}");
    assert!(
        took < PROMPT,
        "{what} took {took:?} while another release stopped"
    );
}

#[test]
fn a_release_slow_to_stop_holds_up_no_other_call() {
    let scene = Scene::new();
    let silent = SilentTracker::start();
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let slow = release(&scene, &key, "slow.bin", &silent.announce, 1);
    let fast = release(&scene, &key, "fast.bin", &refusing_tracker(), 2);
    let (config, state, downloads) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);
    let slow_id = add(&agent, &slow);
    let fast_id = add(&agent, &fast);
    wait_running(&agent, &silent, 1);

    let pausing = post_in_background(&agent, format!("/v1/releases/{slow_id}/pause"));
    std::thread::sleep(Duration::from_millis(300));
    prompt("listing", || {
        let listed = releases(&agent);
        let slow = listed
            .iter()
            .find(|r| field(r, "info_hash") == slow_id.as_str());
        assert_eq!(field(slow.unwrap(), "state"), "paused", "{listed:#?}");
    });
    prompt("changing the caps", || {
        let caps = json!({ "max_upload_bps": 1_000_000, "max_download_bps": 2_000_000 });
        agent.call("PUT", "/v1/settings", Some(caps), 200);
    });
    prompt("pausing another release", || {
        let path = format!("/v1/releases/{fast_id}/pause");
        agent.call("POST", &path, None, 200);
    });
    prompt("resuming it", || {
        let path = format!("/v1/releases/{fast_id}/resume");
        agent.call("POST", &path, None, 200);
    });
    assert!(
        pausing.try_recv().is_err(),
        "the slow release stopped before the other calls were done: nothing was tested"
    );
    let took = pausing.recv_timeout(Duration::from_secs(30)).unwrap();
    eprintln!("pausing the slow release: {took:?}");
    assert!(took >= SLOW_STOP, "the slow release stopped in {took:?}");

    // Its files go with it, staging folder included; the other's stay.
    let staged = |name: &str| {
        std::fs::read_dir(&downloads)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .any(|f| f.starts_with(&format!(".{name}.")) && f.ends_with(".shoal-partial"))
    };
    assert!(staged("fast.bin") && staged("slow.bin"));
    let remove = format!("/v1/releases/{fast_id}?delete_files=true");
    agent.call("DELETE", &remove, None, 204);
    assert!(
        !staged("fast.bin"),
        "the removed release's staging folder is left"
    );
    assert!(
        staged("slow.bin"),
        "another release's staging folder went too"
    );
    assert_eq!(releases(&agent).len(), 1);
}

#[test]
fn shutdown_stops_every_release_at_once() {
    let scene = Scene::new();
    let silent = SilentTracker::start();
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let (config, state, _) = write_config(&scene, &publisher);
    let mut agent = Agent::start(&scene, "agent", &config, &state);
    let ids: Vec<String> = (0..4)
        .map(|i| {
            let name = format!("release-{i}.bin");
            add(&agent, &release(&scene, &key, &name, &silent.announce, i))
        })
        .collect();
    wait_running(&agent, &silent, ids.len());

    // One stop, measured: a pause.
    let start = Instant::now();
    agent.call("POST", &format!("/v1/releases/{}/pause", ids[0]), None, 200);
    let one_stop = start.elapsed();
    eprintln!("one stop: {one_stop:?}");
    assert!(one_stop >= SLOW_STOP, "a release stopped in {one_stop:?}");

    // Three running releases, each as slow to stop.
    let start = Instant::now();
    let status = agent.proc.terminate(Duration::from_secs(60));
    let shutdown = start.elapsed();
    eprintln!("shutdown with three releases: {shutdown:?}");
    assert!(status.success(), "the agent exited with {status}");
    assert!(
        shutdown < one_stop * 2,
        "shutdown took {shutdown:?}, one stop {one_stop:?}: the releases stopped one by one"
    );
    // None was marked paused: the next start resumes them all.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(state.join("releases.json")).unwrap()).unwrap();
    let paused: Vec<bool> = field(&saved, "releases")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| field(r, "paused").as_bool().unwrap())
        .collect();
    assert_eq!(paused.iter().filter(|p| **p).count(), 1, "{saved:#}");
}
