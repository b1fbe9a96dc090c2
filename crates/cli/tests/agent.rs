//! `shoal agent` as a real process on loopback, driven through its HTTP API:
//!
//! * the guard: a foreign `Host` is refused on every endpoint, a request
//!   without the token is refused (reads included: the list is the
//!   customer's history), no answer contains the token, and only releases
//!   signed by a trusted publisher are accepted;
//! * a release added through the API downloads from a `shoal seed` found
//!   through a local tracker, pauses (and stays still), resumes, survives
//!   the agent being killed, and completes byte-identical.
//!
//! Every wait has a deadline; child processes die with their guards.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::agent::{bytes, http, keygen, publish, start_seed, wait_release, write_config, Agent};
use testkit::content::assert_same_content;
use testkit::tracker::{info_hash_v1, LocalTracker};
use testkit::{field, write_random_file, Scene, MIB};

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
        // Reads too: the release list is the customer's download history.
        {
            for token in [None, Some("0".repeat(64).as_str())] {
                let (status, body) = http(agent.addr, method, path, &agent.host(), token, None);
                assert_eq!(status, 403, "{method} {path} with token {token:?}: {body}");
                assert!(body.contains("X-Shoal-Token"), "{body}");
                assert!(!body.contains(&agent.token));
            }
        }
    }
    for host in [format!("localhost:{}", agent.addr.port()), agent.host()] {
        let (status, body) = http(
            agent.addr,
            "GET",
            "/v1/settings",
            &host,
            Some(&agent.token),
            None,
        );
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains(&agent.token), "settings leaked the token");
    }
    // The web UI's page and script need no token (and hold no data).
    for path in ["/", "/shoal.js"] {
        let (status, body) = http(agent.addr, "GET", path, &agent.host(), None, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        assert!(!body.contains(&agent.token));
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
    let (_seed, started) = start_seed(&scene, "seed", &torrent, &seed_dir, &publisher, deadline);
    let v1 = started["info_hash_v1"].as_str().unwrap();
    tracker.wait_for(&info_hash_v1(v1), 1, 0, deadline);

    let (config, state, downloads) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);
    // Slow enough (8 s) to catch it mid-way; the cap applies at once.
    let cap = json!({ "max_download_bps": MIB });
    agent.call("PUT", "/v1/settings", Some(cap), 200);
    let add = json!({ "torrent": torrent.to_str().unwrap() });
    let added = agent.call("POST", "/v1/releases", Some(add), 201);
    let id = field(&added, "info_hash").as_str().unwrap().to_owned();
    assert_eq!(field(&added, "total_bytes"), SIZE);
    // The customer's own: pinned from the start, never the quota's to take.
    assert_eq!(field(&added, "pinned"), true, "{added:#}");
    assert_eq!(field(&added, "handed_off"), false, "{added:#}");

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
