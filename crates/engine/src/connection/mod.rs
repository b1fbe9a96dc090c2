//! One peer connection on tokio: the handshake, then a reader task that
//! frames and decodes messages with the `wire` codec (once: the session
//! gets them decoded, one read's worth per hop, blocks not copied) and a
//! writer task that sends what the session queues (blocks not copied
//! either, several per vectored write). Neither decides anything; the session's `Swarm` does. Both work
//! on TCP halves; another transport (uTP, say) would hand them its own
//! halves and report the same `ConnEvent`s.
//!
//! Hostile peers are expected: every length is checked by the codec before
//! it is buffered, the handshake and every read are bounded in time, and a
//! protocol error closes the connection with the reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use wire::{BlockRef, DecodeLimits, Decoded, Handshake, Reserved, WireError, HANDSHAKE_LEN};

use crate::rate_limit::RateLimiter;

mod incoming;
mod outgoing;

pub(crate) use incoming::Incoming;
use outgoing::Outgoing;

/// Identifies a connection within a session, before and after the swarm
/// gives it a `PeerKey`.
pub(crate) type ConnId = u64;

/// Why a connection could not be set up, sorted by who is at fault. None
/// of them stops a torrent: the peer is tried again later, or not at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The network: unreachable, refused, reset.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("connection timed out")]
    ConnectTimeout,
    /// The peer: too slow, not BitTorrent, or for another torrent.
    #[error("no handshake in time")]
    HandshakeTimeout,
    #[error("closed during the handshake")]
    ClosedInHandshake,
    #[error("{0}")]
    Handshake(#[from] WireError),
    #[error("short handshake")]
    ShortHandshake,
    #[error("the peer answered for another torrent")]
    WrongTorrent,
    #[error("unknown info-hash")]
    UnknownTorrent,
    /// Us: we dialled our own listening port, or the torrent just stopped.
    #[error("connected to ourselves")]
    Ourselves,
    #[error("torrent stopped")]
    TorrentStopped,
}

/// Why an established connection ended, by who ended it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CloseReason {
    /// The peer: it hung up, went quiet, or broke the wire protocol.
    #[error("closed by the peer")]
    ClosedByPeer,
    #[error("nothing received for {} s", .0.as_secs())]
    Idle(Duration),
    #[error("protocol error: {0}")]
    Protocol(WireError),
    /// The network.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Us: the session ended.
    #[error("the session ended")]
    SessionEnded,
}

/// What a connection tells its session.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// The complete messages of one read from the socket, in the order the
    /// peer sent them: one hop to the session per read, not per message.
    Received {
        conn: ConnId,
        items: Vec<Incoming>,
    },
    /// Piece messages we queued have been written to the socket.
    BlockSent {
        conn: ConnId,
        blocks: usize,
        bytes: u64,
    },
    Closed {
        conn: ConnId,
        reason: CloseReason,
    },
}

/// What the session asks a connection's writer to send.
#[derive(Debug)]
pub(crate) enum WriterCmd {
    /// Encoded control messages.
    Bytes(Vec<u8>),
    /// A block of piece data: a view into the piece as it was read from
    /// the disk, shared, not copied.
    Block { block: BlockRef, data: Bytes },
}

/// What a connection needs from its session and engine.
#[derive(Debug, Clone)]
pub(crate) struct ConnContext {
    pub events: mpsc::Sender<ConnEvent>,
    pub limits: DecodeLimits,
    pub download_limit: Arc<RateLimiter>,
    pub upload_limit: Arc<RateLimiter>,
    pub idle_timeout: Duration,
    pub keepalive_interval: Duration,
}

/// The reserved bits we send: the fast extension (BEP 6), and the
/// extension protocol (BEP 10), whose handshake tells peers how many
/// requests we queue (the swarm sends it).
pub(crate) fn our_reserved() -> Reserved {
    let mut reserved = Reserved([0; 8]);
    reserved.set_fast(true);
    reserved.set_extension_protocol(true);
    reserved
}

/// Reads the peer's 68-byte handshake, within `timeout`.
pub(crate) async fn read_handshake(
    stream: &mut TcpStream,
    timeout: Duration,
) -> Result<Handshake, ConnectError> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    let mut filled = 0;
    let read = async {
        while filled < HANDSHAKE_LEN {
            let n = stream.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err(ConnectError::ClosedInHandshake);
            }
            filled += n;
            // Refuse a non-BitTorrent peer as soon as its bytes disagree.
            Handshake::decode(&buf[..filled])?;
        }
        match Handshake::decode(&buf)? {
            Decoded::Complete { message, .. } => Ok(message),
            Decoded::NeedMore { .. } => Err(ConnectError::ShortHandshake),
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ConnectError::HandshakeTimeout)?
}

pub(crate) async fn write_handshake(
    stream: &mut TcpStream,
    handshake: &Handshake,
) -> Result<(), ConnectError> {
    Ok(stream.write_all(&handshake.encode()).await?)
}

/// Dials `addr` and exchanges handshakes for `info_hash`.
pub(crate) async fn dial(
    addr: SocketAddr,
    ours: &Handshake,
    timeout: Duration,
) -> Result<(TcpStream, Handshake), ConnectError> {
    let connect = TcpStream::connect(addr);
    let mut stream = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| ConnectError::ConnectTimeout)??;
    let _ = stream.set_nodelay(true);
    write_handshake(&mut stream, ours).await?;
    let theirs = read_handshake(&mut stream, timeout).await?;
    if theirs.info_hash != ours.info_hash {
        return Err(ConnectError::WrongTorrent);
    }
    if theirs.peer_id == ours.peer_id {
        return Err(ConnectError::Ourselves);
    }
    Ok((stream, theirs))
}

/// Starts the reader and writer tasks of a handshaken connection. Returns
/// the writer's queue.
pub(crate) fn start(
    stream: TcpStream,
    conn: ConnId,
    ctx: ConnContext,
) -> mpsc::UnboundedSender<WriterCmd> {
    crate::send_queue::limit_unsent(&stream);
    let (read_half, write_half) = stream.into_split();
    let (writer_tx, writer_rx) = mpsc::unbounded_channel();
    let reader_ctx = ctx.clone();
    let reader = tokio::spawn(async move {
        let reason = read_loop(read_half, conn, &reader_ctx).await;
        let _ = reader_ctx
            .events
            .send(ConnEvent::Closed { conn, reason })
            .await;
    });
    tokio::spawn(async move {
        let result = write_loop(write_half, conn, writer_rx, &ctx).await;
        // The writer ends when the session drops the connection (or the
        // socket fails). Ending the reader too closes the socket for good:
        // otherwise a dropped peer that keeps its side open would hold the
        // descriptor, and keep sending, until the idle timeout.
        reader.abort();
        if let Err(reason) = result {
            let _ = ctx.events.send(ConnEvent::Closed { conn, reason }).await;
        }
    });
    writer_tx
}

/// Bytes asked of the socket per read: enough for several blocks, so
/// that one read, one decode pass and one hop to the session carry many.
const READ_CHUNK: usize = 128 * 1024;

/// Frames messages until the connection ends; returns why it ended.
async fn read_loop(mut socket: OwnedReadHalf, conn: ConnId, ctx: &ConnContext) -> CloseReason {
    let mut buf = BytesMut::with_capacity(2 * READ_CHUNK);
    loop {
        // Messages before a protocol error still reach the session.
        let mut items = Vec::new();
        let taken = incoming::take_messages(&mut buf, &ctx.limits, &mut items);
        if !items.is_empty()
            && ctx
                .events
                .send(ConnEvent::Received { conn, items })
                .await
                .is_err()
        {
            return CloseReason::SessionEnded;
        }
        if let Err(e) = taken {
            return CloseReason::Protocol(e);
        }
        // The codec checked any length prefix against the limits before
        // asking for more, so the buffer stays bounded by the largest
        // allowed message plus one read. Blocks still held by the session
        // keep their part of an older buffer alive; `reserve` then starts
        // a new one instead of overwriting them.
        buf.reserve(READ_CHUNK);
        let read = tokio::time::timeout(ctx.idle_timeout, socket.read_buf(&mut buf)).await;
        let n = match read {
            Err(_) => return CloseReason::Idle(ctx.idle_timeout),
            Ok(Err(e)) => return CloseReason::Io(e),
            Ok(Ok(0)) => return CloseReason::ClosedByPeer,
            Ok(Ok(n)) => n,
        };
        ctx.download_limit.acquire(n as u64).await;
    }
}

/// Bytes gathered before a write to the socket: small messages (requests,
/// haves) go out together instead of one system call each, and blocks
/// go out several per call.
const WRITE_BATCH: usize = 256 * 1024;

async fn write_loop(
    mut socket: OwnedWriteHalf,
    conn: ConnId,
    mut commands: mpsc::UnboundedReceiver<WriterCmd>,
    ctx: &ConnContext,
) -> Result<(), CloseReason> {
    let mut out = Outgoing::default();
    loop {
        let command = match tokio::time::timeout(ctx.keepalive_interval, commands.recv()).await {
            Err(_) => {
                socket.write_all(&[0, 0, 0, 0]).await?;
                continue;
            }
            Ok(None) => {
                let _ = socket.shutdown().await;
                return Ok(());
            }
            Ok(Some(command)) => command,
        };
        // Take what else is already queued, then write it all at once.
        let (mut sent_blocks, mut sent_bytes) = (0usize, 0u64);
        let mut next = Some(command);
        while let Some(command) = next.take() {
            match command {
                WriterCmd::Bytes(bytes) => out.push_small(&bytes),
                WriterCmd::Block { block, data } => {
                    ctx.upload_limit.acquire(data.len() as u64).await;
                    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
                    out.push_small(&wire::piece_header(block.piece, block.offset, length));
                    sent_bytes += data.len() as u64;
                    out.push_shared(data);
                    sent_blocks += 1;
                }
            }
            if !out.is_full(WRITE_BATCH) {
                next = commands.try_recv().ok();
            }
        }
        out.write_to(&mut socket).await?;
        let sent = ConnEvent::BlockSent {
            conn,
            blocks: sent_blocks,
            bytes: sent_bytes,
        };
        if sent_blocks > 0 && ctx.events.send(sent).await.is_err() {
            return Ok(());
        }
    }
}
