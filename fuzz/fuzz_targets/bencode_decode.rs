//! Bencode decoding: never panics, spans point into the input, and any
//! value it accepts survives encode → decode unchanged.
#![no_main]

use bencode::{decode, decode_prefix, Bencode, Limits, Value, ValueKind};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_depth: 64,
    max_values: 100_000,
};

fn to_owned(value: &Value<'_>) -> Bencode {
    match &value.kind {
        ValueKind::Int(n) => Bencode::Int(*n),
        ValueKind::Bytes(b) => Bencode::Bytes(b.to_vec()),
        ValueKind::List(items) => Bencode::List(items.iter().map(to_owned).collect()),
        ValueKind::Dict(entries) => Bencode::Dict(
            entries
                .iter()
                .map(|(k, v)| (k.to_vec(), to_owned(v)))
                .collect(),
        ),
    }
}

fn check_spans(value: &Value<'_>, input: &[u8]) {
    assert_eq!(&input[value.span.clone()], value.raw);
    match &value.kind {
        ValueKind::List(items) => items.iter().for_each(|v| check_spans(v, input)),
        ValueKind::Dict(entries) => entries.iter().for_each(|(_, v)| check_spans(v, input)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok((value, consumed)) = decode_prefix(data, LIMITS) {
        assert!(consumed <= data.len());
        assert_eq!(value.span, 0..consumed);
        check_spans(&value, data);
        let owned = to_owned(&value);
        let encoded = owned.encode();
        // The decoder takes only canonical integers and lengths, so the
        // canonical form differs at most in key order: same length.
        assert_eq!(encoded.len(), consumed);
        let again = decode(&encoded, LIMITS).expect("our own encoding decodes");
        assert_eq!(to_owned(&again), owned);
        assert_eq!(again.span.len(), encoded.len());
    }
    // decode is decode_prefix plus "nothing after it".
    let whole = decode(data, LIMITS);
    let prefix = decode_prefix(data, LIMITS);
    match (&whole, &prefix) {
        (Ok(_), Ok((_, used))) => assert_eq!(*used, data.len()),
        (Ok(_), Err(_)) => panic!("decode accepted what decode_prefix refused"),
        _ => {}
    }
});
