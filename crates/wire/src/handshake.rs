//! The 68-byte handshake that opens every connection (BEP 3 §peer protocol):
//! `\x13BitTorrent protocol`, 8 reserved bytes, the info-hash, the peer id.
//!
//! The reserved bytes advertise extensions; [`Reserved`] names the bits we
//! use: the extension protocol (BEP 10), the fast extension (BEP 6), the v2
//! upgrade (BEP 52) and the DHT (BEP 5).
//!
//! For a v2 or hybrid torrent the info-hash on the wire is still 20 bytes:
//! a v2-only peer sends the SHA-256 v2 info-hash truncated to its first 20
//! bytes (BEP 52 §peer protocol); a hybrid peer may send the v1 SHA-1 hash
//! with the v2 upgrade bit set. Which hash to expect is the caller's business;
//! this codec carries 20 opaque bytes.

use crate::{Decoded, WireError};

/// The protocol string, with its length byte (19) in front.
pub const PROTOCOL_HEADER: &[u8; 20] = b"\x13BitTorrent protocol";

/// Size of a handshake on the wire.
pub const HANDSHAKE_LEN: usize = 68;

/// The eight reserved bytes of the handshake, as sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// BEP 10: `reserved[5] & 0x10`.
    const EXTENSION_PROTOCOL: (usize, u8) = (5, 0x10);
    /// BEP 6: `reserved[7] & 0x04`.
    const FAST: (usize, u8) = (7, 0x04);
    /// BEP 52: the 4th most significant bit of the last byte, `reserved[7] & 0x10`.
    const V2_UPGRADE: (usize, u8) = (7, 0x10);
    /// BEP 5: `reserved[7] & 0x01`.
    const DHT: (usize, u8) = (7, 0x01);

    fn get(&self, (byte, mask): (usize, u8)) -> bool {
        self.0[byte] & mask != 0
    }

    fn set(&mut self, (byte, mask): (usize, u8), on: bool) {
        if on {
            self.0[byte] |= mask;
        } else {
            self.0[byte] &= !mask;
        }
    }

    pub fn extension_protocol(&self) -> bool {
        self.get(Self::EXTENSION_PROTOCOL)
    }

    pub fn set_extension_protocol(&mut self, on: bool) {
        self.set(Self::EXTENSION_PROTOCOL, on);
    }

    pub fn fast(&self) -> bool {
        self.get(Self::FAST)
    }

    pub fn set_fast(&mut self, on: bool) {
        self.set(Self::FAST, on);
    }

    pub fn v2_upgrade(&self) -> bool {
        self.get(Self::V2_UPGRADE)
    }

    pub fn set_v2_upgrade(&mut self, on: bool) {
        self.set(Self::V2_UPGRADE, on);
    }

    pub fn dht(&self) -> bool {
        self.get(Self::DHT)
    }

    pub fn set_dht(&mut self, on: bool) {
        self.set(Self::DHT, on);
    }
}

/// The opening handshake of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    pub reserved: Reserved,
    /// The v1 info-hash, or the v2 info-hash truncated to 20 bytes.
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// The handshake as 68 bytes on the wire.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[..20].copy_from_slice(PROTOCOL_HEADER);
        out[20..28].copy_from_slice(&self.reserved.0);
        out[28..48].copy_from_slice(&self.info_hash);
        out[48..].copy_from_slice(&self.peer_id);
        out
    }

    /// Decodes a handshake from the start of `input`.
    ///
    /// Rejects a peer that is not speaking BitTorrent as soon as the first
    /// byte that disagrees with the protocol header has arrived, so a stray
    /// HTTP client is dropped after one byte instead of after 68.
    pub fn decode(input: &[u8]) -> Result<Decoded<Handshake>, WireError> {
        let header_seen = input.len().min(PROTOCOL_HEADER.len());
        if let Some(offset) = input[..header_seen]
            .iter()
            .zip(PROTOCOL_HEADER)
            .position(|(got, want)| got != want)
        {
            return Err(WireError::NotBitTorrent { offset });
        }
        let Some(bytes) = input.get(..HANDSHAKE_LEN) else {
            return Ok(Decoded::NeedMore {
                at_least: HANDSHAKE_LEN,
            });
        };
        let mut handshake = Handshake {
            reserved: Reserved::default(),
            info_hash: [0; 20],
            peer_id: [0; 20],
        };
        handshake.reserved.0.copy_from_slice(&bytes[20..28]);
        handshake.info_hash.copy_from_slice(&bytes[28..48]);
        handshake.peer_id.copy_from_slice(&bytes[48..68]);
        Ok(Decoded::Complete {
            message: handshake,
            consumed: HANDSHAKE_LEN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        let mut reserved = Reserved::default();
        reserved.set_extension_protocol(true);
        reserved.set_fast(true);
        Handshake {
            reserved,
            info_hash: [0xab; 20],
            peer_id: *b"-SH0100-abcdefghijkl",
        }
    }

    #[test]
    fn round_trips_and_consumes_68_bytes() {
        let mut bytes = sample().encode().to_vec();
        bytes.extend_from_slice(b"\0\0\0\0"); // a keep-alive right behind it
        assert_eq!(
            Handshake::decode(&bytes),
            Ok(Decoded::Complete {
                message: sample(),
                consumed: 68
            })
        );
    }

    #[test]
    fn reserved_bits_land_where_the_beps_say() {
        let mut r = Reserved::default();
        r.set_extension_protocol(true);
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0x10, 0, 0]);
        r = Reserved::default();
        r.set_fast(true);
        r.set_v2_upgrade(true);
        r.set_dht(true);
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0, 0, 0x15]);
        assert!(r.fast() && r.v2_upgrade() && r.dht() && !r.extension_protocol());
        r.set_fast(false);
        assert_eq!(r.0[7], 0x11);
        assert!(!r.fast() && r.v2_upgrade() && r.dht());
    }

    #[test]
    fn http_is_rejected_on_its_first_byte() {
        assert_eq!(
            Handshake::decode(b"G"),
            Err(WireError::NotBitTorrent { offset: 0 })
        );
        assert_eq!(
            Handshake::decode(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(WireError::NotBitTorrent { offset: 0 })
        );
        // Right length byte, wrong protocol name: rejected where it differs.
        assert_eq!(
            Handshake::decode(b"\x13BitTorrent_p"),
            Err(WireError::NotBitTorrent { offset: 11 })
        );
    }

    #[test]
    fn every_prefix_needs_more() {
        let bytes = sample().encode();
        for len in 0..HANDSHAKE_LEN {
            assert_eq!(
                Handshake::decode(&bytes[..len]),
                Ok(Decoded::NeedMore { at_least: 68 }),
                "prefix of {len}"
            );
        }
    }
}
