//! The agent's browser hand-off at the HTTP level, as a page's requests
//! reach it (the browser itself is driven in `browser_handoff.rs`):
//!
//! * only a page on an origin the signed manifest lists, asking for a
//!   torrent on its own origin, gets a stream URL; every refusal carries
//!   no CORS header, so the page cannot read it;
//! * preflights (CORS and Private Network Access) fetch nothing and are
//!   answered yes only for a page asking about a torrent on its own origin;
//! * a hand-off adds nothing until its stream is opened as a download;
//! * the stream URL is 128 random bits bound to its release, serves the
//!   file byte-identical with its length and name, and honours ranges;
//! * another origin's page cannot change the agent's state, token or not;
//! * each file of a release of several files is handed off by its path
//!   inside the release (`data-shoal-file`), streams byte-identical with
//!   ranges within the file, live and from disk; a name that is not
//!   exactly one of the signed release's files (`../`, absolute, encoded,
//!   over-long, a pad file) is refused before anything is read.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::agent::{keygen, publish_with, start_seed, wait_release, write_config, Agent};
use testkit::content::assert_same_content;
use testkit::http::{encode, exchange, Answer};
use testkit::publisher_site::PublisherSite;
use testkit::tracker::LocalTracker;
use testkit::{field, write_random_file, write_tree, Scene};

const SIZE: u64 = 3 * 1024 * 1024 + 12_345;

/// A page's hand-off request: `POST` from `origin` (or no page at all).
fn handoff(agent: &Agent, method: &str, origin: Option<&str>, torrent: &str) -> Answer {
    let mut headers = Vec::new();
    if let Some(origin) = origin {
        headers.push(("Origin", origin.to_owned()));
    }
    if method == "OPTIONS" {
        headers.push(("Access-Control-Request-Method", "POST".to_owned()));
        headers.push(("Access-Control-Request-Private-Network", "true".to_owned()));
    }
    let path = format!("/v1/handoff?torrent={}", encode(torrent));
    let answer = exchange(agent.addr, method, &path, &agent.host(), &headers, b"");
    assert!(!answer.text().contains(&agent.token), "the token leaked");
    answer
}

fn assert_refused_unreadable(answer: &Answer, status: u16, mentions: &str) {
    assert_eq!(answer.status, status, "{}", answer.text());
    assert!(answer.text().contains(mentions), "{}", answer.text());
    assert_eq!(
        answer.header("access-control-allow-origin"),
        None,
        "a refusal must not be readable by the page"
    );
}

fn release_count(agent: &Agent) -> usize {
    let list = agent.call("GET", "/v1/releases", None, 200);
    field(&list, "releases").as_array().unwrap().len()
}

#[test]
fn a_page_gets_a_stream_only_for_its_own_signed_origin() {
    let deadline = Instant::now() + Duration::from_secs(120);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let keys = scene.dir("keys");
    let (key, publisher) = keygen(&keys, "publisher.key");
    let (stranger_key, _) = keygen(&keys, "stranger.key");
    let seed_dir = scene.dir("seed");
    let original = seed_dir.join("MyApp-2.0.bin");
    write_random_file(&original, SIZE, 11);

    // The site listens first: the manifest names its origin.
    let site = PublisherSite::start();
    let origin = site.origin();
    let torrent = publish_with(
        &original,
        &key,
        &tracker.announce,
        &scene.path("app.torrent"),
        &["--origin", &origin],
    );
    let stranger_torrent = publish_with(
        &original,
        &stranger_key,
        &tracker.announce,
        &scene.path("stranger.torrent"),
        &["--origin", &origin],
    );
    let torrent_bytes = std::fs::read(&torrent).unwrap();
    site.put("/app.torrent", torrent_bytes.clone());
    site.put(
        "/stranger.torrent",
        std::fs::read(&stranger_torrent).unwrap(),
    );
    // Another site serving the very same torrent: not in the manifest.
    let elsewhere = PublisherSite::start();
    elsewhere.put("/app.torrent", torrent_bytes);

    let (_seed, _) = start_seed(&scene, "seed", &torrent, &seed_dir, &publisher, deadline);

    let (config, state, _) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);
    let torrent_url = format!("{origin}/app.torrent");

    // Refusals, none readable by the page, none adding a release.
    assert_refused_unreadable(
        &handoff(&agent, "POST", None, &torrent_url),
        403,
        "Origin header",
    );
    assert_refused_unreadable(
        &handoff(&agent, "POST", Some(&elsewhere.origin()), &torrent_url),
        403,
        "its own origin",
    );
    let elsewhere_url = format!("{}/app.torrent", elsewhere.origin());
    assert_refused_unreadable(
        &handoff(&agent, "POST", Some(&elsewhere.origin()), &elsewhere_url),
        403,
        "not among the origins",
    );
    assert_refused_unreadable(
        &handoff(&agent, "OPTIONS", Some(&elsewhere.origin()), &torrent_url),
        403,
        "its own origin",
    );
    assert_refused_unreadable(
        &handoff(
            &agent,
            "POST",
            Some(&origin),
            &format!("{origin}/stranger.torrent"),
        ),
        422,
        "not trusted",
    );
    assert_refused_unreadable(
        &handoff(
            &agent,
            "POST",
            Some(&origin),
            &format!("{origin}/missing.torrent"),
        ),
        400,
        "404",
    );
    assert_eq!(
        release_count(&agent),
        0,
        "a refused hand-off added a release"
    );

    // The preflight says yes to a page asking about its own origin's
    // torrent, and fetches nothing to say so.
    let fetched_before = site.requests().len();
    let preflight = handoff(&agent, "OPTIONS", Some(&origin), &torrent_url);
    assert_eq!(preflight.status, 204, "{}", preflight.text());
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(origin.as_str())
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("POST")
    );
    assert_eq!(
        preflight.header("access-control-allow-private-network"),
        Some("true")
    );
    assert_eq!(release_count(&agent), 0, "a preflight added a release");
    assert_eq!(
        site.requests().len(),
        fetched_before,
        "a preflight made the agent fetch something: {:?}",
        site.requests()
    );

    let accepted = handoff(&agent, "POST", Some(&origin), &torrent_url);
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    assert_eq!(
        accepted.header("access-control-allow-origin"),
        Some(origin.as_str())
    );
    let answer: Value = serde_json::from_slice(&accepted.body).unwrap();
    assert_eq!(field(&answer, "size"), SIZE);
    let stream_url = field(&answer, "stream_url").as_str().unwrap().to_owned();
    let prefix = format!("http://{}/v1/stream/", agent.host());
    let secret = stream_url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{stream_url}"));
    assert_eq!(secret.len(), 32, "128 bits in hex: {secret}");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    // Offered, not added: nothing moves until the stream is opened.
    assert_eq!(release_count(&agent), 0, "a hand-off alone added a release");
    // Asking again offers the same release, under a new secret.
    let again: Value =
        serde_json::from_slice(&handoff(&agent, "POST", Some(&origin), &torrent_url).body).unwrap();
    assert_ne!(field(&again, "stream_url"), stream_url.as_str());
    assert_eq!(release_count(&agent), 0);

    // The stream: whole, ranged, and only through loopback names.
    let path = format!("/v1/stream/{secret}");
    let expected = std::fs::read(&original).unwrap();
    let whole = exchange(agent.addr, "GET", &path, &agent.host(), &[], b"");
    assert_eq!(whole.status, 200);
    assert_eq!(
        release_count(&agent),
        1,
        "opening the stream adds the release"
    );
    let added = agent.release();
    assert_eq!(field(&added, "handed_off"), true, "{added:#}");
    assert_eq!(field(&added, "pinned"), false, "{added:#}");
    assert_eq!(
        whole.header("content-length"),
        Some(SIZE.to_string().as_str())
    );
    let disposition = whole.header("content-disposition").unwrap_or_default();
    assert!(
        disposition.starts_with("attachment; filename=\"MyApp-2.0.bin\""),
        "{disposition}"
    );
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert!(
        whole.body == expected,
        "the streamed file differs from the release"
    );
    let range = [("Range", "bytes=1000000-1999999".to_owned())];
    let part = exchange(agent.addr, "GET", &path, &agent.host(), &range, b"");
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 1000000-1999999/{SIZE}").as_str())
    );
    assert!(part.body == expected[1_000_000..2_000_000]);
    let beyond = [("Range", format!("bytes={SIZE}-"))];
    let past = exchange(agent.addr, "GET", &path, &agent.host(), &beyond, b"");
    assert_eq!(past.status, 416);
    let foreign = exchange(agent.addr, "GET", &path, "attacker.example", &[], b"");
    assert_eq!(foreign.status, 403);
    // The second offer of the same release streams it as it is.
    let second = field(&again, "stream_url").as_str().unwrap();
    let second_path = second
        .strip_prefix(&format!("http://{}", agent.host()))
        .unwrap();
    let range = [("Range", "bytes=0-9".to_owned())];
    let head = exchange(agent.addr, "GET", second_path, &agent.host(), &range, b"");
    assert_eq!(head.status, 206, "{}", head.text());
    assert!(head.body == expected[..10]);
    assert_eq!(release_count(&agent), 1);
    let guessed = format!("/v1/stream/{}", "0".repeat(32));
    assert_eq!(
        exchange(agent.addr, "GET", &guessed, &agent.host(), &[], b"").status,
        404
    );

    // Another origin's page cannot change state, even holding the token.
    for token in [None, Some(agent.token.clone())] {
        let mut headers = vec![
            ("Origin", origin.clone()),
            ("Content-Type", "application/json".to_owned()),
        ];
        if let Some(token) = token {
            headers.push(("X-Shoal-Token", token));
        }
        let body = json!({ "seeding": false }).to_string();
        let put = exchange(
            agent.addr,
            "PUT",
            "/v1/settings",
            &agent.host(),
            &headers,
            body.as_bytes(),
        );
        assert_eq!(put.status, 403, "{}", put.text());
    }
    let settings = agent.call("GET", "/v1/settings", None, 200);
    assert_eq!(field(&settings, "seeding"), true);
    assert!(!site.requests_for("/app.torrent").is_empty());
}

/// A release of several files, as the tests below publish it: paths
/// inside the release folder and lengths. With 64 KiB pieces, none ends
/// on a piece boundary, so each is followed by a BEP 47 pad file.
const SUITE: &str = "MySuite-3.1";
const SUITE_FILES: &[(&str, u64)] = &[
    ("README.txt", 1234),
    ("bin/app.bin", 1024 * 1024 + 777),
    ("docs/manual.pdf", 300 * 1024 + 5),
];

/// The hand-off's JSON answer, asserting it was accepted for `origin`.
fn accepted(answer: &Answer, origin: &str) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("access-control-allow-origin"), Some(origin));
    serde_json::from_slice(&answer.body).unwrap()
}

/// The path of the stream URL in a hand-off's answer.
fn stream_path(agent: &Agent, answer: &Value) -> String {
    let url = field(answer, "stream_url").as_str().unwrap();
    url.strip_prefix(&format!("http://{}", agent.host()))
        .unwrap_or_else(|| panic!("{url}"))
        .to_owned()
}

/// `POST /v1/handoff` from `origin` with a raw query (the page's request
/// as a hostile page might write it, not as shoal.js would).
fn handoff_query(agent: &Agent, origin: &str, query: &str) -> Answer {
    let headers = [("Origin", origin.to_owned())];
    let path = format!("/v1/handoff?{query}");
    exchange(agent.addr, "POST", &path, &agent.host(), &headers, b"")
}

#[test]
fn each_file_of_a_multi_file_release_streams_and_hostile_names_read_nothing() {
    let deadline = Instant::now() + Duration::from_secs(180);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let seed_dir = scene.dir("seed");
    let root = seed_dir.join(SUITE);
    write_tree(&root, SUITE_FILES, 21);
    let site = PublisherSite::start();
    let origin = site.origin();
    let torrent = publish_with(
        &root,
        &key,
        &tracker.announce,
        &scene.path("suite.torrent"),
        &["--origin", &origin],
    );
    site.put("/suite.torrent", std::fs::read(&torrent).unwrap());
    let (_seed, _) = start_seed(&scene, "seed", &torrent, &seed_dir, &publisher, deadline);
    let (config, state, downloads) = write_config(&scene, &publisher);
    // Many hand-offs from one page in a minute: the test's, not a page's.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("handoffs_per_origin_per_minute = 1000\n");
    std::fs::write(&config, text).unwrap();
    let agent = Agent::start(&scene, "agent", &config, &state);
    let torrent_url = format!("{origin}/suite.torrent");
    let query = |file: &str| format!("torrent={}&file={}", encode(&torrent_url), encode(file));

    // The release holds a pad file after each data file (BEP 47); a page
    // may not ask for one.
    let parsed = meta::Torrent::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    let pads: Vec<String> = parsed
        .files
        .iter()
        .filter(|f| f.pad)
        .map(|f| f.path.to_string())
        .collect();
    assert_eq!(pads.len(), SUITE_FILES.len(), "{:?}", parsed.files);

    // Hostile or mistaken file names: each refused, unreadable by the
    // page, and nothing added. Every value is sent as shoal.js sends a
    // data-shoal-file (percent-encoded once), so a "%2e%2e" in the page
    // stays those six characters here.
    let over_long = "a/".repeat(2049);
    let mut hostile: Vec<&str> = vec![
        "../README.txt",
        "../../../../etc/passwd",
        "bin/../README.txt",
        "./README.txt",
        "/README.txt",
        "/etc/passwd",
        "C:\\Windows\\win.ini",
        "bin\\app.bin",
        "MySuite-3.1/README.txt",
        "bin//app.bin",
        "bin/app.bin/",
        "bin",
        "BIN/APP.BIN",
        "bin%2Fapp.bin",
        "%2e%2e/README.txt",
        "..%2FREADME.txt",
        "README.txt\0",
        "missing.bin",
        &over_long,
    ];
    hostile.extend(pads.iter().map(String::as_str));
    for file in &hostile {
        let answer = handoff_query(&agent, &origin, &query(file));
        let shown: String = file.chars().take(40).collect();
        assert_refused_unreadable(&answer, 400, "data-shoal-file");
        assert!(
            answer.body.len() < 1024,
            "{shown:?}: the refusal is {} bytes long",
            answer.body.len()
        );
    }
    // Encoded in the query itself (a page writing its own request): the
    // agent decodes the query once, so these are `../README.txt` and a
    // literal `%2F`, matching nothing.
    for raw in [
        "..%2FREADME.txt",
        "bin%252Fapp.bin",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    ] {
        let query = format!("torrent={}&file={raw}", encode(&torrent_url));
        assert_refused_unreadable(
            &handoff_query(&agent, &origin, &query),
            400,
            "data-shoal-file",
        );
    }
    // Two names, or none at all for a release of several files.
    let twice = format!("{}&file={}", query("README.txt"), encode("bin/app.bin"));
    let answer = handoff_query(&agent, &origin, &twice);
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.header("access-control-allow-origin"), None);
    let none = format!("torrent={}", encode(&torrent_url));
    assert_refused_unreadable(
        &handoff_query(&agent, &origin, &none),
        400,
        "holds 3 files; the link must name the one to download with data-shoal-file",
    );
    // An over-long name is refused before the torrent is fetched.
    let fetched = site.requests_for("/suite.torrent").len();
    let answer = handoff_query(&agent, &origin, &query(&"x".repeat(5000)));
    assert_refused_unreadable(&answer, 400, "4096 bytes");
    assert_eq!(site.requests_for("/suite.torrent").len(), fetched);
    assert_eq!(
        release_count(&agent),
        0,
        "a refused hand-off added a release"
    );

    // Each file, by its path: the answer names it, the stream is it.
    let mut paths = Vec::new();
    for (file, len) in SUITE_FILES {
        let answer = accepted(&handoff_query(&agent, &origin, &query(file)), &origin);
        let base = file.rsplit('/').next().unwrap();
        assert_eq!(field(&answer, "name"), base, "{answer:#}");
        assert_eq!(field(&answer, "size"), *len, "{answer:#}");
        assert_eq!(field(&answer, "file"), *file, "{answer:#}");
        assert_eq!(field(&answer, "release"), SUITE, "{answer:#}");
        paths.push(stream_path(&agent, &answer));
    }
    assert_eq!(release_count(&agent), 0, "a hand-off alone added a release");
    for ((file, len), path) in SUITE_FILES.iter().zip(&paths) {
        let expected = std::fs::read(root.join(file)).unwrap();
        let whole = exchange(agent.addr, "GET", path, &agent.host(), &[], b"");
        assert_eq!(whole.status, 200, "{file}: {}", whole.text());
        assert_eq!(
            whole.header("content-length"),
            Some(len.to_string().as_str())
        );
        let base = file.rsplit('/').next().unwrap();
        let disposition = whole.header("content-disposition").unwrap_or_default();
        assert!(
            disposition.starts_with(&format!("attachment; filename=\"{base}\"")),
            "{file}: {disposition}"
        );
        assert!(
            whole.body == expected,
            "{file}: the stream differs from the file"
        );
    }
    assert_eq!(
        release_count(&agent),
        1,
        "one release, whichever file opened it"
    );

    // Ranges are within the file, not the release.
    let (app, app_len) = (root.join("bin/app.bin"), SUITE_FILES[1].1);
    let expected = std::fs::read(&app).unwrap();
    for (range, start, end) in [
        ("bytes=1000-70000", 1000, 70_001),
        ("bytes=65530-65541", 65_530, 65_542),
        ("bytes=-777", app_len - 777, app_len),
        ("bytes=1048000-", 1_048_000, app_len),
    ] {
        let headers = [("Range", range.to_owned())];
        let part = exchange(agent.addr, "GET", &paths[1], &agent.host(), &headers, b"");
        assert_eq!(part.status, 206, "{range}: {}", part.text());
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {start}-{}/{app_len}", end - 1).as_str()),
            "{range}"
        );
        assert!(
            part.body == expected[start as usize..end as usize],
            "{range}: the part differs"
        );
    }
    let beyond = [("Range", format!("bytes={app_len}-"))];
    let past = exchange(agent.addr, "GET", &paths[1], &agent.host(), &beyond, b"");
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{app_len}").as_str())
    );

    // Complete and no longer running (seeding off): the files stream from
    // the release's folder on disk.
    wait_release(&agent, deadline, "the agent to complete the release", |r| {
        r["state"] == "seeding"
    });
    agent.call(
        "PUT",
        "/v1/settings",
        Some(json!({ "seeding": false })),
        200,
    );
    wait_release(&agent, deadline, "the release to stop seeding", |r| {
        r["state"] == "complete"
    });
    for (file, _) in SUITE_FILES {
        assert_same_content(&root.join(file), &downloads.join(SUITE).join(file));
        let answer = accepted(&handoff_query(&agent, &origin, &query(file)), &origin);
        let path = stream_path(&agent, &answer);
        let whole = exchange(agent.addr, "GET", &path, &agent.host(), &[], b"");
        assert_eq!(whole.status, 200, "{file}: {}", whole.text());
        assert!(
            whole.body == std::fs::read(root.join(file)).unwrap(),
            "{file}: the stream from disk differs from the file"
        );
    }
    let headers = [("Range", "bytes=70000-70099".to_owned())];
    let answer = accepted(
        &handoff_query(&agent, &origin, &query("bin/app.bin")),
        &origin,
    );
    let path = stream_path(&agent, &answer);
    let part = exchange(agent.addr, "GET", &path, &agent.host(), &headers, b"");
    assert_eq!(part.status, 206, "{}", part.text());
    assert!(part.body == expected[70_000..70_100]);
    // Still refused once the release is on disk: the answer depends on
    // the torrent alone, not on what the folder holds.
    for file in [
        "../README.txt",
        "/etc/passwd",
        "bin/../README.txt",
        &pads[1],
    ] {
        assert_refused_unreadable(
            &handoff_query(&agent, &origin, &query(file)),
            400,
            "data-shoal-file",
        );
    }
}
