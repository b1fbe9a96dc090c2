//! Self-update through the swarm, with real processes on loopback: an
//! agent at version 1.0.0 reads a feed (served by a small web server)
//! offering 1.0.1, downloads it from three seeds, tries it, swaps its
//! binary and execs into it (same PID); and builds that are not the
//! project's, or that do not run, leave 1.0.0 in place, byte for byte.
//!
//! The two builds are one compiled `shoal`, copied and stamped with two
//! versions (`shoal stamp`), as the project's release step does. The
//! copies are stripped of debug information to keep the swarm's work
//! small. Unix only: the swap ends in `exec`, whose same PID the test
//! checks; the Windows path (spawn and exit) is compiled by the Windows
//! build.

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::agent::{keygen, publish_with, start_seed, Agent};
use testkit::bins::cargo_bin;
use testkit::publisher_site::PublisherSite;
use testkit::tracker::{info_hash_v1, LocalTracker};
use testkit::{run, shoal, Proc, Scene};

/// A copy of the built `shoal` at `dir/shoal`, stripped and stamped
/// `version`.
fn build(dir: &Path, version: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("shoal");
    std::fs::copy(cargo_bin("shoal"), &path).unwrap();
    run(Command::new("strip").arg(&path));
    run(shoal().arg("stamp").arg(&path).args(["--version", version]));
    let out = run(Command::new(&path).arg("--version"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("shoal {version}")
    );
    path
}

/// A loopback port nobody listens on now: the agent's API keeps it
/// across its restart.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the agent binary `exe` with updates from `feed_url` checked
/// every second, builds signed by `project_key`.
fn start_agent(scene: &Scene, exe: &Path, feed_url: &str, project_key: &str) -> Agent {
    start_agent_with(scene, exe, feed_url, project_key, "")
}

/// [`start_agent`] with more lines in the config's `[update]` table.
fn start_agent_with(
    scene: &Scene,
    exe: &Path,
    feed_url: &str,
    project_key: &str,
    update: &str,
) -> Agent {
    let (state, downloads) = (scene.path("state"), scene.path("downloads"));
    let config = scene.path("agent.toml");
    let text = format!(
        "api = \"127.0.0.1:{}\"\nlisten = \"127.0.0.1:0\"\nstate_dir = '{}'\n\
         download_dir = '{}'\n[update]\nfeed_url = \"{feed_url}\"\n\
         check_interval_secs = 1\nproject_key = \"{project_key}\"\n{update}\n",
        free_port(),
        state.display(),
        downloads.display()
    );
    std::fs::write(&config, text).unwrap();
    let mut cmd = Command::new(exe);
    cmd.arg("agent").arg("--config").arg(&config);
    let mut proc = scene.spawn("agent", &mut cmd);
    let addr = wait_ready(&mut proc, Instant::now() + Duration::from_secs(30));
    let token = std::fs::read_to_string(state.join("api-token")).unwrap();
    Agent { proc, addr, token }
}

fn wait_ready(proc: &mut Proc, deadline: Instant) -> SocketAddr {
    proc.next_line(deadline, |line| {
        line.strip_prefix("agent listening on http://")
            .map(|a| a.parse().unwrap())
    })
}

/// `GET path` with the token; `None` while nothing answers (the agent
/// is restarting).
fn try_get(agent: &Agent, path: &str) -> Option<Value> {
    let mut stream = TcpStream::connect(agent.addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nX-Shoal-Token: {}\r\nConnection: close\r\n\r\n",
        agent.host(),
        agent.token
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| serde_json::from_str(body).ok())?
}

/// Polls `GET /v1/update` until `done` holds; panics with the last
/// status at `deadline`.
fn wait_update(
    agent: &Agent,
    deadline: Instant,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Some(status) = try_get(agent, "/v1/update") {
            if done(&status) {
                return status;
            }
            last = status;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}: {last:#}");
}

/// The feed and torrent of `feed_dir` (what `shoal publish-update`
/// wrote), served over HTTP; returns the feed's URL.
fn serve_feed(site: &PublisherSite, feed_dir: &Path) -> String {
    for entry in std::fs::read_dir(feed_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "feed.json" || name.ends_with(".torrent") {
            site.put(&format!("/{name}"), std::fs::read(&path).unwrap());
        }
    }
    format!("{}/feed.json", site.origin())
}

/// The most a `shoal seed --json` says it uploaded, from its log.
fn most_uploaded(log: &Path) -> u64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|event| event["uploaded"].as_u64())
        .max()
        .unwrap_or(0)
}

fn target_of(agent: &Agent) -> String {
    let status = try_get(agent, "/v1/update").unwrap();
    status["target"].as_str().unwrap().to_owned()
}

#[test]
fn an_agent_updates_itself_from_the_swarm_and_execs_into_the_new_build() {
    let deadline = Instant::now() + Duration::from_secs(240);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (key, project) = keygen(&scene.dir("keys"), "project.key");
    let new_build = build(&scene.path("build-new"), "1.0.1");
    let feed_dir = scene.dir("feed");
    run(shoal()
        .arg("publish-update")
        .arg(&new_build)
        .arg("--key")
        .arg(&key)
        .arg("--out-dir")
        .arg(&feed_dir)
        .args(["--tracker", &tracker.announce]));
    let name = std::fs::read_dir(&feed_dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.ends_with(".torrent"))
        .unwrap();
    let torrent = feed_dir.join(&name);
    // Three seeds of the new build; no web seed: every byte comes from peers.
    let mut seeds = Vec::new();
    for i in 0..3 {
        let name = format!("seed{i}");
        seeds.push(start_seed(
            &scene, &name, &torrent, &feed_dir, &project, deadline,
        ));
    }
    let v1 = seeds[0].1["info_hash_v1"].as_str().unwrap().to_owned();
    tracker.wait_for(&info_hash_v1(&v1), 3, 0, deadline);
    let site = PublisherSite::start();
    let feed_url = serve_feed(&site, &feed_dir);

    let installed = build(&scene.path("install"), "1.0.0");
    let mut agent = start_agent(&scene, &installed, &feed_url, &project);
    let pid = agent.proc.id();
    // The new build's own ready line, printed by the same process.
    wait_ready(&mut agent.proc, deadline);
    let status = wait_update(&agent, deadline, "the agent to run 1.0.1", |s| {
        s["current_version"] == "1.0.1" && !s["last_update"].is_null()
    });
    assert_eq!(status["last_update"], "1.0.0 to 1.0.1", "{status:#}");
    assert!(status["last_error"].is_null(), "{status:#}");
    assert_eq!(agent.proc.id(), pid);
    assert!(
        agent.proc.exited().is_none(),
        "the agent exited instead of exec'ing"
    );

    // The binary on disk is the published build; the old one is kept beside.
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(feed_dir.join(name.trim_end_matches(".torrent"))).unwrap()
    );
    let out = run(Command::new(&installed).arg("--version"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "shoal 1.0.1");
    let previous = installed.with_file_name("shoal.previous");
    let out = run(Command::new(&previous).arg("--version"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "shoal 1.0.0");
    assert!(!installed.with_file_name("shoal.update").exists());
    assert!(!scene.path("state").join("update/pending.json").exists());

    // The new agent holds the build and shares it on (its counters
    // start again with the new process)...
    let release = agent.release();
    let total = release["total_bytes"].as_u64().unwrap();
    assert!(total > 1_000_000, "{release:#}");
    assert_eq!(
        release["verified_bytes"].as_u64(),
        Some(total),
        "{release:#}"
    );
    assert_eq!(release["state"], "seeding", "{release:#}");
    // ...which came from the peers: the seeds, by their own counts (they
    // report every second), sent it all, and more than one of them did.
    let uploads = loop {
        let uploads: Vec<u64> = (0..3)
            .map(|i| most_uploaded(&scene.log_path(&format!("seed{i}.stdout"))))
            .collect();
        if uploads.iter().sum::<u64>() >= total || Instant::now() > deadline {
            break uploads;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        uploads.iter().sum::<u64>() >= total,
        "{uploads:?} of {total}"
    );
    assert!(
        uploads.iter().filter(|&&u| u > 0).count() >= 2,
        "{uploads:?}"
    );
    agent.proc.terminate(Duration::from_secs(30));
}

#[test]
fn builds_not_signed_by_the_project_or_that_do_not_run_leave_the_old_one_running() {
    let deadline = Instant::now() + Duration::from_secs(240);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (project_key, project) = keygen(&scene.dir("keys"), "project.key");
    let (stranger_key, _) = keygen(&scene.dir("keys"), "stranger.key");
    let installed = build(&scene.path("install"), "1.0.0");
    let original = std::fs::read(&installed).unwrap();
    let site = PublisherSite::start();

    // A genuine 1.0.1 build, signed by someone else.
    let new_build = build(&scene.path("build-new"), "1.0.1");
    let stranger_feed = scene.dir("stranger-feed");
    run(shoal()
        .arg("publish-update")
        .arg(&new_build)
        .arg("--key")
        .arg(&stranger_key)
        .arg("--out-dir")
        .arg(&stranger_feed)
        .args(["--tracker", &tracker.announce]));
    let feed_url = serve_feed(&site, &stranger_feed);
    let mut agent = start_agent(&scene, &installed, &feed_url, &project);
    let status = wait_update(
        &agent,
        deadline,
        "the stranger's build to be refused",
        |s| !s["last_error"].is_null(),
    );
    assert_eq!(status["last_error"]["fault"], "feed", "{status:#}");
    let message = status["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("not by the project key"), "{message}");
    assert_eq!(status["current_version"], "1.0.0");
    assert_eq!(std::fs::read(&installed).unwrap(), original);
    let list = agent.call("GET", "/v1/releases", None, 200);
    assert_eq!(list["releases"].as_array().unwrap().len(), 0, "{list:#}");
    let target = target_of(&agent);
    agent.proc.terminate(Duration::from_secs(30));

    // A "build" signed by the project key that exits at once.
    let broken_dir = scene.dir("broken");
    let broken = broken_dir.join(format!("shoal-1.0.1-{target}"));
    std::fs::write(&broken, "#!/bin/sh\necho 'broken build' >&2\nexit 3\n").unwrap();
    let broken_torrent = scene.path("broken/feed/broken.torrent");
    std::fs::create_dir_all(broken_torrent.parent().unwrap()).unwrap();
    publish_with(
        &broken,
        &project_key,
        &tracker.announce,
        &broken_torrent,
        &["--version", "1.0.1"],
    );
    let feed = format!(
        r#"{{"shoal_update_feed":1,"builds":[{{"target":"{target}","torrent":"broken.torrent"}}]}}"#
    );
    std::fs::write(broken_torrent.with_file_name("feed.json"), feed).unwrap();
    let (_seed, started) = start_seed(
        &scene,
        "seed",
        &broken_torrent,
        &broken_dir,
        &project,
        deadline,
    );
    let v1 = started["info_hash_v1"].as_str().unwrap().to_owned();
    tracker.wait_for(&info_hash_v1(&v1), 1, 0, deadline);
    let site = PublisherSite::start();
    let feed_url = serve_feed(&site, broken_torrent.parent().unwrap());
    let mut agent = start_agent(&scene, &installed, &feed_url, &project);
    let pid = agent.proc.id();
    let status = wait_update(
        &agent,
        deadline,
        "the broken build to fail its trial",
        |s| s["last_error"]["fault"] == "build",
    );
    let message = status["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("trial") && message.contains("broken build"),
        "{message}"
    );
    assert_eq!(status["offered_version"], "1.0.1", "{status:#}");
    // Not tried again: later checks leave the error as it was.
    let first = status["last_error"]["at_unix"].clone();
    let checked = status["last_check_unix"].as_u64().unwrap();
    let later = wait_update(&agent, deadline, "more checks", |s| {
        s["last_check_unix"].as_u64().unwrap() >= checked + 2
    });
    assert_eq!(later["last_error"]["at_unix"], first, "{later:#}");
    assert_eq!(later["current_version"], "1.0.0");
    assert_eq!(agent.proc.id(), pid);
    assert!(agent.proc.exited().is_none());
    assert_eq!(std::fs::read(&installed).unwrap(), original);
    assert!(!installed.with_file_name("shoal.update").exists());
    assert!(!installed.with_file_name("shoal.previous").exists());
    agent.proc.terminate(Duration::from_secs(30));
}

#[test]
fn with_updates_off_or_deferred_nothing_is_fetched() {
    let scene = Scene::new();
    let (_, project) = keygen(&scene.dir("keys"), "project.key");
    let installed = build(&scene.path("install"), "1.0.0");
    let site = PublisherSite::start();
    site.put(
        "/feed.json",
        br#"{"shoal_update_feed":1,"builds":[]}"#.to_vec(),
    );
    let feed_url = format!("{}/feed.json", site.origin());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cases = [
        ("enabled = false".to_owned(), "off"),
        (format!("defer_until_unix = {}", now + 3600), "deferred"),
    ];
    for (line, state) in cases {
        let mut agent = start_agent_with(&scene, &installed, &feed_url, &project, &line);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = wait_update(&agent, deadline, state, |s| s["state"] == state);
        assert!(status["last_check_unix"].is_null(), "{status:#}");
        let settings = agent.call("GET", "/v1/settings", None, 200);
        assert_eq!(
            settings["update"]["feed_url"],
            feed_url.as_str(),
            "{settings:#}"
        );
        // Three check intervals go by.
        std::thread::sleep(Duration::from_secs(3));
        assert!(site.requests().is_empty(), "{state}: {:?}", site.requests());
        agent.proc.terminate(Duration::from_secs(30));
    }
    // And with updates on, the same feed is read.
    let mut agent = start_agent(&scene, &installed, &feed_url, &project);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = wait_update(&agent, deadline, "a check", |s| {
        !s["last_check_unix"].is_null() && s["state"] == "idle"
    });
    assert!(status["last_error"].is_null(), "{status:#}");
    assert!(!site.requests_for("/feed.json").is_empty());
    agent.proc.terminate(Duration::from_secs(30));
}

/// A build that passes its trial but dies on its first real start,
/// before any of its code runs (here a script that runs the genuine new
/// build only for the trial): the guard the old build left puts the old
/// build back after the health limit, and the service manager's next
/// start (the test's, here) runs it and reports the failure.
#[test]
fn a_build_that_dies_after_the_swap_is_rolled_back_by_the_guard() {
    let deadline = Instant::now() + Duration::from_secs(240);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (key, project) = keygen(&scene.dir("keys"), "project.key");
    let genuine = build(&scene.path("build-new"), "1.0.1");
    let installed = build(&scene.path("install"), "1.0.0");
    let original = std::fs::read(&installed).unwrap();
    let probe = start_agent_with(&scene, &installed, "", &project, "enabled = false");
    let target = target_of(&probe);
    drop(probe);

    let dir = scene.dir("fragile");
    let fragile = dir.join(format!("shoal-1.0.1-{target}"));
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in\n  *update/trial*) exec '{}' \"$@\" ;;\nesac\n\
         echo 'this build dies on this machine' >&2\nexit 1\n",
        genuine.display()
    );
    std::fs::write(&fragile, script).unwrap();
    let torrent = scene.path("fragile-feed/fragile.torrent");
    std::fs::create_dir_all(torrent.parent().unwrap()).unwrap();
    publish_with(
        &fragile,
        &key,
        &tracker.announce,
        &torrent,
        &["--version", "1.0.1"],
    );
    let feed = format!(
        r#"{{"shoal_update_feed":1,"builds":[{{"target":"{target}","torrent":"fragile.torrent"}}]}}"#
    );
    std::fs::write(torrent.with_file_name("feed.json"), feed).unwrap();
    let (_seed, started) = start_seed(&scene, "seed", &torrent, &dir, &project, deadline);
    let v1 = started["info_hash_v1"].as_str().unwrap().to_owned();
    tracker.wait_for(&info_hash_v1(&v1), 1, 0, deadline);
    let site = PublisherSite::start();
    let feed_url = serve_feed(&site, torrent.parent().unwrap());

    let mut agent = start_agent(&scene, &installed, &feed_url, &project);
    // It swaps the build in and execs it, which dies at once.
    let status = agent
        .proc
        .wait_exit(Instant::now() + Duration::from_secs(90));
    assert!(!status.success(), "{status}");
    assert_ne!(std::fs::read(&installed).unwrap(), original);
    // The guard puts the old build back once the health limit is past.
    while std::fs::read(&installed).unwrap() != original {
        assert!(Instant::now() < deadline, "the old build was not put back");
        std::thread::sleep(Duration::from_millis(500));
    }
    let agent = start_agent(&scene, &installed, &feed_url, &project);
    let status = wait_update(&agent, deadline, "the rollback to be reported", |s| {
        !s["last_error"].is_null()
    });
    assert_eq!(status["current_version"], "1.0.0", "{status:#}");
    assert_eq!(status["last_error"]["fault"], "build", "{status:#}");
    let message = status["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("rolled back"), "{message}");
    // The failed build is not tried again.
    let checked = status["last_check_unix"].as_u64().unwrap_or(0);
    let later = wait_update(&agent, deadline, "more checks", |s| {
        s["last_check_unix"].as_u64().unwrap_or(0) >= checked + 2
    });
    assert_eq!(later["last_error"], status["last_error"], "{later:#}");
    assert_eq!(std::fs::read(&installed).unwrap(), original);
    assert!(!scene.path("state").join("update/pending.json").exists());
}

/// Each failure is reported with who is at fault, and nothing is
/// installed: an oversized feed and an unusable torrent are the feed's
/// fault, an unreachable torrent is the environment's. The project key
/// cannot be set through the API.
#[test]
fn hostile_or_broken_feeds_are_reported_by_who_is_at_fault() {
    let deadline = Instant::now() + Duration::from_secs(120);
    let scene = Scene::new();
    let (_, project) = keygen(&scene.dir("keys"), "project.key");
    let installed = build(&scene.path("install"), "1.0.0");
    let original = std::fs::read(&installed).unwrap();
    let site = PublisherSite::start();
    let feed_url = format!("{}/feed.json", site.origin());
    site.put("/feed.json", vec![b' '; 70 * 1024]);
    let agent = start_agent(&scene, &installed, &feed_url, &project);
    let target = target_of(&agent);
    let feed_naming = |torrent: &str| {
        format!(
            r#"{{"shoal_update_feed":1,"builds":[{{"target":"{target}","torrent":"{torrent}"}}]}}"#
        )
        .into_bytes()
    };
    let closed = format!("http://127.0.0.1:{}/gone.torrent", free_port());
    site.put("/junk.torrent", b"d4:junki1ee".to_vec());
    let cases = [
        (None, "feed", "larger than 65536"),
        (
            Some(feed_naming("junk.torrent")),
            "feed",
            "not a usable torrent",
        ),
        (Some(feed_naming(&closed)), "environment", "gone.torrent"),
    ];
    for (feed, fault, text) in cases {
        if let Some(feed) = feed {
            site.put("/feed.json", feed);
        }
        let status = wait_update(&agent, deadline, text, |s| {
            s["last_error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(text))
        });
        assert_eq!(status["last_error"]["fault"], fault, "{status:#}");
        assert_eq!(status["current_version"], "1.0.0");
    }
    let (code, body) = testkit::agent::http(
        agent.addr,
        "PUT",
        "/v1/settings",
        &agent.host(),
        Some(&agent.token),
        Some(serde_json::json!({ "project_key": "ab".repeat(32) })),
    );
    assert!((400..500).contains(&code), "{code} {body}");
    let status = try_get(&agent, "/v1/update").unwrap();
    assert_eq!(status["project_key"], project.as_str());
    assert_eq!(std::fs::read(&installed).unwrap(), original);
}
