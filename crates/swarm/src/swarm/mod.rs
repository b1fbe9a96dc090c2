//! [`Swarm`]: the state machine tying picker, choker, peers and bans together.
//!
//! This file holds the state, the connection lifecycle (twin connections
//! included), message dispatch and the timer; each job has its own module
//! beside it:
//! - `requests`: what to ask each peer for, and arriving blocks;
//! - `interest`: what peers have and whether we want it;
//! - `uploads`: serving requests, and the choker;
//! - `accounting`: what a hash check decides (bytes by source, blame,
//!   completion) and the verify backlog;
//! - `origin`: when to fetch from the publisher's web server;
//! - `initial_seeding`: BEP 16 super-seeding;
//! - `streaming`: readers' cursors and the window fetched first for them;
//! - `timeline`: a snapshot of every connection, for tracing.

mod accounting;
mod initial_seeding;
mod interest;
mod origin;
mod origin_state;
mod requests;
mod stream_cursors;
mod streaming;
mod timeline;
mod uploads;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meta::layout::Layout;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use wire::Message;

use crate::action::{Action, DisconnectReason, Outgoing};
use crate::bitfield::Bitfield;
use crate::book::AddressBook;
use crate::peer::{Peer, PeerCaps};
use crate::picker::PiecePicker;
use crate::reveal::SwarmReveals;
use crate::settings::SwarmSettings;
use crate::smart_ban::SmartBan;
use crate::PeerKey;

/// A peer broke the protocol. The swarm has already queued its disconnect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer {} broke the protocol: {problem}", .peer.map_or_else(|| "(gone)".to_owned(), |a| a.to_string()))]
pub struct ProtocolViolation {
    /// `None` if the peer had already left.
    pub peer: Option<SocketAddr>,
    pub problem: String,
}

/// A snapshot for progress displays and accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwarmStats {
    pub pieces_verified: u32,
    pub piece_count: u32,
    pub peers: usize,
    /// Payload bytes received that we asked for and kept.
    pub downloaded: u64,
    /// Payload bytes received in all, duplicates and late copies included.
    pub received: u64,
    pub uploaded: u64,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub banned: usize,
    /// Payload bytes from the origin (web seed) that we kept.
    pub from_origin: u64,
}

/// Addresses of peers that left, kept so blame can still reach them.
const DEPARTED_KEPT: usize = 1024;

#[derive(Debug)]
pub struct Swarm {
    settings: SwarmSettings,
    /// Ours, as given in handshakes.
    peer_id: [u8; 20],
    picker: PiecePicker,
    peers: BTreeMap<PeerKey, Peer>,
    departed: VecDeque<(PeerKey, SocketAddr)>,
    next_key: u32,
    book: AddressBook,
    smart_ban: SmartBan,
    actions: VecDeque<Action>,
    rng: SmallRng,
    next_tick: Instant,
    next_choke: Instant,
    next_optimistic: Instant,
    completed: bool,
    /// The publisher's web server, if the torrent names one.
    origin: Option<origin_state::Origin>,
    /// When a peer last sent us a block we asked for.
    last_peer_block: Option<Instant>,
    /// While initial seeding: what was shown and sent, swarm-wide.
    reveal_counts: Option<SwarmReveals>,
    downloaded: u64,
    received: u64,
    uploaded: u64,
    /// Bytes of pieces handed to the driver to verify and not yet checked.
    verifying_bytes: u64,
    /// Readers of the release and where they read.
    streams: stream_cursors::StreamCursors,
    /// Peers whose wait for a crowd ended by this time were decided.
    crowds_decided_until: Instant,
}

impl Swarm {
    /// A swarm for a release laid out as `layout`, of which we already hold
    /// the pieces in `have` (verified earlier, or all of them when seeding).
    /// `peer_id` is ours, as given in handshakes.
    pub fn new(
        layout: Layout,
        have: Bitfield,
        settings: SwarmSettings,
        seed: u64,
        peer_id: [u8; 20],
        now: Instant,
    ) -> Swarm {
        let mut rng = SmallRng::seed_from_u64(seed);
        let completed = have.is_full();
        let reveal_counts =
            (completed && settings.initial_seeding).then(|| SwarmReveals::new(have.len()));
        let picker = PiecePicker::new(layout, have, &mut rng);
        Swarm {
            next_tick: now,
            next_choke: now + settings.choke_interval,
            next_optimistic: now + settings.optimistic_interval,
            settings,
            peer_id,
            picker,
            peers: BTreeMap::new(),
            departed: VecDeque::new(),
            next_key: 0,
            book: AddressBook::default(),
            smart_ban: SmartBan::default(),
            actions: VecDeque::new(),
            rng,
            completed,
            origin: None,
            last_peer_block: None,
            reveal_counts,
            downloaded: 0,
            received: 0,
            uploaded: 0,
            verifying_bytes: 0,
            streams: stream_cursors::StreamCursors::default(),
            crowds_decided_until: now,
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` wants to run next.
    pub fn poll_timeout(&self) -> Instant {
        let tick = self.next_tick.min(self.next_choke);
        self.next_crowd_decision().map_or(tick, |t| t.min(tick))
    }

    pub fn is_complete(&self) -> bool {
        self.completed
    }

    pub fn have(&self) -> &Bitfield {
        self.picker.have()
    }

    pub fn picker(&self) -> &PiecePicker {
        &self.picker
    }

    pub fn peer_addr(&self, peer: PeerKey) -> Option<SocketAddr> {
        self.peers.get(&peer).map(|p| p.addr)
    }

    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.book.is_banned(addr)
    }

    /// Addresses learned from a tracker or elsewhere.
    pub fn add_addresses(&mut self, now: Instant, addrs: impl IntoIterator<Item = SocketAddr>) {
        for addr in addrs {
            self.book.add(addr, now);
        }
    }

    pub fn handle_connect_failed(&mut self, now: Instant, addr: SocketAddr) {
        self.book.dial_failed(addr, now, self.settings.dial_retry);
    }

    /// A connection finished its handshake. `outgoing` connections were
    /// dialled at `addr` from the book; incoming ones come from any port.
    ///
    /// Twins: when two peers dial each other at once, both connections
    /// complete, from different ports. One is enough, and a second would
    /// take a slot another peer could use, so both sides keep the one
    /// opened by the smaller peer id: a new connection either is refused
    /// as a duplicate or replaces (disconnects) its twin.
    pub fn handle_peer_connected(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        outgoing: bool,
        caps: PeerCaps,
    ) -> Result<PeerKey, DisconnectReason> {
        if let Some(share_id) = caps.origin_share_id {
            self.note_agent(share_id);
        }
        self.resolve_twin(now, addr, outgoing, &caps.peer_id)?;
        if self.book.is_banned(addr) {
            return Err(DisconnectReason::Banned);
        }
        if self.peers.values().any(|p| p.addr == addr) {
            return Err(DisconnectReason::Duplicate);
        }
        if self.peers.len() >= self.settings.max_peers {
            if outgoing {
                self.book
                    .retry_after(addr, now + self.settings.reconnect_delay);
            }
            return Err(DisconnectReason::TooManyPeers);
        }
        if outgoing {
            self.book.connected(addr);
        } else {
            self.book.connected_if_known(addr);
        }
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        if caps.extended {
            self.actions.push_back(Action::Send(
                key,
                Outgoing::ExtensionHandshake(self.extension_handshake()),
            ));
        }
        let have = self.picker.have();
        let hiding = self.initial_seeding_active();
        let first = if hiding {
            caps.fast.then_some(Outgoing::HaveNone)
        } else if caps.fast && have.is_full() {
            Some(Outgoing::HaveAll)
        } else if caps.fast && have.count() == 0 {
            Some(Outgoing::HaveNone)
        } else if have.count() > 0 {
            Some(Outgoing::Bitfield(have.as_bytes().to_vec()))
        } else {
            None
        };
        if let Some(message) = first {
            self.actions.push_back(Action::Send(key, message));
        }
        self.peers
            .insert(key, Peer::new(addr, caps, outgoing, have.len(), now));
        if hiding {
            self.start_revealing(now, key);
        }
        // A free upload slot need not wait for the next choker round.
        self.next_choke = self.next_choke.min(now + Duration::from_millis(100));
        Ok(key)
    }

    /// Our BEP 10 handshake: no extension messages, and `reqq`, how many
    /// requests we queue. A client that pipelines by its rate (Transmission
    /// asks for 10 s worth, 7,600 blocks at 12.5 MB/s) otherwise sends more
    /// than we queue, and every request past the queue is rejected and sent
    /// again: measured, four requests per block a Transmission downloader
    /// got from a lone seed.
    fn extension_handshake(&self) -> Vec<u8> {
        let queue = u32::try_from(self.settings.max_upload_queue).unwrap_or(u32::MAX);
        wire::ExtensionHandshake {
            request_queue: Some(queue),
            ..Default::default()
        }
        .encode()
    }

    /// Refuses a connection whose twin stays, or drops the twin it replaces.
    fn resolve_twin(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        outgoing: bool,
        their_id: &[u8; 20],
    ) -> Result<(), DisconnectReason> {
        let opened_by = |outgoing: bool| if outgoing { self.peer_id } else { *their_id };
        let twin = self
            .peers
            .iter()
            .find(|(_, p)| p.caps.peer_id == *their_id)
            .map(|(key, p)| (*key, opened_by(p.outgoing)));
        let Some((twin, twin_opened_by)) = twin else {
            return Ok(());
        };
        if twin_opened_by <= opened_by(outgoing) {
            if outgoing {
                self.book.dial_failed(addr, now, self.settings.dial_retry);
            }
            return Err(DisconnectReason::Duplicate);
        }
        self.actions
            .push_back(Action::Disconnect(twin, DisconnectReason::Duplicate));
        self.handle_peer_disconnected(now, twin);
        Ok(())
    }

    pub fn handle_peer_disconnected(&mut self, now: Instant, key: PeerKey) {
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        self.reveals_after_disconnect(peer.reveal.take(), &peer.pieces);
        self.picker.remove_peer_pieces(&peer.pieces);
        for (block, _) in &peer.requests {
            self.picker.abort_request(key, *block);
        }
        self.picker.forget_starter(key);
        if self.departed.len() == DEPARTED_KEPT {
            self.departed.pop_front();
        }
        self.departed.push_back((key, peer.addr));
        self.book
            .retry_after(peer.addr, now + self.settings.reconnect_delay);
        if !peer.am_choking {
            self.next_choke = now;
        }
        self.refill_all(now);
    }

    fn violation(&mut self, key: PeerKey, problem: impl Into<String>) -> ProtocolViolation {
        let problem = problem.into();
        let peer = self.peers.get(&key).map(|p| p.addr);
        self.actions.push_back(Action::Disconnect(
            key,
            DisconnectReason::Protocol(problem.clone()),
        ));
        ProtocolViolation { peer, problem }
    }

    /// A message other than `piece` (use `handle_block` for those).
    pub fn handle_message(
        &mut self,
        now: Instant,
        key: PeerKey,
        message: &Message<'_>,
    ) -> Result<(), ProtocolViolation> {
        // While initial seeding, peers lose interest between reveals.
        let rechoke_on_lost_interest = !self.initial_seeding_active();
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        let fast = peer.caps.fast;
        match *message {
            Message::KeepAlive
            | Message::Port(_)
            | Message::Suggest { .. }
            | Message::AllowedFast { .. } => {}
            Message::Extended { .. }
            | Message::HashRequest(_)
            | Message::Hashes { .. }
            | Message::HashReject(_) => {}
            Message::Unknown { .. } => {}
            Message::Choke => {
                peer.peer_choking = true;
                let requests = std::mem::take(&mut peer.requests);
                for (block, _) in requests {
                    peer.remember_cancelled(block);
                    self.picker.abort_request(key, block);
                }
                self.refill_all(now);
            }
            Message::Unchoke => {
                peer.peer_choking = false;
                self.fill_requests(now, key);
            }
            Message::Interested => {
                peer.peer_interested = true;
                let unchoked = self.peers.values().filter(|p| !p.am_choking).count();
                if unchoked < self.settings.unchoke_slots + self.settings.optimistic_slots {
                    self.unchoke(now, key);
                }
            }
            Message::NotInterested => {
                peer.peer_interested = false;
                // An unchoked peer that wants nothing more holds a slot it
                // does not use: give it to someone else now, not at the
                // next round. At a crowd's tail, peers finish one after
                // another and each would idle a slot for up to a round
                // (simulated 120-peer crowd on mixed links: last peer at
                // 1.47 x the bound instead of 1.75 x).
                if !peer.am_choking && rechoke_on_lost_interest {
                    self.next_choke = self.next_choke.min(now);
                }
            }
            Message::Have { piece } => self.peer_has(now, key, piece)?,
            Message::Bitfield(bytes) => {
                let count = self.picker.have().len();
                let Some(pieces) = Bitfield::from_bytes(bytes, count) else {
                    return Err(self.violation(key, "a bitfield of the wrong size"));
                };
                self.set_peer_pieces(now, key, pieces)?;
            }
            Message::HaveAll | Message::HaveNone if !fast => {
                return Err(self.violation(key, "have-all/have-none without the fast extension"));
            }
            Message::HaveAll => {
                let all = Bitfield::full(self.picker.have().len());
                self.set_peer_pieces(now, key, all)?;
            }
            Message::HaveNone => {
                let none = Bitfield::new(self.picker.have().len());
                self.set_peer_pieces(now, key, none)?;
            }
            Message::Request(block) => {
                self.peer_requests(now, key, block)?;
            }
            Message::Cancel(block) => {
                peer.upload_queue.retain(|b| *b != block);
            }
            Message::Reject(block) if fast => {
                if peer.take_request(block).is_some() {
                    peer.remember_cancelled(block);
                    self.picker.abort_request(key, block);
                }
            }
            Message::Reject(_) => {
                return Err(self.violation(key, "reject without the fast extension"))
            }
            Message::Piece { .. } => {}
        }
        Ok(())
    }

    /// Housekeeping: snubbed peers, new connections, the choker.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.decide_crowds(now);
        if now >= self.next_tick {
            self.next_tick = now + self.settings.tick;
            self.check_snubs(now);
            self.send_held_haves();
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for key in keys {
                self.top_up(now, key);
            }
            self.dial(now);
            self.refill_all(now);
            self.plan_origin(now);
        }
        if now >= self.next_choke {
            self.next_choke = now + self.settings.choke_interval;
            self.run_choker(now);
        }
    }

    fn dial(&mut self, now: Instant) {
        let connecting = self.book.connecting_count();
        let room = self
            .settings
            .max_peers
            .saturating_sub(self.peers.len() + connecting);
        let half_open_room = self.settings.max_connecting.saturating_sub(connecting);
        for addr in self.book.take_dialable(now, room.min(half_open_room)) {
            self.actions.push_back(Action::Connect(addr));
        }
    }

    /// Every connected peer and whether we are connected to `addr`.
    pub fn is_connected(&self, addr: SocketAddr) -> bool {
        self.book.is_connected_or_connecting(addr) || self.peers.values().any(|p| p.addr == addr)
    }

    pub fn connected_peers(&self) -> impl Iterator<Item = (PeerKey, SocketAddr)> + '_ {
        self.peers.iter().map(|(k, p)| (*k, p.addr))
    }

    /// The peer's pieces, for tests and status displays.
    pub fn peer_pieces(&self, key: PeerKey) -> Option<&Bitfield> {
        self.peers.get(&key).map(|p| &p.pieces)
    }

    /// Pieces we still need that no connected peer has (for the origin planner).
    pub fn unavailable_pieces(&self) -> Vec<u32> {
        self.picker.unavailable_pieces().collect()
    }
}
