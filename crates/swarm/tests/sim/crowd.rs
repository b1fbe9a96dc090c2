//! Flash crowds of any size for the simulation: a 64 MiB release, an
//! origin at 4 MB/s (a web server, or a seeding peer as with a BitTorrent
//! origin), and peers on uniform or mixed links that learn of each other
//! from a tracker answering at most [`TRACKER_PEERS`] addresses, as a
//! real one does, so each node talks to a bounded neighbourhood (or, to
//! compare, from one that names everyone).

use std::time::{Duration, Instant};

use swarm::SwarmSettings;

use super::{kumar_ross, synthetic_layout, NodeSpec, Simulation, Tracker};

pub const MB: u64 = 1_000_000;
/// Addresses a tracker hands out per announce.
pub const TRACKER_PEERS: usize = 50;
const PIECES: u32 = 256;
const PIECE_BYTES: u32 = 256 * 1024;
const ORIGIN_UP: u64 = 4 * MB;

/// The peers' links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Every peer 2 MB/s up, 8 MB/s down (the web flash crowd of the
    /// benchmark).
    Uniform,
    /// A third each at 0.5/2, 2/8 and 10/50 MB/s up/down.
    Mixed,
}

impl Links {
    /// (up, down) of the `i`th peer, bytes/s.
    fn of(self, i: usize) -> (u64, u64) {
        match (self, i % 3) {
            (Links::Uniform, _) => (2 * MB, 8 * MB),
            (Links::Mixed, 0) => (MB / 2, 2 * MB),
            (Links::Mixed, 1) => (2 * MB, 8 * MB),
            (Links::Mixed, _) => (10 * MB, 50 * MB),
        }
    }
}

/// Who holds the release at the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The publisher's web server (BEP 19), which only answers fetches.
    Web,
    /// A seeding peer speaking the peer protocol.
    Seed,
}

#[derive(Debug, Clone, Copy)]
pub struct Crowd {
    pub peers: usize,
    pub links: Links,
    pub origin: Origin,
    pub tracker: Tracker,
    pub seed: u64,
}

/// The outcome of one crowd, times as fractions of the Kumar–Ross bound.
#[derive(Debug, Clone)]
pub struct CrowdReport {
    pub crowd: Crowd,
    pub bound_secs: f64,
    pub finished: usize,
    pub last: f64,
    pub median: f64,
    pub p95: f64,
    /// Bytes the origin uploaded over the release size (for a seeding
    /// origin: before the first peer finished).
    pub origin_copies: f64,
    pub events: u64,
    pub wall: Duration,
}

impl Crowd {
    pub fn release_bytes() -> f64 {
        f64::from(PIECES) * f64::from(PIECE_BYTES)
    }

    fn specs(&self) -> Vec<NodeSpec> {
        let mut specs = vec![match self.origin {
            Origin::Web => NodeSpec::origin(ORIGIN_UP),
            Origin::Seed => NodeSpec::seed(ORIGIN_UP),
        }];
        specs.extend((0..self.peers).map(|i| {
            let (up, down) = self.links.of(i);
            NodeSpec::leecher(up, down)
        }));
        specs
    }

    /// Kumar–Ross lower bound for these links: no peer downloads faster
    /// than its downlink, the origin must send a copy, and all the copies
    /// cross the sum of the uplinks.
    pub fn bound(&self) -> f64 {
        let file = Crowd::release_bytes();
        let (mut up_sum, mut slowest_down) = (ORIGIN_UP as f64, f64::INFINITY);
        for i in 0..self.peers {
            let (up, down) = self.links.of(i);
            up_sum += up as f64;
            slowest_down = slowest_down.min(down as f64);
        }
        let peers = self.peers as f64;
        let mean_up = (up_sum - ORIGIN_UP as f64) / peers;
        kumar_ross(file, ORIGIN_UP as f64, slowest_down, peers, mean_up)
    }

    pub fn simulation(&self) -> Simulation {
        let layout = synthetic_layout(PIECES, u64::from(PIECE_BYTES));
        Simulation::new(
            layout,
            self.specs(),
            SwarmSettings::default(),
            self.seed,
            self.tracker,
        )
    }

    /// Runs the crowd until every peer finished or `limit` bounds passed.
    pub fn run(&self, limit: f64) -> CrowdReport {
        let started = Instant::now();
        let bound = self.bound();
        let mut sim = self.simulation();
        sim.run(Duration::from_secs_f64(limit * bound));
        let mut times: Vec<f64> = sim.leecher_times().iter().map(|t| t / bound).collect();
        times.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let index = ((times.len() as f64 * q).ceil() as usize).saturating_sub(1);
            times.get(index).copied().unwrap_or(f64::INFINITY)
        };
        let origin_bytes = match self.origin {
            Origin::Web => sim.origin_uploaded(),
            Origin::Seed => sim.seed_upload_at_first_finish.unwrap_or(0),
        };
        CrowdReport {
            crowd: *self,
            bound_secs: bound,
            finished: times.len(),
            last: times.last().copied().unwrap_or(f64::INFINITY),
            median: at(0.5),
            p95: at(0.95),
            origin_copies: origin_bytes as f64 / Crowd::release_bytes(),
            events: sim.events_handled,
            wall: started.elapsed(),
        }
    }
}

impl CrowdReport {
    pub const HEADER: &'static str =
        "peers  links    origin  seed  bound_s  done   last/T  median/T  p95/T  origin_copies  events      wall_s";

    pub fn row(&self) -> String {
        let c = &self.crowd;
        format!(
            "{:<6} {:<8} {:<7} {:<5} {:<8.1} {:<6} {:<7.3} {:<9.3} {:<6.3} {:<14.3} {:<11} {:.1}",
            c.peers,
            format!("{:?}", c.links).to_lowercase(),
            format!("{:?}", c.origin).to_lowercase(),
            c.seed,
            self.bound_secs,
            self.finished,
            self.last,
            self.median,
            self.p95,
            self.origin_copies,
            self.events,
            self.wall.as_secs_f64(),
        )
    }
}
