//! The BitTorrent peer wire protocol as a pure codec: the handshake and the
//! length-prefixed messages that follow it, encoded to and decoded from byte
//! slices. No sockets, no buffers of its own, no clocks.
//!
//! Specs: BEP 3 (handshake, core messages), BEP 5 (`port`), BEP 6 (fast
//! extension), BEP 10 (extension protocol and its handshake), BEP 52 (v2
//! hash request / hashes / hash reject, the v2 upgrade bit).
//!
//! Decoding takes the front of a receive buffer and returns a message with
//! the number of bytes it used, or how many bytes the buffer must hold before
//! trying again. Input is untrusted: every length is checked against
//! [`DecodeLimits`] as soon as its bytes are in, before the caller would
//! buffer the rest, and every error is a [`WireError`] that means "the peer
//! broke the protocol; close the connection".
//!
//! Semantics above framing (was this piece requested? is the peer choked?
//! does a `hashes` reply match its request?) belong to the swarm.

mod decode;
mod error;
mod extension;
mod handshake;
mod message;

pub use decode::{bitfield_len, decode, DecodeLimits, Decoded};
pub use error::WireError;
pub use extension::{ExtensionHandshake, MAX_EXTENSION_HANDSHAKE_LEN};
pub use handshake::{Handshake, Reserved, HANDSHAKE_LEN, PROTOCOL_HEADER};
pub use message::{
    id, piece_header, BlockRef, HashRequest, Message, EXTENSION_HANDSHAKE_ID, HASH_REQUEST_LEN,
    PIECE_HEADER_LEN,
};
