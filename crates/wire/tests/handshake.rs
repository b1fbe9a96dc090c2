//! The opening handshake, seen from outside the crate.

use wire::{Decoded, Handshake, Reserved, WireError, HANDSHAKE_LEN};

fn ours() -> Handshake {
    let mut reserved = Reserved::default();
    reserved.set_extension_protocol(true);
    reserved.set_fast(true);
    reserved.set_v2_upgrade(true);
    Handshake {
        reserved,
        info_hash: *b"01234567890123456789",
        peer_id: *b"-SH0100-000000000000",
    }
}

#[test]
fn round_trip_leaves_what_follows_alone() {
    let mut stream = ours().encode().to_vec();
    stream.extend_from_slice(&[0, 0, 0, 1, 14]); // have all
    let Ok(Decoded::Complete { message, consumed }) = Handshake::decode(&stream) else {
        panic!("handshake did not decode");
    };
    assert_eq!(message, ours());
    assert_eq!(consumed, HANDSHAKE_LEN);
    assert!(message.reserved.extension_protocol());
    assert!(message.reserved.fast());
    assert!(message.reserved.v2_upgrade());
    assert!(!message.reserved.dht());
    assert_eq!(
        wire::decode(&stream[consumed..], &wire::DecodeLimits::default()),
        Ok(Decoded::Complete {
            message: wire::Message::HaveAll,
            consumed: 5
        })
    );
}

#[test]
fn the_wire_bytes_are_the_bep_3_layout() {
    let bytes = ours().encode();
    assert_eq!(&bytes[..20], b"\x13BitTorrent protocol");
    assert_eq!(&bytes[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x14]);
    assert_eq!(&bytes[28..48], b"01234567890123456789");
    assert_eq!(&bytes[48..], b"-SH0100-000000000000");
}

#[test]
fn an_http_client_is_turned_away_after_one_byte() {
    let request = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    for len in 1..request.len() {
        assert_eq!(
            Handshake::decode(&request[..len]),
            Err(WireError::NotBitTorrent { offset: 0 }),
        );
    }
}

#[test]
fn prefixes_need_more_and_any_reserved_bits_are_carried() {
    let mut handshake = ours();
    handshake.reserved = Reserved([0xff; 8]);
    let bytes = handshake.encode();
    for len in 0..HANDSHAKE_LEN {
        assert_eq!(
            Handshake::decode(&bytes[..len]),
            Ok(Decoded::NeedMore {
                at_least: HANDSHAKE_LEN
            })
        );
    }
    assert!(matches!(
        Handshake::decode(&bytes),
        Ok(Decoded::Complete { message, .. }) if message.reserved == Reserved([0xff; 8])
    ));
}
