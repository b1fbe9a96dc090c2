//! The messages that follow the handshake, and how to write them.
//!
//! Framing (BEP 3 §peer messages): a 4-byte big-endian length, then that many
//! bytes; length 0 is a keep-alive, otherwise the first byte is the message
//! ID. IDs: BEP 3 (0-8), BEP 5 `port` (9), BEP 6 fast extension (13-17),
//! BEP 10 extension protocol (20), BEP 52 hash transfer (21-23).
//!
//! [`Message`] borrows its variable-size parts (bitfield, block data, hashes,
//! extension payloads) from the input buffer, so decoding copies nothing.
//! Decoding lives in [`crate::decode`].

/// Message IDs on the wire.
pub mod id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    /// BEP 5.
    pub const PORT: u8 = 9;
    /// BEP 6.
    pub const SUGGEST: u8 = 13;
    pub const HAVE_ALL: u8 = 14;
    pub const HAVE_NONE: u8 = 15;
    pub const REJECT: u8 = 16;
    pub const ALLOWED_FAST: u8 = 17;
    /// BEP 10.
    pub const EXTENDED: u8 = 20;
    /// BEP 52.
    pub const HASH_REQUEST: u8 = 21;
    pub const HASHES: u8 = 22;
    pub const HASH_REJECT: u8 = 23;
}

/// The extended message ID of the BEP 10 extension handshake.
pub const EXTENSION_HANDSHAKE_ID: u8 = 0;

/// Bytes before the block data in a piece message: length prefix, ID,
/// piece index, offset.
pub const PIECE_HEADER_LEN: usize = 13;

/// A block of a piece: what `request`, `cancel` and `reject` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    pub piece: u32,
    /// Byte offset of the block inside the piece.
    pub offset: u32,
    /// Block length in bytes.
    pub length: u32,
}

/// A request for a run of merkle-tree hashes of one file (BEP 52 §hash
/// request); also the header of `hashes` and the payload of `hash reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRequest {
    /// Root of the file's merkle tree.
    pub pieces_root: [u8; 32],
    /// Layers above the leaves where the requested hashes sit (0 = leaves).
    pub base_layer: u32,
    /// Index of the first requested hash within the base layer.
    pub index: u32,
    /// Number of hashes requested from the base layer.
    pub length: u32,
    /// Number of ancestor layers whose uncle hashes are wanted as proof.
    pub proof_layers: u32,
}

/// Size of a [`HashRequest`] on the wire.
pub const HASH_REQUEST_LEN: usize = 48;

/// One peer wire message. Variable-size parts borrow from the decoded buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have {
        piece: u32,
    },
    /// One bit per piece, high bit of byte 0 is piece 0; spare bits zero.
    Bitfield(&'a [u8]),
    Request(BlockRef),
    Piece {
        piece: u32,
        offset: u32,
        data: &'a [u8],
    },
    Cancel(BlockRef),
    /// BEP 5: the sender's DHT port.
    Port(u16),
    /// BEP 6.
    Suggest {
        piece: u32,
    },
    HaveAll,
    HaveNone,
    Reject(BlockRef),
    AllowedFast {
        piece: u32,
    },
    /// BEP 10: `id` is the extended message ID (0 = extension handshake,
    /// others as the receiver assigned in its handshake's `m`).
    Extended {
        id: u8,
        payload: &'a [u8],
    },
    /// BEP 52.
    HashRequest(HashRequest),
    /// `hashes` is a whole number of 32-byte hashes: the base layer hashes,
    /// then the uncle hashes from the bottom up.
    Hashes {
        request: HashRequest,
        hashes: &'a [u8],
    },
    HashReject(HashRequest),
    /// A message ID we do not know. Clients add messages; we skip them
    /// (they still obey the length limit).
    Unknown {
        id: u8,
        payload: &'a [u8],
    },
}

impl Message<'_> {
    /// The message ID, `None` for a keep-alive.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => id::CHOKE,
            Message::Unchoke => id::UNCHOKE,
            Message::Interested => id::INTERESTED,
            Message::NotInterested => id::NOT_INTERESTED,
            Message::Have { .. } => id::HAVE,
            Message::Bitfield(_) => id::BITFIELD,
            Message::Request(_) => id::REQUEST,
            Message::Piece { .. } => id::PIECE,
            Message::Cancel(_) => id::CANCEL,
            Message::Port(_) => id::PORT,
            Message::Suggest { .. } => id::SUGGEST,
            Message::HaveAll => id::HAVE_ALL,
            Message::HaveNone => id::HAVE_NONE,
            Message::Reject(_) => id::REJECT,
            Message::AllowedFast { .. } => id::ALLOWED_FAST,
            Message::Extended { .. } => id::EXTENDED,
            Message::HashRequest(_) => id::HASH_REQUEST,
            Message::Hashes { .. } => id::HASHES,
            Message::HashReject(_) => id::HASH_REJECT,
            Message::Unknown { id, .. } => *id,
        })
    }

    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::KeepAlive => "keep-alive",
            Message::Unknown { .. } => "unknown",
            other => other.id().map_or("unknown", name_of),
        }
    }

    /// Bytes this message takes on the wire, length prefix included.
    pub fn encoded_len(&self) -> usize {
        4 + self.body_len()
    }

    /// The message as a new buffer. See [`Message::encode_into`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the message, length prefix included, to `out`.
    ///
    /// # Panics
    ///
    /// If a borrowed payload is so large (about 4 GiB) that the length does
    /// not fit the 4-byte prefix: a bug in the caller, never input.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&length_prefix(self.body_len()));
        let Some(message_id) = self.id() else {
            return; // keep-alive: the prefix is the whole message
        };
        out.push(message_id);
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => {}
            Message::Have { piece }
            | Message::Suggest { piece }
            | Message::AllowedFast { piece } => out.extend_from_slice(&piece.to_be_bytes()),
            Message::Bitfield(bits) => out.extend_from_slice(bits),
            Message::Request(block) | Message::Cancel(block) | Message::Reject(block) => {
                put_block(out, block)
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                out.extend_from_slice(&piece.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(data);
            }
            Message::Port(port) => out.extend_from_slice(&port.to_be_bytes()),
            Message::Extended { id, payload } => {
                out.push(*id);
                out.extend_from_slice(payload);
            }
            Message::HashRequest(request) | Message::HashReject(request) => {
                put_hash_request(out, request)
            }
            Message::Hashes { request, hashes } => {
                put_hash_request(out, request);
                out.extend_from_slice(hashes);
            }
            Message::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
    }

    /// The length prefix's value: ID byte plus payload.
    fn body_len(&self) -> usize {
        let payload = match self {
            Message::KeepAlive => return 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 0,
            Message::Have { .. } | Message::Suggest { .. } | Message::AllowedFast { .. } => 4,
            Message::Bitfield(bits) => bits.len(),
            Message::Request(_) | Message::Cancel(_) | Message::Reject(_) => 12,
            Message::Piece { data, .. } => 8 + data.len(),
            Message::Port(_) => 2,
            Message::Extended { payload, .. } => 1 + payload.len(),
            Message::HashRequest(_) | Message::HashReject(_) => HASH_REQUEST_LEN,
            Message::Hashes { hashes, .. } => HASH_REQUEST_LEN + hashes.len(),
            Message::Unknown { payload, .. } => payload.len(),
        };
        1 + payload
    }
}

/// The 13 bytes that precede a block of `data_len` bytes in a piece message.
///
/// Lets a sender write header and block with vectored I/O straight from its
/// read buffer instead of copying the block into a message buffer.
///
/// # Panics
///
/// If `data_len` exceeds `u32::MAX - 9`: a bug in the caller, never input.
pub fn piece_header(piece: u32, offset: u32, data_len: u32) -> [u8; PIECE_HEADER_LEN] {
    let mut header = [0u8; PIECE_HEADER_LEN];
    header[..4].copy_from_slice(&length_prefix((data_len as usize).saturating_add(9)));
    header[4] = id::PIECE;
    header[5..9].copy_from_slice(&piece.to_be_bytes());
    header[9..13].copy_from_slice(&offset.to_be_bytes());
    header
}

/// The name of a message type by ID, for logs and errors.
pub(crate) fn name_of(message_id: u8) -> &'static str {
    match message_id {
        id::CHOKE => "choke",
        id::UNCHOKE => "unchoke",
        id::INTERESTED => "interested",
        id::NOT_INTERESTED => "not interested",
        id::HAVE => "have",
        id::BITFIELD => "bitfield",
        id::REQUEST => "request",
        id::PIECE => "piece",
        id::CANCEL => "cancel",
        id::PORT => "port",
        id::SUGGEST => "suggest",
        id::HAVE_ALL => "have all",
        id::HAVE_NONE => "have none",
        id::REJECT => "reject",
        id::ALLOWED_FAST => "allowed fast",
        id::EXTENDED => "extended",
        id::HASH_REQUEST => "hash request",
        id::HASHES => "hashes",
        id::HASH_REJECT => "hash reject",
        _ => "unknown",
    }
}

fn length_prefix(body_len: usize) -> [u8; 4] {
    // Only a caller-built payload can be this big; see the `# Panics` notes.
    let length = u32::try_from(body_len).expect("peer message longer than 4 GiB");
    length.to_be_bytes()
}

fn put_block(out: &mut Vec<u8>, block: &BlockRef) {
    out.extend_from_slice(&block.piece.to_be_bytes());
    out.extend_from_slice(&block.offset.to_be_bytes());
    out.extend_from_slice(&block.length.to_be_bytes());
}

fn put_hash_request(out: &mut Vec<u8>, request: &HashRequest) {
    out.extend_from_slice(&request.pieces_root);
    out.extend_from_slice(&request.base_layer.to_be_bytes());
    out.extend_from_slice(&request.index.to_be_bytes());
    out.extend_from_slice(&request.length.to_be_bytes());
    out.extend_from_slice(&request.proof_layers.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_messages_match_the_spec_bytes() {
        assert_eq!(Message::KeepAlive.encode(), [0, 0, 0, 0]);
        assert_eq!(Message::Interested.encode(), [0, 0, 0, 1, 2]);
        assert_eq!(Message::HaveAll.encode(), [0, 0, 0, 1, 0x0e]);
        assert_eq!(
            Message::AllowedFast { piece: 0x0102_0304 }.encode(),
            [0, 0, 0, 5, 0x11, 1, 2, 3, 4]
        );
        assert_eq!(Message::Port(6881).encode(), [0, 0, 0, 3, 9, 0x1a, 0xe1]);
        let request = Message::HashRequest(HashRequest {
            pieces_root: [7; 32],
            base_layer: 0,
            index: 0,
            length: 512,
            proof_layers: 9,
        });
        let bytes = request.encode();
        assert_eq!(bytes.len(), 4 + 1 + 48);
        assert_eq!(&bytes[..5], &[0, 0, 0, 49, 21]);
    }

    #[test]
    fn piece_header_is_the_prefix_of_the_full_message() {
        let data = [9u8; 100];
        let full = Message::Piece {
            piece: 3,
            offset: 16384,
            data: &data,
        }
        .encode();
        assert_eq!(&full[..PIECE_HEADER_LEN], &piece_header(3, 16384, 100));
        assert_eq!(&full[PIECE_HEADER_LEN..], &data);
    }

    #[test]
    fn names_and_encoded_len() {
        assert_eq!(Message::HaveNone.name(), "have none");
        assert_eq!(Message::KeepAlive.name(), "keep-alive");
        let unknown = Message::Unknown {
            id: 99,
            payload: b"xyz",
        };
        assert_eq!(unknown.name(), "unknown");
        assert_eq!(unknown.encoded_len(), unknown.encode().len());
        assert_eq!(unknown.encode(), b"\0\0\0\x04\x63xyz");
    }
}
