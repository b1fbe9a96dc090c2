//! Hostile peers against real `shoal seed` and `shoal get` processes on
//! loopback (issue 8, "Hostile peers"). Each test asserts what shoal does:
//!
//! * a length prefix of 0xFFFFFFF0 closes the connection before anything
//!   is buffered, and 50 such peers cost the seed under 1 MiB each;
//! * a bitfield of the wrong length, a request past the end of a piece, a
//!   request of more than 128 KiB and a block never requested each close
//!   the connection, and the seed lets go of the socket at once (the
//!   hostile side keeps its end open);
//! * 2,000 handshaken silent connections and 100 slow-loris handshakes: the
//!   peer table and the descriptors stay bounded, half handshakes time out,
//!   and a real download running alongside completes;
//! * a peer corrupting 1 block in 10 among two honest seeds: the file is
//!   intact, the liar is banned after at most 3 failed pieces, no honest
//!   seed is;
//! * a peer that advertises every piece and never sends: its requests are
//!   cancelled (snubbed) and the download completes from the honest seed.

// The liar shares its port with its listener (`SO_REUSEPORT`), a Unix notion.
#![cfg(unix)]
// In a test a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

mod raw_peer;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::EngineSettings;
use raw_peer::{closed_within, fd_count, handshake, wait_fd_count_at_most, RawPeer};
use testkit::lying_seed::{Knock, LiarConfig, LyingSeed};
use testkit::release::Release;
use testkit::{Proc, Scene, MIB};
use wire::{BlockRef, Message};

/// No tracker answers here: these swarms are wired by `--peer`.
const NO_TRACKER: &str = "http://127.0.0.1:9/announce";
/// How long shoal may take to close a connection after a violation.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

/// A seed of a fresh release and what a raw peer needs to talk to it.
struct SeedUnderTest {
    scene: Scene,
    release: Release,
    proc: Proc,
    addr: SocketAddr,
    peer: RawPeer,
}

fn start_seed(size: u64, piece: u64, extra: &[&str]) -> SeedUnderTest {
    let scene = Scene::new();
    let release = Release::publish("payload.bin", size, piece, NO_TRACKER, 81);
    let torrent = meta::read_torrent_file(&release.torrent).unwrap();
    let (proc, addr) = scene.spawn_listening("seed", &mut release.seed(extra));
    let peer = RawPeer {
        addr,
        info_hash: engine::wire_info_hash(&torrent),
        piece_count: u32::try_from(torrent.piece_count()).unwrap(),
    };
    SeedUnderTest {
        scene,
        release,
        proc,
        addr,
        peer,
    }
}

/// Waits for `get` to report completion, panicking at `deadline`.
fn wait_complete(get: &mut Proc, deadline: Instant) -> serde_json::Value {
    get.next_json(deadline, |e| (e["event"] == "complete").then(|| e.clone()))
}

#[test]
fn huge_length_prefix_disconnects_before_buffering() {
    const PEERS: usize = 50;
    let seed = start_seed(4 * MIB, 256 * 1024, &[]);
    let pid = seed.proc.id();
    // An honest peer first: it proves the seed keeps well-behaved
    // connections, and warms up whatever a first connection allocates.
    let mut control = handshake(&seed.peer, 0).unwrap();
    control.write_all(&Message::Interested.encode()).unwrap();
    assert_eq!(
        closed_within(&mut control, Duration::from_secs(2)),
        None,
        "the seed dropped an honest peer"
    );
    let fds_before = fd_count(pid);
    let peak_before = vm_peak_kib(pid);

    let mut hostile = Vec::new();
    for n in 1..=PEERS {
        let mut stream = handshake(&seed.peer, n as u32).unwrap();
        // The prefix, then the start of a body that never ends: buffering
        // it would need 4 GiB.
        let mut lie = vec![0xff, 0xff, 0xff, 0xf0, 7];
        lie.resize(64 * 1024, 0xab);
        let _ = stream.write_all(&lie);
        hostile.push(stream);
    }
    for (n, stream) in hostile.iter_mut().enumerate() {
        let closed = closed_within(stream, CLOSE_BOUND);
        assert!(
            closed.is_some(),
            "hostile peer {n}: still connected {CLOSE_BOUND:?} after a 4 GiB length prefix"
        );
    }
    // The hostile side keeps its sockets open; the seed must not.
    wait_fd_count_at_most(pid, fds_before, Duration::from_secs(3));
    let peak_growth_kib = vm_peak_kib(pid).saturating_sub(peak_before);
    eprintln!(
        "length prefix: {PEERS} peers closed; seed peak RSS grew {peak_growth_kib} KiB \
         ({} KiB per peer)",
        peak_growth_kib / PEERS as u64
    );
    assert!(
        peak_growth_kib <= PEERS as u64 * 1024,
        "the seed's peak RSS grew {peak_growth_kib} KiB for {PEERS} hostile peers (> 1 MiB each)"
    );
    assert_eq!(
        closed_within(&mut control, Duration::from_millis(200)),
        None,
        "the honest peer was dropped along with the hostile ones"
    );
}

/// Peak resident memory (VmHWM), KiB: a peak catches a buffer that was
/// allocated and freed between two samples.
#[cfg(target_os = "linux")]
fn vm_peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

/// Without `/proc` the memory bound is not measured; the disconnects are.
#[cfg(not(target_os = "linux"))]
fn vm_peak_kib(_pid: u32) -> u64 {
    0
}

#[test]
fn protocol_violations_close_the_connection() {
    // 512 KiB pieces: a 144 KiB request fits inside a piece, so only its
    // size is wrong.
    const PIECE: u64 = 512 * 1024;
    let mut seed = start_seed(4 * MIB, PIECE, &[]);
    let pid = seed.proc.id();
    let bitfield_len = wire::bitfield_len(seed.peer.piece_count);
    let last_block = PIECE as u32 - 16 * 1024;
    let mut block_we_never_asked = wire::piece_header(0, 0, 16 * 1024).to_vec();
    block_we_never_asked.resize(block_we_never_asked.len() + 16 * 1024, 0x11);
    let request = |offset, length| {
        Message::Request(BlockRef {
            piece: 0,
            offset,
            length,
        })
        .encode()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a bitfield one byte too long",
            Message::Bitfield(&vec![0xff; bitfield_len + 1]).encode(),
        ),
        (
            "a bitfield one byte too short",
            Message::Bitfield(&vec![0xff; bitfield_len - 1]).encode(),
        ),
        (
            "a request past the end of the piece",
            request(last_block, 32 * 1024),
        ),
        ("a request of 144 KiB", request(0, 144 * 1024)),
        ("a block never requested", block_we_never_asked),
    ];

    let mut control = handshake(&seed.peer, 0).unwrap();
    control.write_all(&Message::Interested.encode()).unwrap();
    control.write_all(&request(0, 16 * 1024)).unwrap();
    assert_eq!(
        closed_within(&mut control, Duration::from_secs(2)),
        None,
        "the seed dropped a peer that asked for a valid block"
    );
    let fds_before = fd_count(pid);
    let mut held = Vec::new();
    for (n, (what, bytes)) in (1u32..).zip(cases) {
        let mut stream = handshake(&seed.peer, n).unwrap();
        stream.write_all(&bytes).unwrap();
        let closed = closed_within(&mut stream, CLOSE_BOUND);
        eprintln!("{what}: closed after {closed:?}");
        assert!(
            closed.is_some(),
            "after {what}, the connection is still open {CLOSE_BOUND:?} later"
        );
        held.push(stream);
    }
    // Closed means closed: the seed holds no descriptor for a peer it
    // dropped, even though each hostile side still holds its end.
    wait_fd_count_at_most(pid, fds_before, Duration::from_secs(3));
    assert!(
        seed.proc.exited().is_none(),
        "the seed died of hostile input"
    );
    drop(seed.scene);
}

#[test]
fn silent_connections_and_slow_loris_stay_bounded() {
    const SILENT: usize = 2000;
    const SLOW_LORIS: usize = 100;
    const BATCH: usize = 100;
    const SIZE: u64 = 16 * MIB;
    let defaults = EngineSettings::default();
    let max_peers = defaults.swarm.max_peers;
    let max_pending = defaults.max_pending_handshakes;
    let seed = start_seed(SIZE, 256 * 1024, &["--max-up", "2M"]);
    let pid = seed.proc.id();
    let fds_idle = fd_count(pid);

    // The real download starts first and runs through the whole attack.
    let out = seed.release.out_dir("download");
    let mut get = seed.scene.spawn(
        "get",
        &mut seed.release.get(&out, &["--peer", &seed.addr.to_string()]),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    get.next_json(deadline, |e| {
        (e["event"] == "progress" && e["verified_bytes"].as_u64() > Some(0)).then_some(())
    });

    let loris_peer = seed.peer.clone();
    let loris = std::thread::spawn(move || raw_peer::slow_loris(&loris_peer, SLOW_LORIS));

    let started = Instant::now();
    let (mut admitted, mut refused) = (Vec::new(), 0usize);
    let mut max_fds = 0;
    for first in (0..SILENT).step_by(BATCH) {
        let batch = raw_peer::silent_batch(&seed.peer, 1000 + first as u32, BATCH);
        refused += batch.refused;
        admitted.extend(batch.admitted);
        max_fds = max_fds.max(fd_count(pid));
    }
    let flood_time = started.elapsed();
    let loris_closed = loris.join().unwrap();
    let still_admitted = admitted
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_millis(10)))
        .filter(Option::is_none)
        .count();
    eprintln!(
        "silent flood: {SILENT} connections in {flood_time:?}: {} admitted, {refused} refused, \
         {still_admitted} still open; seed fds idle {fds_idle}, at most {max_fds}; \
         slow-loris closed after {loris_closed:?}",
        admitted.len()
    );
    // The table holds at most `max_peers`, the download among them.
    assert!(
        admitted.len() < max_peers,
        "{} silent peers were admitted; the table holds {max_peers}",
        admitted.len()
    );
    assert!(
        !admitted.is_empty(),
        "no silent peer was admitted: the test did not reach the peer table"
    );
    let fd_bound = fds_idle + max_peers + max_pending + 16;
    assert!(
        max_fds <= fd_bound,
        "the seed held {max_fds} descriptors under the flood (bound {fd_bound})"
    );
    let loris_bound = defaults.connect_timeout + Duration::from_secs(3);
    assert!(
        loris_closed.iter().all(|t| *t <= loris_bound),
        "a half handshake was held past {loris_bound:?}: {loris_closed:?}"
    );

    let complete = wait_complete(&mut get, deadline);
    eprintln!("download alongside the flood: {complete}");
    let original = std::fs::read(seed.release.original()).unwrap();
    seed.release
        .assert_downloaded(&out, &original, "the download during the flood");
}

/// Two honest seeds, capped so the liar gets a good share of requests,
/// and a liar corrupting one block in ten.
#[test]
fn liar_one_block_in_ten_is_banned_alone() {
    const SIZE: u64 = 8 * MIB;
    const PIECE: u64 = 64 * 1024;
    let scene = Scene::new();
    let release = Release::publish("lib.bin", SIZE, PIECE, NO_TRACKER, 82);
    let original = std::fs::read(release.original()).unwrap();
    let torrent = meta::read_torrent_file(&release.torrent).unwrap();
    let liar = LyingSeed::start(LiarConfig {
        info_hash: engine::wire_info_hash(&torrent),
        piece_length: torrent.piece_length,
        piece_count: u32::try_from(torrent.piece_count()).unwrap(),
        content: Arc::new(original.clone()),
        corrupt_one_in: 10,
        mute: false,
    });
    let seeds: Vec<(Proc, SocketAddr)> = ["seed-a", "seed-b"]
        .iter()
        .map(|name| scene.spawn_listening(name, &mut release.seed(&["--max-up", "1M"])))
        .collect();
    let honest: Vec<SocketAddr> = seeds.iter().map(|(_, addr)| *addr).collect();
    let out = scene.dir("download");
    let mut args = vec!["--peer".to_owned(), liar.addr().to_string()];
    for addr in &honest {
        args.extend(["--peer".to_owned(), addr.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut get, get_addr) = scene.spawn_listening("get", &mut release.get(&out, &args));
    liar.knock_again_at(get_addr);
    let deadline = Instant::now() + Duration::from_secs(90);
    wait_complete(&mut get, deadline);
    get.wait_exit(deadline);
    release.assert_downloaded(&out, &original, "the download among a liar");

    let knock_deadline = Instant::now() + Duration::from_secs(15);
    while liar.knock() == Knock::NotTried && Instant::now() < knock_deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(scene.log_path("get.stderr")).unwrap();
    let verdict = raw_peer::ban_log(&log, liar.addr(), &honest);
    let connections = liar.connections();
    let context = format!(
        "liar {connections:#?}\nknock {:?}\nlog verdict {verdict:?}",
        liar.knock()
    );
    eprintln!("liar 1 in 10: {context}");
    let corrupted: u64 = connections.iter().map(|c| c.blocks_corrupted).sum();
    assert!(
        corrupted >= 3,
        "the liar corrupted only {corrupted} blocks; the test proves nothing: {context}"
    );
    assert!(
        matches!(verdict.failed_before_ban, Some(failed) if failed <= 3),
        "the liar was banned after more than 3 failed pieces, or never: {context}"
    );
    assert!(
        verdict.honest_banned.is_empty(),
        "an honest seed was banned: {context}"
    );
    assert_eq!(
        connections.len(),
        1,
        "shoal dialled the liar again: {context}"
    );
    assert_eq!(
        liar.knock(),
        Knock::Refused,
        "the liar was let back in: {context}"
    );
    drop(seeds);
}

/// A peer that claims every piece, unchokes and never sends a block,
/// beside an honest seed slow enough (128 KiB/s) that the download outlasts
/// the request timeout: the mute peer's requests must be taken back by the
/// snub, long before the end game would cancel them.
#[test]
fn mute_peer_is_snubbed_and_download_completes() {
    const SIZE: u64 = 4 * MIB;
    let scene = Scene::new();
    let release = Release::publish("mute.bin", SIZE, 64 * 1024, NO_TRACKER, 83);
    let original = std::fs::read(release.original()).unwrap();
    let torrent = meta::read_torrent_file(&release.torrent).unwrap();
    let mute = LyingSeed::start(LiarConfig {
        info_hash: engine::wire_info_hash(&torrent),
        piece_length: torrent.piece_length,
        piece_count: u32::try_from(torrent.piece_count()).unwrap(),
        content: Arc::new(original.clone()),
        corrupt_one_in: 1,
        mute: true,
    });
    let (_seed, seed_addr) =
        scene.spawn_listening("seed", &mut release.seed(&["--max-up", "128K"]));
    let out = scene.dir("download");
    let started = Instant::now();
    let (mut get, _) = scene.spawn_listening(
        "get",
        &mut release.get(
            &out,
            &[
                "--peer",
                &mute.addr().to_string(),
                "--peer",
                &seed_addr.to_string(),
            ],
        ),
    );
    let timeout = EngineSettings::default().swarm.request_timeout;
    let deadline = Instant::now() + Duration::from_secs(90);
    wait_complete(&mut get, deadline);
    let took = started.elapsed();
    release.assert_downloaded(&out, &original, "the download beside a mute peer");
    let connections = mute.connections();
    eprintln!("mute peer: complete after {took:?}; {connections:#?}");
    let requested: u64 = connections.iter().map(|c| c.requests_received).sum();
    assert!(
        requested > 0,
        "shoal never asked the mute peer for a block; the test proves nothing"
    );
    let Some(first_cancel) = connections.iter().filter_map(|c| c.first_cancel_at).min() else {
        panic!("shoal never took back its {requested} requests from the mute peer");
    };
    let snubbed_after = first_cancel.duration_since(started);
    assert!(
        snubbed_after >= timeout.saturating_sub(Duration::from_secs(1))
            && snubbed_after + Duration::from_secs(3) < took,
        "requests taken back after {snubbed_after:?} (timeout {timeout:?}), \
         download complete after {took:?}: not a snub"
    );
    assert!(connections.iter().all(|c| c.blocks_served == 0));
}
