//! One torrent's session: the tokio task that drives its `Swarm`.
//!
//! Everything that happens to the torrent arrives here as an event (a
//! connection's message, a finished disk write, a tracker answer, a timer)
//! and is handed to the swarm; what the swarm asks for is carried out with
//! sockets, `spawn_blocking` disk work and other tasks, whose results come
//! back as events. The session owns no protocol logic of its own.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use meta::layout::PieceVerdict;
use meta::Torrent;
use swarm::{Action, Bitfield, Block, Outgoing, PeerCaps, PeerKey, Swarm};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use wire::{BlockRef, DecodeLimits, Decoded, Handshake, Message};

use crate::announcer::{self, AnnounceSetup, Totals};
use crate::connection::{self, ConnContext, ConnEvent, ConnId, WriterCmd};
use crate::events::{Progress, TorrentEvent};
use crate::rate_limit::RateLimiter;
use crate::resume::ResumeState;
use crate::settings::EngineSettings;
use crate::storage::{PieceStore, StorageError};
use crate::web_seed::WebSeed;
use crate::SHOAL_PEER_ID_PREFIX;

/// Blocks queued to one peer's socket, at most: enough to keep a fast link
/// busy, few enough that a choke takes effect soon.
const UPLOADS_IN_FLIGHT: usize = 16;
/// Memory for whole pieces read to serve uploads. Peers ask for a piece's
/// blocks in a row, so one read serves many requests.
const UPLOAD_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Bytes of assembled pieces waiting for their hash check, at most. Past
/// this the session stops taking blocks from its connections, so a fast
/// peer cannot make us hold more than this in memory when hashing lags.
const VERIFY_BACKLOG_BYTES: usize = 32 * 1024 * 1024;
/// Events queued from connections: small, so that backpressure reaches
/// the sockets (and the peers) instead of piling up here.
const CONN_EVENT_QUEUE: usize = 256;

/// Events from the engine's other tasks.
#[derive(Debug)]
pub(crate) enum Internal {
    Dialed {
        addr: SocketAddr,
        result: Result<(TcpStream, Handshake), String>,
    },
    Incoming {
        stream: TcpStream,
        addr: SocketAddr,
        handshake: Handshake,
    },
    Checked {
        piece: u32,
        result: Result<PieceVerdict, String>,
    },
    OriginFetched {
        offset: u32,
        blocks: Vec<Block>,
        result: Result<Vec<u8>, OriginFailure>,
    },
    PieceRead {
        piece: u32,
        result: Result<Vec<u8>, String>,
    },
    ResumeSaved(Result<(), String>),
    Finished(Result<PathBuf, String>),
    /// Peers to try, from the user rather than a tracker.
    AddPeers(Vec<SocketAddr>),
    Stop,
}

/// Why a fetch from the origin failed, after its retries.
#[derive(Debug)]
pub(crate) struct OriginFailure {
    permanent: bool,
    reason: String,
}

struct Conn {
    key: PeerKey,
    addr: SocketAddr,
    writer: mpsc::UnboundedSender<WriterCmd>,
    uploads_in_flight: usize,
    /// The peer id of the side that opened the connection: when two
    /// connections join the same pair of peers, both sides keep the one
    /// opened by the smaller id.
    opened_by: [u8; 20],
    peer_id: [u8; 20],
}

/// Everything a session starts from.
pub(crate) struct SessionSetup {
    pub torrent: Arc<Torrent>,
    pub store: Arc<PieceStore>,
    /// Pieces verified and written, for readers of the release.
    pub verified: watch::Sender<Bitfield>,
    pub resume: ResumeState,
    pub swarm: Swarm,
    pub settings: EngineSettings,
    pub handshake: Handshake,
    pub listen_port: u16,
    pub download_limit: Arc<RateLimiter>,
    pub upload_limit: Arc<RateLimiter>,
    pub keep_seeding: bool,
    /// The publisher's web server (the torrent's first usable web seed).
    pub origin: Option<Arc<WebSeed>>,
    /// Already complete: seeding from the start.
    pub seeding: bool,
    /// Where its trackers may be reached.
    pub remote: crate::AddressPolicy,
    /// The engine's HTTP client for `remote`, shared with other torrents.
    pub http: reqwest::Client,
    pub events: mpsc::Sender<TorrentEvent>,
}

pub(crate) struct Session {
    torrent: Arc<Torrent>,
    store: Arc<PieceStore>,
    verified: watch::Sender<Bitfield>,
    resume: ResumeState,
    resume_dirty: bool,
    resume_saving: bool,
    swarm: Swarm,
    settings: EngineSettings,
    handshake: Handshake,
    conns: HashMap<ConnId, Conn>,
    keys: HashMap<PeerKey, ConnId>,
    next_conn: ConnId,
    conn_tx: mpsc::Sender<ConnEvent>,
    internal_tx: mpsc::Sender<Internal>,
    conn_context: ConnContext,
    /// Pieces being downloaded, assembled in memory: a piece is hashed
    /// from here and written once, only if it verifies, so bad data never
    /// reaches the disk and nothing is read back.
    buffers: HashMap<u32, Vec<u8>>,
    /// Bytes of pieces being hashed.
    verifying_bytes: usize,
    /// Recently read pieces, newest last, for serving uploads.
    upload_cache: VecDeque<(u32, Arc<Vec<u8>>)>,
    /// Pieces being read for uploads, and the blocks waiting for them.
    reading: HashMap<u32, Vec<(ConnId, Block)>>,
    keep_seeding: bool,
    origin: Option<Arc<WebSeed>>,
    finished: bool,
    started: Instant,
    events: mpsc::Sender<TorrentEvent>,
    totals: watch::Sender<Totals>,
    stop_error: Option<String>,
}

impl Session {
    /// Runs the session to its end. `internal_rx` also receives incoming
    /// connections routed here by the engine's listener.
    pub(crate) async fn run(
        setup: SessionSetup,
        internal_tx: mpsc::Sender<Internal>,
        mut internal_rx: mpsc::Receiver<Internal>,
    ) {
        let (conn_tx, mut conn_rx) = mpsc::channel(CONN_EVENT_QUEUE);
        let piece_count = setup.swarm.have().len();
        let conn_context = ConnContext {
            events: conn_tx.clone(),
            limits: DecodeLimits::for_pieces(piece_count),
            download_limit: setup.download_limit.clone(),
            upload_limit: setup.upload_limit.clone(),
            idle_timeout: setup.settings.idle_timeout,
            keepalive_interval: setup.settings.keepalive_interval,
        };
        let total = setup.torrent.total_size();
        let verified = setup.swarm.verified_bytes();
        let (totals_tx, totals_rx) = watch::channel(Totals {
            left: total.saturating_sub(verified),
            completed: setup.seeding,
            ..Totals::default()
        });
        let (peers_tx, mut peers_rx) = mpsc::channel(16);
        let (warnings_tx, mut warnings_rx) = mpsc::channel(16);
        let announce = AnnounceSetup {
            urls: setup
                .torrent
                .tracker_urls()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            info_hash: setup.handshake.info_hash,
            peer_id: setup.handshake.peer_id,
            port: setup.listen_port,
            key: rand::random(),
            timeout: setup.settings.tracker_timeout,
            remote: setup.remote,
            client: setup.http.clone(),
        };
        let announcer: JoinHandle<()> =
            tokio::spawn(announcer::run(announce, totals_rx, peers_tx, warnings_tx));
        let mut session = Session {
            torrent: setup.torrent,
            store: setup.store,
            verified: setup.verified,
            resume: setup.resume,
            resume_dirty: false,
            resume_saving: false,
            swarm: setup.swarm,
            settings: setup.settings,
            handshake: setup.handshake,
            conns: HashMap::new(),
            keys: HashMap::new(),
            next_conn: 0,
            conn_tx,
            internal_tx,
            conn_context,
            buffers: HashMap::new(),
            verifying_bytes: 0,
            upload_cache: VecDeque::new(),
            reading: HashMap::new(),
            keep_seeding: setup.keep_seeding,
            origin: setup.origin,
            finished: setup.seeding,
            started: Instant::now(),
            events: setup.events,
            totals: totals_tx,
            stop_error: None,
        };
        let mut progress_tick = tokio::time::interval(std::time::Duration::from_secs(1));
        let mut resume_tick = tokio::time::interval(session.settings.resume_save_interval);
        loop {
            session.carry_out_actions();
            let wake = tokio::time::Instant::from_std(session.swarm.poll_timeout());
            tokio::select! {
                Some(event) = conn_rx.recv(), if session.verifying_bytes < VERIFY_BACKLOG_BYTES => {
                    session.on_conn_event(event);
                }
                Some(event) = internal_rx.recv() => {
                    if session.on_internal(event) {
                        break;
                    }
                }
                Some(addrs) = peers_rx.recv() => session.swarm.add_addresses(Instant::now(), addrs),
                Some(warning) = warnings_rx.recv() => session.emit(TorrentEvent::Warning(warning)),
                _ = tokio::time::sleep_until(wake) => session.swarm.handle_timeout(Instant::now()),
                _ = progress_tick.tick() => session.report_progress(),
                _ = resume_tick.tick() => session.save_resume_if_needed(),
            }
        }
        session.shut_down(announcer).await;
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn emit(&self, event: TorrentEvent) {
        // A slow reader loses progress ticks, never the torrent.
        let _ = self.events.try_send(event);
    }

    fn progress(&mut self) -> Progress {
        let stats = self.swarm.stats(self.now());
        Progress {
            verified_bytes: self.swarm.verified_bytes().min(self.torrent.total_size()),
            total_bytes: self.torrent.total_size(),
            bytes_from_peers: stats.downloaded,
            bytes_from_origin: stats.from_origin,
            uploaded: stats.uploaded,
            download_rate: stats.download_rate,
            upload_rate: stats.upload_rate,
            peers: stats.peers,
            pieces_verified: stats.pieces_verified,
            piece_count: stats.piece_count,
            seconds: self.started.elapsed().as_secs_f64(),
        }
    }

    fn report_progress(&mut self) {
        let progress = self.progress();
        self.totals.send_modify(|t| {
            t.uploaded = progress.uploaded;
            t.downloaded = progress.bytes_from_peers + progress.bytes_from_origin;
            t.from_origin = progress.bytes_from_origin;
            t.left = progress.total_bytes - progress.verified_bytes;
        });
        self.emit(TorrentEvent::Progress(progress));
    }

    fn carry_out_actions(&mut self) {
        while let Some(action) = self.swarm.poll_action() {
            match action {
                Action::Connect(addr) => self.dial(addr),
                Action::Send(key, message) => self.send(key, &message),
                Action::Disconnect(key, reason) => {
                    tracing::debug!(peer = ?self.conn_of(key).map(|c| c.addr), ?reason, "disconnecting");
                    self.close(key);
                }
                Action::UploadReady(key) => self.serve_uploads(key),
                Action::Verify(piece) => self.verify(piece),
                Action::PieceVerified(piece) => {
                    self.verified.send_modify(|have| {
                        have.set(piece);
                    });
                    self.resume.mark_verified(piece);
                    self.resume_dirty = true;
                }
                Action::Completed => self.finish(),
                Action::FetchFromOrigin {
                    piece,
                    offset,
                    length,
                    blocks,
                } => self.fetch_from_origin(piece, offset, length, blocks),
                Action::OriginUnusable(reason) => {
                    let url = self.origin.as_ref().map_or("", |o| o.url()).to_owned();
                    self.emit(TorrentEvent::Warning(format!(
                        "not using the origin {url} any more: {reason}; downloading from peers only"
                    )));
                }
            }
        }
    }

    fn conn_of(&self, key: PeerKey) -> Option<&Conn> {
        self.keys.get(&key).and_then(|id| self.conns.get(id))
    }

    fn dial(&self, addr: SocketAddr) {
        let internal = self.internal_tx.clone();
        let handshake = self.handshake;
        let timeout = self.settings.connect_timeout;
        tokio::spawn(async move {
            let result = connection::dial(addr, &handshake, timeout).await;
            let _ = internal.send(Internal::Dialed { addr, result }).await;
        });
    }

    fn send(&self, key: PeerKey, message: &Outgoing) {
        if let Some(conn) = self.conn_of(key) {
            let _ = conn.writer.send(WriterCmd::Bytes(encode(message)));
        }
    }

    fn close(&mut self, key: PeerKey) {
        if let Some(id) = self.keys.remove(&key) {
            // Dropping the writer's queue ends the writer, which shuts the
            // socket; the reader then ends too.
            self.conns.remove(&id);
        }
        self.swarm.handle_peer_disconnected(self.now(), key);
    }

    fn register(
        &mut self,
        stream: TcpStream,
        addr: SocketAddr,
        outgoing: bool,
        theirs: &Handshake,
    ) {
        let opened_by = if outgoing {
            self.handshake.peer_id
        } else {
            theirs.peer_id
        };
        // A peer that dialled us while we dialled it: one connection is
        // enough, and a second would take a slot another peer could use.
        let twin = self
            .conns
            .iter()
            .find(|(_, c)| c.peer_id == theirs.peer_id)
            .map(|(_, c)| (c.key, c.opened_by));
        if let Some((twin_key, twin_opened_by)) = twin {
            if twin_opened_by <= opened_by {
                tracing::debug!(%addr, "second connection to a connected peer dropped");
                if outgoing {
                    self.swarm.handle_connect_failed(self.now(), addr);
                }
                return;
            }
            tracing::debug!(%addr, "connection replaces its twin");
            self.close(twin_key);
        }
        let caps = PeerCaps {
            fast: theirs.reserved.fast(),
            extended: theirs.reserved.extension_protocol(),
            origin_share_id: theirs
                .peer_id
                .starts_with(SHOAL_PEER_ID_PREFIX)
                .then(|| swarm::origin_share_id(&theirs.peer_id)),
        };
        match self
            .swarm
            .handle_peer_connected(self.now(), addr, outgoing, caps)
        {
            Ok(key) => {
                let id = self.next_conn;
                self.next_conn += 1;
                let _ = stream.set_nodelay(true);
                let writer = connection::start(stream, id, self.conn_context.clone());
                self.conns.insert(
                    id,
                    Conn {
                        key,
                        addr,
                        writer,
                        uploads_in_flight: 0,
                        opened_by,
                        peer_id: theirs.peer_id,
                    },
                );
                self.keys.insert(key, id);
            }
            Err(reason) => tracing::debug!(%addr, ?reason, "refused peer"),
        }
    }

    fn on_conn_event(&mut self, event: ConnEvent) {
        let now = self.now();
        match event {
            ConnEvent::Frame { conn, frame } => {
                let Some(key) = self.conns.get(&conn).map(|c| c.key) else {
                    return;
                };
                if let Ok(Decoded::Complete { message, .. }) =
                    wire::decode(&frame, &self.conn_context.limits)
                {
                    if let Err(violation) = self.swarm.handle_message(now, key, &message) {
                        tracing::info!(%violation, "closing connection");
                    }
                }
            }
            ConnEvent::Block { conn, block, data } => {
                let Some(key) = self.conns.get(&conn).map(|c| c.key) else {
                    return;
                };
                match self.swarm.handle_block(now, key, block) {
                    Ok(true) => self.buffer(block, &data),
                    Ok(false) => {}
                    Err(violation) => tracing::info!(%violation, "closing connection"),
                }
            }
            ConnEvent::BlockSent {
                conn,
                blocks,
                bytes,
            } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                c.uploads_in_flight = c.uploads_in_flight.saturating_sub(blocks);
                let key = c.key;
                self.swarm.handle_block_sent(now, key, bytes);
                self.serve_uploads(key);
            }
            ConnEvent::Closed { conn, reason } => {
                if let Some(c) = self.conns.remove(&conn) {
                    tracing::debug!(peer = %c.addr, %reason, "connection closed");
                    self.keys.remove(&c.key);
                    self.swarm.handle_peer_disconnected(now, c.key);
                }
            }
        }
    }

    fn buffer(&mut self, block: Block, data: &[u8]) {
        let layout = self.store.layout();
        let buffer = self
            .buffers
            .entry(block.piece)
            .or_insert_with(|| vec![0; layout.piece_len(block.piece) as usize]);
        let at = block.offset as usize;
        if let Some(slot) = buffer.get_mut(at..at + data.len()) {
            slot.copy_from_slice(data);
        }
    }

    /// Checks an assembled piece off the async threads and, if it passes,
    /// writes it.
    fn verify(&mut self, piece: u32) {
        let Some(data) = self.buffers.remove(&piece) else {
            return;
        };
        self.verifying_bytes += data.len();
        let store = self.store.clone();
        let torrent = self.torrent.clone();
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = blocking(move || {
                let info = store.layout().piece(&torrent, piece);
                let verdict = meta::layout::check_piece(&info, &data);
                if verdict.ok {
                    store.write_block(piece, 0, &data)?;
                }
                Ok(verdict)
            })
            .await;
            let _ = internal.send(Internal::Checked { piece, result }).await;
        });
    }

    fn serve_uploads(&mut self, key: PeerKey) {
        let Some(&id) = self.keys.get(&key) else {
            return;
        };
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if conn.uploads_in_flight >= UPLOADS_IN_FLIGHT {
                return;
            }
            let Some(block) = self.swarm.next_upload(key) else {
                return;
            };
            conn.uploads_in_flight += 1;
            let cached = self.upload_cache.iter().find(|(p, _)| *p == block.piece);
            match cached.map(|(_, data)| data.clone()) {
                Some(data) => self.send_block(id, block, &data),
                None => self.read_piece(id, block),
            }
        }
    }

    fn send_block(&mut self, id: ConnId, block: Block, piece: &[u8]) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let range = block.offset as usize..(block.offset + block.length) as usize;
        match piece.get(range) {
            Some(data) => {
                let _ = conn.writer.send(WriterCmd::Block {
                    block,
                    data: data.to_vec(),
                });
            }
            None => conn.uploads_in_flight = conn.uploads_in_flight.saturating_sub(1),
        }
    }

    /// Reads a whole piece for `block`, once however many blocks wait for it.
    fn read_piece(&mut self, id: ConnId, block: Block) {
        let waiting = self.reading.entry(block.piece).or_default();
        waiting.push((id, block));
        if waiting.len() > 1 {
            return;
        }
        let store = self.store.clone();
        let internal = self.internal_tx.clone();
        let piece = block.piece;
        tokio::spawn(async move {
            let length = store.layout().piece_len(piece);
            let result = blocking(move || store.read_block(piece, 0, length)).await;
            let _ = internal.send(Internal::PieceRead { piece, result }).await;
        });
    }

    fn piece_read(&mut self, piece: u32, result: Result<Vec<u8>, String>) {
        let waiting = self.reading.remove(&piece).unwrap_or_default();
        match result {
            Ok(data) => {
                let data = Arc::new(data);
                for (id, block) in waiting {
                    self.send_block(id, block, &data);
                }
                let mut cached: usize = self.upload_cache.iter().map(|(_, d)| d.len()).sum();
                while cached + data.len() > UPLOAD_CACHE_BYTES {
                    let Some((_, old)) = self.upload_cache.pop_front() else {
                        break;
                    };
                    cached -= old.len();
                }
                self.upload_cache.push_back((piece, data));
            }
            Err(e) => {
                for (id, _) in waiting {
                    if let Some(conn) = self.conns.get_mut(&id) {
                        conn.uploads_in_flight = conn.uploads_in_flight.saturating_sub(1);
                    }
                }
                self.emit(TorrentEvent::Warning(format!(
                    "not sending piece {piece}: {e}"
                )));
            }
        }
    }

    fn fetch_from_origin(&self, piece: u32, offset: u32, length: u32, blocks: Vec<Block>) {
        let Some(origin) = self.origin.clone() else {
            return;
        };
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = origin
                .fetch(piece, offset, length)
                .await
                .map_err(|e| OriginFailure {
                    permanent: e.is_permanent(),
                    reason: e.to_string(),
                });
            let _ = internal
                .send(Internal::OriginFetched {
                    offset,
                    blocks,
                    result,
                })
                .await;
        });
    }

    fn origin_fetched(
        &mut self,
        offset: u32,
        blocks: Vec<Block>,
        result: Result<Vec<u8>, OriginFailure>,
    ) {
        let now = self.now();
        match result {
            Ok(data) => {
                for block in blocks {
                    let at = (block.offset - offset) as usize;
                    let Some(bytes) = data.get(at..at + block.length as usize) else {
                        continue;
                    };
                    if self.swarm.handle_origin_block(now, block) {
                        self.buffer(block, bytes);
                    }
                }
            }
            Err(failure) => {
                if !failure.permanent {
                    self.emit(TorrentEvent::Warning(format!(
                        "{}; trying peers and again later",
                        failure.reason
                    )));
                }
                self.swarm
                    .handle_origin_failed(now, &blocks, failure.permanent, &failure.reason);
            }
        }
    }

    fn finish(&mut self) {
        let store = self.store.clone();
        let internal = self.internal_tx.clone();
        let state = self.resume.clone();
        tokio::spawn(async move {
            let result = blocking(move || store.finish(&state)).await;
            let _ = internal.send(Internal::Finished(result)).await;
        });
    }

    fn save_resume_if_needed(&mut self) {
        if !self.resume_dirty || self.resume_saving || self.finished {
            return;
        }
        self.resume_dirty = false;
        self.resume_saving = true;
        let store = self.store.clone();
        let state = self.resume.clone();
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = blocking(move || store.save_resume(&state)).await;
            let _ = internal.send(Internal::ResumeSaved(result)).await;
        });
    }

    /// Handles an internal event; returns true when the session must end.
    fn on_internal(&mut self, event: Internal) -> bool {
        let now = self.now();
        match event {
            Internal::Dialed {
                addr,
                result: Ok((stream, theirs)),
            } => self.register(stream, addr, true, &theirs),
            Internal::Dialed {
                addr,
                result: Err(reason),
            } => {
                tracing::debug!(%addr, %reason, "could not connect");
                self.swarm.handle_connect_failed(now, addr);
            }
            Internal::Incoming {
                stream,
                addr,
                handshake,
            } => self.register(stream, addr, false, &handshake),
            Internal::Checked { piece, result } => {
                let length = self.store.layout().piece_len(piece) as usize;
                self.verifying_bytes = self.verifying_bytes.saturating_sub(length);
                match result {
                    Ok(verdict) => {
                        if !verdict.ok {
                            // Who sent it is the swarm's to judge (smart ban);
                            // the log lets an operator see bad data arrive.
                            tracing::info!(piece, "piece failed its hash check");
                        }
                        self.swarm.handle_piece_checked(
                            now,
                            piece,
                            verdict.ok,
                            &verdict.block_hashes,
                        )
                    }
                    Err(e) => return self.fail(e),
                }
            }
            Internal::PieceRead { piece, result } => self.piece_read(piece, result),
            Internal::OriginFetched {
                offset,
                blocks,
                result,
            } => self.origin_fetched(offset, blocks, result),
            Internal::ResumeSaved(result) => {
                self.resume_saving = false;
                if let Err(e) = result {
                    return self.fail(e);
                }
            }
            Internal::Finished(Ok(path)) => {
                self.finished = true;
                let progress = self.progress();
                self.totals.send_modify(|t| {
                    t.completed = true;
                    t.left = 0;
                    // The tracker accounts the completion's totals.
                    t.uploaded = progress.uploaded;
                    t.downloaded = progress.bytes_from_peers + progress.bytes_from_origin;
                    t.from_origin = progress.bytes_from_origin;
                });
                self.emit(TorrentEvent::Completed { path, progress });
                return !self.keep_seeding;
            }
            Internal::Finished(Err(e)) => return self.fail(e),
            Internal::AddPeers(addrs) => self.swarm.add_addresses(now, addrs),
            Internal::Stop => return true,
        }
        false
    }

    fn fail(&mut self, error: String) -> bool {
        self.stop_error = Some(error);
        true
    }

    async fn shut_down(mut self, announcer: JoinHandle<()>) {
        self.conns.clear();
        if !self.finished {
            let _ = tokio::task::spawn_blocking({
                let store = self.store.clone();
                let state = self.resume.clone();
                move || store.save_resume(&state)
            })
            .await;
        }
        // The `stopped` announce carries the final totals: trackers bill by them.
        let progress = self.progress();
        self.totals.send_modify(|t| {
            t.uploaded = progress.uploaded;
            t.downloaded = progress.bytes_from_peers + progress.bytes_from_origin;
            t.from_origin = progress.bytes_from_origin;
            t.stopping = true;
        });
        // The `stopped` announce is bounded by its own timeout.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(6), announcer).await;
        let progress = self.progress();
        let _ = self
            .events
            .send(TorrentEvent::Stopped {
                error: self.stop_error.take(),
                progress,
            })
            .await;
        drop(self.conn_tx);
    }
}

/// Runs disk work off the async threads; its error, or its panic, as text.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(format!("internal error in disk work: {e}")),
    }
}

fn block_ref(block: Block) -> BlockRef {
    BlockRef {
        piece: block.piece,
        offset: block.offset,
        length: block.length,
    }
}

/// The wire form of a swarm message.
fn encode(message: &Outgoing) -> Vec<u8> {
    let message = match message {
        Outgoing::Choke => Message::Choke,
        Outgoing::Unchoke => Message::Unchoke,
        Outgoing::Interested => Message::Interested,
        Outgoing::NotInterested => Message::NotInterested,
        Outgoing::Have(piece) => Message::Have { piece: *piece },
        Outgoing::Bitfield(bytes) => Message::Bitfield(bytes),
        Outgoing::HaveAll => Message::HaveAll,
        Outgoing::HaveNone => Message::HaveNone,
        Outgoing::Request(block) => Message::Request(block_ref(*block)),
        Outgoing::Cancel(block) => Message::Cancel(block_ref(*block)),
        Outgoing::Reject(block) => Message::Reject(block_ref(*block)),
    };
    message.encode()
}
