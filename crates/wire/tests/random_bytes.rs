//! Seeded random input: the decoders never panic, and a Complete never
//! claims more bytes than it was given. (A stand-in for the fuzz target.)

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wire::{decode, DecodeLimits, Decoded, ExtensionHandshake, Handshake};

/// Message IDs worth aiming at: every known one plus a few unknown.
const IDS: [u8; 23] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 20, 21, 22, 23, 10, 19, 24, 255,
];

fn check(input: &[u8], limits: &DecodeLimits) -> bool {
    match decode(input, limits) {
        Ok(Decoded::Complete { consumed, .. }) => {
            assert!(consumed <= input.len(), "consumed {consumed} of {input:?}");
            assert!(consumed >= 4);
            true
        }
        Ok(Decoded::NeedMore { at_least }) => {
            assert!(at_least > input.len(), "NeedMore {at_least} for {input:?}");
            false
        }
        Err(_) => false,
    }
}

#[test]
fn random_buffers_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5e0a1);
    let limits = [
        DecodeLimits::default(),
        DecodeLimits::for_pieces(37),
        DecodeLimits {
            max_message_len: 64,
            piece_count: Some(1),
            max_request_len: 16,
        },
    ];
    let mut completes = 0;
    for round in 0..20_000 {
        let len = rng.gen_range(0..=300);
        let mut input: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // Half the time, a plausible header with a garbage body, so the
        // per-message parsers see input and not just the length check.
        if round % 2 == 1 {
            let body_len: u32 = rng.gen_range(1..=64);
            let id = IDS[rng.gen_range(0..IDS.len())];
            let mut framed = body_len.to_be_bytes().to_vec();
            framed.push(id);
            framed.extend_from_slice(&input);
            input = framed;
        }
        let limits = &limits[round % limits.len()];
        if check(&input, limits) {
            completes += 1;
        }
        // Walk the buffer as a stream, as a connection would.
        let mut at = 0;
        while let Ok(Decoded::Complete { consumed, .. }) = decode(&input[at..], limits) {
            at += consumed;
            assert!(at <= input.len());
        }
        let _ = Handshake::decode(&input);
        let _ = ExtensionHandshake::decode(&input);
    }
    // The header-guided half must reach the message parsers, not only fail.
    assert!(completes > 1_000, "only {completes} complete decodes");
}
