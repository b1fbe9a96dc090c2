//! A lying seed for end-to-end tests: a tiny BitTorrent peer (tokio plus the
//! `wire` codec) that claims every piece of one single-file torrent, unchokes
//! whoever is interested, and answers each request with the block's real
//! data except that it flips a byte of one block in `corrupt_one_in` (every
//! block when 1). It plays the liar of libtorrent's smart-ban simulation
//! (`simulation/test_smart_ban.cpp`). Made `mute`, it advertises every
//! piece, unchokes, and never sends a block: the peer a downloader must
//! snub and route around.
//!
//! It records what happened to it (connections, blocks served, who closed),
//! so a test can judge the downloader by behaviour. After the downloader
//! drops it, it can knock again from its own listening address (the address
//! the downloader dialled and would have banned, thanks to `SO_REUSEPORT`)
//! and report whether it was let back in.
//!
//! Protocol: BEP 3 handshake, bitfield, unchoke and piece only; it
//! advertises no extensions, so the downloader talks plain BEP 3 to it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use wire::{DecodeLimits, Decoded, Handshake, Message, Reserved, HANDSHAKE_LEN};

/// What the liar serves and how it lies.
#[derive(Debug, Clone)]
pub struct LiarConfig {
    /// The info-hash the downloader sends in its handshake
    /// (`engine::wire_info_hash`).
    pub info_hash: [u8; 20],
    pub piece_length: u64,
    pub piece_count: u32,
    /// The release's content (a single-file torrent: byte `i` of the
    /// torrent is byte `i` of the file).
    pub content: Arc<Vec<u8>>,
    /// Corrupt one block in this many (1 = every block).
    pub corrupt_one_in: u64,
    /// Read requests and never answer them.
    pub mute: bool,
}

/// One TCP connection the liar accepted.
#[derive(Debug, Clone)]
pub struct LiarConnection {
    /// When it ended and why; `None` while open. The liar never hangs up a
    /// connection whose handshake was right, so any end is the peer's doing.
    pub closed: Option<(Instant, String)>,
    pub handshake_ok: bool,
    pub blocks_served: u64,
    pub blocks_corrupted: u64,
    /// Requests and cancels the downloader sent on this connection.
    pub requests_received: u64,
    pub cancels_received: u64,
    /// When the first cancel came: a snub, if long before the end.
    pub first_cancel_at: Option<Instant>,
}

/// How the downloader treated the liar knocking again after being dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Knock {
    /// Not tried yet (or no target was set).
    NotTried,
    /// TCP or handshake failed before the downloader answered.
    NoAnswer(String),
    /// The downloader answered the handshake, then closed without sending
    /// a single message: it refused the address (a banned peer).
    Refused,
    /// The downloader answered and then talked (sent `message`) or kept the
    /// connection open: it took the liar back.
    Admitted(String),
}

#[derive(Debug)]
struct Record {
    connections: Vec<LiarConnection>,
    knock: Knock,
    /// Where to knock again after the first connection is dropped.
    knock_target: Option<SocketAddr>,
}

/// A running liar; stops (its runtime and sockets go) when dropped.
#[derive(Debug)]
pub struct LyingSeed {
    addr: SocketAddr,
    record: Arc<Mutex<Record>>,
    _runtime: tokio::runtime::Runtime,
}

const PEER_ID: [u8; 20] = *b"-LI0001-liarliarliar";
/// Bounds every wait of the liar on the downloader.
const TIMEOUT: Duration = Duration::from_secs(10);

impl LyingSeed {
    /// Listens on a free loopback port and serves until dropped.
    pub fn start(config: LiarConfig) -> LyingSeed {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("start the liar's runtime");
        let record = Arc::new(Mutex::new(Record {
            connections: Vec::new(),
            knock: Knock::NotTried,
            knock_target: None,
        }));
        let listener = runtime
            .block_on(async { reusable_socket()?.listen(16) })
            .expect("liar: listen on loopback");
        let addr = listener.local_addr().expect("liar: local address");
        runtime.spawn(accept_loop(listener, Arc::new(config), record.clone()));
        LyingSeed {
            addr,
            record,
            _runtime: runtime,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// After its first connection is dropped, the liar dials `target` from
    /// its own listening address once, and records the [`Knock`].
    pub fn knock_again_at(&self, target: SocketAddr) {
        lock(&self.record).knock_target = Some(target);
    }

    pub fn connections(&self) -> Vec<LiarConnection> {
        lock(&self.record).connections.clone()
    }

    pub fn knock(&self) -> Knock {
        lock(&self.record).knock.clone()
    }
}

fn lock(record: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A loopback socket that shares its port: the listener and, later, the
/// knocking connection bind the same address.
fn reusable_socket() -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    Ok(socket)
}

async fn accept_loop(listener: TcpListener, config: Arc<LiarConfig>, record: Arc<Mutex<Record>>) {
    let local = listener.local_addr().ok();
    while let Ok((stream, _)) = listener.accept().await {
        let index = {
            let mut record = lock(&record);
            record.connections.push(LiarConnection {
                closed: None,
                handshake_ok: false,
                blocks_served: 0,
                blocks_corrupted: 0,
                requests_received: 0,
                cancels_received: 0,
                first_cancel_at: None,
            });
            record.connections.len() - 1
        };
        let config = config.clone();
        let record = record.clone();
        tokio::spawn(async move {
            let reason = serve(stream, &config, &record, index).await;
            let target = {
                let mut record = lock(&record);
                record.connections[index].closed = Some((Instant::now(), reason));
                record.knock_target
            };
            if index == 0 {
                if let (Some(target), Some(local)) = (target, local) {
                    let knock = knock(local, target, config.info_hash).await;
                    lock(&record).knock = knock;
                }
            }
        });
    }
}

/// Serves one connection until the peer leaves; returns how it ended.
async fn serve(
    mut stream: TcpStream,
    config: &LiarConfig,
    record: &Mutex<Record>,
    index: usize,
) -> String {
    let mut theirs = [0u8; HANDSHAKE_LEN];
    match tokio::time::timeout(TIMEOUT, stream.read_exact(&mut theirs)).await {
        Err(_) => return "no handshake in time".to_owned(),
        Ok(Err(e)) => return format!("during the handshake: {e}"),
        Ok(Ok(_)) => {}
    }
    match Handshake::decode(&theirs) {
        Ok(Decoded::Complete { message, .. }) if message.info_hash == config.info_hash => {}
        other => return format!("liar hung up: unexpected handshake {other:?}"),
    }
    lock(record).connections[index].handshake_ok = true;
    let ours = Handshake {
        reserved: Reserved::default(),
        info_hash: config.info_hash,
        peer_id: PEER_ID,
    };
    let mut out = ours.encode().to_vec();
    let bits = full_bitfield(config.piece_count);
    Message::Bitfield(&bits).encode_into(&mut out);
    if let Err(e) = stream.write_all(&out).await {
        return e.to_string();
    }

    let limits = DecodeLimits::for_pieces(config.piece_count);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut replies = Vec::new();
        let mut used = 0;
        loop {
            match wire::decode(&buf[used..], &limits) {
                Ok(Decoded::Complete { message, consumed }) => {
                    used += consumed;
                    match message {
                        Message::Interested => Message::Unchoke.encode_into(&mut replies),
                        Message::Request(block) => {
                            let mut record = lock(record);
                            let conn = &mut record.connections[index];
                            conn.requests_received += 1;
                            if config.mute {
                                continue;
                            }
                            let start = u64::from(block.piece) * config.piece_length
                                + u64::from(block.offset);
                            let Some(data) = usize::try_from(start)
                                .ok()
                                .and_then(|s| config.content.get(s..s + block.length as usize))
                            else {
                                return format!("liar hung up: request out of range {block:?}");
                            };
                            let mut data = data.to_vec();
                            if conn.blocks_served.is_multiple_of(config.corrupt_one_in) {
                                let middle = data.len() / 2;
                                data[middle] ^= 0x5a;
                                conn.blocks_corrupted += 1;
                            }
                            conn.blocks_served += 1;
                            replies.extend_from_slice(&wire::piece_header(
                                block.piece,
                                block.offset,
                                block.length,
                            ));
                            replies.extend_from_slice(&data);
                        }
                        Message::Cancel(_) => {
                            let conn = &mut lock(record).connections[index];
                            conn.cancels_received += 1;
                            conn.first_cancel_at.get_or_insert_with(Instant::now);
                        }
                        // Haves, choke, keep-alives: a liar does not care.
                        _ => {}
                    }
                }
                Ok(Decoded::NeedMore { .. }) => break,
                Err(e) => return format!("liar hung up: protocol error {e}"),
            }
        }
        buf.drain(..used);
        if !replies.is_empty() {
            if let Err(e) = stream.write_all(&replies).await {
                return e.to_string();
            }
        }
        // A downloader that has dropped the liar ends the read with EOF or
        // a reset; a silent one would be a stuck test, hence the bound.
        match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut chunk)).await {
            Err(_) => return "nothing received for 60 s".to_owned(),
            Ok(Err(e)) => return e.to_string(),
            Ok(Ok(0)) => return "closed by the peer".to_owned(),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Every piece, spare bits zero (BEP 3).
fn full_bitfield(piece_count: u32) -> Vec<u8> {
    let mut bits = vec![0xff; wire::bitfield_len(piece_count)];
    let spare = bits.len() * 8 - piece_count as usize;
    if let Some(last) = bits.last_mut() {
        *last = 0xffu8.checked_shl(spare as u32).unwrap_or(0);
    }
    bits
}

/// Dials `target` from `local` (the liar's listening address) and sees
/// whether the downloader admits it.
async fn knock(local: SocketAddr, target: SocketAddr, info_hash: [u8; 20]) -> Knock {
    let socket = match TcpSocket::new_v4().and_then(|s| {
        s.set_reuseaddr(true)?;
        s.set_reuseport(true)?;
        s.bind(local)?;
        Ok(s)
    }) {
        Ok(socket) => socket,
        Err(e) => return Knock::NoAnswer(format!("cannot bind {local}: {e}")),
    };
    let mut stream = match tokio::time::timeout(TIMEOUT, socket.connect(target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Knock::NoAnswer(format!("connect: {e}")),
        Err(_) => return Knock::NoAnswer("connect timed out".to_owned()),
    };
    let ours = Handshake {
        reserved: Reserved::default(),
        info_hash,
        peer_id: PEER_ID,
    };
    if let Err(e) = stream.write_all(&ours.encode()).await {
        return Knock::NoAnswer(format!("sending the handshake: {e}"));
    }
    let mut theirs = [0u8; HANDSHAKE_LEN];
    match tokio::time::timeout(TIMEOUT, stream.read_exact(&mut theirs)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Knock::NoAnswer(format!("reading the handshake: {e}")),
        Err(_) => return Knock::NoAnswer("no handshake in time".to_owned()),
    }
    // An admitted peer hears at least the downloader's bitfield and
    // interest; a refused one hears the connection close.
    let mut header = [0u8; 5];
    match tokio::time::timeout(Duration::from_secs(3), stream.read_exact(&mut header)).await {
        Ok(Ok(_)) => Knock::Admitted(format!("message id {}", header[4])),
        Ok(Err(_)) => Knock::Refused,
        Err(_) => Knock::Admitted("kept the connection open for 3 s".to_owned()),
    }
}
