//! What a connection's reader takes off its read buffer: each complete
//! message, decoded once by the `wire` codec. Blocks of piece data stay
//! where the socket put them (a view into the buffer, no copy); other
//! messages are detached from the buffer so that it can be reused.

use bytes::{Buf, Bytes, BytesMut};
use wire::{BlockRef, DecodeLimits, Decoded, Message, WireError};

/// One message as the reader passes it on.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A non-piece message, decoded once by the reader.
    Message(Received),
    /// A block of piece data: a view into the reader's buffer, not a copy;
    /// the session copies it once, into the piece it belongs to.
    Block { block: BlockRef, data: Bytes },
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
    pub(crate) fn detach(message: Message<'_>) -> Received {
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

/// Takes every complete message off the front of `buf` into `items`, in
/// order, up to a protocol error if any. Blocks are split off the buffer
/// without copying; other messages are detached.
pub(crate) fn take_messages(
    buf: &mut BytesMut,
    limits: &DecodeLimits,
    items: &mut Vec<Incoming>,
) -> Result<(), WireError> {
    loop {
        // The decoded message borrows `buf`: note what to do, then do it.
        let (item, consumed) = match wire::decode(buf, limits)? {
            Decoded::NeedMore { .. } => return Ok(()),
            Decoded::Complete {
                message:
                    Message::Piece {
                        piece,
                        offset,
                        data,
                    },
                consumed,
            } => {
                // The codec bounded the length by `max_message_len`.
                let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
                let block = BlockRef {
                    piece,
                    offset,
                    length,
                };
                (Err(block), consumed)
            }
            Decoded::Complete { message, consumed } => (Ok(Received::detach(message)), consumed),
        };
        match item {
            Ok(message) => {
                buf.advance(consumed);
                items.push(Incoming::Message(message));
            }
            Err(block) => {
                let mut frame = buf.split_to(consumed).freeze();
                frame.advance(consumed - block.length as usize);
                items.push(Incoming::Block { block, data: frame });
            }
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

    /// One read's messages come out in the order they were sent; a block's
    /// data is the piece message's payload and stays so after the read
    /// buffer is reused; a message cut by the read stays for the next one.
    #[test]
    fn a_read_gives_its_messages_in_order_and_keeps_a_partial_one() {
        let limits = DecodeLimits::for_pieces(16);
        let payload: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let piece = Message::Piece {
            piece: 2,
            offset: 16_384,
            data: &payload,
        };
        let request = Message::Request(BlockRef {
            piece: 5,
            offset: 0,
            length: 16_384,
        });
        let mut buf = BytesMut::new();
        for message in [Message::Have { piece: 1 }, piece, request] {
            buf.extend_from_slice(&message.encode());
        }
        let next = piece.encode();
        buf.extend_from_slice(&next[..7]);
        let mut items = Vec::new();
        take_messages(&mut buf, &limits, &mut items).unwrap();
        assert_eq!(&buf[..], &next[..7]);
        buf.clear();
        buf.extend_from_slice(&vec![0xee; 4096]);
        let [Incoming::Message(have), Incoming::Block { block, data }, Incoming::Message(asked)] =
            &items[..]
        else {
            panic!("unexpected items: {items:?}");
        };
        assert_eq!(have.message(), Message::Have { piece: 1 });
        assert_eq!(
            *block,
            BlockRef {
                piece: 2,
                offset: 16_384,
                length: 1000,
            }
        );
        assert_eq!(&data[..], &payload[..]);
        assert_eq!(asked.message(), request);
    }

    /// A length prefix beyond the limits is refused from its first bytes,
    /// before the reader would buffer the body it announces.
    #[test]
    fn an_oversized_message_is_refused_before_its_body() {
        let limits = DecodeLimits::for_pieces(16);
        let mut items = Vec::new();
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 7][..]);
        assert!(matches!(
            take_messages(&mut buf, &limits, &mut items),
            Err(WireError::MessageTooLong { .. })
        ));
        // A have before a piece message that claims more than the limits:
        // the have is taken, the piece refused.
        let mut buf = BytesMut::from(&Message::Have { piece: 3 }.encode()[..]);
        buf.extend_from_slice(&[0x00, 0x20, 0x00, 0x00, 7]);
        assert!(take_messages(&mut buf, &limits, &mut items).is_err());
        assert!(
            matches!(&items[..], [Incoming::Message(have)] if have.message() == Message::Have { piece: 3 })
        );
    }
}
