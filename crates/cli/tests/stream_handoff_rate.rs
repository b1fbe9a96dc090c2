//! The browser hand-off of a 1 GiB release, end to end through the agent,
//! next to a plain `shoal get` of the same release on the same link: two
//! `shoal seed`s that hold the release, each capped at `SEED_UP` (the
//! link), a tracker, the publisher's site serving the signed torrent, and
//! a `shoal agent` handed the release as the publisher's page hands it.
//! The stream is read as a browser reads a download, over one plain
//! HTTP/1.1 connection, and every byte is compared with the release as it
//! arrives. What must hold:
//!
//! * the first byte of the body within 1 s of opening the stream (the
//!   agent adds and starts the release only then, so this covers finding
//!   the seeds and the first piece);
//! * the bytes in order at no less than 80 % of the rate the plain
//!   download reached, both timed from the start of their request (the
//!   process start for `shoal get`) to the last byte;
//! * every byte the release's.
//!
//! `bench/stream_handoff.sh` measures the same over several rounds.

// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::agent::{keygen, start_seed_with, write_config, Agent};
use testkit::http::{encode, exchange};
use testkit::publisher_site::PublisherSite;
use testkit::tracker::LocalTracker;
use testkit::{field, shoal, write_random_file, Scene, MIB};

const SIZE: u64 = 1024 * MIB;
const NAME: &str = "Image-1.0.iso";
/// Each seed's upload cap; two seeds make the link about 42 MB/s, so a
/// transfer takes about 26 s.
const SEED_UP: &str = "20M";
const SEEDS: usize = 2;
/// The bound on the first byte, from opening the stream.
const FIRST_BYTE_WITHIN: Duration = Duration::from_secs(1);
/// The streamed in-order rate against the plain download's, at least.
const RATE_RATIO: f64 = 0.8;
/// A read of the stream that gets nothing for this long fails the test.
const STALL: Duration = Duration::from_secs(30);

/// What the browser saw of one stream.
#[derive(Debug)]
struct StreamRead {
    first_byte: Duration,
    last_byte: Duration,
}

/// Opens `path` on the agent as a browser opens a download and reads the
/// body to its end, comparing each byte with `original` as it arrives.
/// Times are from just before the connection is opened.
fn read_stream(agent: SocketAddr, host: &str, path: &str, original: &Path) -> StreamRead {
    let opened = Instant::now();
    let mut stream = TcpStream::connect(agent).unwrap();
    stream.set_read_timeout(Some(STALL)).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\
         Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();

    // The head, read byte by byte so that no body byte is counted in it.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 * 1024, "an endless response head");
        let read = stream.read(&mut byte).unwrap();
        assert_eq!(read, 1, "the agent closed before the body: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: u64 = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no length: {head}"));
    assert_eq!(length, SIZE, "{head}");

    let mut expected = BufReader::with_capacity(1 << 20, File::open(original).unwrap());
    let mut buffer = vec![0u8; 256 * 1024];
    let mut want = vec![0u8; 256 * 1024];
    let mut at = 0u64;
    let mut first_byte = None;
    while at < length {
        let read = stream
            .read(&mut buffer)
            .unwrap_or_else(|e| panic!("the stream stalled or broke at byte {at}: {e}"));
        assert!(read > 0, "the stream ended at byte {at} of {length}");
        first_byte.get_or_insert_with(|| opened.elapsed());
        let got = &buffer[..read];
        expected
            .read_exact(&mut want[..read])
            .unwrap_or_else(|e| panic!("the stream sent more than the release at byte {at}: {e}"));
        if let Some(offset) = got.iter().zip(&want).position(|(a, b)| a != b) {
            panic!(
                "the stream differs from the release at byte {}",
                at + offset as u64
            );
        }
        at += read as u64;
    }
    let last_byte = opened.elapsed();
    let mut rest = [0u8; 1];
    assert_eq!(
        stream.read(&mut rest).unwrap_or(0),
        0,
        "bytes after the body's end"
    );
    StreamRead {
        first_byte: first_byte.unwrap(),
        last_byte,
    }
}

/// Whether two files hold the same bytes, read a MiB at a time.
fn assert_same_file(expected: &Path, actual: &Path) {
    let mut want = BufReader::new(File::open(expected).unwrap());
    let mut got = BufReader::new(
        File::open(actual).unwrap_or_else(|e| panic!("{} is missing: {e}", actual.display())),
    );
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    loop {
        let read = want.read(&mut a).unwrap();
        if read == 0 {
            assert_eq!(
                got.read(&mut b).unwrap(),
                0,
                "{} is longer",
                actual.display()
            );
            return;
        }
        got.read_exact(&mut b[..read])
            .unwrap_or_else(|e| panic!("{} is shorter: {e}", actual.display()));
        assert!(
            a[..read] == b[..read],
            "{} differs near byte {at}",
            actual.display()
        );
        at += read as u64;
    }
}

fn mb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64().max(1e-6) / 1e6
}

#[test]
fn a_streamed_handoff_of_1_gib_starts_at_once_and_keeps_up_with_a_plain_download() {
    let deadline = Instant::now() + Duration::from_secs(300);
    let scene = Scene::new();
    let tracker = LocalTracker::start(&scene);
    let (key, publisher) = keygen(&scene.dir("keys"), "publisher.key");
    let seed_dir = scene.dir("seed");
    let original = seed_dir.join(NAME);
    write_random_file(&original, SIZE, 15);

    // Published as a publisher would (default piece size), for the page's
    // origin, with no web seed: only peers hold the data.
    let site = PublisherSite::start();
    let origin = site.origin();
    let torrent = scene.path("image.torrent");
    testkit::run(
        shoal()
            .arg("publish")
            .arg(&original)
            .arg("--key")
            .arg(&key)
            .args(["--tracker", &tracker.announce, "--origin", &origin, "--out"])
            .arg(&torrent),
    );
    site.put("/image.torrent", std::fs::read(&torrent).unwrap());
    let torrent_url = format!("{origin}/image.torrent");

    let _seeds: Vec<_> = (0..SEEDS)
        .map(|n| {
            let extra = ["--max-up", SEED_UP];
            let name = format!("seed{n}");
            start_seed_with(
                &scene, &name, &torrent, &seed_dir, &publisher, &extra, deadline,
            )
            .0
        })
        .collect();

    // The plain download first: the agent seeds once it has the release,
    // and would speed up anything after it.
    let plain_out = scene.dir("plain");
    let plain_started = Instant::now();
    let mut get = scene.spawn(
        "get",
        shoal()
            .arg("get")
            .arg(&torrent)
            .arg("--out")
            .arg(&plain_out)
            .args(["--listen", "127.0.0.1:0", "--json", "--trust", &publisher]),
    );
    let complete: Value = get.next_json(deadline, |event| {
        (event["event"] == "complete").then(|| event.clone())
    });
    let plain_time = plain_started.elapsed();
    assert!(get.wait_exit(deadline).success());
    assert_eq!(field(&complete, "bytes_from_origin"), 0, "{complete:#}");
    assert_same_file(&original, &plain_out.join(NAME));

    // The hand-off, as shoal.js on the publisher's page asks for it.
    let (config, state, _) = write_config(&scene, &publisher);
    let agent = Agent::start(&scene, "agent", &config, &state);
    let page = [("Origin", origin.clone())];
    let handoff_path = format!("/v1/handoff?torrent={}", encode(&torrent_url));
    let answer = exchange(agent.addr, "POST", &handoff_path, &agent.host(), &page, b"");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let offer: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(field(&offer, "size"), SIZE);
    let stream_url = field(&offer, "stream_url").as_str().unwrap();
    let stream_path = stream_url
        .strip_prefix(&format!("http://{}", agent.host()))
        .unwrap_or_else(|| panic!("{stream_url}"))
        .to_owned();

    let streamed = read_stream(agent.addr, &agent.host(), &stream_path, &original);
    assert!(Instant::now() < deadline, "the test ran out of time");

    let plain_rate = mb_per_s(SIZE, plain_time);
    let stream_rate = mb_per_s(SIZE, streamed.last_byte);
    println!(
        "1 GiB over {SEEDS} seeds at {SEED_UP}/s each: plain `shoal get` {:.2} s ({plain_rate:.1} MB/s); \
         streamed hand-off: first byte {} ms, last byte {:.2} s ({stream_rate:.1} MB/s in order, \
         {:.1} % of plain)",
        plain_time.as_secs_f64(),
        streamed.first_byte.as_millis(),
        streamed.last_byte.as_secs_f64(),
        100.0 * stream_rate / plain_rate,
    );
    assert!(
        streamed.first_byte <= FIRST_BYTE_WITHIN,
        "the first byte came {} ms after the stream was opened",
        streamed.first_byte.as_millis()
    );
    assert!(
        stream_rate >= RATE_RATIO * plain_rate,
        "the stream ran at {stream_rate:.1} MB/s, under {}% of the plain download's {plain_rate:.1} MB/s",
        RATE_RATIO * 100.0
    );
}
