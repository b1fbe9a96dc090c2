//! The browser hand-off end to end, in a real headless Chromium driven by
//! `tests/browser/drive.mjs` (playwright-core), everything on loopback: a
//! tracker, a `shoal seed` (the swarm), a publisher's web site serving a
//! download page with shoal.js, and a `shoal agent` trusting the publisher.
//!
//! * a page on an origin the manifest does not list: the agent refuses,
//!   adds nothing, and the click downloads from the origin;
//! * the publisher's page with the agent running: the click downloads the
//!   file from the agent's stream, byte-identical, the browser never asks
//!   the origin for it, and the agent then seeds the release;
//! * the agent's web UI: the token leaves the address bar, the release is
//!   listed, and the upload limit set in its form and its Pin button
//!   reach the agent;
//! * something on the agent's port that never answers, or no agent at
//!   all: the same click downloads from the origin, byte-identical;
//! * a release of several files: a link naming one file with
//!   `data-shoal-file` downloads that file from the agent, byte-identical
//!   and under its own name; a link naming none, or a path that is not
//!   one of the release's files, downloads from the origin.
//!
//! scripts/test.sh installs Chromium and the node modules; every wait has
//! a deadline, and child processes die with their guards.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::agent::{bytes, keygen, publish_with, start_seed, wait_release, write_config, Agent};
use testkit::content::assert_same_content;
use testkit::publisher_site::PublisherSite;
use testkit::tracker::{info_hash_v1, LocalTracker};
use testkit::{field, write_random_file, write_tree, Scene};

/// Several pieces of 64 KiB and a partial last one.
const SIZE: u64 = 2 * 1024 * 1024 + 4321;
const NAME: &str = "app-1.0.bin";
/// How fast the publisher's site answers a web seed's ranged requests.
const ORIGIN_RANGED_BPS: u64 = 256 * 1024;
/// What the UI's form sets the upload limit to, in KiB/s.
const UPLOAD_KIB: u64 = 512;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `node tests/browser/drive.mjs ARGS`, after checking that what it needs
/// is installed (scripts/test.sh installs both).
fn browser_driver() -> Command {
    let dir = repo_root().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser tests need playwright-core in tests/browser/node_modules; \
         run scripts/test.sh, or `npm ci --prefix tests/browser`"
    );
    let chromium = std::env::var("SHOAL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the browser tests need Chromium at {chromium} (Debian package chromium); \
         run scripts/test.sh, which installs it"
    );
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("drive.mjs"));
    cmd
}

/// Runs one browser step and returns its JSON answer, panicking (with the
/// scene's logs) when it fails or takes longer than two minutes.
fn browse(scene: &Scene, name: &str, args: &[&str]) -> Value {
    let mut proc = scene.spawn(name, browser_driver().args(args));
    let answer = proc.next_json(Instant::now() + Duration::from_secs(120), |v| {
        v.get("ok").map(|_| v.clone())
    });
    assert_eq!(answer["ok"], true, "{name}: {answer:#}");
    let console = field(&answer, "console").as_array().unwrap();
    assert!(
        !console
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("pageerror")),
        "{name}: a script threw: {answer:#}"
    );
    answer
}

/// A download page as a publisher writes it.
fn download_page(agent: &str, file_url: &str, torrent_url: &str) -> Vec<u8> {
    format!(
        "<!doctype html><meta charset=utf-8><title>Download App</title>\n\
         <link rel=icon href=\"data:,\">\n\
         <script src=\"/shoal.js\" data-agent=\"{agent}\"></script>\n\
         <h1>App 1.0</h1>\n\
         <a href=\"{file_url}\" data-shoal-torrent=\"{torrent_url}\">Download App 1.0</a>\n"
    )
    .into_bytes()
}

/// How one click went: where the download came from, the `shoal:handoff`
/// detail, and how the browser's hand-off request ended (`status`, or
/// Chromium's `failure`: `net::ERR_FAILED` when a refusal without CORS
/// headers was blocked, `net::ERR_CONNECTION_REFUSED` with no agent).
struct Click {
    from: String,
    handoff: Value,
    request: Value,
}

/// Clicks the page's link and checks the saved file is byte-identical.
fn click(scene: &Scene, step: &str, page: &str, original: &Path) -> Click {
    click_link(scene, step, page, "a[data-shoal-torrent]", original)
}

/// Clicks the link `selector` picks and checks the saved file is
/// byte-identical to `original`, and saved under its name.
fn click_link(scene: &Scene, step: &str, page: &str, selector: &str, original: &Path) -> Click {
    let name = original.file_name().unwrap().to_str().unwrap();
    let saved = scene.path(&format!("{step}-{name}"));
    let args = ["click", page, saved.to_str().unwrap(), selector];
    let answer = browse(scene, step, &args);
    assert_eq!(answer["failure"], Value::Null, "{step}: {answer:#}");
    assert_eq!(answer["suggested_filename"], name, "{step}: {answer:#}");
    assert_same_content(original, &saved);
    let requests = field(&answer, "handoff_requests").as_array().unwrap();
    assert_eq!(
        requests.len(),
        1,
        "{step}: one hand-off per click: {answer:#}"
    );
    Click {
        from: field(&answer, "download_url").as_str().unwrap().to_owned(),
        handoff: field(&answer, "handoff").clone(),
        request: requests[0].clone(),
    }
}

#[test]
fn a_click_downloads_through_the_agent_and_falls_back_to_the_origin() {
    let deadline = Instant::now() + Duration::from_secs(240);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");

    // The publisher: a site, a signed release naming the site as its
    // origin and web seed, and the swarm's first seed.
    let site = PublisherSite::start();
    // A busy origin: its web seed answers are slow, so the agent gets
    // most of the release from the swarm (the seed) next to it.
    site.limit_ranged_answers(ORIGIN_RANGED_BPS);
    let seed_dir = scene.dir("seed");
    let original = seed_dir.join(NAME);
    write_random_file(&original, SIZE, 11);
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
    let (file_path, torrent_path) = (format!("/files/{NAME}"), format!("/{NAME}.torrent"));
    let (file_url, torrent_url) = (
        format!("{}{file_path}", site.origin()),
        format!("{}{torrent_path}", site.origin()),
    );
    site.put(&file_path, std::fs::read(&original).unwrap());
    site.put(&torrent_path, std::fs::read(&torrent).unwrap());
    let shoal_js = std::fs::read(repo_root().join("crates/agent/web/shoal.js")).unwrap();
    site.put("/shoal.js", shoal_js.clone());

    let (_seed, started) = start_seed(&scene, "seed", &torrent, &seed_dir, &publisher, deadline);
    let v1 = started["info_hash_v1"].as_str().unwrap();
    tracker.wait_for(&info_hash_v1(v1), 1, 0, deadline);

    let (config, state, downloads) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);
    let agent_url = format!("http://{}", agent.host());
    site.put(
        "/download.html",
        download_page(&agent_url, &file_url, &torrent_url),
    );

    // A page on another origin, pointing at the publisher's release: the
    // manifest does not list it, so the agent refuses and adds nothing.
    let stranger = PublisherSite::start();
    stranger.put("/shoal.js", shoal_js);
    stranger.put(
        "/download.html",
        download_page(&agent_url, &file_url, &torrent_url),
    );
    let page = format!("{}/download.html", stranger.origin());
    let refused = click(&scene, "stranger", &page, &original);
    assert_eq!(refused.from, file_url, "{:#}", refused.handoff);
    assert_eq!(field(&refused.handoff, "via"), "origin");
    // The agent answered (no connection error) without a CORS header.
    assert_eq!(
        refused.request["failure"], "net::ERR_FAILED",
        "{:#}",
        refused.request
    );
    let list = agent.call("GET", "/v1/releases", None, 200);
    assert_eq!(
        list["releases"],
        serde_json::json!([]),
        "a refused hand-off added a release"
    );
    let browser_fetches = |site: &PublisherSite| {
        site.requests_for(&file_path)
            .iter()
            .filter(|r| r.by_browser() && r.method == "GET")
            .count()
    };
    assert_eq!(
        browser_fetches(&site),
        1,
        "the fallback is one origin download"
    );

    // The publisher's own page: the file comes from the agent's stream.
    let page = format!("{}/download.html", site.origin());
    let handed = click(&scene, "agent", &page, &original);
    assert!(
        handed.from.starts_with(&format!("{agent_url}/v1/stream/")),
        "downloaded from {}, not the agent: {:#}",
        handed.from,
        handed.handoff
    );
    assert_eq!(field(&handed.handoff, "via"), "agent");
    assert_eq!(handed.request["status"], 200, "{:#}", handed.request);
    assert_eq!(
        browser_fetches(&site),
        1,
        "the browser fetched the file from the origin although the agent had it"
    );
    let seeding = wait_release(&agent, deadline, "the agent to seed the release", |r| {
        r["state"] == "seeding" && bytes(r, "verified_bytes") == SIZE
    });
    assert_eq!(field(&seeding, "name"), NAME);
    assert_eq!(bytes(&seeding, "total_bytes"), SIZE);
    assert!(
        bytes(&seeding, "bytes_from_peers") > 0,
        "nothing came from the swarm: {seeding:#}"
    );
    assert_same_content(&original, &downloads.join(NAME));

    // The agent's web UI, opened from the link the agent prints.
    let ui = format!("{agent_url}/#token={}", agent.token.trim());
    let screenshot = std::env::var("SHOAL_UI_SCREENSHOT").unwrap_or_default();
    let shown = browse(
        &scene,
        "ui",
        &["ui", &ui, NAME, &UPLOAD_KIB.to_string(), &screenshot],
    );
    let address = field(&shown, "address").as_str().unwrap();
    assert!(
        !address.contains("token") && !address.contains(agent.token.trim()),
        "the token stayed in the address bar: {address}"
    );
    assert_eq!(field(&shown, "token_stored"), true, "{shown:#}");
    assert_eq!(field(&shown, "error"), &Value::Null, "{shown:#}");
    let settings = agent.call("GET", "/v1/settings", None, 200);
    assert_eq!(
        field(&settings, "max_upload_bps"),
        UPLOAD_KIB * 1024,
        "the form's upload limit did not reach the agent"
    );
    assert_eq!(
        field(&agent.release(), "pinned"),
        true,
        "the UI's Pin button"
    );

    // Something on the agent's port that never answers: the click waits
    // a few seconds at most, then downloads from the origin.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    site.put(
        "/download-hung.html",
        download_page(
            &format!("http://{}", hung.local_addr().unwrap()),
            &file_url,
            &torrent_url,
        ),
    );
    let page_hung = format!("{}/download-hung.html", site.origin());
    let waited = click(&scene, "hung-agent", &page_hung, &original);
    assert_eq!(waited.from, file_url, "{:#}", waited.handoff);
    assert_eq!(field(&waited.handoff, "reason"), "timeout");
    assert_eq!(
        browser_fetches(&site),
        2,
        "the fallback is one origin download"
    );
    drop(hung);

    // No agent: the same click downloads from the origin.
    drop(agent);
    let alone = click(&scene, "no-agent", &page, &original);
    assert_eq!(alone.from, file_url, "{:#}", alone.handoff);
    assert_eq!(field(&alone.handoff, "reason"), "unavailable");
    assert_eq!(field(&alone.handoff, "via"), "origin");
    assert_eq!(
        alone.request["failure"], "net::ERR_CONNECTION_REFUSED",
        "{:#}",
        alone.request
    );
    assert_eq!(
        browser_fetches(&site),
        3,
        "the fallback is one origin download"
    );
}

/// A release of several files (paths inside its folder, lengths) and the
/// one the visitor picks.
const SUITE: &str = "suite-2.0";
const SUITE_FILES: &[(&str, u64)] = &[
    ("README.txt", 2345),
    ("bin/app.bin", 1024 * 1024 + 321),
    ("docs/guide/manual.pdf", 700 * 1024 + 9),
];
const CHOSEN: &str = "docs/guide/manual.pdf";

/// A download page listing each file of the release, each link naming
/// its file; plus a link that names none and one with a hostile path.
fn suite_page(agent: &str, origin: &str, torrent_url: &str) -> Vec<u8> {
    let mut page = format!(
        "<!doctype html><meta charset=utf-8><title>Download Suite</title>\n\
         <link rel=icon href=\"data:,\">\n\
         <script src=\"/shoal.js\" data-agent=\"{agent}\"></script>\n<ul>\n"
    );
    for (path, _) in SUITE_FILES {
        page.push_str(&format!(
            "<li><a id=\"{}\" href=\"{origin}/files/{SUITE}/{path}\" \
             data-shoal-torrent=\"{torrent_url}\" data-shoal-file=\"{path}\">{path}</a>\n",
            link_id(path)
        ));
    }
    page.push_str(&format!(
        "<li><a id=\"unnamed\" href=\"{origin}/files/{SUITE}/README.txt\" \
         data-shoal-torrent=\"{torrent_url}\">the whole suite?</a>\n\
         <li><a id=\"hostile\" href=\"{origin}/files/{SUITE}/README.txt\" \
         data-shoal-torrent=\"{torrent_url}\" \
         data-shoal-file=\"../../../etc/passwd\">README</a>\n</ul>\n"
    ));
    page.into_bytes()
}

fn link_id(path: &str) -> String {
    path.replace(['/', '.'], "-")
}

#[test]
fn a_click_on_one_file_of_a_multi_file_release_saves_that_file() {
    let deadline = Instant::now() + Duration::from_secs(240);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let site = PublisherSite::start();
    let seed_dir = scene.dir("seed");
    let root = seed_dir.join(SUITE);
    write_tree(&root, SUITE_FILES, 31);
    let torrent = publish_with(
        &root,
        &key,
        &tracker.announce,
        &scene.path("suite.torrent"),
        &["--origin", &site.origin()],
    );
    let torrent_url = format!("{}/{SUITE}.torrent", site.origin());
    site.put(
        &format!("/{SUITE}.torrent"),
        std::fs::read(&torrent).unwrap(),
    );
    for (path, _) in SUITE_FILES {
        site.put(
            &format!("/files/{SUITE}/{path}"),
            std::fs::read(root.join(path)).unwrap(),
        );
    }
    let shoal_js = std::fs::read(repo_root().join("crates/agent/web/shoal.js")).unwrap();
    site.put("/shoal.js", shoal_js);
    let (_seed, started) = start_seed(&scene, "seed", &torrent, &seed_dir, &publisher, deadline);
    let v1 = started["info_hash_v1"].as_str().unwrap();
    tracker.wait_for(&info_hash_v1(v1), 1, 0, deadline);

    let (config, state, downloads) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);
    let agent_url = format!("http://{}", agent.host());
    site.put(
        "/suite.html",
        suite_page(&agent_url, &site.origin(), &torrent_url),
    );
    let page = format!("{}/suite.html", site.origin());
    let browser_fetches = |path: &str| {
        site.requests_for(&format!("/files/{SUITE}/{path}"))
            .iter()
            .filter(|r| r.by_browser() && r.method == "GET")
            .count()
    };

    // The chosen file comes from the agent's stream, under its own name.
    let chosen = root.join(CHOSEN);
    let selector = format!("#{}", link_id(CHOSEN));
    let handed = click_link(&scene, "chosen", &page, &selector, &chosen);
    assert!(
        handed.from.starts_with(&format!("{agent_url}/v1/stream/")),
        "downloaded from {}, not the agent: {:#}",
        handed.from,
        handed.handoff
    );
    assert_eq!(field(&handed.handoff, "via"), "agent");
    assert_eq!(field(&handed.handoff, "file"), CHOSEN);
    assert_eq!(handed.request["status"], 200, "{:#}", handed.request);
    assert_eq!(browser_fetches(CHOSEN), 0, "the browser went to the origin");

    // A link that names no file of this release, or a path outside it:
    // the agent refuses, and the click downloads from the origin.
    let readme = root.join("README.txt");
    for step in ["unnamed", "hostile"] {
        let refused = click_link(&scene, step, &page, &format!("#{step}"), &readme);
        let expected = format!("{}/files/{SUITE}/README.txt", site.origin());
        assert_eq!(refused.from, expected, "{step}: {:#}", refused.handoff);
        assert_eq!(field(&refused.handoff, "via"), "origin", "{step}");
        assert_eq!(
            refused.request["failure"], "net::ERR_FAILED",
            "{step}: {:#}",
            refused.request
        );
    }
    assert_eq!(browser_fetches("README.txt"), 2);

    // The agent fetched and now shares the whole release.
    let seeding = wait_release(&agent, deadline, "the agent to seed the release", |r| {
        r["state"] == "seeding"
    });
    assert_eq!(field(&seeding, "name"), SUITE);
    for (path, _) in SUITE_FILES {
        assert_same_content(&root.join(path), &downloads.join(SUITE).join(path));
    }
}
