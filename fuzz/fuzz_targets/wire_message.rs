//! Peer messages: the fuzzer's bytes are a receive buffer, decoded message
//! after message as a connection would. Never panics; every message takes
//! no more than the buffer holds and re-encodes to exactly the bytes it was
//! decoded from; "need more" always asks for more than is there and never
//! more than the length limit allows; extension handshakes decode or fail
//! cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{decode, DecodeLimits, Decoded, ExtensionHandshake, Message};

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick a piece count (0 = not yet known), so the
    // bitfield and piece index checks are exercised too.
    let Some((count, mut buffer)) = data.split_first_chunk::<2>() else {
        return;
    };
    let piece_count = u32::from(u16::from_be_bytes(*count));
    let limits = if piece_count == 0 {
        DecodeLimits::default()
    } else {
        DecodeLimits::for_pieces(piece_count)
    };
    loop {
        match decode(buffer, &limits) {
            Ok(Decoded::Complete { message, consumed }) => {
                assert!(consumed >= 4 && consumed <= buffer.len());
                assert_eq!(message.encoded_len(), consumed);
                assert_eq!(message.encode(), &buffer[..consumed]);
                if let Message::Extended { id: 0, payload } = message {
                    let _ = ExtensionHandshake::decode(payload);
                }
                buffer = &buffer[consumed..];
            }
            Ok(Decoded::NeedMore { at_least }) => {
                assert!(at_least > buffer.len());
                assert!(at_least <= limits.max_message_len as usize + 4);
                return;
            }
            Err(_) => return,
        }
    }
});
