//! The BEP 10 extension handshake: round trip, a libtorrent-like payload,
//! leniency about optional keys, strictness about size.

use std::collections::BTreeMap;

use bencode::Bencode;
use wire::{ExtensionHandshake, Message, WireError, MAX_EXTENSION_HANDSHAKE_LEN};

fn libtorrent_like() -> Bencode {
    Bencode::dict([
        (
            "m",
            Bencode::dict([
                ("lt_donthave", Bencode::int(7)),
                ("ut_metadata", Bencode::int(2)),
                ("ut_pex", Bencode::int(1)),
            ]),
        ),
        ("metadata_size", Bencode::int(31_235)),
        ("p", Bencode::int(51_413)),
        ("reqq", Bencode::int(500)),
        ("upload_only", Bencode::int(1)),
        ("v", Bencode::string("libtorrent/2.0.8")),
        ("yourip", Bencode::bytes(vec![203, 0, 113, 9])),
        // Keys libtorrent sends that we do not model.
        ("complete_ago", Bencode::int(-1)),
        ("ipv6", Bencode::bytes(vec![0x20, 0x01, 0x0d, 0xb8])),
        ("e", Bencode::int(0)),
    ])
}

#[test]
fn a_libtorrent_handshake_decodes() {
    let payload = libtorrent_like().encode();
    let hs = ExtensionHandshake::decode(&payload).unwrap();
    assert_eq!(
        hs.messages,
        BTreeMap::from([
            ("lt_donthave".to_owned(), 7),
            ("ut_metadata".to_owned(), 2),
            ("ut_pex".to_owned(), 1),
        ])
    );
    assert_eq!(hs.message_id("ut_metadata"), Some(2));
    assert_eq!(hs.message_id("ut_holepunch"), None);
    assert_eq!(hs.listen_port, Some(51_413));
    assert_eq!(hs.client.as_deref(), Some("libtorrent/2.0.8"));
    assert_eq!(hs.request_queue, Some(500));
    assert_eq!(hs.your_ip, Some(vec![203, 0, 113, 9]));
    assert_eq!(hs.your_ip_addr(), Some("203.0.113.9".parse().unwrap()));
    assert_eq!(hs.metadata_size, Some(31_235));
    assert!(hs.upload_only);
}

#[test]
fn round_trip_through_an_extended_message() {
    let ours = ExtensionHandshake {
        messages: BTreeMap::from([("ut_metadata".to_owned(), 3), ("ut_pex".to_owned(), 0)]),
        listen_port: Some(6881),
        client: Some("shoal/0.1.0".to_owned()),
        request_queue: Some(250),
        your_ip: Some(vec![
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ]),
        metadata_size: Some(1 << 20),
        upload_only: false,
    };
    let payload = ours.encode();
    let bytes = Message::Extended {
        id: wire::EXTENSION_HANDSHAKE_ID,
        payload: &payload,
    }
    .encode();
    let Ok(wire::Decoded::Complete {
        message: Message::Extended { id: 0, payload },
        ..
    }) = wire::decode(&bytes, &wire::DecodeLimits::default())
    else {
        panic!("extended message did not decode");
    };
    assert_eq!(ExtensionHandshake::decode(payload), Ok(ours));
    // The empty handshake still carries an (empty) "m".
    assert_eq!(ExtensionHandshake::default().encode(), b"d1:mdee");
}

#[test]
fn unknown_keys_and_wrong_types_are_ignored() {
    let payload = Bencode::dict([
        ("m", Bencode::string("not a dict")),
        ("p", Bencode::string("6881")),
        ("v", Bencode::int(3)),
        ("reqq", Bencode::int(-5)),
        ("yourip", Bencode::bytes(vec![1, 2, 3])),
        ("metadata_size", Bencode::List(vec![])),
        ("upload_only", Bencode::string("yes")),
        (
            "xx_future",
            Bencode::dict([("deep", Bencode::List(vec![]))]),
        ),
    ])
    .encode();
    assert_eq!(
        ExtensionHandshake::decode(&payload),
        Ok(ExtensionHandshake::default())
    );

    // Out-of-range values are dropped one by one, the rest survives.
    let payload = Bencode::dict([
        (
            "m",
            Bencode::dict([
                ("ut_pex", Bencode::int(1)),
                ("too_big", Bencode::int(256)),
                ("negative", Bencode::int(-1)),
                ("stringly", Bencode::string("2")),
            ]),
        ),
        ("p", Bencode::int(70_000)),
    ])
    .encode();
    let hs = ExtensionHandshake::decode(&payload).unwrap();
    assert_eq!(hs.messages, BTreeMap::from([("ut_pex".to_owned(), 1)]));
    assert_eq!(hs.listen_port, None);
}

#[test]
fn oversized_payloads_are_refused_unread() {
    let filler = vec![b'x'; MAX_EXTENSION_HANDSHAKE_LEN];
    let payload = Bencode::dict([("xx_pad", Bencode::bytes(filler))]).encode();
    assert_eq!(
        ExtensionHandshake::decode(&payload),
        Err(WireError::ExtensionHandshakeTooLong {
            length: payload.len(),
            max: MAX_EXTENSION_HANDSHAKE_LEN
        })
    );
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bad in [&b"d1:m"[..], b"di1ei2ee", b"4:spam", b"d1:pi1e1:pi2ee"] {
        assert!(matches!(
            ExtensionHandshake::decode(bad),
            Err(WireError::BadExtensionHandshake(_))
        ));
    }
}
