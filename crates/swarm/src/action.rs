//! What the swarm asks its driver to do.

use std::net::SocketAddr;

use crate::PeerKey;
use wire::{BlockRef, Message};

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
    Request(BlockRef),
    Cancel(BlockRef),
    /// BEP 6: we will not serve this request.
    Reject(BlockRef),
    /// BEP 10: our extension handshake, bencoded.
    ExtensionHandshake(Vec<u8>),
}

impl Outgoing {
    /// The wire message this is: the one mapping from the swarm's words to
    /// the codec's, used by the engine to encode and by the simulation to
    /// deliver.
    pub fn to_message(&self) -> Message<'_> {
        match self {
            Outgoing::Choke => Message::Choke,
            Outgoing::Unchoke => Message::Unchoke,
            Outgoing::Interested => Message::Interested,
            Outgoing::NotInterested => Message::NotInterested,
            Outgoing::Have(piece) => Message::Have { piece: *piece },
            Outgoing::Bitfield(bytes) => Message::Bitfield(bytes),
            Outgoing::HaveAll => Message::HaveAll,
            Outgoing::HaveNone => Message::HaveNone,
            Outgoing::Request(block) => Message::Request(*block),
            Outgoing::Cancel(block) => Message::Cancel(*block),
            Outgoing::Reject(block) => Message::Reject(*block),
            Outgoing::ExtensionHandshake(payload) => Message::Extended {
                id: wire::EXTENSION_HANDSHAKE_ID,
                payload,
            },
        }
    }
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
        blocks: Vec<BlockRef>,
    },
    /// Abandon the fetch of `piece` from the origin started by
    /// `FetchFromOrigin`: a peer has it now, or another agent owns it.
    /// Blocks of it that arrive anyway are refused.
    CancelOriginFetch {
        piece: u32,
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
    /// Already connected to this address, or to this peer by another
    /// connection (see `Swarm::handle_peer_connected` on twins).
    Duplicate,
    /// We are at our connection limit (our choice, not the peer's fault).
    TooManyPeers,
}
