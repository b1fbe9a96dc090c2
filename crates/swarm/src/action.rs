//! What the swarm asks its driver to do.

use std::net::SocketAddr;

use crate::picker::Block;
use crate::PeerKey;

/// A message for a peer. The driver encodes it with the `wire` codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    HaveAll,
    HaveNone,
    Request(Block),
    Cancel(Block),
    /// BEP 6: we will not serve this request.
    Reject(Block),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Dial this address and report back with `handle_peer_connected` or
    /// `handle_connect_failed`.
    Connect(SocketAddr),
    Send(PeerKey, Outgoing),
    /// Close the connection; `handle_peer_disconnected` need not follow.
    Disconnect(PeerKey, DisconnectReason),
    /// The peer has requests waiting: call `next_upload` when it can take data.
    UploadReady(PeerKey),
    /// Every block of this piece is stored: check its hash and report with
    /// `handle_piece_checked`.
    Verify(u32),
    /// This piece passed its check: record it in the resume state.
    PieceVerified(u32),
    /// Every piece is verified.
    Completed,
    /// Fetch `length` bytes at `offset` of `piece` from the origin (the web
    /// seed) and report each of `blocks` with `handle_origin_block`, or
    /// the failure with `handle_origin_failed`.
    FetchFromOrigin {
        piece: u32,
        offset: u32,
        length: u32,
        blocks: Vec<Block>,
    },
    /// The origin will not be used any more; the text says why.
    OriginUnusable(String),
}

/// Why the swarm dropped a peer. The peer's fault unless said otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// It broke the protocol; the text says how.
    Protocol(String),
    /// It sent data that failed hash checks too often.
    Banned,
    /// Neither side needs anything from the other (both complete).
    NotUseful,
    /// Already connected to this address.
    Duplicate,
    /// We are at our connection limit (our choice, not the peer's fault).
    TooManyPeers,
}
