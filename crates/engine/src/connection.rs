//! One peer connection on tokio: the handshake, then a reader task that
//! frames and decodes messages with the `wire` codec (once: the session
//! gets them decoded) and a writer task that sends what the session
//! queues. Neither decides anything; the session's `Swarm` does. Both work
//! on TCP halves; another transport (uTP, say) would hand them its own
//! halves and report the same `ConnEvent`s.
//!
//! Hostile peers are expected: every length is checked by the codec before
//! it is buffered, the handshake and every read are bounded in time, and a
//! protocol error closes the connection with the reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use wire::{
    BlockRef, DecodeLimits, Decoded, Handshake, Message, Reserved, WireError, HANDSHAKE_LEN,
};

use crate::rate_limit::RateLimiter;

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
    /// A complete non-piece message, decoded once by the reader.
    Message {
        conn: ConnId,
        message: Received,
    },
    Block {
        conn: ConnId,
        block: BlockRef,
        data: Vec<u8>,
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

/// A decoded message detached from the read buffer it borrowed from: its
/// fixed fields, and its variable part (bitfield, extension payload,
/// hashes) copied into `payload`, which stays empty, unallocated, for
/// the common fixed-size messages (have, request, cancel, choke...).
#[derive(Debug)]
pub(crate) struct Received {
    /// The message with its variable part left empty.
    fixed: Message<'static>,
    payload: Vec<u8>,
}

impl Received {
    fn detach(message: Message<'_>) -> Received {
        let (fixed, payload) = match message {
            Message::KeepAlive => (Message::KeepAlive, &[][..]),
            Message::Choke => (Message::Choke, &[][..]),
            Message::Unchoke => (Message::Unchoke, &[][..]),
            Message::Interested => (Message::Interested, &[][..]),
            Message::NotInterested => (Message::NotInterested, &[][..]),
            Message::Have { piece } => (Message::Have { piece }, &[][..]),
            Message::Bitfield(bits) => (Message::Bitfield(&[]), bits),
            Message::Request(block) => (Message::Request(block), &[][..]),
            Message::Piece {
                piece,
                offset,
                data,
            } => (
                Message::Piece {
                    piece,
                    offset,
                    data: &[],
                },
                data,
            ),
            Message::Cancel(block) => (Message::Cancel(block), &[][..]),
            Message::Port(port) => (Message::Port(port), &[][..]),
            Message::Suggest { piece } => (Message::Suggest { piece }, &[][..]),
            Message::HaveAll => (Message::HaveAll, &[][..]),
            Message::HaveNone => (Message::HaveNone, &[][..]),
            Message::Reject(block) => (Message::Reject(block), &[][..]),
            Message::AllowedFast { piece } => (Message::AllowedFast { piece }, &[][..]),
            Message::Extended { id, payload } => (Message::Extended { id, payload: &[] }, payload),
            Message::HashRequest(request) => (Message::HashRequest(request), &[][..]),
            Message::Hashes { request, hashes } => (
                Message::Hashes {
                    request,
                    hashes: &[],
                },
                hashes,
            ),
            Message::HashReject(request) => (Message::HashReject(request), &[][..]),
            Message::Unknown { id, payload } => (Message::Unknown { id, payload: &[] }, payload),
        };
        Received {
            fixed,
            payload: payload.to_vec(),
        }
    }

    /// The message as it was decoded.
    pub(crate) fn message(&self) -> Message<'_> {
        let payload = &self.payload[..];
        match self.fixed {
            Message::Bitfield(_) => Message::Bitfield(payload),
            Message::Piece { piece, offset, .. } => Message::Piece {
                piece,
                offset,
                data: payload,
            },
            Message::Extended { id, .. } => Message::Extended { id, payload },
            Message::Hashes { request, .. } => Message::Hashes {
                request,
                hashes: payload,
            },
            Message::Unknown { id, .. } => Message::Unknown { id, payload },
            fixed => fixed,
        }
    }
}

/// What the session asks a connection's writer to send.
#[derive(Debug)]
pub(crate) enum WriterCmd {
    /// An encoded control message.
    Bytes(Vec<u8>),
    /// A block of piece data.
    Block { block: BlockRef, data: Vec<u8> },
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

/// The reserved bits we send: the fast extension (BEP 6).
pub(crate) fn our_reserved() -> Reserved {
    let mut reserved = Reserved([0; 8]);
    reserved.set_fast(true);
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

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// Frames messages until the connection ends; returns why it ended.
async fn read_loop(mut socket: OwnedReadHalf, conn: ConnId, ctx: &ConnContext) -> CloseReason {
    let mut buf: Vec<u8> = Vec::with_capacity(2 * READ_CHUNK);
    let mut start = 0usize;
    loop {
        // Take every complete message already buffered.
        loop {
            match wire::decode(&buf[start..], &ctx.limits) {
                Ok(Decoded::Complete { message, consumed }) => {
                    let event = match message {
                        Message::Piece {
                            piece,
                            offset,
                            data,
                        } => ConnEvent::Block {
                            conn,
                            block: BlockRef {
                                piece,
                                offset,
                                length: data.len() as u32,
                            },
                            data: data.to_vec(),
                        },
                        message => ConnEvent::Message {
                            conn,
                            message: Received::detach(message),
                        },
                    };
                    start += consumed;
                    if ctx.events.send(event).await.is_err() {
                        return CloseReason::SessionEnded;
                    }
                }
                // The codec checked any length prefix against the limits
                // before asking for more, so the buffer stays bounded by the
                // largest allowed message plus one read.
                Ok(Decoded::NeedMore { .. }) => break,
                Err(e) => return CloseReason::Protocol(e),
            }
        }
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
        // Read into the spare capacity: no zeroing of bytes the socket
        // overwrites anyway.
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
/// haves) go out together instead of one system call each.
const WRITE_BATCH: usize = 128 * 1024;

async fn write_loop(
    socket: OwnedWriteHalf,
    conn: ConnId,
    mut commands: mpsc::UnboundedReceiver<WriterCmd>,
    ctx: &ConnContext,
) -> Result<(), CloseReason> {
    let mut socket = tokio::io::BufWriter::with_capacity(WRITE_BATCH, socket);
    loop {
        let command = match tokio::time::timeout(ctx.keepalive_interval, commands.recv()).await {
            Err(_) => {
                socket.write_all(&[0, 0, 0, 0]).await?;
                socket.flush().await?;
                continue;
            }
            Ok(None) => {
                let _ = socket.flush().await;
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
                WriterCmd::Bytes(bytes) => socket.write_all(&bytes).await?,
                WriterCmd::Block { block, data } => {
                    ctx.upload_limit.acquire(data.len() as u64).await;
                    let header = wire::piece_header(block.piece, block.offset, data.len() as u32);
                    socket.write_all(&header).await?;
                    socket.write_all(&data).await?;
                    sent_blocks += 1;
                    sent_bytes += data.len() as u64;
                }
            }
            if socket.buffer().len() < WRITE_BATCH / 2 {
                next = commands.try_recv().ok();
            }
        }
        socket.flush().await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The session sees the message the reader decoded, variable parts
    /// included, however the read buffer is reused afterwards.
    #[test]
    fn a_detached_message_is_the_decoded_one() {
        let block = BlockRef {
            piece: 3,
            offset: swarm::picker::BLOCK,
            length: 100,
        };
        let messages = [
            Message::Have { piece: 7 },
            Message::Request(block),
            Message::Bitfield(&[0b1010_0000, 0x0f]),
            Message::Extended {
                id: 2,
                payload: b"d1:xi1ee",
            },
            Message::Unknown {
                id: 99,
                payload: b"?",
            },
            Message::KeepAlive,
        ];
        for message in messages {
            let mut encoded = message.encode();
            let limits = DecodeLimits::for_pieces(16);
            let Ok(Decoded::Complete {
                message: decoded, ..
            }) = wire::decode(&encoded, &limits)
            else {
                panic!("{message:?} does not decode");
            };
            let received = Received::detach(decoded);
            encoded.fill(0);
            assert_eq!(received.message(), message);
        }
    }
}
