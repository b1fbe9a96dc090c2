//! Shared fixtures: one message of every kind.

use wire::{BlockRef, HashRequest, Message};

pub const BITS: [u8; 3] = [0b1010_0000, 0xff, 0b1100_0000]; // 18 pieces
pub const DATA: [u8; 16] = *b"sixteen bytes!!!";
pub const HASHES: [u8; 96] = [0x5a; 96];
pub const EXT_PAYLOAD: &[u8] = b"d1:md6:ut_pexi1eee";

/// Every piece index below is < `PIECE_COUNT`, every block length valid
/// under the default limits.
pub const PIECE_COUNT: u32 = 18;

pub fn hash_request() -> HashRequest {
    HashRequest {
        pieces_root: [0xa5; 32],
        base_layer: 0,
        index: 512,
        length: 2,
        proof_layers: 3,
    }
}

pub fn block() -> BlockRef {
    BlockRef {
        piece: 17,
        offset: 16384,
        length: 16384,
    }
}

/// One of every variant.
pub fn every_message() -> Vec<Message<'static>> {
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have { piece: 3 },
        Message::Bitfield(&BITS),
        Message::Request(block()),
        Message::Piece {
            piece: 2,
            offset: 32768,
            data: &DATA,
        },
        Message::Cancel(block()),
        Message::Port(6881),
        Message::Suggest { piece: 0 },
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject(block()),
        Message::AllowedFast { piece: 17 },
        Message::Extended {
            id: 0,
            payload: EXT_PAYLOAD,
        },
        Message::Extended {
            id: 3,
            payload: b"",
        },
        Message::HashRequest(hash_request()),
        Message::Hashes {
            request: hash_request(),
            hashes: &HASHES,
        },
        Message::HashReject(hash_request()),
        Message::Unknown {
            id: 200,
            payload: b"someone's new idea",
        },
        Message::Unknown {
            id: 10,
            payload: b"",
        },
    ]
}
