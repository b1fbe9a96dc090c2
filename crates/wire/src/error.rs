//! Everything that can go wrong decoding what a peer sent.
//!
//! Every variant is the remote peer's fault: it sent bytes that are not the
//! BitTorrent wire protocol, or that break a rule of it. The caller's move is
//! always the same: close the connection, and maybe strike the peer. There
//! are no I/O errors here (the codec does no I/O) and no "need more bytes"
//! (that is [`Decoded::NeedMore`](crate::Decoded::NeedMore), not an error).

/// A protocol violation by the remote peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The handshake does not start with `\x13BitTorrent protocol`: the
    /// peer speaks something else (HTTP, an encrypted stream, noise).
    /// `offset` is the first byte that disagreed.
    #[error(
        "not a BitTorrent handshake (byte {offset} disagrees with \"\\x13BitTorrent protocol\")"
    )]
    NotBitTorrent { offset: usize },

    /// A length prefix larger than we are willing to buffer. Detected from
    /// the 4-byte prefix alone, before any of the body arrives.
    #[error("message of {length} bytes exceeds the limit of {max}")]
    MessageTooLong { length: u32, max: u32 },

    /// A length prefix that is impossible for this message type (a fixed-size
    /// message of the wrong size, a piece with no data, a hashes message whose
    /// hash list is not a whole number of 32-byte hashes, ...). `length` is
    /// the value of the length prefix (message ID byte included).
    #[error("{message} message with impossible length {length}")]
    BadLength { message: &'static str, length: u32 },

    /// A bitfield whose byte length does not match the torrent's piece count.
    #[error("bitfield of {length} bytes, expected {expected} for {piece_count} pieces")]
    BitfieldWrongSize {
        length: usize,
        expected: usize,
        piece_count: u32,
    },

    /// A bitfield with bits set past the last piece (BEP 3: spare bits are zero).
    #[error("bitfield has spare bits set past piece {piece_count}")]
    BitfieldSpareBits { piece_count: u32 },

    /// A piece index the torrent does not have.
    #[error("{message} names piece {piece}, torrent has {piece_count} pieces")]
    PieceOutOfRange {
        message: &'static str,
        piece: u32,
        piece_count: u32,
    },

    /// A request, reject or cancel for zero bytes or more than we serve.
    #[error("{message} for {length} bytes, allowed 1..={max}")]
    BadRequestLength {
        message: &'static str,
        length: u32,
        max: u32,
    },

    /// An extension handshake payload larger than we parse.
    #[error("extension handshake of {length} bytes exceeds the limit of {max}")]
    ExtensionHandshakeTooLong { length: usize, max: usize },

    /// An extension handshake that is not a bencoded dictionary.
    #[error("bad extension handshake: {0}")]
    BadExtensionHandshake(String),
}
