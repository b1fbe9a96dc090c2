//! The peer handshake: never panics, a complete handshake is exactly 68
//! bytes and re-encodes to them, and a short buffer asks for 68.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{Decoded, Handshake, HANDSHAKE_LEN, PROTOCOL_HEADER};

fuzz_target!(|data: &[u8]| {
    match Handshake::decode(data) {
        Ok(Decoded::Complete { message, consumed }) => {
            assert_eq!(consumed, HANDSHAKE_LEN);
            assert_eq!(message.encode()[..], data[..HANDSHAKE_LEN]);
        }
        Ok(Decoded::NeedMore { at_least }) => {
            assert_eq!(at_least, HANDSHAKE_LEN);
            assert!(data.len() < HANDSHAKE_LEN);
            assert!(PROTOCOL_HEADER.starts_with(&data[..data.len().min(PROTOCOL_HEADER.len())]));
        }
        Err(_) => {
            let seen = data.len().min(PROTOCOL_HEADER.len());
            assert_ne!(&data[..seen], &PROTOCOL_HEADER[..seen]);
        }
    }
});
