//! Encode → decode gives back the same message, consuming exactly what was
//! written, alone or back to back; every strict prefix asks for more.

mod common;

use common::{every_message, PIECE_COUNT};
use wire::{decode, DecodeLimits, Decoded, Message};

fn limits_both_ways() -> [DecodeLimits; 2] {
    [
        DecodeLimits::default(),
        DecodeLimits::for_pieces(PIECE_COUNT),
    ]
}

#[test]
fn every_variant_round_trips() {
    for limits in limits_both_ways() {
        for message in every_message() {
            let bytes = message.encode();
            assert_eq!(bytes.len(), message.encoded_len(), "{message:?}");
            assert_eq!(
                decode(&bytes, &limits),
                Ok(Decoded::Complete {
                    message,
                    consumed: bytes.len()
                }),
                "{message:?} under {limits:?}"
            );
        }
    }
}

#[test]
fn messages_back_to_back_decode_one_by_one() {
    let messages = every_message();
    let mut stream = Vec::new();
    for message in &messages {
        message.encode_into(&mut stream);
    }
    let limits = DecodeLimits::for_pieces(PIECE_COUNT);
    let mut at = 0;
    let mut decoded = Vec::new();
    while at < stream.len() {
        match decode(&stream[at..], &limits) {
            Ok(Decoded::Complete { message, consumed }) => {
                decoded.push(message);
                at += consumed;
            }
            other => panic!("at byte {at}: {other:?}"),
        }
    }
    assert_eq!(at, stream.len());
    assert_eq!(decoded, messages);
}

#[test]
fn every_strict_prefix_needs_more() {
    for limits in limits_both_ways() {
        for message in every_message() {
            let bytes = message.encode();
            for len in 0..bytes.len() {
                let expected = if len < 4 { 4 } else { bytes.len() };
                assert_eq!(
                    decode(&bytes[..len], &limits),
                    Ok(Decoded::NeedMore { at_least: expected }),
                    "{message:?} cut to {len} bytes"
                );
            }
        }
    }
}

#[test]
fn a_prefix_of_a_stream_needs_only_what_its_first_message_needs() {
    let mut stream = Message::Have { piece: 1 }.encode();
    Message::Interested.encode_into(&mut stream);
    assert_eq!(
        decode(&stream[..7], &DecodeLimits::default()),
        Ok(Decoded::NeedMore { at_least: 9 })
    );
    assert!(matches!(
        decode(&stream[..10], &DecodeLimits::default()),
        Ok(Decoded::Complete { consumed: 9, .. })
    ));
}

#[test]
fn piece_header_plus_block_decodes_as_a_piece() {
    let block = [0x42u8; 16384];
    let mut bytes = wire::piece_header(5, 49152, 16384).to_vec();
    bytes.extend_from_slice(&block);
    assert_eq!(
        decode(&bytes, &DecodeLimits::default()),
        Ok(Decoded::Complete {
            message: Message::Piece {
                piece: 5,
                offset: 49152,
                data: &block
            },
            consumed: 13 + 16384
        })
    );
}
