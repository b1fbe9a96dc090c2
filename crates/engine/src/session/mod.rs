//! One torrent's session: the tokio task that drives its `Swarm`.
//!
//! Everything that happens to the torrent arrives here as an event (a
//! connection's message, a finished disk write, a tracker answer, a timer)
//! and is handed to the swarm; what the swarm asks for is carried out with
//! sockets, `spawn_blocking` disk work and other tasks, whose results come
//! back as events. Protocol decisions are the swarm's, where the seeded
//! simulation covers them; this module is the select loop, and each kind of
//! work has its own module:
//! - `peers`: the connection table;
//! - `pieces`: assembling blocks and verifying pieces;
//! - `uploads`: reading pieces to serve peers;
//! - `origin`: fetches from the publisher's web server;
//! - `disk`: the resume file and the final move;
//! - `totals`: progress for the owner and totals for the trackers;
//! - `error`: why disk work failed.
//!
//! A new transport (uTP, say) would be a second kind of connection in
//! `crate::connection` feeding the same `ConnEvent`s to `peers`.

mod disk;
mod error;
mod origin;
mod origin_fetches;
mod peers;
mod pieces;
mod totals;
mod uploads;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use meta::layout::PieceVerdict;
use meta::Torrent;
use swarm::{Action, Bitfield, Swarm};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use wire::{BlockRef, DecodeLimits, Handshake};

use crate::announcer::{self, AnnounceSetup, Totals};
use crate::connection::{ConnContext, ConnEvent, ConnId, ConnectError, WriterCmd};
use crate::events::TorrentEvent;
use crate::rate_limit::RateLimiter;
use crate::read_cursors::{ReadCursorWatch, ReadReport};
use crate::resume::ResumeState;
use crate::settings::EngineSettings;
use crate::storage::PieceStore;
use crate::web_seed::{WebSeed, WebSeedError};

use error::DiskError;

/// Events queued from connections: small, so that backpressure reaches
/// the sockets (and the peers) instead of piling up here.
const CONN_EVENT_QUEUE: usize = 256;

/// Events from the engine's other tasks.
#[derive(Debug)]
pub(crate) enum Internal {
    Dialed {
        addr: SocketAddr,
        result: Result<(TcpStream, Handshake), ConnectError>,
    },
    Incoming {
        stream: TcpStream,
        addr: SocketAddr,
        handshake: Handshake,
    },
    Checked {
        piece: u32,
        result: Result<PieceVerdict, DiskError>,
        /// The piece's buffer, for reuse.
        buffer: Option<Vec<u8>>,
    },
    OriginFetched {
        fetch: origin_fetches::FetchId,
        offset: u32,
        blocks: Vec<BlockRef>,
        result: Result<Vec<u8>, WebSeedError>,
    },
    PieceRead {
        piece: u32,
        result: Result<Vec<u8>, DiskError>,
    },
    ResumeSaved(Result<(), DiskError>),
    Finished(Result<PathBuf, DiskError>),
    /// Peers to try, from the user rather than a tracker.
    AddPeers(Vec<SocketAddr>),
    Stop,
}

// The state each job module works on is declared here, with `Session`, so
// that the modules depend on this one and never the other way round.

/// One connection in the table (`peers`).
struct Conn {
    key: swarm::PeerKey,
    addr: SocketAddr,
    writer: mpsc::UnboundedSender<WriterCmd>,
    /// Encoded messages not yet handed to the writer.
    outbox: Vec<u8>,
}

impl Conn {
    /// Hands the queued messages to the writer; blocks must not overtake
    /// them, so this runs before a block is queued too.
    fn flush_outbox(&mut self) {
        if !self.outbox.is_empty() {
            let _ = self
                .writer
                .send(WriterCmd::Bytes(std::mem::take(&mut self.outbox)));
        }
    }
}

/// Pieces being downloaded, by index, each as long as its piece, and
/// complete ones waiting for or under their hash check (`pieces`).
#[derive(Debug, Default)]
struct Assembly {
    buffers: HashMap<u32, Vec<u8>>,
    /// Complete pieces, in order, waiting for a free check.
    waiting: VecDeque<(u32, Vec<u8>)>,
    /// Checks running now, and how many may run at once.
    checking: usize,
    max_checks: usize,
    /// Buffers of checked pieces, for the next pieces.
    spare: Vec<Vec<u8>>,
}

/// Whole pieces read for uploads (`uploads`).
#[derive(Debug, Default)]
struct UploadCache {
    /// Recently read pieces, newest last.
    pieces: VecDeque<(u32, Bytes)>,
    /// Pieces being read, and the blocks waiting for them.
    reading: HashMap<u32, Vec<(ConnId, BlockRef)>>,
    /// Buffers of pieces dropped from the cache, for the next reads.
    spare: Vec<Vec<u8>>,
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
    keys: HashMap<swarm::PeerKey, ConnId>,
    /// Connections with messages in their outbox.
    outbox_pending: Vec<swarm::PeerKey>,
    next_conn: ConnId,
    conn_tx: mpsc::Sender<ConnEvent>,
    internal_tx: mpsc::Sender<Internal>,
    conn_context: ConnContext,
    assembly: Assembly,
    uploads: UploadCache,
    keep_seeding: bool,
    origin: Option<Arc<WebSeed>>,
    origin_fetches: origin_fetches::OriginFetches,
    finished: bool,
    started: Instant,
    events: mpsc::Sender<TorrentEvent>,
    totals: watch::Sender<Totals>,
    stop_error: Option<DiskError>,
}

impl Session {
    /// Runs the session to its end. `internal_rx` also receives incoming
    /// connections routed here by the engine's listener; `read_cursors`
    /// says where the release's readers read (streaming priority).
    pub(crate) async fn run(
        setup: SessionSetup,
        mut read_cursors: ReadCursorWatch,
        internal_tx: mpsc::Sender<Internal>,
        mut internal_rx: mpsc::Receiver<Internal>,
    ) {
        let (conn_tx, mut conn_rx) = mpsc::channel(CONN_EVENT_QUEUE);
        let (answers_tx, mut answers_rx) = mpsc::channel(16);
        let (warnings_tx, mut warnings_rx) = mpsc::channel(16);
        let (mut session, announce, totals_rx) = Session::new(setup, conn_tx, internal_tx);
        let announcer: JoinHandle<()> =
            tokio::spawn(announcer::run(announce, totals_rx, answers_tx, warnings_tx));
        let mut progress_tick = tokio::time::interval(std::time::Duration::from_secs(1));
        let mut resume_tick = tokio::time::interval(session.settings.resume_save_interval);
        loop {
            session.carry_out_actions();
            let wake = tokio::time::Instant::from_std(session.swarm.poll_timeout());
            tokio::select! {
                Some(event) = conn_rx.recv(), if session.swarm.takes_blocks() => {
                    session.on_conn_event(event);
                }
                Some(event) = internal_rx.recv() => {
                    if session.on_internal(event) {
                        break;
                    }
                }
                Some(answer) = answers_rx.recv() => session.on_tracker_answer(answer),
                Some(warning) = warnings_rx.recv() => session.emit(TorrentEvent::Warning(warning)),
                () = read_cursors.changed() => {
                    for report in read_cursors.changes() {
                        session.on_read_report(report);
                    }
                }
                _ = tokio::time::sleep_until(wake) => session.swarm.handle_timeout(Instant::now()),
                _ = progress_tick.tick() => session.report_progress(),
                _ = resume_tick.tick() => session.save_resume_if_needed(),
            }
        }
        session.shut_down(announcer).await;
    }

    fn new(
        setup: SessionSetup,
        conn_tx: mpsc::Sender<ConnEvent>,
        internal_tx: mpsc::Sender<Internal>,
    ) -> (Session, AnnounceSetup, watch::Receiver<Totals>) {
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
        let session = Session {
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
            outbox_pending: Vec::new(),
            next_conn: 0,
            conn_tx,
            internal_tx,
            conn_context,
            assembly: Assembly::new(),
            uploads: UploadCache::default(),
            keep_seeding: setup.keep_seeding,
            origin: setup.origin,
            origin_fetches: origin_fetches::OriginFetches::default(),
            finished: setup.seeding,
            started: Instant::now(),
            events: setup.events,
            totals: totals_tx,
            stop_error: None,
        };
        (session, announce, totals_rx)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn emit(&self, event: TorrentEvent) {
        // A slow reader loses progress ticks, never the torrent.
        let _ = self.events.try_send(event);
    }

    fn carry_out_actions(&mut self) {
        self.carry_out_swarm_actions();
        self.flush_outboxes();
    }

    fn carry_out_swarm_actions(&mut self) {
        while let Some(action) = self.swarm.poll_action() {
            match action {
                Action::Connect(addr) => self.dial(addr),
                Action::Send(key, message) => self.send(key, &message.to_message()),
                Action::Disconnect(key, reason) => {
                    tracing::debug!(peer = ?self.conn_of(key).map(|c| c.addr), ?reason, "disconnecting");
                    self.close(key);
                }
                Action::UploadReady(key) => self.serve_uploads(key),
                Action::Verify(piece) => self.verify(piece),
                Action::PieceVerified(piece) => {
                    // The swarm owns the pieces we have; readers get a copy.
                    self.verified.send_replace(self.swarm.have().clone());
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
                Action::CancelOriginFetch { piece } => self.cancel_origin_fetch(piece),
                Action::OriginUnusable(reason) => self.origin_unusable(&reason),
            }
        }
    }

    /// A reader moved or left: the swarm fetches ahead of readers first.
    fn on_read_report(&mut self, report: ReadReport) {
        let now = self.now();
        match report {
            ReadReport::At { id, offset } => self.swarm.set_stream_cursor(now, id, offset),
            ReadReport::Gone { id } => self.swarm.remove_stream_cursor(now, id),
        }
    }

    /// Handles an internal event; returns true when the session must end.
    fn on_internal(&mut self, event: Internal) -> bool {
        let now = self.now();
        let outcome = match event {
            Internal::Dialed {
                addr,
                result: Ok((stream, theirs)),
            } => {
                self.register(stream, addr, true, &theirs);
                Ok(())
            }
            Internal::Dialed {
                addr,
                result: Err(reason),
            } => {
                tracing::debug!(%addr, %reason, "could not connect");
                self.swarm.handle_connect_failed(now, addr);
                Ok(())
            }
            Internal::Incoming {
                stream,
                addr,
                handshake,
            } => {
                self.register(stream, addr, false, &handshake);
                Ok(())
            }
            Internal::Checked {
                piece,
                result,
                buffer,
            } => self.checked(piece, result, buffer),
            Internal::PieceRead { piece, result } => {
                self.piece_read(piece, result);
                Ok(())
            }
            Internal::OriginFetched {
                fetch,
                offset,
                blocks,
                result,
            } => {
                self.origin_fetched(fetch, offset, blocks, result);
                Ok(())
            }
            Internal::ResumeSaved(result) => self.resume_saved(result),
            Internal::Finished(Ok(path)) => return self.finished(path),
            Internal::Finished(Err(e)) => Err(e),
            Internal::AddPeers(addrs) => {
                self.swarm.add_addresses(now, addrs);
                Ok(())
            }
            Internal::Stop => return true,
        };
        match outcome {
            Ok(()) => false,
            Err(error) => {
                self.stop_error = Some(error);
                true
            }
        }
    }

    async fn shut_down(mut self, announcer: JoinHandle<()>) {
        self.conns.clear();
        self.save_resume_on_stop().await;
        // The `stopped` announce carries the final totals: trackers bill by them.
        let progress = self.progress();
        self.publish_totals(&progress, |t| t.stopping = true);
        // The `stopped` announce is bounded by its own timeout.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(6), announcer).await;
        let progress = self.progress();
        let _ = self
            .events
            .send(TorrentEvent::Stopped {
                error: self.stop_error.take().map(|e| e.to_string()),
                progress,
            })
            .await;
        drop(self.conn_tx);
    }
}
