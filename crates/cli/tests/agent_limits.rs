//! What a real `shoal agent` holds back from other local programs, pages
//! and the network:
//!
//! * 1,200 half-sent API requests are all closed within the header
//!   timeout, the agent never holding more than its connection cap, and
//!   it answers again at once;
//! * an API address off loopback (`0.0.0.0`) is refused at start, with an
//!   error naming it and the fix;
//! * the token never appears in the agent's output; `shoal agent ui`
//!   prints the UI's link with it; the state folder is owner-only (0700,
//!   files 0600, also when an older version left them open); reads need
//!   the token;
//! * a dozen concurrent hand-offs of a huge torrent are mostly turned away
//!   at once (503), and the agent's peak memory stays bounded;
//! * out of file descriptors, with peers still knocking, the agent's
//!   accept loops wait instead of spinning (its CPU time stays low).
//!
//! Every wait has a deadline; child processes die with their guards.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::agent::{http, keygen, publish, publish_with, write_config, Agent};
use testkit::http::exchange;
use testkit::publisher_site::PublisherSite;
use testkit::{run, shoal, write_random_file, Scene, MIB};

const HEADER_TIMEOUT_SECS: u64 = 3;

/// Adds `extra` TOML lines to the test config.
fn config_with(
    scene: &Scene,
    publisher: &str,
    extra: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (config, state, _) = write_config(scene, publisher);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(extra);
    std::fs::write(&config, text).unwrap();
    (config, state)
}

/// The process's open file descriptors (Linux).
#[cfg(target_os = "linux")]
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A line of `/proc/PID/status`, in KiB (Linux).
#[cfg(target_os = "linux")]
fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// Whether the agent closed `stream`: reads what is there; EOF or a
/// reset is closed, "would block" is still open.
fn closed(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buffer = [0u8; 4096];
    let mut reader = stream;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn half_sent_requests_are_closed_within_the_header_timeout() {
    let scene = Scene::new();
    let (_, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let (config, state) = config_with(
        &scene,
        &publisher,
        &format!("api_header_timeout_secs = {HEADER_TIMEOUT_SECS}\n"),
    );
    let agent = Agent::start(&scene, "agent", &config, &state);
    #[cfg(target_os = "linux")]
    let idle_fds = open_fds(agent.proc.id());

    let started = Instant::now();
    let streams: Vec<TcpStream> = (0..1200)
        .map(|n| {
            let mut stream = TcpStream::connect(agent.addr)
                .unwrap_or_else(|e| panic!("connection {n}: {e} (is `ulimit -n` over 1,300?)"));
            // A request head that never ends.
            let head = format!("GET /v1/releases HTTP/1.1\r\nHost: {}\r\n", agent.host());
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .collect();
    #[cfg(target_os = "linux")]
    {
        // The cap (128 connections) holds while they are all open.
        std::thread::sleep(Duration::from_millis(500));
        let held = open_fds(agent.proc.id()).saturating_sub(idle_fds);
        assert!(held <= 140, "the agent holds {held} more descriptors");
    }
    // Each connection has the timeout from when it was taken; the last
    // ones may wait for a free slot while the first ones time out.
    let opening = started.elapsed();
    std::thread::sleep(Duration::from_secs(HEADER_TIMEOUT_SECS + 2));
    let open = streams.iter().filter(|s| !closed(s)).count();
    assert_eq!(
        open,
        0,
        "{open} half-sent requests still open {}s after the last was sent \
         (opening them took {opening:?})",
        HEADER_TIMEOUT_SECS + 2
    );
    drop(streams);
    let list = agent.call("GET", "/v1/releases", None, 200);
    assert_eq!(list, json!({ "releases": [] }));
}

#[test]
fn an_api_address_off_loopback_is_refused_at_start() {
    let scene = Scene::new();
    let (_, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let (config, _, _) = write_config(&scene, &publisher);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("api = \"127.0.0.1:0\"", "api = \"0.0.0.0:0\"");
    std::fs::write(&config, text).unwrap();
    let mut agent = scene.spawn("agent", shoal().arg("agent").arg("--config").arg(&config));
    let status = agent.wait_exit(Instant::now() + Duration::from_secs(30));
    assert!(
        !status.success(),
        "an agent with its API on 0.0.0.0 started"
    );
    let stderr = std::fs::read_to_string(scene.log_path("agent.stderr")).unwrap();
    assert!(
        stderr.contains("0.0.0.0:0") && stderr.contains("loopback") && stderr.contains("127.0.0.1"),
        "{stderr}"
    );
    // The flag is checked the same way.
    let mut flagged = scene.spawn(
        "agent-flag",
        shoal()
            .arg("agent")
            .arg("--config")
            .arg(&config)
            .args(["--api", "[::]:0"]),
    );
    assert!(!flagged
        .wait_exit(Instant::now() + Duration::from_secs(30))
        .success());
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_token_stays_out_of_logs_and_the_state_folder_is_private() {
    let scene = Scene::new();
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let (config, state) = config_with(&scene, &publisher, "");
    // As an older version left it: world-readable folder and list.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("releases.json"),
        "{\"releases\": [], \"caps\": null}",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        let list = state.join("releases.json");
        std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut agent = Agent::start(&scene, "agent", &config, &state);
    let data = scene.dir("data").join("history.bin");
    write_random_file(&data, 100_000, 4);
    let torrent = publish(
        &data,
        &key,
        "http://127.0.0.1:9/announce",
        &scene.path("h.torrent"),
    );
    let body = json!({ "torrent": torrent.to_str().unwrap() });
    agent.call("POST", "/v1/releases", Some(body), 201);

    // Reads need the token: the list is the customer's history.
    for path in ["/v1/releases", "/v1/settings"] {
        let (status, body) = http(agent.addr, "GET", path, &agent.host(), None, None);
        assert_eq!(status, 403, "GET {path} without the token: {body}");
        assert!(!body.contains("history.bin"), "{body}");
    }

    // `shoal agent ui` prints the link, with the token and the real port.
    let out = run(shoal().arg("agent").arg("--config").arg(&config).arg("ui"));
    let link = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        link.trim(),
        format!("http://{}/#token={}", agent.host(), agent.token.trim())
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&state), 0o700, "state folder");
        assert_eq!(mode(&state.join("torrents")), 0o700, "torrents folder");
        for entry in ["api-token", "api-address", "releases.json"] {
            assert_eq!(mode(&state.join(entry)), 0o600, "{entry}");
        }
        for torrent in std::fs::read_dir(state.join("torrents")).unwrap() {
            assert_eq!(mode(&torrent.unwrap().path()), 0o600, "a torrent copy");
        }
    }
    agent.proc.terminate(Duration::from_secs(20));
    for stream in ["agent.stdout", "agent.stderr"] {
        let text = std::fs::read_to_string(scene.log_path(stream)).unwrap();
        assert!(!text.is_empty() || stream == "agent.stderr");
        assert!(
            !text.contains(agent.token.trim()),
            "the token is in {stream}: {text}"
        );
    }
}

#[test]
fn concurrent_handoffs_of_a_huge_torrent_are_capped() {
    const TORRENT_BYTES: usize = 30 * 1024 * 1024;
    let scene = Scene::new();
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let site = PublisherSite::start();
    // A "torrent" far over the hand-off bound, served slowly so that the
    // fetches overlap.
    site.put("/huge.torrent", vec![b'x'; TORRENT_BYTES]);
    site.slow_down("/huge.torrent", 4 * MIB);
    let data = scene.dir("data").join("small.bin");
    write_random_file(&data, 10_000, 1);
    let small = publish_with(
        &data,
        &key,
        "http://127.0.0.1:9/announce",
        &scene.path("small.torrent"),
        &["--origin", &site.origin()],
    );
    site.put("/small.torrent", std::fs::read(&small).unwrap());
    let (config, state) = config_with(&scene, &publisher, "handoffs_per_origin_per_minute = 100\n");
    let agent = Agent::start(&scene, "agent", &config, &state);
    #[cfg(target_os = "linux")]
    let peak_before = status_kib(agent.proc.id(), "VmHWM:");

    let path = format!(
        "/v1/handoff?torrent={}%2Fhuge.torrent",
        site.origin().replace(':', "%3A").replace('/', "%2F")
    );
    let (addr, host, origin) = (agent.addr, agent.host(), site.origin());
    let answers: Vec<(u16, String)> = std::thread::scope(|threads| {
        let asks: Vec<_> = (0..12)
            .map(|_| {
                threads.spawn(|| {
                    let answer = exchange(
                        addr,
                        "POST",
                        &path,
                        &host,
                        &[("Origin", origin.clone())],
                        b"",
                    );
                    (answer.status, answer.text())
                })
            })
            .collect();
        asks.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let busy = answers.iter().filter(|(s, _)| *s == 503).count();
    assert!(busy >= 8, "few hand-offs were turned away: {answers:?}");
    for (status, text) in &answers {
        assert!(
            *status == 503 || (*status == 400 && text.contains("larger than")),
            "{status}: {text}"
        );
    }
    // Only the few admitted fetches ever ran, each stopped at its bound.
    let served = site.requests_for("/huge.torrent").len();
    assert!(served <= 4, "{served} fetches of the huge torrent");
    #[cfg(target_os = "linux")]
    {
        let grown_mib = status_kib(agent.proc.id(), "VmHWM:").saturating_sub(peak_before) / 1024;
        assert!(
            grown_mib < 64,
            "the agent's peak memory grew by {grown_mib} MiB"
        );
    }
    // Once they are done, a normal hand-off goes through.
    let small_path = path.replace("huge.torrent", "small.torrent");
    let answer = exchange(
        agent.addr,
        "POST",
        &small_path,
        &agent.host(),
        &[("Origin", site.origin())],
        b"",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
}

/// CPU seconds the process has used so far (Linux, `/proc/PID/stat`,
/// assuming the usual 100 ticks a second).
#[cfg(target_os = "linux")]
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[cfg(target_os = "linux")]
#[test]
fn out_of_descriptors_the_accept_loops_wait_instead_of_spinning() {
    let scene = Scene::new();
    let (_, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let (config, state) = config_with(&scene, &publisher, "");
    // Few descriptors: a few dozen peers knocking use them all up.
    let mut proc = scene.spawn(
        "agent",
        std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 96 && exec \"$0\" agent --config \"$1\"")
            .arg(env!("CARGO_BIN_EXE_shoal"))
            .arg(&config),
    );
    let addr: std::net::SocketAddr =
        proc.next_line(Instant::now() + Duration::from_secs(30), |line| {
            line.strip_prefix("agent listening on http://")
                .map(|a| a.parse().unwrap())
        });
    let token = std::fs::read_to_string(state.join("api-token")).unwrap();
    let agent = Agent { proc, addr, token };
    let settings = agent.call("GET", "/v1/settings", None, 200);
    let listen: std::net::SocketAddr = settings["listen"].as_str().unwrap().parse().unwrap();
    // Silent peers (no handshake) and silent API clients: every one the
    // agent accepts holds a descriptor until its timeout.
    let mut knocking = Vec::new();
    for _ in 0..150 {
        knocking.push(TcpStream::connect(listen).unwrap());
        knocking.push(TcpStream::connect(agent.addr).unwrap());
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = agent.proc.id();
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_seconds(pid) - before;
    assert!(
        used < 0.5,
        "the agent used {used:.2} s of CPU in 3 s while out of descriptors (spinning on accept)"
    );
    drop(knocking);
    // It recovers once the descriptors are free again.
    std::thread::sleep(Duration::from_secs(2));
    let list = agent.call("GET", "/v1/releases", None, 200);
    assert_eq!(list, json!({ "releases": [] }));
}
