//! Decoding peer messages from a byte slice (BEP 3 §peer messages framing,
//! checked against BEP 6, 10 and 52 message layouts).
//!
//! [`decode`] looks at the front of a receive buffer and answers either "here
//! is one message and it took `consumed` bytes" or "need at least N bytes in
//! the buffer". Lengths are judged as early as the bytes allow: the 4-byte
//! prefix against [`DecodeLimits::max_message_len`], then, once the ID byte
//! is in, the prefix against the size that message type must have. A peer
//! claiming 4 GiB, or a 1000-byte `have`, is refused before its body is
//! waited for, so a caller never grows its buffer for a bad message.

use crate::message::{id, name_of, BlockRef, HashRequest, Message, HASH_REQUEST_LEN};
use crate::WireError;

/// The result of decoding from the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A whole message; drop `consumed` bytes from the buffer front.
    Complete { message: T, consumed: usize },
    /// The buffer holds part of a message: call again once it holds at least
    /// `at_least` bytes in total (counted from the same start, not extra).
    NeedMore { at_least: usize },
}

/// Bounds on what a peer may send, checked while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest length prefix accepted (message ID byte plus payload), bytes.
    pub max_message_len: u32,
    /// Pieces in the torrent, once known (it is not while fetching metadata).
    /// Enables the exact bitfield size and spare-bit checks and piece index
    /// range checks.
    pub piece_count: Option<u32>,
    /// Largest block a request, cancel or reject may name, bytes.
    pub max_request_len: u32,
}

impl Default for DecodeLimits {
    /// `max_message_len` = 1 MiB + 13. A piece message for a 16 KiB block
    /// needs only 16 KiB + 9, but a bitfield needs one bit per piece: 1 MiB
    /// covers 8,388,608 pieces (128 TiB at 16 KiB pieces), and BEP 52 hashes
    /// replies (up to 512 hashes plus proofs, ~17 KiB) and extension payloads
    /// also fit with room to spare. The extra 13 are a piece header's worth,
    /// so a 1 MiB block would still pass if the swarm ever asked for one.
    /// Memory per connection stays bounded at about 1 MiB.
    ///
    /// `max_request_len` = 128 KiB: every current client requests 16 KiB
    /// blocks (BEP 52 notes clients drop peers asking for more); 128 KiB is
    /// the ceiling some clients still tolerate for old peers.
    fn default() -> Self {
        DecodeLimits {
            max_message_len: (1 << 20) + 13,
            piece_count: None,
            max_request_len: 128 * 1024,
        }
    }
}

impl DecodeLimits {
    /// The default limits with the torrent's piece count known.
    pub fn for_pieces(piece_count: u32) -> Self {
        DecodeLimits {
            piece_count: Some(piece_count),
            ..DecodeLimits::default()
        }
    }
}

/// Decodes one message from the front of `input`.
///
/// Never panics and never returns an error for a buffer that is merely
/// short: every strict prefix of a valid message gives
/// [`Decoded::NeedMore`]. Errors are protocol violations; see [`WireError`].
pub fn decode<'a>(
    input: &'a [u8],
    limits: &DecodeLimits,
) -> Result<Decoded<Message<'a>>, WireError> {
    let Some(prefix) = input.first_chunk::<4>() else {
        return Ok(Decoded::NeedMore { at_least: 4 });
    };
    let length = u32::from_be_bytes(*prefix);
    if length == 0 {
        return Ok(Decoded::Complete {
            message: Message::KeepAlive,
            consumed: 4,
        });
    }
    if length > limits.max_message_len {
        return Err(WireError::MessageTooLong {
            length,
            max: limits.max_message_len,
        });
    }
    // Cannot overflow: length <= u32::MAX and usize is at least 32 bits on
    // every target we build for; saturate anyway rather than wrap.
    let total = (length as usize).saturating_add(4);
    let Some(&message_id) = input.get(4) else {
        return Ok(Decoded::NeedMore { at_least: total });
    };
    check_length(message_id, length, limits)?;
    let Some(payload) = input.get(5..total) else {
        return Ok(Decoded::NeedMore { at_least: total });
    };
    let message = parse(message_id, payload, length, limits)?;
    Ok(Decoded::Complete {
        message,
        consumed: total,
    })
}

/// Judges the length prefix as soon as the message ID is known.
fn check_length(message_id: u8, length: u32, limits: &DecodeLimits) -> Result<(), WireError> {
    let bad = || WireError::BadLength {
        message: name_of(message_id),
        length,
    };
    // `length` counts the ID byte; `payload` is what follows it.
    let payload = length - 1;
    let fits = match message_id {
        id::CHOKE | id::UNCHOKE | id::INTERESTED | id::NOT_INTERESTED => payload == 0,
        id::HAVE_ALL | id::HAVE_NONE => payload == 0,
        id::HAVE | id::SUGGEST | id::ALLOWED_FAST => payload == 4,
        id::REQUEST | id::CANCEL | id::REJECT => payload == 12,
        id::PORT => payload == 2,
        id::HASH_REQUEST | id::HASH_REJECT => payload as usize == HASH_REQUEST_LEN,
        // Empty data answers no request.
        id::PIECE => payload > 8,
        // The extended message ID byte is mandatory.
        id::EXTENDED => payload >= 1,
        // At least one hash, and only whole hashes.
        id::HASHES => {
            let hashes = (payload as usize).checked_sub(HASH_REQUEST_LEN);
            matches!(hashes, Some(n) if n > 0 && n % 32 == 0)
        }
        id::BITFIELD => {
            if let Some(piece_count) = limits.piece_count {
                let expected = bitfield_len(piece_count);
                if payload as usize != expected {
                    return Err(WireError::BitfieldWrongSize {
                        length: payload as usize,
                        expected,
                        piece_count,
                    });
                }
            }
            true
        }
        _ => true, // unknown: only the overall limit applies
    };
    if fits {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Bytes in a bitfield for `piece_count` pieces.
pub fn bitfield_len(piece_count: u32) -> usize {
    (piece_count as usize).div_ceil(8)
}

fn parse<'a>(
    message_id: u8,
    payload: &'a [u8],
    length: u32,
    limits: &DecodeLimits,
) -> Result<Message<'a>, WireError> {
    let mut fields = Fields {
        rest: payload,
        message: name_of(message_id),
        length,
    };
    let message = match message_id {
        id::CHOKE => Message::Choke,
        id::UNCHOKE => Message::Unchoke,
        id::INTERESTED => Message::Interested,
        id::NOT_INTERESTED => Message::NotInterested,
        id::HAVE_ALL => Message::HaveAll,
        id::HAVE_NONE => Message::HaveNone,
        id::HAVE => Message::Have {
            piece: fields.piece(limits)?,
        },
        id::SUGGEST => Message::Suggest {
            piece: fields.piece(limits)?,
        },
        id::ALLOWED_FAST => Message::AllowedFast {
            piece: fields.piece(limits)?,
        },
        id::REQUEST => Message::Request(fields.block(limits)?),
        id::CANCEL => Message::Cancel(fields.block(limits)?),
        id::REJECT => Message::Reject(fields.block(limits)?),
        id::PIECE => Message::Piece {
            piece: fields.piece(limits)?,
            offset: fields.u32()?,
            data: fields.rest,
        },
        id::PORT => Message::Port(u16::from_be_bytes(*fields.take::<2>()?)),
        id::BITFIELD => {
            check_spare_bits(payload, limits)?;
            Message::Bitfield(payload)
        }
        id::EXTENDED => {
            let [extended_id] = *fields.take::<1>()?;
            Message::Extended {
                id: extended_id,
                payload: fields.rest,
            }
        }
        id::HASH_REQUEST => Message::HashRequest(fields.hash_request()?),
        id::HASH_REJECT => Message::HashReject(fields.hash_request()?),
        id::HASHES => Message::Hashes {
            request: fields.hash_request()?,
            hashes: fields.rest,
        },
        _ => Message::Unknown {
            id: message_id,
            payload,
        },
    };
    Ok(message)
}

fn check_spare_bits(bits: &[u8], limits: &DecodeLimits) -> Result<(), WireError> {
    let Some(piece_count) = limits.piece_count else {
        return Ok(());
    };
    let used_in_last = piece_count % 8;
    if used_in_last == 0 {
        return Ok(());
    }
    // Pieces map to bits high to low, so the spare bits are the low ones.
    let spare_mask = 0xffu8 >> used_in_last;
    match bits.last() {
        Some(last) if last & spare_mask != 0 => Err(WireError::BitfieldSpareBits { piece_count }),
        _ => Ok(()),
    }
}

/// Reads fixed-size fields off the front of a payload. The length was
/// checked before, so running short is unreachable, but it is reported as
/// a bad length rather than trusted.
struct Fields<'a> {
    rest: &'a [u8],
    message: &'static str,
    length: u32,
}

impl<'a> Fields<'a> {
    fn take<const N: usize>(&mut self) -> Result<&'a [u8; N], WireError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(WireError::BadLength {
                message: self.message,
                length: self.length,
            })?;
        self.rest = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(*self.take::<4>()?))
    }

    fn piece(&mut self, limits: &DecodeLimits) -> Result<u32, WireError> {
        let piece = self.u32()?;
        match limits.piece_count {
            Some(piece_count) if piece >= piece_count => Err(WireError::PieceOutOfRange {
                message: self.message,
                piece,
                piece_count,
            }),
            _ => Ok(piece),
        }
    }

    fn block(&mut self, limits: &DecodeLimits) -> Result<BlockRef, WireError> {
        let block = BlockRef {
            piece: self.piece(limits)?,
            offset: self.u32()?,
            length: self.u32()?,
        };
        if block.length == 0 || block.length > limits.max_request_len {
            return Err(WireError::BadRequestLength {
                message: self.message,
                length: block.length,
                max: limits.max_request_len,
            });
        }
        Ok(block)
    }

    fn hash_request(&mut self) -> Result<HashRequest, WireError> {
        Ok(HashRequest {
            pieces_root: *self.take::<32>()?,
            base_layer: self.u32()?,
            index: self.u32()?,
            length: self.u32()?,
            proof_layers: self.u32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DecodeLimits {
        DecodeLimits::default()
    }

    #[test]
    fn keep_alive_is_four_zero_bytes() {
        assert_eq!(
            decode(&[0, 0, 0, 0, 0, 0, 0, 1, 2], &limits()),
            Ok(Decoded::Complete {
                message: Message::KeepAlive,
                consumed: 4
            })
        );
    }

    #[test]
    fn need_more_counts_the_whole_message() {
        assert_eq!(
            decode(&[0, 0], &limits()),
            Ok(Decoded::NeedMore { at_least: 4 })
        );
        assert_eq!(
            decode(&[0, 0, 0, 5, 4, 0], &limits()),
            Ok(Decoded::NeedMore { at_least: 9 })
        );
    }

    #[test]
    fn a_bad_fixed_length_is_refused_from_the_header_alone() {
        // A "have" claiming 1000 bytes: refused with 5 bytes in hand.
        assert_eq!(
            decode(&[0, 0, 0x03, 0xe8, 4], &limits()),
            Err(WireError::BadLength {
                message: "have",
                length: 1000
            })
        );
    }

    #[test]
    fn spare_bits_are_the_low_bits_of_the_last_byte() {
        let limits = DecodeLimits::for_pieces(10);
        assert_eq!(bitfield_len(10), 2);
        assert!(check_spare_bits(&[0xff, 0xc0], &limits).is_ok());
        assert_eq!(
            check_spare_bits(&[0xff, 0xe0], &limits),
            Err(WireError::BitfieldSpareBits { piece_count: 10 })
        );
        assert!(check_spare_bits(&[0xff], &DecodeLimits::for_pieces(8)).is_ok());
    }
}
