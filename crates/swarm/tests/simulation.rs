//! The swarm state machine in a seeded, deterministic simulation: many
//! peers on rate-limited links, virtual time, no sockets.

mod sim;

use std::time::Duration;

use sim::crowd::{Crowd, Links, Origin, TRACKER_PEERS};
use sim::{kumar_ross, synthetic_layout, NodeSpec, Simulation, Slowdown, Tracker};
use swarm::SwarmSettings;

const MB: u64 = 1_000_000;

fn flash_crowd(peers: usize, seed: u64) -> Simulation {
    let layout = synthetic_layout(128, 128 * 1024); // 16 MiB
    let mut specs = vec![NodeSpec::seed(2 * MB)];
    specs.extend((0..peers).map(|_| NodeSpec::leecher(2 * MB, 8 * MB)));
    Simulation::new(
        layout,
        specs,
        SwarmSettings::default(),
        seed,
        Tracker::Everyone,
    )
}

#[test]
fn rarest_first_makes_the_seed_upload_about_one_copy_before_anyone_finishes() {
    let mut sim = flash_crowd(30, 7);
    sim.run(Duration::from_secs(600));
    assert!(
        sim.all_finished(),
        "every peer finishes: {:?}",
        sim.leecher_times()
    );
    let file = 128.0 * 128.0 * 1024.0;
    let seed_upload = sim.seed_upload_at_first_finish.unwrap() as f64;
    eprintln!(
        "seed sent {:.3} copies before the first of 30 peers finished",
        seed_upload / file
    );
    assert!(
        seed_upload >= file,
        "someone finished with less than a copy from the seed?"
    );
    // Measured 1.084 copies; 1.26 once leechers give up the slot of a peer
    // that lost interest at once: progress is more even, so the first
    // peer finishes later, and the last sooner.
    assert!(
        seed_upload <= 1.30 * file,
        "the seed sent {:.2} copies before the first peer finished",
        seed_upload / file
    );
}

#[test]
fn a_flash_crowd_finishes_near_the_kumar_ross_bound() {
    let mut sim = flash_crowd(30, 11);
    sim.run(Duration::from_secs(600));
    let times = sim.leecher_times();
    assert_eq!(times.len(), 30);
    let file = 128.0 * 128.0 * 1024.0;
    let bound = kumar_ross(file, 2e6, 8e6, 30.0, 2e6);
    let last = times.iter().cloned().fold(0.0, f64::max);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    eprintln!("30 peers: last {last:.2} s, mean {mean:.2} s, Kumar-Ross bound {bound:.2} s: last/bound {:.2}, mean/bound {:.2}", last / bound, mean / bound);
    assert!(
        last <= 1.6 * bound,
        "last peer at {last:.1} s, bound {bound:.1} s"
    );
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let mut sim = flash_crowd(10, seed);
        sim.run(Duration::from_secs(600));
        sim.leecher_times()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(
        run(3),
        run(4),
        "different seeds explore different schedules"
    );
}

fn failed_pieces(sim: &Simulation) -> Vec<u32> {
    sim.nodes.iter().map(|n| n.failed_pieces).collect()
}

fn is_banned_by(sim: &Simulation, node: usize, suspect: usize) -> bool {
    let suspect = sim.nodes[suspect].addr;
    sim.nodes[node]
        .swarm
        .as_ref()
        .is_some_and(|s| s.is_banned(suspect))
}

/// Pieces a streaming leecher holds from the start without a gap, sampled
/// when it holds half the release, in a swarm where seeds hold the data; with a reader at byte 0 (`cursor`) that
/// follows the first missing piece, and without.
fn streamed_prefix_at_half(cursor: bool) -> (u32, u32) {
    let layout = synthetic_layout(128, 128 * 1024); // 16 MiB
                                                    // Peers hold the data: two seeds, the reader and two other leechers.
    let mut specs = vec![NodeSpec::seed(4 * MB), NodeSpec::seed(4 * MB)];
    specs.extend((0..3).map(|_| NodeSpec::leecher(2 * MB, 8 * MB)));
    // Seeds show every piece (initial seeding would hide the ones a
    // reader wants behind the ones it reveals).
    let settings = SwarmSettings {
        initial_seeding: false,
        ..SwarmSettings::default()
    };
    let mut sim = Simulation::new(layout, specs, settings, 5, Tracker::Everyone);
    let reader = 2;
    for step in 1..=6000u64 {
        sim.run(Duration::from_millis(50 * step));
        let now = sim.instant();
        let Some(swarm) = sim.nodes[reader].swarm.as_mut() else {
            continue;
        };
        let have = swarm.have().clone();
        let prefix = (0..have.len()).take_while(|&p| have.get(p)).count() as u32;
        if cursor {
            swarm.set_stream_cursor(now, 1, u64::from(prefix) * 128 * 1024);
        }
        if have.count() * 2 >= have.len() {
            return (prefix, have.count());
        }
    }
    panic!("the reader never got half the release");
}

#[test]
fn a_stream_reader_gets_pieces_in_near_order_and_rarest_first_without_one() {
    let (prefix, held) = streamed_prefix_at_half(true);
    let (without, held_without) = streamed_prefix_at_half(false);
    eprintln!("with a reader: {prefix} of {held} pieces held are a gapless prefix; without: {without} of {held_without}");
    assert!(
        prefix * 5 >= held * 3,
        "with a reader, {prefix} of {held} pieces form the prefix"
    );
    assert!(
        without * 4 < held_without,
        "without a reader the order is rarest-first: {without} of {held_without} in a prefix"
    );
}

#[test]
fn a_lying_peer_is_banned_and_no_honest_peer_is() {
    let layout = synthetic_layout(128, 64 * 1024);
    let mut specs = vec![NodeSpec::seed(MB)];
    specs.extend((0..8).map(|_| NodeSpec::leecher(MB, 4 * MB)));
    let liar = specs.len();
    // A fast seed that corrupts one block in ten it sends.
    specs.push(NodeSpec {
        seed: true,
        lie_every: Some(10),
        ..NodeSpec::seed(8 * MB)
    });
    let mut sim = Simulation::new(
        layout,
        specs,
        SwarmSettings::default(),
        5,
        Tracker::Everyone,
    );
    sim.run(Duration::from_secs(600));
    assert_eq!(
        sim.leecher_times().len(),
        8,
        "every honest leecher finishes"
    );
    let banned_by = (1..liar).filter(|&n| is_banned_by(&sim, n, liar)).count();
    assert!(
        banned_by > 0,
        "someone caught the liar; failed pieces per node: {:?}",
        failed_pieces(&sim)
    );
    for node in 1..liar {
        if failed_pieces(&sim)[node] >= 3 {
            assert!(
                is_banned_by(&sim, node, liar),
                "node {node} saw 3 bad pieces and kept the liar"
            );
        }
        for honest in 0..liar {
            assert!(
                !is_banned_by(&sim, node, honest),
                "node {node} banned honest node {honest}"
            );
        }
    }
}

/// A flash crowd served by a web origin alone (no seeding peer): the
/// origin planner keeps the origin's egress near one copy of the release
/// while the peers multiply it.
fn web_origin_crowd(peers: usize, seed: u64) -> Simulation {
    let layout = synthetic_layout(256, 256 * 1024); // 64 MiB
    let mut specs = vec![NodeSpec::origin(4 * MB)];
    specs.extend((0..peers).map(|_| NodeSpec::leecher(2 * MB, 8 * MB)));
    Simulation::new(
        layout,
        specs,
        SwarmSettings::default(),
        seed,
        Tracker::Everyone,
    )
}

/// Runs the web-origin flash crowd over several seeds and returns the
/// medians of (origin copies, last peer / bound).
fn web_origin_medians(peers: usize, seeds: std::ops::Range<u64>) -> (f64, f64) {
    let file = 256.0 * 256.0 * 1024.0;
    let bound = kumar_ross(file, 4e6, 8e6, peers as f64, 2e6);
    let (mut copies, mut lasts) = (Vec::new(), Vec::new());
    for seed in seeds {
        let mut sim = web_origin_crowd(peers, seed);
        sim.run(Duration::from_secs(900));
        let times = sim.leecher_times();
        assert_eq!(times.len(), peers, "seed {seed}: every peer finishes");
        let origin = sim.origin_uploaded() as f64 / file;
        let last = times.iter().cloned().fold(0.0, f64::max);
        eprintln!(
            "web origin, {peers} peers, seed {seed}: origin sent {origin:.3} copies; last {last:.1} s, bound {bound:.1} s: last/bound {:.3}",
            last / bound
        );
        copies.push(origin);
        lasts.push(last / bound);
    }
    (median(&mut copies), median(&mut lasts))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[test]
fn a_web_origin_sends_about_one_copy_to_a_flash_crowd() {
    let (copies, last) = web_origin_medians(20, 1..8);
    eprintln!("web origin, 20 peers, median of 7: {copies:.3} copies, last/bound {last:.3}");
    // The product targets are 1.05 copies and 1.10 x the bound (measured
    // 1.004 and 1.109). The bound assumes the origin uploads all along; one
    // copy keeps it busy for 55 % of it, so with the rest carried by the
    // peers alone no schedule beats 1.045 x, before the first second in
    // which peers have little to trade.
    assert!(copies <= 1.05, "the origin sent {copies:.3} copies");
    assert!(last <= 1.12, "last peer at {last:.3} x the bound");
}

#[test]
fn a_web_origin_stays_near_one_copy_for_fifty_peers() {
    let (copies, last) = web_origin_medians(50, 1..6);
    eprintln!("web origin, 50 peers, median of 5: {copies:.3} copies, last/bound {last:.3}");
    // Measured 1.031 copies (the pieces two peers picked in the moment
    // before they met) and 1.113 x.
    assert!(copies <= 1.08, "the origin sent {copies:.3} copies");
    assert!(last <= 1.15, "last peer at {last:.3} x the bound");
}

#[test]
fn a_lone_peer_downloads_everything_from_the_origin() {
    let layout = synthetic_layout(32, 256 * 1024);
    let specs = vec![NodeSpec::origin(4 * MB), NodeSpec::leecher(2 * MB, 8 * MB)];
    let mut sim = Simulation::new(
        layout,
        specs,
        SwarmSettings::default(),
        1,
        Tracker::Everyone,
    );
    sim.run(Duration::from_secs(120));
    let times = sim.leecher_times();
    assert_eq!(times.len(), 1);
    let file = 32.0 * 256.0 * 1024.0;
    // Alone, the peer keeps several pieces in flight and the origin's link
    // is full, after a grace period of up to 2 s spent waiting for peers
    // (fetching one piece at a time meanwhile).
    assert!(times[0] <= 1.2 * file / 4e6 + 2.0, "took {:.1} s", times[0]);
    assert!(
        (sim.origin_uploaded() as f64 - file).abs() < 1.0,
        "exactly one copy"
    );
}

/// A crowd too large for everyone to know everyone: each node hears of
/// at most 50 others from the tracker and keeps at most `max_peers`.
fn bounded_crowd(peers: usize, links: Links, origin: Origin, seed: u64) -> sim::crowd::CrowdReport {
    let crowd = Crowd {
        peers,
        links,
        origin,
        tracker: Tracker::Random(TRACKER_PEERS),
        seed,
    };
    let report = crowd.run(4.0);
    eprintln!("{}\n{}", sim::crowd::CrowdReport::HEADER, report.row());
    assert_eq!(report.finished, peers, "every peer finishes");
    report
}

// Measured at 120 peers: uniform links 1.21 origin copies, last 1.12 x
// the bound; mixed links 1.25 copies, last 1.55 x; around a seeding
// origin, 1.56 copies before the first peer finished, last 1.14 x (1.63,
// 1.84 and 1.71 copies before claims were scaled to the swarm's size).
// The origin planner's rule that each unheld piece belongs to one agent
// holds only among agents that see each other; the claim floor scaled by
// the swarm's size brings it back towards one owner per piece, and an
// owner abandons its fetch once a peer has the piece. A seeding origin
// is a peer like any other and not subject to the planner.
#[test]
fn a_crowd_of_neighbourhoods_finishes_near_the_bound() {
    crowd_within(Links::Uniform, Origin::Web, 1, 1.35, 1.25);
}

#[test]
fn a_crowd_on_mixed_links_finishes() {
    crowd_within(Links::Mixed, Origin::Web, 2, 1.4, 1.8);
}

#[test]
fn a_crowd_around_a_seeding_origin_finishes() {
    // For a seeding origin, its copies are counted until the first peer
    // finishes.
    crowd_within(Links::Uniform, Origin::Seed, 3, 1.7, 1.3);
}

/// A CI crowd finishes with the origin sending at most `max_copies` and
/// the last peer within `max_last` times the bound.
fn crowd_within(links: Links, origin: Origin, seed: u64, max_copies: f64, max_last: f64) {
    let report = bounded_crowd(CI_CROWD, links, origin, seed);
    assert!(
        report.origin_copies <= max_copies,
        "{links:?} links, {origin:?} origin: the origin sent {:.3} copies",
        report.origin_copies
    );
    assert!(
        report.last <= max_last,
        "{links:?} links, {origin:?} origin: last peer at {:.3} x the bound",
        report.last
    );
}

/// Peers in the CI crowd tests: more than anyone can connect to (the
/// tracker names 50, a node keeps 60), few enough for a quick test.
const CI_CROWD: usize = 120;

/// Transmission announces its pieces in a batch about once a second (more
/// under load). A seed that showed a peer a new piece only after each
/// announcement held it to a few pieces per batch (issue 15); now what we
/// sent in full counts as taken, so a late announcer fetches from the seed
/// about as much as when it announces at once, and the crowd still gets
/// about one copy from the seed. Simulated peers request the moment they
/// hear of a piece, so the old throttle shows from 2 s batches on. The
/// late announcer is the peer the seed served most in the same run without
/// delays.
#[test]
fn a_peer_that_announces_haves_late_is_not_throttled_and_the_seed_still_sends_about_one_copy() {
    const PIECES: u32 = 128;
    let run = |late: Option<(usize, Duration)>| {
        let layout = synthetic_layout(PIECES, 128 * 1024); // 16 MiB
        let mut specs = vec![NodeSpec::seed(2 * MB)];
        specs.extend((0..30).map(|_| NodeSpec::leecher(2 * MB, 8 * MB)));
        if let Some((late, delay)) = late {
            specs[late].have_delay = delay;
        }
        let mut sim = Simulation::new(
            layout,
            specs,
            SwarmSettings::default(),
            7,
            Tracker::Everyone,
        );
        sim.run(Duration::from_secs(600));
        assert!(sim.all_finished(), "every peer finishes");
        sim
    };
    let served = |sim: &Simulation, node: usize| sim.nodes[0].uploaded_to.get(&node).copied();
    let baseline = run(None);
    let late = (1..baseline.nodes.len())
        .max_by_key(|&node| served(&baseline, node))
        .unwrap();
    let prompt = served(&baseline, late).unwrap_or(0) as f64;
    let file = f64::from(PIECES) * 128.0 * 1024.0;
    for delay in [Duration::from_secs(1), Duration::from_secs(2)] {
        let sim = run(Some((late, delay)));
        let delayed = served(&sim, late).unwrap_or(0) as f64;
        let seed_upload = sim.seed_upload_at_first_finish.unwrap() as f64;
        eprintln!(
            "haves every {delay:?}: seed sent {:.3} copies before the first peer finished; to the late announcer {:.2} MB, {:.2} MB when it announced at once",
            seed_upload / file,
            delayed / 1e6,
            prompt / 1e6
        );
        // The same limit as the prompt crowd's above: the first finisher
        // comes late since a peer that loses interest frees its slot at
        // once, so "before the first finish" covers more of the run.
        assert!(
            seed_upload <= 1.30 * file,
            "haves every {delay:?}: the seed sent {:.2} copies before the first peer finished",
            seed_upload / file
        );
        assert!(
            delayed >= 0.75 * prompt,
            "haves every {delay:?}: the seed sent the late announcer {:.2} MB, {:.2} MB when it announced at once",
            delayed / 1e6,
            prompt / 1e6
        );
    }
}

/// The web-origin crowd of 50, every peer's links at a tenth of their rate
/// for 20 virtual seconds from `from_s`.
fn slowed_crowd(seed: u64, from_s: f64) -> Simulation {
    let mut sim = web_origin_crowd(50, seed);
    for node in sim.nodes.iter_mut().filter(|n| !n.spec.origin) {
        node.spec.slowdown = Some(Slowdown {
            from_s,
            until_s: from_s + 20.0,
            fraction: 0.1,
        });
    }
    sim
}

#[test]
fn a_crowd_that_slows_down_does_not_stampede_the_origin() {
    let file = 256.0 * 256.0 * 1024.0;
    for (seed, from_s) in [(1, 5.0), (2, 15.0), (3, 30.0)] {
        let mut sim = slowed_crowd(seed, from_s);
        sim.run(Duration::from_secs(1200));
        let times = sim.leecher_times();
        let copies = sim.origin_uploaded() as f64 / file;
        let last = times.iter().cloned().fold(0.0, f64::max);
        eprintln!("50 peers slowed to a tenth from {from_s} s for 20 s, seed {seed}: origin sent {copies:.3} copies, last {last:.1} s");
        assert_eq!(times.len(), 50, "seed {seed}: every peer finishes");
        assert!(
            copies <= 1.3,
            "seed {seed}: the origin sent {copies:.3} copies"
        );
    }
}

#[test]
fn a_peer_whose_peers_hold_nothing_finishes_from_the_origin() {
    let layout = synthetic_layout(32, 256 * 1024);
    let mut specs = vec![NodeSpec::origin(4 * MB), NodeSpec::leecher(2 * MB, 8 * MB)];
    // Two agents that claim their share of the pieces but whose links are
    // all but dead for the whole run: they hold nothing and fetch nothing.
    for _ in 0..2 {
        let mut frozen = NodeSpec::leecher(2 * MB, 8 * MB);
        frozen.slowdown = Some(Slowdown {
            from_s: 0.0,
            until_s: 1e6,
            fraction: 1e-6,
        });
        specs.push(frozen);
    }
    let mut sim = Simulation::new(
        layout,
        specs,
        SwarmSettings::default(),
        3,
        Tracker::Everyone,
    );
    sim.run(Duration::from_secs(120));
    let finished = sim.nodes[1].finished_at.map(|t| t.as_secs_f64());
    let file = 32.0 * 256.0 * 1024.0;
    eprintln!(
        "a peer among frozen ones finished at {finished:?} s; origin sent {:.3} copies",
        sim.origin_uploaded() as f64 / file
    );
    let finished = finished.expect("the live peer finishes");
    // Its own pieces at once, the frozen agents' after 5 s of quiet, one
    // piece at a time: no back-off, since the peers have nothing it lacks
    // (measured 11.3 s; the limit is 120 s).
    assert!(finished <= 15.0, "took {finished:.1} s");
}

#[test]
fn a_ceiling_in_the_manifest_is_respected_in_a_normal_crowd() {
    let file = 256.0 * 256.0 * 1024.0;
    for seed in 1..4 {
        let mut sim = web_origin_crowd(20, seed);
        sim.origin_ceiling = Some(file as u64);
        sim.run(Duration::from_secs(900));
        let copies = sim.origin_uploaded() as f64 / file;
        let times = sim.leecher_times();
        eprintln!("ceiling 1.0, 20 peers, seed {seed}: origin sent {copies:.3} copies");
        assert_eq!(times.len(), 20, "seed {seed}: every peer finishes");
        // A ceiling of exactly one copy: pieces two agents fetched in the
        // moment before they met are the slack (measured 1.016 at most).
        assert!(copies <= 1.02, "seed {seed}: {copies:.3} copies");
    }
}

/// The web crowd of `shoal-bench` (64 MiB in 64 KiB pieces, a web origin
/// at 4 MB/s, peers at 2/8 MB/s) in full mesh. Returns the last peer's
/// time over the Kumar–Ross bound, and the block bytes received twice
/// (end-game copies, late copies of cancelled requests) over those kept.
fn bench_web_crowd(peers: usize, seed: u64) -> (f64, f64) {
    const PIECES: u32 = 1024;
    const PIECE_BYTES: u64 = 64 * 1024;
    let mut specs = vec![NodeSpec::origin(4 * MB)];
    specs.extend((0..peers).map(|_| NodeSpec::leecher(2 * MB, 8 * MB)));
    let layout = synthetic_layout(PIECES, PIECE_BYTES);
    let mut sim = Simulation::new(
        layout,
        specs,
        SwarmSettings::default(),
        seed,
        Tracker::Everyone,
    );
    sim.run(Duration::from_secs(600));
    let times = sim.leecher_times();
    assert_eq!(times.len(), peers, "seed {seed}: every peer finishes");
    let file = f64::from(PIECES) * PIECE_BYTES as f64;
    let bound = kumar_ross(file, 4e6, 8e6, peers as f64, 2e6);
    let last = times.iter().copied().fold(0.0, f64::max);
    let now = sim.instant();
    let (mut received, mut kept) = (0u64, 0u64);
    for node in &mut sim.nodes {
        if let Some(swarm) = node.swarm.as_mut() {
            let stats = swarm.stats(now);
            received += stats.received;
            kept += stats.downloaded;
        }
    }
    (
        last / bound,
        received.saturating_sub(kept) as f64 / kept as f64,
    )
}

/// The last of 20 peers stays close to the bound: no schedule that takes
/// one copy from the origin beats about 1.045 x here. With tit-for-tat in
/// every regular slot some peers fell behind for good and set the last
/// finish (seeds 1 to 10: mean 1.089, worst 1.135); with one slot for a
/// peer far behind, mean 1.076, worst 1.088. With the origin planner's
/// wait for the first dials and its abandoned fetches, seeds 1 to 5 give
/// 1.085 to 1.101.
#[test]
fn the_last_of_a_web_crowd_is_not_left_behind() {
    for seed in 1..=5 {
        let (last, duplicates) = bench_web_crowd(20, seed);
        eprintln!(
            "seed {seed}: last {last:.3} x bound, duplicates {duplicates:.4} of the bytes kept"
        );
        assert!(
            last <= 1.11,
            "seed {seed}: last peer at {last:.3} x the bound"
        );
        // End-game copies are asked only of peers nearly done with our
        // requests (measured 0.5 to 0.7 %).
        assert!(
            duplicates <= 0.01,
            "seed {seed}: {duplicates:.4} received twice"
        );
    }
}
