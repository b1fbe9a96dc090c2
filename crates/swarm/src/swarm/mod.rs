//! [`Swarm`]: the state machine tying picker, choker, peers and bans together.

mod initial_seeding;
mod origin;

pub use origin::{origin_share_id, ORIGIN};

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
use crate::choker::{self, Candidate};
use crate::peer::{Peer, PeerCaps};
use crate::picker::{Block, PiecePicker};
use crate::settings::SwarmSettings;
use crate::smart_ban::SmartBan;
use crate::PeerKey;

/// A peer broke the protocol. The swarm has already queued its disconnect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer {peer} broke the protocol: {problem}")]
pub struct ProtocolViolation {
    pub peer: SocketAddr,
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
    origin: Option<origin::Origin>,
    /// When a peer last sent us a block we asked for.
    last_peer_block: Option<Instant>,
    /// While initial seeding: to how many peers each piece was shown.
    reveal_counts: Option<Vec<u32>>,
    downloaded: u64,
    received: u64,
    uploaded: u64,
}

impl Swarm {
    /// A swarm for a release laid out as `layout`, of which we already hold
    /// the pieces in `have` (verified earlier, or all of them when seeding).
    pub fn new(
        layout: Layout,
        have: Bitfield,
        settings: SwarmSettings,
        seed: u64,
        now: Instant,
    ) -> Swarm {
        let mut rng = SmallRng::seed_from_u64(seed);
        let completed = have.is_full();
        let reveal_counts =
            (completed && settings.initial_seeding).then(|| vec![0; have.len() as usize]);
        let picker = PiecePicker::new(layout, have, &mut rng);
        Swarm {
            next_tick: now,
            next_choke: now + settings.choke_interval,
            next_optimistic: now + settings.optimistic_interval,
            settings,
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
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` wants to run next.
    pub fn poll_timeout(&self) -> Instant {
        self.next_tick.min(self.next_choke)
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

    pub fn stats(&mut self, now: Instant) -> SwarmStats {
        let (mut download_rate, mut upload_rate) = (0, 0);
        for peer in self.peers.values_mut() {
            download_rate += peer.download.rate(now);
            upload_rate += peer.upload.rate(now);
        }
        SwarmStats {
            pieces_verified: self.picker.have().count(),
            piece_count: self.picker.have().len(),
            peers: self.peers.len(),
            downloaded: self.downloaded,
            received: self.received,
            uploaded: self.uploaded,
            download_rate,
            upload_rate,
            banned: self.book.banned_count(),
            from_origin: self.origin_bytes(),
        }
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
    pub fn handle_peer_connected(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        outgoing: bool,
        caps: PeerCaps,
    ) -> Result<PeerKey, DisconnectReason> {
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
            .insert(key, Peer::new(addr, caps, have.len(), now));
        if hiding {
            self.start_revealing(key);
        }
        // A free upload slot need not wait for the next choker round.
        self.next_choke = self.next_choke.min(now + Duration::from_millis(100));
        Ok(key)
    }

    pub fn handle_peer_disconnected(&mut self, now: Instant, key: PeerKey) {
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        self.reveals_after_disconnect(peer.revealed.take(), &peer.pieces);
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
        let peer = self
            .peers
            .get(&key)
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |p| p.addr);
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
            Message::Request(r) => {
                let block = Block {
                    piece: r.piece,
                    offset: r.offset,
                    length: r.length,
                };
                self.peer_requests(key, block)?;
            }
            Message::Cancel(r) => {
                let block = Block {
                    piece: r.piece,
                    offset: r.offset,
                    length: r.length,
                };
                peer.upload_queue.retain(|b| *b != block);
            }
            Message::Reject(r) if fast => {
                let block = Block {
                    piece: r.piece,
                    offset: r.offset,
                    length: r.length,
                };
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

    /// The peer's whole piece set, from a bitfield, have-all or have-none.
    /// BEP 3 sends it first, but some clients (aria2) send a fresh bitfield
    /// later instead of several haves; it then replaces the old set.
    fn set_peer_pieces(
        &mut self,
        now: Instant,
        key: PeerKey,
        pieces: Bitfield,
    ) -> Result<(), ProtocolViolation> {
        let wanted = pieces
            .ones()
            .filter(|&p| !self.picker.have().get(p))
            .count() as u32;
        let both_complete = self.completed && pieces.is_full();
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        let old = std::mem::replace(&mut peer.pieces, pieces);
        peer.wanted = wanted;
        self.picker.remove_peer_pieces(&old);
        if let Some(peer) = self.peers.get(&key) {
            self.picker.add_peer_pieces(&peer.pieces);
        }
        if both_complete {
            self.actions
                .push_back(Action::Disconnect(key, DisconnectReason::NotUseful));
            return Ok(());
        }
        self.reveals_after_bitfield(now, key);
        self.update_interest(key);
        self.fill_requests(now, key);
        Ok(())
    }

    fn peer_has(
        &mut self,
        now: Instant,
        key: PeerKey,
        piece: u32,
    ) -> Result<(), ProtocolViolation> {
        if piece >= self.picker.have().len() {
            return Err(
                self.violation(key, format!("have for piece {piece}, which does not exist"))
            );
        }
        let we_lack = !self.picker.have().get(piece);
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        if peer.pieces.set(piece) {
            self.picker.increment(piece);
            self.reveals_after_have(now, key, piece);
            if we_lack {
                let Some(peer) = self.peers.get_mut(&key) else {
                    return Ok(());
                };
                peer.wanted += 1;
                self.update_interest(key);
                self.fill_requests(now, key);
            }
        }
        Ok(())
    }

    fn peer_requests(&mut self, key: PeerKey, block: Block) -> Result<(), ProtocolViolation> {
        let layout = self.picker.layout();
        if block.piece >= layout.piece_count()
            || u64::from(block.offset) + u64::from(block.length)
                > u64::from(layout.piece_len(block.piece))
        {
            return Err(self.violation(
                key,
                format!("a request beyond the end of piece {}", block.piece),
            ));
        }
        let have = self.picker.have().get(block.piece);
        let max_queue = self.settings.max_upload_queue;
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        if peer.am_choking || !have || peer.upload_queue.len() >= max_queue {
            // A request crossing our choke in flight, for a piece we do not
            // have, or past the queue limit: refuse politely where the
            // protocol allows.
            if peer.caps.fast {
                self.actions
                    .push_back(Action::Send(key, Outgoing::Reject(block)));
            }
            return Ok(());
        }
        if !peer.upload_queue.contains(&block) {
            if peer.upload_queue.is_empty() {
                self.actions.push_back(Action::UploadReady(key));
            }
            peer.upload_queue.push_back(block);
        }
        Ok(())
    }

    /// The next block to send `peer`, if it is unchoked and asked for one.
    pub fn next_upload(&mut self, key: PeerKey) -> Option<Block> {
        let peer = self.peers.get_mut(&key)?;
        if peer.am_choking {
            return None;
        }
        peer.upload_queue.pop_front()
    }

    /// A block went out to `peer`.
    pub fn handle_block_sent(&mut self, now: Instant, key: PeerKey, bytes: u64) {
        self.uploaded += bytes;
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.upload.record(now, bytes);
        }
    }

    /// A block arrived from `peer`. Returns whether to store it.
    pub fn handle_block(
        &mut self,
        now: Instant,
        key: PeerKey,
        block: Block,
    ) -> Result<bool, ProtocolViolation> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(false);
        };
        self.received += u64::from(block.length);
        match peer.take_request(block) {
            Some(sent_at) => {
                let rtt = now.saturating_duration_since(sent_at);
                peer.base_rtt = Some(peer.base_rtt.map_or(rtt, |r| r.min(rtt)));
                peer.last_progress = now;
                peer.snubbed = false;
                self.last_peer_block = Some(now);
                peer.download.record(now, u64::from(block.length));
            }
            None if peer.recently_cancelled.contains(&block) => return Ok(false),
            None => {
                return Err(self.violation(
                    key,
                    format!("a block of piece {} we never asked for", block.piece),
                ))
            }
        }
        let arrival = self.picker.on_block(key, block);
        for other in &arrival.also_requested_from {
            if let Some(other_peer) = self.peers.get_mut(other) {
                if other_peer.take_request(block).is_some() {
                    other_peer.remember_cancelled(block);
                    self.actions
                        .push_back(Action::Send(*other, Outgoing::Cancel(block)));
                }
            }
        }
        if arrival.piece_complete {
            self.actions.push_back(Action::Verify(block.piece));
        }
        self.fill_requests(now, key);
        Ok(arrival.accepted)
    }

    fn sender_addr(&self, key: PeerKey) -> Option<SocketAddr> {
        if key == ORIGIN {
            return Some(origin::ORIGIN_ADDR);
        }
        self.peers.get(&key).map(|p| p.addr).or_else(|| {
            self.departed
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, a)| *a)
        })
    }

    /// The result of a `Verify` action: whether the piece passed, and the
    /// SHA-256 of each of its 16 KiB data blocks (to tell liars apart).
    pub fn handle_piece_checked(
        &mut self,
        now: Instant,
        piece: u32,
        passed: bool,
        block_hashes: &[[u8; 32]],
    ) {
        let senders: Vec<SocketAddr> = self
            .picker
            .senders(piece)
            .into_iter()
            .filter_map(|key| self.sender_addr(key))
            .collect();
        if passed {
            // Bytes count by source once they are verified and kept.
            let layout = self.picker.layout();
            let piece_len = layout.piece_len(piece);
            let (mut from_peers, mut from_origin) = (0, 0);
            for (index, sender) in self.picker.senders(piece).into_iter().enumerate() {
                let offset = index as u32 * 16 * 1024;
                if layout.block_is_padding(piece, offset) {
                    continue;
                }
                let length = u64::from((16 * 1024).min(piece_len - offset));
                if sender == ORIGIN {
                    from_origin += length;
                } else {
                    from_peers += length;
                }
            }
            self.downloaded += from_peers;
            self.add_origin_bytes(from_origin);
            self.picker.piece_passed(piece);
            for liar in self.smart_ban.passed(piece, block_hashes) {
                self.strike(liar);
            }
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for key in keys {
                let Some(peer) = self.peers.get_mut(&key) else {
                    continue;
                };
                if peer.pieces.get(piece) {
                    peer.wanted = peer.wanted.saturating_sub(1);
                }
                // Every peer hears of it, those that have it too: a seed
                // counts on it to know what has spread (initial seeding).
                self.actions
                    .push_back(Action::Send(key, Outgoing::Have(piece)));
                self.update_interest(key);
            }
            self.actions.push_back(Action::PieceVerified(piece));
            if self.picker.have().is_full() && !self.completed {
                self.completed = true;
                self.actions.push_back(Action::Completed);
                let seeds: Vec<PeerKey> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.pieces.is_full())
                    .map(|(k, _)| *k)
                    .collect();
                for key in seeds {
                    self.actions
                        .push_back(Action::Disconnect(key, DisconnectReason::NotUseful));
                }
            }
        } else {
            self.picker.piece_failed(piece);
            let blocks: Vec<(SocketAddr, [u8; 32])> = senders
                .into_iter()
                .zip(block_hashes.iter().copied())
                .collect();
            if let Some(culprit) = self.smart_ban.failed(piece, blocks) {
                self.strike(culprit);
            }
            self.refill_all(now);
        }
    }

    fn strike(&mut self, addr: SocketAddr) {
        if addr == origin::ORIGIN_ADDR {
            // The publisher's own server sent bad data: stop using it at
            // once (peers still can finish the download) and say so.
            self.drop_origin(
                "its data failed verification: the file on the server does not match the release"
                    .into(),
            );
            return;
        }
        if self.book.strike(addr, self.settings.strikes_to_ban) {
            let banned: Vec<PeerKey> = self
                .peers
                .iter()
                .filter(|(_, p)| p.addr == addr)
                .map(|(k, _)| *k)
                .collect();
            for key in banned {
                self.actions
                    .push_back(Action::Disconnect(key, DisconnectReason::Banned));
            }
        }
    }

    fn update_interest(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let interested = peer.wanted > 0;
        if interested != peer.am_interested {
            peer.am_interested = interested;
            let message = if interested {
                Outgoing::Interested
            } else {
                Outgoing::NotInterested
            };
            self.actions.push_back(Action::Send(key, message));
        }
    }

    /// Requests in flight that keep `peer`'s link busy: its rate times the
    /// round trip plus some slack, in blocks.
    fn queue_depth(&mut self, now: Instant, key: PeerKey) -> usize {
        let settings = &self.settings;
        let Some(peer) = self.peers.get_mut(&key) else {
            return 0;
        };
        if peer.snubbed {
            return 1;
        }
        let rate = peer.download.rate(now);
        if rate == 0 {
            return settings.initial_queue_depth;
        }
        let horizon = peer.base_rtt.unwrap_or_default() + settings.request_queue_time;
        let blocks = (rate as f64 * horizon.as_secs_f64() / 16384.0).ceil() as usize;
        blocks.clamp(settings.min_queue_depth, settings.max_queue_depth)
    }

    fn fill_requests(&mut self, now: Instant, key: PeerKey) {
        let depth = self.queue_depth(now, key);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.peer_choking || !peer.am_interested || peer.requests.len() >= depth {
            return;
        }
        let blocks = self.picker.pick(
            key,
            &peer.pieces,
            depth - peer.requests.len(),
            &mut self.rng,
        );
        if peer.requests.is_empty() {
            peer.last_progress = now;
        }
        for block in blocks {
            peer.requests.push((block, now));
            self.actions
                .push_back(Action::Send(key, Outgoing::Request(block)));
        }
    }

    fn refill_all(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill_requests(now, key);
        }
    }

    fn unchoke(&mut self, now: Instant, key: PeerKey) {
        if let Some(peer) = self.peers.get_mut(&key) {
            if peer.am_choking {
                peer.am_choking = false;
                peer.unchoked_at = Some(now);
                self.actions.push_back(Action::Send(key, Outgoing::Unchoke));
                self.top_up(now, key);
            }
        }
    }

    fn choke(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.am_choking {
            return;
        }
        peer.am_choking = true;
        peer.unchoked_at = None;
        self.actions.push_back(Action::Send(key, Outgoing::Choke));
        // BEP 6: with the fast extension, choking does not drop the queue
        // silently; each waiting request gets a reject.
        let dropped: Vec<Block> = peer.upload_queue.drain(..).collect();
        if peer.caps.fast {
            for block in dropped {
                self.actions
                    .push_back(Action::Send(key, Outgoing::Reject(block)));
            }
        }
    }

    fn run_choker(&mut self, now: Instant) {
        let rotate = now >= self.next_optimistic;
        if rotate {
            self.next_optimistic = now + self.settings.optimistic_interval;
        }
        let candidates: Vec<Candidate> = self
            .peers
            .iter_mut()
            .map(|(key, peer)| Candidate {
                peer: *key,
                interested: peer.peer_interested,
                download_rate: peer.download.rate(now),
                upload_rate: peer.upload.rate(now),
                snubbed: peer.snubbed,
                missing: peer.pieces.len() - peer.pieces.count(),
                unchoked_since: peer.unchoked_at,
                optimistic: peer.optimistic,
            })
            .collect();
        let (unchoke, optimistic) = choker::choose(
            &candidates,
            self.completed,
            self.settings.unchoke_slots,
            self.settings.optimistic_slots,
            rotate,
            now,
            &mut self.rng,
        );
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.optimistic = optimistic.contains(&key);
            }
            if unchoke.contains(&key) {
                self.unchoke(now, key);
            } else {
                self.choke(key);
            }
        }
    }

    /// Housekeeping: snubbed peers, new connections, the choker.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_tick {
            self.next_tick = now + self.settings.tick;
            self.check_snubs(now);
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

    fn check_snubs(&mut self, now: Instant) {
        let timeout = self.settings.request_timeout;
        let stalled: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                !p.requests.is_empty() && now.saturating_duration_since(p.last_progress) > timeout
            })
            .map(|(k, _)| *k)
            .collect();
        for key in stalled {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            peer.snubbed = true;
            let requests = std::mem::take(&mut peer.requests);
            for (block, _) in requests {
                peer.remember_cancelled(block);
                self.picker.abort_request(key, block);
                self.actions
                    .push_back(Action::Send(key, Outgoing::Cancel(block)));
            }
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

    /// Bytes of payload we hold verified.
    pub fn verified_bytes(&self) -> u64 {
        let layout = self.picker.layout();
        self.picker
            .have()
            .ones()
            .map(|p| u64::from(layout.piece_len(p)))
            .sum()
    }
}
