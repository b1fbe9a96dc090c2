//! What a web page can make a real `shoal agent` do, at the HTTP level
//! (the browser itself is driven in `browser_handoff.rs`):
//!
//! * a hand-off alone moves no payload: the agent neither joins the swarm
//!   nor writes anything until the stream URL is opened as a browser
//!   download (a navigation); a page's fetch or image load of it is
//!   refused; opening it then downloads the release;
//! * the torrent is fetched from the page's own origin only: a redirect to
//!   another host is not followed (that host sees no request), a preflight
//!   fetches nothing, and each origin gets a few hand-offs a minute;
//! * a page on a public origin (a network namespace at a TEST-NET address)
//!   cannot hand off a release whose tracker or web seed is on loopback:
//!   the loopback service sees no request.
//!
//! Every wait has a deadline; child processes die with their guards, and
//! the namespace is removed when the test ends, failed or not.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::agent::{bytes, keygen, publish_with, start_seed, wait_release, write_config, Agent};
use testkit::content::assert_same_content;
use testkit::http::{encode, exchange, Answer};
use testkit::publisher_site::PublisherSite;
use testkit::tracker::{info_hash_v1, LocalTracker};
use testkit::{field, write_random_file, Scene, MIB};

/// `METHOD /v1/handoff?torrent=URL` from a page on `origin`.
fn handoff(agent: &Agent, method: &str, origin: &str, torrent_url: &str) -> Answer {
    let mut headers = vec![("Origin", origin.to_owned())];
    if method == "OPTIONS" {
        headers.push(("Access-Control-Request-Method", "POST".to_owned()));
        headers.push(("Access-Control-Request-Private-Network", "true".to_owned()));
    }
    let path = format!("/v1/handoff?torrent={}", encode(torrent_url));
    exchange(agent.addr, method, &path, &agent.host(), &headers, b"")
}

/// The stream's path from an accepted hand-off.
fn stream_path(agent: &Agent, answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    let url = field(&body, "stream_url").as_str().unwrap();
    url.strip_prefix(&format!("http://{}", agent.host()))
        .unwrap_or_else(|| panic!("{url}"))
        .to_owned()
}

fn release_count(agent: &Agent) -> usize {
    let list = agent.call("GET", "/v1/releases", None, 200);
    field(&list, "releases").as_array().unwrap().len()
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_handoff_moves_no_payload_until_the_browser_opens_the_stream() {
    const SIZE: u64 = 3 * MIB + 777;
    const NAME: &str = "app.bin";
    let deadline = Instant::now() + Duration::from_secs(120);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let site = PublisherSite::start();
    let seed_dir = scene.dir("seed");
    let original = seed_dir.join(NAME);
    write_random_file(&original, SIZE, 5);
    let torrent = publish_with(
        &original,
        &key,
        &tracker.announce,
        &scene.path("app.torrent"),
        &[
            "--origin",
            &site.origin(),
            "--web-seed",
            &format!("{}/files/", site.origin()),
        ],
    );
    site.put("/app.torrent", std::fs::read(&torrent).unwrap());
    site.put(&format!("/files/{NAME}"), std::fs::read(&original).unwrap());
    let (_seed, started) = start_seed(&scene, "seed", &torrent, &seed_dir, &publisher, deadline);
    let v1 = started["info_hash_v1"].as_str().unwrap();
    let info_hash = info_hash_v1(v1);
    tracker.wait_for(&info_hash, 1, 0, deadline);
    let (config, state, downloads) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);

    let offered = handoff(
        &agent,
        "POST",
        &site.origin(),
        &format!("{}/app.torrent", site.origin()),
    );
    let path = stream_path(&agent, &offered);
    // A page's own requests for the stream (a fetch, an image) are not a
    // download the customer sees: refused, and they start nothing.
    for (mode, dest) in [
        ("cors", "empty"),
        ("no-cors", "image"),
        ("no-cors", "script"),
    ] {
        let headers = [
            ("Sec-Fetch-Mode", mode.to_owned()),
            ("Sec-Fetch-Dest", dest.to_owned()),
        ];
        let got = exchange(agent.addr, "GET", &path, &agent.host(), &headers, b"");
        assert_eq!(got.status, 403, "{mode}/{dest}: {}", got.text());
        assert!(got.body.len() < 1024, "{mode}/{dest} got payload");
    }
    // A HEAD describes the file without starting it.
    let head = exchange(agent.addr, "HEAD", &path, &agent.host(), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(SIZE.to_string().as_str())
    );

    // Time enough for a download to have started, had one been started.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(release_count(&agent), 0, "a hand-off alone added a release");
    assert_eq!(
        entries(&downloads),
        Vec::<String>::new(),
        "bytes were written"
    );
    assert_eq!(
        tracker.scrape(&info_hash),
        (1, 0),
        "the agent joined the swarm before the stream was opened"
    );
    assert!(
        site.requests_for(&format!("/files/{NAME}")).is_empty(),
        "the agent fetched from the web seed before the stream was opened"
    );

    // The browser opens the stream as a download: the release starts, and
    // the file arrives whole.
    let navigate = [
        ("Sec-Fetch-Mode", "navigate".to_owned()),
        ("Sec-Fetch-Dest", "document".to_owned()),
        ("Sec-Fetch-User", "?1".to_owned()),
    ];
    let got = exchange(agent.addr, "GET", &path, &agent.host(), &navigate, b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert!(
        got.body == std::fs::read(&original).unwrap(),
        "the stream differs"
    );
    let release = wait_release(&agent, deadline, "the release to seed", |r| {
        r["state"] == "seeding" && bytes(r, "verified_bytes") == SIZE
    });
    assert_eq!(field(&release, "handed_off"), true);
    assert_eq!(field(&release, "pinned"), false);
    assert_same_content(&original, &downloads.join(NAME));
}

#[test]
fn a_handoff_is_fetched_from_the_page_origin_only() {
    let scene = Scene::new();
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let site = PublisherSite::start();
    let other = PublisherSite::start();
    let data = scene.dir("data").join("tool.bin");
    write_random_file(&data, 200_000, 3);
    let torrent = publish_with(
        &data,
        &key,
        "http://127.0.0.1:9/announce",
        &scene.path("tool.torrent"),
        &["--origin", &site.origin(), "--origin", &other.origin()],
    );
    let bytes = std::fs::read(&torrent).unwrap();
    site.put("/tool.torrent", bytes.clone());
    other.put("/tool.torrent", bytes);
    // A redirect to another host (here another loopback port: another
    // origin, as a router's admin page would be), and one within the site.
    let elsewhere = format!("{}/tool.torrent", other.origin());
    site.redirect("/away.torrent", &elsewhere);
    site.redirect("/moved.torrent", &format!("{}/tool.torrent", site.origin()));
    let (config, state, _) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);
    let origin = site.origin();

    // The preflight fetches nothing at all.
    let preflight = handoff(
        &agent,
        "OPTIONS",
        &origin,
        &format!("{origin}/away.torrent"),
    );
    assert_eq!(preflight.status, 204, "{}", preflight.text());
    assert!(site.requests().is_empty(), "{:?}", site.requests());

    let refused = handoff(&agent, "POST", &origin, &format!("{origin}/away.torrent"));
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("outside the page's origin"),
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("access-control-allow-origin"), None);
    assert!(
        other.requests().is_empty(),
        "the agent followed a redirect to another host: {:?}",
        other.requests()
    );
    // Within the origin, redirects are followed.
    let moved = handoff(&agent, "POST", &origin, &format!("{origin}/moved.torrent"));
    assert_eq!(moved.status, 200, "{}", moved.text());
    assert_eq!(site.requests_for("/tool.torrent").len(), 1);

    // A few hand-offs a minute per origin; then 429 and the origin's link.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(handoff(&agent, "POST", &origin, &format!("{origin}/tool.torrent")).status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "six a minute");
    // Another origin is counted on its own.
    let theirs = handoff(&agent, "POST", &other.origin(), &elsewhere);
    assert_eq!(theirs.status, 200, "{}", theirs.text());
    assert_eq!(release_count(&agent), 0);
}

// The page's origin sits in a network namespace, at an address that is
// not loopback (`testkit::netns`, Linux only).
#[cfg(target_os = "linux")]
#[test]
fn a_page_on_a_public_origin_cannot_point_the_agent_at_local_addresses() {
    use std::net::TcpListener;
    use std::process::Command;

    let scene = Scene::new();
    let ns = testkit::netns::Namespace::create("agent-consent");
    // `shoal publish` signs plain-http origins for localhost only, so the
    // test signs its own manifests, naming the namespace's origin.
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let publisher = hex::encode(key.verifying_key().to_bytes());
    let origin = format!("http://{}:8000", ns.inner_addr);
    // Loopback services the torrents name; none may see a request.
    let local_tracker = TcpListener::bind("127.0.0.1:0").unwrap();
    let local_seed = TcpListener::bind("127.0.0.1:0").unwrap();
    let served = scene.dir("served");
    let data = scene.dir("data").join("tool.bin");
    write_random_file(&data, 100_000, 9);
    let public_tracker = format!("{origin}/announce");
    let make = |name: &str, tracker: &str, web_seeds: &[String]| {
        let source = meta::create::scan(&data).unwrap();
        let settings = meta::create::CreateSettings {
            trackers: vec![tracker.to_owned()],
            web_seeds: web_seeds.to_vec(),
            ..Default::default()
        };
        let made = meta::create::create(&source, &settings, &|_| {}).unwrap();
        let manifest = meta::Manifest {
            info_hash_v2: made.info_hash_v2(),
            name: made.name.clone(),
            version: "1.0".to_owned(),
            created: 1,
            origins: vec![origin.clone()],
            max_origin_millicopies: None,
        };
        let signed = made.encode(Some(&meta::SignatureBlock::sign(&manifest, &key)));
        std::fs::write(served.join(name), signed).unwrap();
    };
    make(
        "loopback-tracker.torrent",
        &format!("http://{}/announce", local_tracker.local_addr().unwrap()),
        &[],
    );
    let port = local_seed.local_addr().unwrap().port();
    make(
        "local-web-seed.torrent",
        &public_tracker,
        &[format!("http://localhost:{port}/files/")],
    );
    make(
        "v6-web-seed.torrent",
        &public_tracker,
        &[format!("http://[::1]:{port}/files/")],
    );
    make("public.torrent", &public_tracker, &[]);
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let _server = scene.spawn(
        "origin",
        &mut ns.wrap(
            Command::new(python)
                .args([
                    "-m",
                    "http.server",
                    "8000",
                    "--bind",
                    &ns.inner_addr,
                    "--directory",
                ])
                .arg(&served),
        ),
    );
    testkit::wait_until(
        Instant::now() + Duration::from_secs(20),
        "the origin to listen",
        || std::net::TcpStream::connect((ns.inner_addr.as_str(), 8000)).is_ok(),
    );
    let (config, state, _) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);

    for (name, names) in [
        ("loopback-tracker.torrent", "127.0.0.1"),
        ("local-web-seed.torrent", "localhost"),
        ("v6-web-seed.torrent", "[::1]"),
    ] {
        let refused = handoff(&agent, "POST", &origin, &format!("{origin}/{name}"));
        assert_eq!(refused.status, 403, "{name}: {}", refused.text());
        let text = refused.text();
        assert!(
            text.contains(names) && text.contains("local"),
            "{name}: {text}"
        );
    }
    // The same release with its tracker at the origin's own address is
    // taken: the refusals above are about the local addresses.
    let taken = handoff(&agent, "POST", &origin, &format!("{origin}/public.torrent"));
    assert_eq!(taken.status, 200, "{}", taken.text());
    for listener in [&local_tracker, &local_seed] {
        listener.set_nonblocking(true).unwrap();
        assert!(
            listener.accept().is_err(),
            "a loopback service named by a torrent got a connection"
        );
    }
    assert_eq!(release_count(&agent), 0);
}
