//! Protocol violations are refused, as early as the bytes allow, with an
//! error that names the problem.

use wire::{decode, BlockRef, DecodeLimits, Decoded, Message, WireError};

/// A message with the given length prefix, ID and payload (the prefix is
/// not computed, so it can lie).
fn raw(length: u32, id: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = length.to_be_bytes().to_vec();
    bytes.push(id);
    bytes.extend_from_slice(payload);
    bytes
}

fn framed(id: u8, payload: &[u8]) -> Vec<u8> {
    raw(payload.len() as u32 + 1, id, payload)
}

fn err(bytes: &[u8], limits: &DecodeLimits) -> WireError {
    match decode(bytes, limits) {
        Err(e) => e,
        other => panic!("expected an error for {bytes:?}, got {other:?}"),
    }
}

#[test]
fn a_huge_length_prefix_is_refused_from_four_bytes() {
    let limits = DecodeLimits::default();
    assert_eq!(
        err(&0xFFFF_FFF0u32.to_be_bytes(), &limits),
        WireError::MessageTooLong {
            length: 0xFFFF_FFF0,
            max: limits.max_message_len
        }
    );
    // One byte over the limit is over; the limit itself is fine.
    let max = limits.max_message_len;
    assert!(matches!(
        err(&(max + 1).to_be_bytes(), &limits),
        WireError::MessageTooLong { .. }
    ));
    assert_eq!(
        decode(&max.to_be_bytes(), &limits),
        Ok(Decoded::NeedMore {
            at_least: max as usize + 4
        })
    );
}

#[test]
fn unknown_messages_obey_the_length_limit_too() {
    let limits = DecodeLimits {
        max_message_len: 100,
        ..DecodeLimits::default()
    };
    assert_eq!(
        err(&raw(101, 250, b""), &limits),
        WireError::MessageTooLong {
            length: 101,
            max: 100
        }
    );
}

#[test]
fn wrong_fixed_lengths_name_the_message() {
    let limits = DecodeLimits::default();
    let cases: &[(u8, usize, &str)] = &[
        (0, 1, "choke"),
        (1, 4, "unchoke"),
        (2, 1, "interested"),
        (3, 1, "not interested"),
        (4, 3, "have"),
        (4, 5, "have"),
        (6, 11, "request"), // a length prefix of 12, one short
        (6, 16, "request"),
        (8, 11, "cancel"),
        (9, 4, "port"),
        (13, 0, "suggest"),
        (14, 1, "have all"),
        (15, 2, "have none"),
        (16, 13, "reject"),
        (17, 8, "allowed fast"),
        (21, 47, "hash request"),
        (23, 52, "hash reject"),
    ];
    for &(id, payload_len, name) in cases {
        let bytes = framed(id, &vec![0; payload_len]);
        assert_eq!(
            err(&bytes, &limits),
            WireError::BadLength {
                message: name,
                length: payload_len as u32 + 1
            },
            "id {id} with {payload_len} payload bytes"
        );
        // Already from the first five bytes, before the body is in.
        assert!(
            matches!(err(&bytes[..5], &limits), WireError::BadLength { .. }),
            "id {id} header only"
        );
    }
}

#[test]
fn variable_messages_with_impossible_lengths() {
    let limits = DecodeLimits::default();
    // A piece with no data, an extended message without its extended ID.
    let cases: &[(u8, usize, &str)] = &[
        (7, 8, "piece"),
        (7, 4, "piece"),
        (20, 0, "extended"),
        (22, 48, "hashes"), // no hashes at all
        (22, 48 + 31, "hashes"),
        (22, 48 + 33, "hashes"),
        (22, 10, "hashes"),
    ];
    for &(id, payload_len, name) in cases {
        assert_eq!(
            err(&framed(id, &vec![0; payload_len]), &limits),
            WireError::BadLength {
                message: name,
                length: payload_len as u32 + 1
            },
            "id {id} with {payload_len} payload bytes"
        );
    }
}

#[test]
fn bitfields_must_fit_the_piece_count() {
    let limits = DecodeLimits::for_pieces(18); // 3 bytes, 6 spare bits
    assert!(decode(&framed(5, &[0xff, 0xff, 0xc0]), &limits).is_ok());
    for len in [0usize, 2, 4, 100] {
        let bytes = framed(5, &vec![0; len]);
        assert_eq!(
            err(&bytes, &limits),
            WireError::BitfieldWrongSize {
                length: len,
                expected: 3,
                piece_count: 18
            }
        );
        assert!(matches!(
            err(&bytes[..5], &limits),
            WireError::BitfieldWrongSize { .. }
        ));
    }
    for last in [0x20, 0x01, 0x3f] {
        assert_eq!(
            err(&framed(5, &[0, 0, last]), &limits),
            WireError::BitfieldSpareBits { piece_count: 18 }
        );
    }
    // Without a piece count, any size goes (metadata not yet fetched).
    assert!(decode(&framed(5, &[0xff; 4]), &DecodeLimits::default()).is_ok());
}

#[test]
fn piece_indices_must_be_in_range() {
    let limits = DecodeLimits::for_pieces(10);
    let block = |piece| BlockRef {
        piece,
        offset: 0,
        length: 16384,
    };
    let out_of_range = [
        ("have", Message::Have { piece: 10 }),
        ("suggest", Message::Suggest { piece: 10 }),
        ("allowed fast", Message::AllowedFast { piece: u32::MAX }),
        ("request", Message::Request(block(10))),
        ("cancel", Message::Cancel(block(11))),
        ("reject", Message::Reject(block(12))),
        (
            "piece",
            Message::Piece {
                piece: 10,
                offset: 0,
                data: b"x",
            },
        ),
    ];
    for (name, message) in out_of_range {
        let WireError::PieceOutOfRange {
            message: named,
            piece,
            piece_count: 10,
        } = err(&message.encode(), &limits)
        else {
            panic!("{message:?} not refused as out of range");
        };
        assert_eq!(named, name);
        assert!(piece >= 10);
        // The last piece is fine, and so is anything without a piece count.
        assert!(decode(&message.encode(), &DecodeLimits::default()).is_ok());
    }
    assert!(decode(&Message::Have { piece: 9 }.encode(), &limits).is_ok());
}

#[test]
fn request_lengths_must_be_sane() {
    let limits = DecodeLimits::default();
    let with_length = |length| BlockRef {
        piece: 0,
        offset: 0,
        length,
    };
    for length in [0, 129 * 1024, u32::MAX] {
        for (name, message) in [
            ("request", Message::Request(with_length(length))),
            ("reject", Message::Reject(with_length(length))),
            ("cancel", Message::Cancel(with_length(length))),
        ] {
            assert_eq!(
                err(&message.encode(), &limits),
                WireError::BadRequestLength {
                    message: name,
                    length,
                    max: 128 * 1024
                }
            );
        }
    }
    let largest = Message::Request(with_length(128 * 1024));
    assert!(decode(&largest.encode(), &limits).is_ok());
}

#[test]
fn errors_read_well() {
    let text = WireError::BadLength {
        message: "have",
        length: 3,
    }
    .to_string();
    assert_eq!(text, "have message with impossible length 3");
    let text = WireError::MessageTooLong {
        length: 0xFFFF_FFF0,
        max: 1_048_589,
    }
    .to_string();
    assert!(
        text.contains("4294967280") && text.contains("1048589"),
        "{text}"
    );
}
