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
//! * another origin's page cannot change the agent's state, token or not.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::agent::{keygen, publish_with, start_seed, write_config, Agent};
use testkit::http::{encode, exchange, Answer};
use testkit::publisher_site::PublisherSite;
use testkit::tracker::LocalTracker;
use testkit::{field, write_random_file, Scene};

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
