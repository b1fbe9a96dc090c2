//! The tokio driver of shoal: listening and dialling, the peer connections,
//! storage and resume, the tracker client, rate limits. Protocol decisions
//! are made by the sans-IO `swarm` crate; this crate carries them out.
//!
//! One [`Engine`] serves many torrents through one listening port.

mod accept;
pub mod address_policy;
mod announcer;
pub mod atomic_file;
mod connection;
mod events;
pub mod http_body;
mod http_client;
pub mod owner_only;
mod rate_limit;
mod read_cursors;
mod reader;
mod send_queue;
mod session;
mod settings;
pub mod storage;
pub mod torrent_options;
pub mod torrent_source;
pub mod tracker_client;
pub mod web_seed;

/// The resume file lives in `storage`; `engine::resume` stays its path.
pub use storage::resume;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use meta::Torrent;
use swarm::{Bitfield, Swarm};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use wire::Handshake;

pub use accept::AcceptBackoff;
pub use address_policy::AddressPolicy;
pub use events::{Progress, TorrentEvent};
pub use rate_limit::RateLimiter;
pub use reader::{PieceReader, ReadError};
pub use settings::{EngineSettings, DEFAULT_LISTEN_PORT};
pub use torrent_options::{PublisherTrust, TorrentOptions};

use http_client::HttpClients;
use session::{Internal, Session, SessionSetup};
use storage::{PieceStore, StorageError};

/// Why a torrent could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("cannot listen on {addr}: {source}; choose another port with --listen")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "{bad} of {total} pieces of the data do not match the release; restore the original files"
    )]
    DataMismatch { bad: u32, total: u32 },
    #[error("this release is already running in this engine")]
    AlreadyRunning,
    #[error("internal error: {0}")]
    Internal(String),
}

/// A running torrent: its events, and a way to stop it.
#[derive(Debug)]
pub struct TorrentHandle {
    events: mpsc::Receiver<TorrentEvent>,
    control: mpsc::Sender<Internal>,
    reader: PieceReader,
}

impl TorrentHandle {
    /// The next event; `None` after `Stopped`.
    pub async fn next_event(&mut self) -> Option<TorrentEvent> {
        self.events.recv().await
    }

    /// Reads the release's bytes as its pieces are verified.
    pub fn reader(&self) -> PieceReader {
        self.reader.clone()
    }

    /// Peers to connect to, besides those trackers name.
    pub async fn add_peers(&self, addrs: Vec<SocketAddr>) {
        let _ = self.control.send(Internal::AddPeers(addrs)).await;
    }

    /// Asks the torrent to stop: it says `stopped` to its trackers, saves
    /// its progress and ends with a `Stopped` event.
    pub async fn stop(&self) {
        let _ = self.control.send(Internal::Stop).await;
    }
}

#[derive(Debug)]
struct Route {
    internal: mpsc::Sender<Internal>,
    handshake: Handshake,
}

#[derive(Debug)]
struct Shared {
    settings: EngineSettings,
    listen_addr: SocketAddr,
    peer_id: [u8; 20],
    download_limit: Arc<RateLimiter>,
    upload_limit: Arc<RateLimiter>,
    /// Torrents by the info-hash peers use in the handshake.
    routes: Mutex<HashMap<[u8; 20], Route>>,
    /// Every torrent's trackers and web seeds share these.
    http: HttpClients,
}

/// How a torrent starts: a download (kept seeding after or not) or a seed.
#[derive(Debug, Clone, Copy)]
struct Mode {
    keep_seeding: bool,
    seeding: bool,
    options: TorrentOptions,
}

/// The engine: one listening socket and the torrents it runs.
#[derive(Debug, Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

/// How shoal agents know each other in handshakes (to share out origin
/// fetches): the client code of our Azureus-style peer ids.
pub(crate) const SHOAL_PEER_ID_PREFIX: &[u8] = b"-SH";

/// An Azureus-style peer id: client and version, then random bytes.
fn new_peer_id() -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-SH0100-");
    for byte in &mut id[8..] {
        *byte = rand::random::<u8>() % 62;
        *byte = match *byte {
            n @ 0..=9 => b'0' + n,
            n @ 10..=35 => b'a' + n - 10,
            n => b'A' + n - 36,
        };
    }
    id
}

/// The info-hash a torrent goes by on the wire: v1 when it has one (hybrid
/// torrents meet v1 and v2 peers alike there), else the truncated v2.
pub fn wire_info_hash(torrent: &Torrent) -> [u8; 20] {
    torrent
        .info_hashes
        .v1
        .or_else(|| torrent.info_hashes.v2_truncated())
        .unwrap_or_default()
}

/// Binds a listening socket on `addr`; also returns the address it got
/// (the port the system chose when `addr`'s is 0).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

impl Engine {
    /// Binds the listening socket and starts accepting peers.
    pub async fn start(settings: EngineSettings) -> Result<Engine, EngineError> {
        let (listener, listen_addr) =
            bind(settings.listen)
                .await
                .map_err(|source| EngineError::Listen {
                    addr: settings.listen,
                    source,
                })?;
        let shared = Arc::new(Shared {
            download_limit: Arc::new(RateLimiter::new(settings.max_download_bps)),
            upload_limit: Arc::new(RateLimiter::new(settings.max_upload_bps)),
            settings,
            listen_addr,
            peer_id: new_peer_id(),
            routes: Mutex::new(HashMap::new()),
            http: HttpClients::default(),
        });
        tokio::spawn(accept_loop(listener, Arc::downgrade(&shared)));
        Ok(Engine { shared })
    }

    /// [`Engine::start`], except that when `settings.listen` is on
    /// [`DEFAULT_LISTEN_PORT`] and another program (another client) holds
    /// it, the engine listens on any free port instead. Any other port was
    /// asked for by name, and its failure is reported.
    pub async fn start_or_any_port(settings: EngineSettings) -> Result<Engine, EngineError> {
        let asked = settings.listen;
        match Engine::start(settings.clone()).await {
            Err(EngineError::Listen { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse
                    && asked.port() == DEFAULT_LISTEN_PORT =>
            {
                let mut listen = asked;
                listen.set_port(0);
                Engine::start(EngineSettings { listen, ..settings }).await
            }
            other => other,
        }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.shared.listen_addr
    }

    pub fn download_limit(&self) -> &RateLimiter {
        &self.shared.download_limit
    }

    pub fn upload_limit(&self) -> &RateLimiter {
        &self.shared.upload_limit
    }

    /// Starts downloading `torrent` into `out_dir`, resuming earlier
    /// progress. With `keep_seeding` it stays up after completing.
    pub async fn download(
        &self,
        torrent: Arc<Torrent>,
        out_dir: &Path,
        keep_seeding: bool,
    ) -> Result<TorrentHandle, EngineError> {
        self.download_with(torrent, out_dir, keep_seeding, TorrentOptions::default())
            .await
    }

    /// [`Engine::download`] with per-torrent options.
    pub async fn download_with(
        &self,
        torrent: Arc<Torrent>,
        out_dir: &Path,
        keep_seeding: bool,
        options: TorrentOptions,
    ) -> Result<TorrentHandle, EngineError> {
        let out_dir = out_dir.to_path_buf();
        let opened = {
            let torrent = torrent.clone();
            let hashes = options.publisher.piece_hashes(&torrent);
            tokio::task::spawn_blocking(move || {
                PieceStore::open_download_with(torrent, &out_dir, hashes)
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??
        };
        let (store, loaded) = opened;
        // The resume file keeps its pieces in the wire's bitfield layout
        // (checked against the piece count when loaded): taken whole.
        let piece_count = u32::try_from(torrent.piece_count()).unwrap_or(u32::MAX);
        let have = Bitfield::from_bytes(loaded.state.bitfield(), piece_count).ok_or_else(|| {
            EngineError::Internal("saved progress does not match the piece count".into())
        })?;
        if let Some(warning) = loaded.warning {
            tracing::warn!("{warning}");
        }
        let mode = Mode {
            keep_seeding,
            seeding: false,
            options,
        };
        self.launch(torrent, store, loaded.state, have, mode).await
    }

    /// Verifies the complete release at `data_dir/NAME` and seeds it.
    /// `progress` hears of the bytes checked.
    pub async fn seed(
        &self,
        torrent: Arc<Torrent>,
        data_dir: &Path,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<TorrentHandle, EngineError> {
        self.seed_with(torrent, data_dir, progress, TorrentOptions::default())
            .await
    }

    /// [`Engine::seed`] with per-torrent options.
    pub async fn seed_with(
        &self,
        torrent: Arc<Torrent>,
        data_dir: &Path,
        progress: impl Fn(u64) + Send + Sync + 'static,
        options: TorrentOptions,
    ) -> Result<TorrentHandle, EngineError> {
        let data_dir = data_dir.to_path_buf();
        let (store, valid) = {
            let torrent = torrent.clone();
            let hashes = options.publisher.piece_hashes(&torrent);
            tokio::task::spawn_blocking(move || {
                PieceStore::open_seed_with(torrent, &data_dir, hashes, &progress)
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??
        };
        let bad = valid.iter().filter(|ok| !**ok).count() as u32;
        if bad > 0 {
            return Err(EngineError::DataMismatch {
                bad,
                total: valid.len() as u32,
            });
        }
        let mut state = resume::ResumeState::new(&torrent);
        for piece in 0..valid.len() as u32 {
            state.mark_verified(piece);
        }
        let have = Bitfield::full(valid.len() as u32);
        let mode = Mode {
            keep_seeding: true,
            seeding: true,
            options,
        };
        self.launch(torrent, store, state, have, mode).await
    }

    async fn launch(
        &self,
        torrent: Arc<Torrent>,
        store: PieceStore,
        resume: resume::ResumeState,
        have: Bitfield,
        mode: Mode,
    ) -> Result<TorrentHandle, EngineError> {
        let Mode {
            keep_seeding,
            seeding,
            options,
        } = mode;
        let info_hash = wire_info_hash(&torrent);
        let reserved = connection::our_reserved();
        let handshake = Handshake {
            reserved,
            info_hash,
            peer_id: self.shared.peer_id,
        };
        let (internal_tx, internal_rx) = mpsc::channel(1024);
        {
            let mut routes = self
                .shared
                .routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if routes.contains_key(&info_hash) {
                return Err(EngineError::AlreadyRunning);
            }
            routes.insert(
                info_hash,
                Route {
                    internal: internal_tx.clone(),
                    handshake,
                },
            );
        }
        let layout = store.layout().clone();
        let now = std::time::Instant::now();
        let mut swarm = Swarm::new(
            layout,
            have,
            self.shared.settings.swarm.clone(),
            rand::random(),
            self.shared.peer_id,
            now,
        );
        let http = self
            .shared
            .http
            .get(options.remote, &self.shared.settings.web_seed)
            .map_err(|e| EngineError::Internal(format!("cannot start the HTTP client: {e}")))?;
        // The first web seed shoal can use is the origin (BEP 19).
        let origin = torrent
            .web_seeds
            .iter()
            .find_map(|url| {
                web_seed::WebSeed::with_client(
                    url,
                    torrent.clone(),
                    self.shared.settings.web_seed.clone(),
                    options.remote,
                    http.clone(),
                )
                .ok()
            })
            .map(Arc::new);
        if origin.is_some() && !seeding {
            swarm.set_origin(now, &self.shared.peer_id);
            // The publisher's ceiling counts only from a valid signature.
            let manifest = torrent.signature.manifest();
            swarm.set_origin_ceiling(
                manifest.and_then(|m| m.max_origin_bytes(torrent.total_size())),
            );
            if torrent.tracker_urls().is_empty() {
                // No tracker will answer: the origin need not wait for one.
                swarm.handle_tracker_answer(now, [], None);
            }
        }
        let (events_tx, events_rx) = mpsc::channel(256);
        let (verified_tx, verified_rx) = watch::channel(swarm.have().clone());
        let store = Arc::new(store);
        let (read_cursors, read_watch) = read_cursors::read_cursors();
        let reader = PieceReader::new(store.clone(), verified_rx, read_cursors);
        let setup = SessionSetup {
            torrent,
            store,
            verified: verified_tx,
            resume,
            swarm,
            settings: self.shared.settings.clone(),
            handshake,
            listen_port: self.shared.listen_addr.port(),
            download_limit: self.shared.download_limit.clone(),
            upload_limit: self.shared.upload_limit.clone(),
            keep_seeding,
            origin,
            seeding,
            remote: options.remote,
            http,
            events: events_tx,
        };
        let shared = Arc::downgrade(&self.shared);
        let control = internal_tx.clone();
        tokio::spawn(async move {
            Session::run(setup, read_watch, internal_tx, internal_rx).await;
            if let Some(shared) = shared.upgrade() {
                shared
                    .routes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&info_hash);
            }
        });
        Ok(TorrentHandle {
            events: events_rx,
            control,
            reader,
        })
    }
}

/// Accepts peers and hands each, after its handshake, to its torrent.
async fn accept_loop(listener: TcpListener, shared: std::sync::Weak<Shared>) {
    let pending = {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        Arc::new(Semaphore::new(shared.settings.max_pending_handshakes))
    };
    let mut backoff = AcceptBackoff::default();
    loop {
        let (stream, addr) = backoff.accept(&listener, "a peer connection").await;
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            continue; // too many half-open handshakes: drop this one
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let _ = answer_handshake(stream, addr, &shared).await;
        });
    }
}

async fn answer_handshake(
    mut stream: TcpStream,
    addr: SocketAddr,
    shared: &Shared,
) -> Result<(), connection::ConnectError> {
    let theirs = connection::read_handshake(&mut stream, shared.settings.connect_timeout).await?;
    let (internal, ours) = {
        let routes = shared.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let route = routes
            .get(&theirs.info_hash)
            .ok_or(connection::ConnectError::UnknownTorrent)?;
        (route.internal.clone(), route.handshake)
    };
    if theirs.peer_id == ours.peer_id {
        return Err(connection::ConnectError::Ourselves);
    }
    connection::write_handshake(&mut stream, &ours).await?;
    internal
        .send(Internal::Incoming {
            stream,
            addr,
            handshake: theirs,
        })
        .await
        .map_err(|_| connection::ConnectError::TorrentStopped)
}
