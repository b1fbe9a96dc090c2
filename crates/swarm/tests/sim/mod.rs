//! A deterministic swarm simulation: many `Swarm`s, no sockets, virtual
//! time. Each node has an uplink and a downlink of fixed rate; messages
//! queue on the sender's uplink (connections served round-robin), cross a
//! fixed latency, then queue on the receiver's downlink, as in libtorrent's
//! simulations with per-link rates. Piece checks are instant: a piece
//! passes when every block came from an honest node.

#![allow(clippy::unwrap_used)]

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Bound;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::seq::index::sample;
use rand::SeedableRng;

use meta::layout::Layout;
use swarm::{Action, Bitfield, Outgoing, PeerCaps, PeerKey, Swarm, SwarmSettings};
use wire::BlockRef;

pub use testkit::layout::synthetic_layout;

pub mod crowd;

/// Bytes a message costs on the wire besides block data.
const HEADER_BYTES: u64 = 17;

#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub upload_bps: u64,
    pub download_bps: u64,
    pub seed: bool,
    /// Corrupts one block in `lie_every` that it uploads.
    pub lie_every: Option<u32>,
    /// Virtual seconds after the start at which it joins.
    pub join_at: f64,
    /// The publisher's web server: serves pieces to anyone who asks (BEP
    /// 19), speaks no peer protocol, holds no swarm.
    pub origin: bool,
    /// Holds its `have`s and sends them in a batch once this long passed
    /// since the last batch, as Transmission does (zero: at once).
    pub have_delay: Duration,
    /// A while in which both its links run at a fraction of their rate (an
    /// old PC, a congested uplink, a CPU starved by other work).
    pub slowdown: Option<Slowdown>,
}

/// Links at `fraction` of their rate from `from_s` to `until_s` (virtual
/// seconds).
#[derive(Debug, Clone, Copy)]
pub struct Slowdown {
    pub from_s: f64,
    pub until_s: f64,
    pub fraction: f64,
}

impl NodeSpec {
    /// Its rate at `now`: `bps`, or a fraction of it during a slowdown.
    fn rate_at(&self, bps: u64, now: Duration) -> f64 {
        let t = now.as_secs_f64();
        match self.slowdown {
            Some(s) if t >= s.from_s && t < s.until_s => bps as f64 * s.fraction,
            _ => bps as f64,
        }
    }
}

impl NodeSpec {
    pub fn leecher(upload_bps: u64, download_bps: u64) -> NodeSpec {
        NodeSpec {
            upload_bps,
            download_bps,
            seed: false,
            lie_every: None,
            join_at: 0.0,
            origin: false,
            have_delay: Duration::ZERO,
            slowdown: None,
        }
    }

    pub fn origin(upload_bps: u64) -> NodeSpec {
        NodeSpec {
            upload_bps,
            download_bps: upload_bps,
            seed: false,
            lie_every: None,
            join_at: 0.0,
            origin: true,
            have_delay: Duration::ZERO,
            slowdown: None,
        }
    }

    pub fn seed(upload_bps: u64) -> NodeSpec {
        NodeSpec {
            upload_bps,
            download_bps: upload_bps,
            seed: true,
            lie_every: None,
            join_at: 0.0,
            origin: false,
            have_delay: Duration::ZERO,
            slowdown: None,
        }
    }
}

enum Event {
    /// A message reaches `to` over connection `conn`.
    Deliver {
        to: usize,
        key: PeerKey,
        message: SimMessage,
    },
    /// The uplink of `node` finished a transmission.
    UplinkFree {
        node: usize,
    },
    Timer {
        node: usize,
    },
    Join {
        node: usize,
    },
    Connect {
        from: usize,
        to: usize,
    },
}

#[derive(Debug, Clone)]
enum SimMessage {
    Control(Outgoing),
    /// A block from the origin.
    OriginBlock {
        block: BlockRef,
    },
    /// Block data and whether it is genuine.
    Block {
        block: BlockRef,
        honest: bool,
    },
    Closed,
}

/// An event due at `at`; `seq` orders events due at the same instant by
/// when they were scheduled, so runs are deterministic.
struct Scheduled {
    at: Duration,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Whom a joining node hears of.
#[derive(Debug, Clone, Copy)]
pub enum Tracker {
    /// Every node that joined so far, and every node hears of each
    /// newcomer at once: a full mesh, for small swarms.
    Everyone,
    /// Up to this many nodes drawn at random from those that joined so
    /// far, as a tracker answers an announce; the others learn of the
    /// newcomer only when it connects to them.
    Random(usize),
}

struct Queued {
    key: PeerKey,
    message: SimMessage,
    bytes: u64,
}

pub struct Node {
    pub spec: NodeSpec,
    pub swarm: Option<Swarm>,
    pub addr: SocketAddr,
    /// Our key -> (other node, its key for us).
    links: BTreeMap<PeerKey, (usize, PeerKey)>,
    control: VecDeque<Queued>,
    /// Connections that may have a block to send (the swarm said
    /// `UploadReady` and has not since answered `next_upload` with none),
    /// so picking the next upload does not ask every connection.
    upload_ready: BTreeSet<PeerKey>,
    /// The connection served last: the next turn goes to the one after it.
    upload_turn: Option<PeerKey>,
    uplink_busy: bool,
    downlink_free_at: Duration,
    /// Per piece: offset and honesty of each stored block.
    blocks: HashMap<u32, Vec<(u32, bool)>>,
    blocks_sent: u32,
    pub uploaded: u64,
    pub failed_pieces: u32,
    /// Blocks uploaded per piece.
    pub piece_uploads: HashMap<u32, u32>,
    /// Block bytes uploaded per receiving node.
    pub uploaded_to: HashMap<usize, u64>,
    pub finished_at: Option<Duration>,
    timer_at: Option<Duration>,
    /// `have`s held back by `have_delay`, and when the last batch went.
    held_haves: Vec<Queued>,
    haves_sent_at: Duration,
}

pub struct Simulation {
    pub nodes: Vec<Node>,
    pub layout: Layout,
    events: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    /// Nodes finished (seeds and the origin from the start).
    finished: usize,
    origin: Option<usize>,
    by_addr: HashMap<SocketAddr, usize>,
    tracker: Tracker,
    tracker_rng: SmallRng,
    /// Nodes that joined, in order (the origin excluded).
    joined: Vec<usize>,
    /// Events handled so far.
    pub events_handled: u64,
    pub now: Duration,
    t0: Instant,
    latency: Duration,
    /// Seed's upload when the first leecher finished.
    pub seed_upload_at_first_finish: Option<u64>,
    pub settings: SwarmSettings,
    /// Seeds every node's swarm (each its own way).
    seed: u64,
    /// The publisher's ceiling on the swarm's origin bytes, given to every
    /// node that joins (as its signed manifest would).
    pub origin_ceiling: Option<u64>,
}

fn block_hash(piece: u32, offset: u32, honest: bool) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&piece.to_le_bytes());
    hash[4..8].copy_from_slice(&offset.to_le_bytes());
    hash[8] = u8::from(!honest);
    hash
}

impl Simulation {
    pub fn new(
        layout: Layout,
        specs: Vec<NodeSpec>,
        settings: SwarmSettings,
        seed: u64,
        tracker: Tracker,
    ) -> Simulation {
        let t0 = Instant::now();
        let nodes: Vec<Node> = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Node {
                spec,
                swarm: None,
                addr: SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 6881)),
                links: BTreeMap::new(),
                control: VecDeque::new(),
                upload_ready: BTreeSet::new(),
                upload_turn: None,
                uplink_busy: false,
                downlink_free_at: Duration::ZERO,
                blocks: HashMap::new(),
                blocks_sent: 0,
                uploaded: 0,
                failed_pieces: 0,
                piece_uploads: HashMap::new(),
                uploaded_to: HashMap::new(),
                finished_at: None,
                timer_at: None,
                held_haves: Vec::new(),
                haves_sent_at: Duration::ZERO,
            })
            .collect();
        let origin = nodes.iter().position(|n| n.spec.origin);
        let by_addr = nodes.iter().enumerate().map(|(i, n)| (n.addr, i)).collect();
        let mut sim = Simulation {
            nodes,
            layout,
            events: BinaryHeap::new(),
            seq: 0,
            finished: 0,
            origin,
            by_addr,
            tracker,
            tracker_rng: SmallRng::seed_from_u64(seed ^ 0x0074_7261_636b_6572),
            joined: Vec::new(),
            events_handled: 0,
            now: Duration::ZERO,
            t0,
            latency: Duration::from_millis(20),
            seed_upload_at_first_finish: None,
            settings,
            seed,
            origin_ceiling: None,
        };
        for i in 0..sim.nodes.len() {
            let at = Duration::from_secs_f64(sim.nodes[i].spec.join_at);
            sim.schedule(at, Event::Join { node: i });
        }

        sim
    }

    /// The virtual clock as the swarms see it.
    pub fn instant(&self) -> Instant {
        self.t0 + self.now
    }

    fn schedule(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.events.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// Runs until every node finished or `limit` virtual seconds passed.
    pub fn run(&mut self, limit: Duration) {
        while let Some(Reverse(next)) = self.events.peek() {
            if next.at > limit || self.all_finished() {
                break;
            }
            let Reverse(Scheduled { at, event, .. }) = self.events.pop().unwrap();
            self.now = at;
            self.events_handled += 1;
            self.handle(event);
        }
    }

    pub fn all_finished(&self) -> bool {
        self.finished == self.nodes.len()
    }

    fn finish(&mut self, node: usize) {
        if self.nodes[node].finished_at.is_none() {
            self.nodes[node].finished_at = Some(self.now);
            self.finished += 1;
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Join { node } => self.join(node),
            Event::Connect { from, to } => self.connect(from, to),
            Event::Timer { node } => {
                if self.nodes[node].timer_at != Some(self.now) {
                    return; // superseded by an earlier timer
                }
                self.nodes[node].timer_at = None;
                let now = self.instant();
                if let Some(swarm) = self.nodes[node].swarm.as_mut() {
                    swarm.handle_timeout(now);
                }
                self.drain(node);
            }
            Event::UplinkFree { node } => {
                self.nodes[node].uplink_busy = false;
                self.pump_uplink(node);
            }
            Event::Deliver { to, key, message } => self.deliver(to, key, message),
        }
    }

    fn origin_node(&self) -> Option<usize> {
        self.origin
    }

    fn join(&mut self, node: usize) {
        if self.nodes[node].spec.origin {
            self.finish(node);
            return; // a web server: nothing to run
        }
        let count = self.layout.piece_count();
        let have = if self.nodes[node].spec.seed {
            Bitfield::full(count)
        } else {
            Bitfield::new(count)
        };
        let now = self.instant();
        let seed = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (node as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let peer_id = self.peer_id(node);
        let mut swarm = Swarm::new(
            self.layout.clone(),
            have,
            self.settings.clone(),
            seed,
            peer_id,
            now,
        );
        if self.origin_node().is_some() {
            swarm.set_origin(now, &self.peer_id(node));
            swarm.set_origin_ceiling(self.origin_ceiling);
        }
        let others: Vec<SocketAddr> = match self.tracker {
            Tracker::Everyone => self.joined.iter().map(|&i| self.nodes[i].addr).collect(),
            Tracker::Random(limit) => {
                let count = limit.min(self.joined.len());
                sample(&mut self.tracker_rng, self.joined.len(), count)
                    .into_iter()
                    .map(|at| self.nodes[self.joined[at]].addr)
                    .collect()
            }
        };
        // The tracker counts everyone who announced, this node included.
        let agents = self.joined.len() as u64 + 1;
        swarm.handle_tracker_answer(now, others, Some(agents));
        if let Tracker::Everyone = self.tracker {
            // On their next announce, every node hears of the newcomer.
            let addr = self.nodes[node].addr;
            for &other in &self.joined {
                if let Some(swarm) = self.nodes[other].swarm.as_mut() {
                    swarm.add_addresses(now, [addr]);
                }
            }
        }
        self.joined.push(node);
        if self.nodes[node].spec.seed {
            self.finish(node);
        }
        self.nodes[node].swarm = Some(swarm);
        self.drain(node);
    }

    fn node_by_addr(&self, addr: SocketAddr) -> Option<usize> {
        self.by_addr.get(&addr).copied()
    }

    /// A node's peer id, as a shoal agent's: distinct per node and run.
    fn peer_id(&self, node: usize) -> [u8; 20] {
        let mut id = *b"-SH0100-000000000000";
        id[8..12].copy_from_slice(&(node as u32).to_be_bytes());
        id[12..20].copy_from_slice(&self.seed.to_be_bytes());
        id
    }

    fn connect(&mut self, from: usize, to: usize) {
        let now = self.instant();
        let caps_of = |node: usize| PeerCaps {
            fast: true,
            extended: false,
            peer_id: self.peer_id(node),
            origin_share_id: Some(swarm::origin_share_id(&self.peer_id(node))),
        };
        let (from_caps, to_caps) = (caps_of(from), caps_of(to));
        let (from_addr, to_addr) = (self.nodes[from].addr, self.nodes[to].addr);
        let Some(to_swarm) = self.nodes[to].swarm.as_mut() else {
            self.nodes[from]
                .swarm
                .as_mut()
                .unwrap()
                .handle_connect_failed(now, to_addr);
            return self.drain(from);
        };
        let incoming = to_swarm.handle_peer_connected(now, from_addr, false, from_caps);
        let Ok(to_key) = incoming else {
            self.nodes[from]
                .swarm
                .as_mut()
                .unwrap()
                .handle_connect_failed(now, to_addr);
            return self.drain(from);
        };
        match self.nodes[from]
            .swarm
            .as_mut()
            .unwrap()
            .handle_peer_connected(now, to_addr, true, to_caps)
        {
            Ok(from_key) => {
                self.nodes[from].links.insert(from_key, (to, to_key));
                self.nodes[to].links.insert(to_key, (from, from_key));
            }
            Err(_) => self.nodes[to]
                .swarm
                .as_mut()
                .unwrap()
                .handle_peer_disconnected(now, to_key),
        }
        self.drain(from);
        self.drain(to);
    }

    /// Carries out a node's actions.
    fn drain(&mut self, node: usize) {
        let now = self.instant();
        self.send_held_haves(node);
        loop {
            let Some(swarm) = self.nodes[node].swarm.as_mut() else {
                return;
            };
            let Some(action) = swarm.poll_action() else {
                break;
            };
            match action {
                Action::Connect(addr) => {
                    if let Some(to) = self.node_by_addr(addr) {
                        self.schedule(self.now + self.latency, Event::Connect { from: node, to });
                    }
                }
                Action::Send(key, message) => {
                    let queued = Queued {
                        key,
                        message: SimMessage::Control(message.clone()),
                        bytes: HEADER_BYTES,
                    };
                    let n = &mut self.nodes[node];
                    if matches!(message, Outgoing::Have(_)) && !n.spec.have_delay.is_zero() {
                        n.held_haves.push(queued);
                        continue;
                    }
                    n.control.push_back(queued);
                    self.pump_uplink(node);
                }
                Action::Disconnect(key, _) => self.close(node, key),
                Action::UploadReady(key) => {
                    self.nodes[node].upload_ready.insert(key);
                    self.pump_uplink(node);
                }
                Action::Verify(piece) => {
                    let mut offsets = self.nodes[node].blocks.remove(&piece).unwrap_or_default();
                    offsets.sort_unstable();
                    let passed = offsets.iter().all(|(_, honest)| *honest);
                    self.nodes[node].failed_pieces += u32::from(!passed);
                    let hashes: Vec<[u8; 32]> = offsets
                        .iter()
                        .map(|&(o, h)| block_hash(piece, o, h))
                        .collect();
                    self.nodes[node]
                        .swarm
                        .as_mut()
                        .unwrap()
                        .handle_piece_checked(now, piece, passed, &hashes);
                }
                Action::PieceVerified(_) => {}
                Action::FetchFromOrigin { blocks, .. } => {
                    // The origin's uplink carries each block to us like
                    // any transmission; blocks queue behind others.
                    let origin = self.origin_node().expect("a fetch needs an origin");
                    for block in blocks {
                        self.nodes[origin].control.push_back(Queued {
                            key: PeerKey(node as u32),
                            message: SimMessage::OriginBlock { block },
                            bytes: u64::from(block.length),
                        });
                    }
                    self.pump_uplink(origin);
                }
                Action::CancelOriginFetch { piece } => {
                    // Blocks still queued at the origin are never sent;
                    // one already on the wire arrives and is refused.
                    let origin = self.origin_node().expect("a fetch needs an origin");
                    self.nodes[origin].control.retain(|q| {
                        q.key != PeerKey(node as u32)
                            || !matches!(q.message, SimMessage::OriginBlock { block } if block.piece == piece)
                    });
                }
                Action::OriginUnusable(reason) => {
                    panic!("node {node} dropped the origin: {reason}")
                }
                Action::Completed => {
                    self.finish(node);
                    if self.seed_upload_at_first_finish.is_none() {
                        self.seed_upload_at_first_finish = Some(
                            self.nodes
                                .iter()
                                .filter(|n| n.spec.seed)
                                .map(|n| n.uploaded)
                                .sum(),
                        );
                    }
                }
            }
        }
        let next = self.nodes[node]
            .swarm
            .as_ref()
            .unwrap()
            .poll_timeout()
            .saturating_duration_since(self.t0)
            .max(self.now);
        if self.nodes[node].timer_at.is_none_or(|t| next < t) {
            self.nodes[node].timer_at = Some(next);
            self.schedule(next, Event::Timer { node });
        }
    }

    fn send_held_haves(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if n.held_haves.is_empty() || self.now < n.haves_sent_at + n.spec.have_delay {
            return;
        }
        n.haves_sent_at = self.now;
        n.control.extend(n.held_haves.drain(..));
        self.pump_uplink(node);
    }

    fn close(&mut self, node: usize, key: PeerKey) {
        let now = self.instant();
        self.nodes[node].upload_ready.remove(&key);
        if let Some((other, other_key)) = self.nodes[node].links.remove(&key) {
            self.nodes[node]
                .swarm
                .as_mut()
                .unwrap()
                .handle_peer_disconnected(now, key);
            self.schedule(
                self.now + self.latency,
                Event::Deliver {
                    to: other,
                    key: other_key,
                    message: SimMessage::Closed,
                },
            );
        }
    }

    /// Starts the next transmissions on an idle uplink: the queued
    /// control messages back to back (an origin's blocks one at a time),
    /// else one block, connections taking turns. The uplink is busy until the last of them is sent.
    fn pump_uplink(&mut self, node: usize) {
        if self.nodes[node].uplink_busy {
            return;
        }
        let mut free_at = self.now;
        while let Some(queued) = self.nodes[node].control.pop_front() {
            let one_at_a_time = !matches!(queued.message, SimMessage::Control(_));
            free_at = self.transmit(node, queued, free_at);
            // A receiver's downlink is booked when a transmission starts,
            // so an origin's blocks are booked one at a time, as before,
            // not a whole queue ahead of others' blocks.
            if one_at_a_time && free_at > self.now {
                break;
            }
        }
        if free_at == self.now {
            if let Some(queued) = self.next_block(node) {
                free_at = self.transmit(node, queued, free_at);
            }
        }
        if free_at > self.now {
            self.nodes[node].uplink_busy = true;
            self.schedule(free_at, Event::UplinkFree { node });
        }
    }

    /// Sends one message from `node`'s uplink starting at `start`; returns
    /// when its last byte left (`start` if its connection is gone).
    fn transmit(&mut self, node: usize, queued: Queued, start: Duration) -> Duration {
        let route = if self.nodes[node].spec.origin {
            Some((queued.key.0 as usize, swarm::ORIGIN))
        } else {
            self.nodes[node].links.get(&queued.key).copied()
        };
        let Some((to, to_key)) = route else {
            return start;
        };
        let n = &mut self.nodes[node];
        let send_time =
            Duration::from_secs_f64(queued.bytes as f64 / n.spec.rate_at(n.spec.upload_bps, start));
        let sent_at = start + send_time;
        if let SimMessage::Block { block, .. } = &queued.message {
            n.uploaded += u64::from(block.length);
            *n.piece_uploads.entry(block.piece).or_default() += 1;
            *n.uploaded_to.entry(to).or_default() += u64::from(block.length);
            let now = self.t0 + sent_at;
            n.swarm.as_mut().unwrap().handle_block_sent(
                now,
                queued.key,
                1,
                u64::from(block.length),
            );
        }
        if let SimMessage::OriginBlock { block } = &queued.message {
            n.uploaded += u64::from(block.length);
        }
        // The receiver's downlink: one message at a time at its rate.
        let receiver = &mut self.nodes[to];
        let arrival = (sent_at + self.latency).max(receiver.downlink_free_at);
        let receive_time = Duration::from_secs_f64(
            queued.bytes as f64 / receiver.spec.rate_at(receiver.spec.download_bps, arrival),
        );
        receiver.downlink_free_at = arrival + receive_time;
        self.schedule(
            arrival + receive_time,
            Event::Deliver {
                to,
                key: to_key,
                message: queued.message,
            },
        );
        sent_at
    }

    fn next_block(&mut self, node: usize) -> Option<Queued> {
        if self.nodes[node].spec.origin {
            return None;
        }
        let n = &mut self.nodes[node];
        // Connections take turns: those after the last served, then the
        // rest, the last served last.
        let turns: Vec<PeerKey> = match n.upload_turn {
            None => n.upload_ready.iter().copied().collect(),
            Some(turn) => n
                .upload_ready
                .range((Bound::Excluded(turn), Bound::Unbounded))
                .chain(n.upload_ready.range(..=turn))
                .copied()
                .collect(),
        };
        for key in turns {
            let Some(block) = n.swarm.as_mut().unwrap().next_upload(key) else {
                n.upload_ready.remove(&key);
                continue;
            };
            n.upload_turn = Some(key);
            n.blocks_sent += 1;
            let honest = n
                .spec
                .lie_every
                .is_none_or(|every| !n.blocks_sent.is_multiple_of(every));
            return Some(Queued {
                key,
                message: SimMessage::Block { block, honest },
                bytes: u64::from(block.length) + HEADER_BYTES,
            });
        }
        None
    }

    fn deliver(&mut self, to: usize, key: PeerKey, message: SimMessage) {
        let now = self.instant();
        if let SimMessage::OriginBlock { block } = message {
            let swarm = self.nodes[to].swarm.as_mut().unwrap();
            if swarm.handle_origin_block(now, block) {
                self.nodes[to]
                    .blocks
                    .entry(block.piece)
                    .or_default()
                    .push((block.offset, true));
            }
            return self.drain(to);
        }
        if !self.nodes[to].links.contains_key(&key) {
            return; // closed meanwhile
        }
        match message {
            SimMessage::OriginBlock { .. } => unreachable!("handled above"),
            SimMessage::Closed => {
                self.nodes[to].links.remove(&key);
                self.nodes[to].upload_ready.remove(&key);
                self.nodes[to]
                    .swarm
                    .as_mut()
                    .unwrap()
                    .handle_peer_disconnected(now, key);
            }
            SimMessage::Block { block, honest, .. } => {
                let swarm = self.nodes[to].swarm.as_mut().unwrap();
                if let Ok(true) = swarm.handle_block(now, key, block) {
                    self.nodes[to]
                        .blocks
                        .entry(block.piece)
                        .or_default()
                        .push((block.offset, honest));
                }
            }
            SimMessage::Control(out) => {
                let swarm = self.nodes[to].swarm.as_mut().unwrap();
                let result = swarm.handle_message(now, key, &out.to_message());
                result.expect("simulated peers follow the protocol");
            }
        }
        self.drain(to);
    }

    /// Bytes the origin sent.
    pub fn origin_uploaded(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.spec.origin)
            .map(|n| n.uploaded)
            .sum()
    }

    /// Completion times of the leechers, in seconds.
    pub fn leecher_times(&self) -> Vec<f64> {
        self.nodes
            .iter()
            .filter(|n| !n.spec.seed && !n.spec.origin)
            .filter_map(|n| n.finished_at.map(|t| t.as_secs_f64()))
            .collect()
    }
}

/// Kumar–Ross lower bound on the time for every peer to finish.
pub fn kumar_ross(file_bytes: f64, seed_up: f64, peer_down: f64, peers: f64, peer_up: f64) -> f64 {
    (file_bytes / seed_up)
        .max(file_bytes / peer_down)
        .max(peers * file_bytes / (seed_up + peers * peer_up))
}
