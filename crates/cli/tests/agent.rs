//! `shoal agent` as a real process on loopback, driven through its HTTP API:
//!
//! * the guard: a foreign `Host` is refused on every endpoint, a state
//!   change without the token is refused, no answer contains the token,
//!   and only releases signed by a trusted publisher are accepted;
//! * a release added through the API downloads from a `shoal seed` found
//!   through a local tracker, pauses (and stays still), resumes, survives
//!   the agent being killed, and completes byte-identical.
//!
//! Every wait has a deadline; child processes die with their guards.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/swarm.rs"]
// Its re-export of the libtorrent driver is not needed here.
#[allow(unused_imports)]
mod swarm;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{field, run, shoal, write_random_file};
use swarm::{assert_same_content, LocalTracker, Proc, Scene};

const MIB: u64 = 1024 * 1024;

/// A running agent and what a client needs to talk to it.
struct Agent {
    _proc: Proc,
    addr: SocketAddr,
    token: String,
}

impl Agent {
    fn start(scene: &Scene, name: &str, config: &Path, state: &Path) -> Agent {
        let mut cmd = shoal();
        cmd.arg("agent").arg("--config").arg(config);
        let mut proc = scene.spawn(name, &mut cmd);
        let addr = proc.next_line(Instant::now() + Duration::from_secs(30), |line| {
            line.strip_prefix("agent listening on http://")
                .map(|a| a.parse().unwrap())
        });
        let token = std::fs::read_to_string(state.join("api-token")).unwrap();
        Agent {
            _proc: proc,
            addr,
            token,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    /// A request with the right `Host` and token; panics unless `expect`.
    fn call(&self, method: &str, path: &str, body: Option<Value>, expect: u16) -> Value {
        let (status, text) = http(
            self.addr,
            method,
            path,
            &self.host(),
            Some(&self.token),
            body,
        );
        assert_eq!(status, expect, "{method} {path} answered: {text}");
        assert!(
            !text.contains(&self.token),
            "{method} {path} leaked the token"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The one release the agent lists.
    fn release(&self) -> Value {
        let list = self.call("GET", "/v1/releases", None, 200);
        let releases = field(&list, "releases").as_array().unwrap().clone();
        assert_eq!(releases.len(), 1, "expected one release: {list:#}");
        releases[0].clone()
    }
}

/// One HTTP/1.1 exchange; returns the status and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        request.push_str(&format!("X-Shoal-Token: {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A key pair; returns the key file and the public key in hex.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = run(shoal().arg("keygen").arg("--out").arg(&key));
    (
        key,
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    )
}

/// Publishes `data` signed with `key`; returns the torrent's path.
fn publish(data: &Path, key: &Path, tracker: &str, out: &Path) -> PathBuf {
    run(shoal()
        .arg("publish")
        .arg(data)
        .arg("--key")
        .arg(key)
        .args(["--tracker", tracker, "--piece-size", "65536", "--out"])
        .arg(out));
    out.to_owned()
}

/// An agent config on loopback, trusting `publisher`.
fn write_config(scene: &Scene, publisher: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (state, downloads) = (scene.path("state"), scene.path("downloads"));
    let config = scene.path("agent.toml");
    // Literal TOML strings: Windows paths keep their backslashes.
    let text = format!(
        "api = \"127.0.0.1:0\"\nlisten = \"127.0.0.1:0\"\nstate_dir = '{}'\n\
         download_dir = '{}'\ntrusted_publishers = [\"{publisher}\"]\n",
        state.display(),
        downloads.display()
    );
    std::fs::write(&config, text).unwrap();
    (config, state, downloads)
}

#[test]
fn the_api_refuses_foreign_hosts_missing_tokens_and_untrusted_releases() {
    let scene = Scene::new();
    let keys = scene.dir("keys");
    let (_, trusted) = keygen(&keys, "trusted.key");
    let (stranger_key, stranger) = keygen(&keys, "stranger.key");
    let data = scene.dir("data").join("tool.bin");
    write_random_file(&data, 200_000, 1);
    let torrent = publish(
        &data,
        &stranger_key,
        "http://127.0.0.1:9/announce",
        &scene.path("tool.torrent"),
    );
    let (config, state, _) = write_config(&scene, &trusted);
    let agent = Agent::start(&scene, "agent", &config, &state);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("api-token")).unwrap();
        assert_eq!(mode.permissions().mode() & 0o777, 0o600, "token file mode");
    }

    let endpoints = [
        ("GET", "/v1/releases"),
        ("POST", "/v1/releases"),
        ("POST", "/v1/releases/00/pause"),
        ("POST", "/v1/releases/00/resume"),
        ("DELETE", "/v1/releases/00"),
        ("GET", "/v1/settings"),
        ("PUT", "/v1/settings"),
        ("GET", "/v1/unknown"),
    ];
    for (method, path) in endpoints {
        for host in ["attacker.example", "attacker.example:80", "127.0.0.1"] {
            let (status, body) = http(agent.addr, method, path, host, Some(&agent.token), None);
            assert_eq!(status, 403, "{method} {path} with Host {host}: {body}");
            assert!(body.contains("only requests addressed to"), "{body}");
        }
        if method != "GET" {
            for token in [None, Some("0".repeat(64).as_str())] {
                let (status, body) = http(agent.addr, method, path, &agent.host(), token, None);
                assert_eq!(status, 403, "{method} {path} with token {token:?}: {body}");
                assert!(body.contains("X-Shoal-Token"), "{body}");
                assert!(!body.contains(&agent.token));
            }
        }
    }
    for host in [format!("localhost:{}", agent.addr.port()), agent.host()] {
        let (status, body) = http(agent.addr, "GET", "/v1/settings", &host, None, None);
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains(&agent.token), "settings leaked the token");
    }

    // Signed, but by a key the agent does not trust: refused, naming it.
    let add = json!({ "torrent": torrent.to_str().unwrap() });
    let refused = agent.call("POST", "/v1/releases", Some(add), 422);
    let message = field(&refused, "error").as_str().unwrap();
    assert!(message.contains(&stranger), "{message}");
    let list = agent.call("GET", "/v1/releases", None, 200);
    assert_eq!(list, json!({ "releases": [] }));

    let caps = json!({ "max_upload_bps": 12345, "max_download_bps": 678, "seeding": false });
    agent.call("PUT", "/v1/settings", Some(caps), 200);
    let settings = agent.call("GET", "/v1/settings", None, 200);
    assert_eq!(field(&settings, "max_upload_bps"), 12345);
    assert_eq!(field(&settings, "max_download_bps"), 678);
    assert_eq!(field(&settings, "seeding"), false);
}

/// Polls the release until `done` holds, panicking with `what` and the
/// last listing at `deadline`.
fn wait_release(
    agent: &Agent,
    deadline: Instant,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let release = agent.release();
        if done(&release) {
            return release;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {release:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bytes(release: &Value, key: &str) -> u64 {
    field(release, key).as_u64().unwrap()
}

#[test]
fn a_release_downloads_pauses_resumes_and_survives_a_killed_agent() {
    const SIZE: u64 = 8 * MIB;
    let deadline = Instant::now() + Duration::from_secs(120);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let seed_dir = scene.dir("seed");
    let original = seed_dir.join("app.bin");
    write_random_file(&original, SIZE, 7);
    let torrent = publish(
        &original,
        &key,
        &tracker.announce,
        &scene.path("app.torrent"),
    );
    let mut seed = scene.spawn(
        "seed",
        shoal()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&seed_dir)
            .args(["--listen", "127.0.0.1:0", "--json", "--trust", &publisher]),
    );
    let v1 = seed.next_json(deadline, |event| {
        (event["event"] == "started").then(|| event["info_hash_v1"].as_str().unwrap().to_owned())
    });
    tracker.wait_for(&swarm::info_hash_v1(&v1), 1, 0, deadline);

    let (config, state, downloads) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);
    // Slow enough (8 s) to catch it mid-way; the cap applies at once.
    let cap = json!({ "max_download_bps": MIB });
    agent.call("PUT", "/v1/settings", Some(cap), 200);
    let add = json!({ "torrent": torrent.to_str().unwrap() });
    let added = agent.call("POST", "/v1/releases", Some(add), 201);
    let id = field(&added, "info_hash").as_str().unwrap().to_owned();
    assert_eq!(field(&added, "total_bytes"), SIZE);

    let started = wait_release(&agent, deadline, "the first bytes", |r| {
        bytes(r, "verified_bytes") > 0 && r["state"] == "downloading"
    });
    assert!(bytes(&started, "verified_bytes") < SIZE, "{started:#}");
    let paused = agent.call("POST", &format!("/v1/releases/{id}/pause"), None, 200);
    assert_eq!(field(&paused, "state"), "paused");
    let at_pause = bytes(&agent.release(), "verified_bytes");
    std::thread::sleep(Duration::from_millis(1500));
    let still = agent.release();
    assert_eq!(field(&still, "state"), "paused");
    assert_eq!(
        bytes(&still, "verified_bytes"),
        at_pause,
        "bytes arrived while paused"
    );
    assert!(!downloads.join("app.bin").exists(), "complete while paused");

    let resumed = agent.call("POST", &format!("/v1/releases/{id}/resume"), None, 200);
    assert_ne!(field(&resumed, "state"), "paused");
    wait_release(&agent, deadline, "progress after resuming", |r| {
        bytes(r, "verified_bytes") > at_pause
    });

    // A crash: the agent is killed, then started again on the same state.
    drop(agent);
    let agent = Agent::start(&scene, "agent-again", &config, &state);
    let listed = agent.release();
    assert_eq!(field(&listed, "info_hash"), id.as_str());
    assert_ne!(field(&listed, "state"), "paused", "{listed:#}");
    let settings = agent.call("GET", "/v1/settings", None, 200);
    assert_eq!(field(&settings, "max_download_bps"), MIB, "caps are kept");
    agent.call(
        "PUT",
        "/v1/settings",
        Some(json!({ "max_download_bps": 0 })),
        200,
    );
    let done = wait_release(&agent, deadline, "completion", |r| {
        bytes(r, "verified_bytes") == SIZE && r["state"] == "seeding"
    });
    assert!(bytes(&done, "bytes_from_peers") > 0, "{done:#}");
    assert_same_content(&original, &downloads.join("app.bin"));

    // Removing keeps the files unless asked otherwise.
    let (status, _) = http(
        agent.addr,
        "DELETE",
        &format!("/v1/releases/{id}"),
        &agent.host(),
        Some(&agent.token),
        None,
    );
    assert_eq!(status, 204);
    let list = agent.call("GET", "/v1/releases", None, 200);
    assert_eq!(list, json!({ "releases": [] }));
    assert!(downloads.join("app.bin").exists(), "files were deleted");
}
