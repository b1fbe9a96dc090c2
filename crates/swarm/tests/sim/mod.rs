//! A deterministic swarm simulation: many `Swarm`s, no sockets, virtual
//! time. Each node has an uplink and a downlink of fixed rate; messages
//! queue on the sender's uplink (connections served round-robin), cross a
//! fixed latency, then queue on the receiver's downlink, as in libtorrent's
//! simulations with per-link rates. Piece checks are instant: a piece
//! passes when every block came from an honest node.

#![allow(clippy::unwrap_used)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meta::layout::Layout;
use swarm::{Action, Bitfield, Outgoing, PeerCaps, PeerKey, Swarm, SwarmSettings};
use wire::BlockRef;

pub use testkit::layout::synthetic_layout;

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
    upload_turn: usize,
    uplink_busy: bool,
    downlink_free_at: Duration,
    /// Per piece: honesty of each stored block.
    blocks: HashMap<u32, HashMap<u32, bool>>,
    blocks_sent: u32,
    pub uploaded: u64,
    pub failed_pieces: u32,
    /// Blocks uploaded per piece.
    pub piece_uploads: HashMap<u32, u32>,
    pub finished_at: Option<Duration>,
    timer_at: Option<Duration>,
}

pub struct Simulation {
    pub nodes: Vec<Node>,
    pub layout: Layout,
    events: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    payloads: HashMap<u64, Event>,
    seq: u64,
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
    ) -> Simulation {
        let t0 = Instant::now();
        let nodes = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Node {
                spec,
                swarm: None,
                addr: SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 6881)),
                links: BTreeMap::new(),
                control: VecDeque::new(),
                upload_turn: 0,
                uplink_busy: false,
                downlink_free_at: Duration::ZERO,
                blocks: HashMap::new(),
                blocks_sent: 0,
                uploaded: 0,
                failed_pieces: 0,
                piece_uploads: HashMap::new(),
                finished_at: None,
                timer_at: None,
            })
            .collect();
        let mut sim = Simulation {
            nodes,
            layout,
            events: BinaryHeap::new(),
            payloads: HashMap::new(),
            seq: 0,
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

    fn instant(&self) -> Instant {
        self.t0 + self.now
    }

    fn schedule(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.payloads.insert(self.seq, event);
        self.events.push(Reverse((at, self.seq, 0)));
    }

    /// Runs until every node finished or `limit` virtual seconds passed.
    pub fn run(&mut self, limit: Duration) {
        while let Some(&Reverse((at, seq, _))) = self.events.peek() {
            if at > limit || self.all_finished() {
                break;
            }
            self.events.pop();
            self.now = at;
            let event = self.payloads.remove(&seq).unwrap();
            self.handle(event);
        }
    }

    pub fn all_finished(&self) -> bool {
        self.nodes.iter().all(|n| n.finished_at.is_some())
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Join { node } => self.join(node),
            Event::Connect { from, to } => self.connect(from, to),
            Event::Timer { node } => {
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
        self.nodes.iter().position(|n| n.spec.origin)
    }

    fn join(&mut self, node: usize) {
        if self.nodes[node].spec.origin {
            self.nodes[node].finished_at = Some(self.now);
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
        // The tracker: every node that joined so far.
        let others: Vec<SocketAddr> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != node && n.swarm.is_some() && !n.spec.origin)
            .map(|(_, n)| n.addr)
            .collect();
        swarm.add_addresses(now, others);
        // ...and, on their next announce, every node hears of the newcomer.
        let addr = self.nodes[node].addr;
        for other in 0..self.nodes.len() {
            if let Some(swarm) = self.nodes[other].swarm.as_mut() {
                swarm.add_addresses(now, [addr]);
            }
        }
        if self.nodes[node].spec.seed {
            self.nodes[node].finished_at = Some(self.now);
        }
        self.nodes[node].swarm = Some(swarm);
        self.drain(node);
    }

    fn node_by_addr(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == addr)
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
                    self.nodes[node].control.push_back(Queued {
                        key,
                        message: SimMessage::Control(message),
                        bytes: HEADER_BYTES,
                    });
                    self.pump_uplink(node);
                }
                Action::Disconnect(key, _) => self.close(node, key),
                Action::UploadReady(_) => self.pump_uplink(node),
                Action::Verify(piece) => {
                    let blocks = self.nodes[node].blocks.remove(&piece).unwrap_or_default();
                    let mut offsets: Vec<(u32, bool)> = blocks.into_iter().collect();
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
                Action::OriginUnusable(reason) => {
                    panic!("node {node} dropped the origin: {reason}")
                }
                Action::Completed => {
                    self.nodes[node].finished_at.get_or_insert(self.now);
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
            .saturating_duration_since(self.t0);
        if self.nodes[node].timer_at.is_none_or(|t| next < t) {
            self.nodes[node].timer_at = Some(next);
            self.schedule(next.max(self.now), Event::Timer { node });
        }
    }

    fn close(&mut self, node: usize, key: PeerKey) {
        let now = self.instant();
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

    /// Starts the next transmission on an idle uplink: control messages
    /// first, then blocks, connections taking turns.
    fn pump_uplink(&mut self, node: usize) {
        if self.nodes[node].uplink_busy {
            return;
        }
        let queued = match self.nodes[node].control.pop_front() {
            Some(q) => Some(q),
            None => self.next_block(node),
        };
        let Some(queued) = queued else { return };
        let route = if self.nodes[node].spec.origin {
            Some((queued.key.0 as usize, swarm::ORIGIN))
        } else {
            self.nodes[node].links.get(&queued.key).copied()
        };
        let Some((to, to_key)) = route else {
            return self.pump_uplink(node); // connection gone; try the next
        };
        let n = &mut self.nodes[node];
        n.uplink_busy = true;
        let send_time = Duration::from_secs_f64(
            queued.bytes as f64 / n.spec.rate_at(n.spec.upload_bps, self.now),
        );
        let sent_at = self.now + send_time;
        if let SimMessage::Block { block, .. } = &queued.message {
            n.uploaded += u64::from(block.length);
            *n.piece_uploads.entry(block.piece).or_default() += 1;
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
        self.schedule(sent_at, Event::UplinkFree { node });
        self.schedule(
            arrival + receive_time,
            Event::Deliver {
                to,
                key: to_key,
                message: queued.message,
            },
        );
    }

    fn next_block(&mut self, node: usize) -> Option<Queued> {
        if self.nodes[node].spec.origin {
            return None;
        }
        let keys: Vec<PeerKey> = self.nodes[node].links.keys().copied().collect();
        if keys.is_empty() {
            return None;
        }
        for step in 0..keys.len() {
            let key = keys[(self.nodes[node].upload_turn + step) % keys.len()];
            let n = &mut self.nodes[node];
            if let Some(block) = n.swarm.as_mut().unwrap().next_upload(key) {
                n.upload_turn = (n.upload_turn + step + 1) % keys.len();
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
                    .insert(block.offset, true);
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
                        .insert(block.offset, honest);
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

    /// Completion times of the leechers, in seconds.
    /// Bytes the origin sent.
    pub fn origin_uploaded(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.spec.origin)
            .map(|n| n.uploaded)
            .sum()
    }

    pub fn leecher_times(&self) -> Vec<f64> {
        self.nodes
            .iter()
            .filter(|n| !n.spec.seed && !n.spec.origin)
            .filter_map(|n| n.finished_at.map(|t| t.as_secs_f64()))
            .collect()
    }

    pub fn failed_pieces(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.failed_pieces).collect()
    }

    pub fn is_banned_by(&self, node: usize, suspect: usize) -> bool {
        self.nodes[node]
            .swarm
            .as_ref()
            .is_some_and(|s| s.is_banned(self.nodes[suspect].addr))
    }
}

/// Kumar–Ross lower bound on the time for every peer to finish.
pub fn kumar_ross(file_bytes: f64, seed_up: f64, peer_down: f64, peers: f64, peer_up: f64) -> f64 {
    (file_bytes / seed_up)
        .max(file_bytes / peer_down)
        .max(peers * file_bytes / (seed_up + peers * peer_up))
}
