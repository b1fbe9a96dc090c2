//! The BEP 10 extension handshake: the bencoded dictionary carried in
//! extended message 0, in which each side says which extension messages it
//! understands (and under which IDs it wants to receive them), plus a few
//! facts about itself.
//!
//! Keys: `m`, `p`, `v`, `reqq`, `yourip` (BEP 10), `metadata_size` (BEP 9),
//! `upload_only` (BEP 21). Everything in the dictionary is optional, so
//! decoding is lenient: unknown keys and optional values of the wrong type
//! or out of range are ignored, never fatal. It is strict only about what
//! it costs: the payload size and the bencode structure are bounded.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bencode::{Bencode, Limits, Value};

use crate::WireError;

/// Largest extension handshake payload we parse, bytes. Real ones are a few
/// hundred bytes; the limit leaves room for clients that add keys.
pub const MAX_EXTENSION_HANDSHAKE_LEN: usize = 64 * 1024;

/// Bencode bounds for the handshake: it is a flat dictionary with one nested
/// dictionary (`m`), so anything deep or huge is not a handshake.
const BENCODE_LIMITS: Limits = Limits {
    max_depth: 16,
    max_values: 16 * 1024,
};

/// The BEP 10 extension handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionHandshake {
    /// `m`: extension name → extended message ID the sender wants to receive
    /// it under. ID 0 means the extension is disabled; on a repeated
    /// handshake the map is additive (BEP 10), so a 0 is kept here rather
    /// than dropped, to tell "turned off" from "not mentioned".
    pub messages: BTreeMap<String, u8>,
    /// `p`: the sender's TCP listen port.
    pub listen_port: Option<u16>,
    /// `v`: client name and version, e.g. `libtorrent/2.0.8`.
    pub client: Option<String>,
    /// `reqq`: how many outstanding requests the sender queues without dropping.
    pub request_queue: Option<u32>,
    /// `yourip`: the receiver's address as the sender sees it, 4 (IPv4) or
    /// 16 (IPv6) bytes; other lengths are dropped when decoding.
    pub your_ip: Option<Vec<u8>>,
    /// `metadata_size` (BEP 9): size of the info dictionary, bytes.
    pub metadata_size: Option<u64>,
    /// `upload_only` (BEP 21): the sender is a seed or a partial seed and
    /// will not download.
    pub upload_only: bool,
}

impl ExtensionHandshake {
    /// The extended message ID under which the sender of this handshake
    /// accepts `name`; `None` if absent or disabled (0).
    pub fn message_id(&self, name: &str) -> Option<u8> {
        self.messages.get(name).copied().filter(|&id| id != 0)
    }

    /// [`Self::your_ip`] as an address, if it has a valid length.
    pub fn your_ip_addr(&self) -> Option<IpAddr> {
        ip_from_bytes(self.your_ip.as_deref()?)
    }

    /// The bencoded payload for an extended message with ID 0.
    pub fn encode(&self) -> Vec<u8> {
        let messages = self
            .messages
            .iter()
            .map(|(name, id)| (name.as_bytes().to_vec(), Bencode::int(*id)))
            .collect();
        // `m` is always written, even empty: some clients look for it to
        // recognise a handshake at all.
        let mut dict = BTreeMap::from([(b"m".to_vec(), Bencode::Dict(messages))]);
        let mut put = |key: &str, value: Bencode| {
            dict.insert(key.as_bytes().to_vec(), value);
        };
        if let Some(port) = self.listen_port {
            put("p", Bencode::int(port));
        }
        if let Some(client) = &self.client {
            put("v", Bencode::string(client));
        }
        if let Some(reqq) = self.request_queue {
            put("reqq", Bencode::int(reqq));
        }
        if let Some(ip) = &self.your_ip {
            put("yourip", Bencode::bytes(ip.clone()));
        }
        if let Some(size) = self.metadata_size {
            // Sizes past i64::MAX cannot be written in bencode; such a value
            // is not a real metadata size, so it is left out.
            if let Ok(size) = i64::try_from(size) {
                put("metadata_size", Bencode::Int(size));
            }
        }
        if self.upload_only {
            put("upload_only", Bencode::int(1));
        }
        Bencode::Dict(dict).encode()
    }

    /// Parses the payload of an extended message with ID 0.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        if payload.len() > MAX_EXTENSION_HANDSHAKE_LEN {
            return Err(WireError::ExtensionHandshakeTooLong {
                length: payload.len(),
                max: MAX_EXTENSION_HANDSHAKE_LEN,
            });
        }
        let root = bencode::decode(payload, BENCODE_LIMITS)
            .map_err(|e| WireError::BadExtensionHandshake(e.to_string()))?;
        if root.as_dict().is_none() {
            return Err(WireError::BadExtensionHandshake(format!(
                "expected a dictionary, got a {}",
                root.type_name()
            )));
        }
        let int = |key: &str| root.get(key).and_then(Value::as_int);
        Ok(ExtensionHandshake {
            messages: root.get("m").map(extension_ids).unwrap_or_default(),
            listen_port: int("p")
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0),
            // Lossy: a client name in Latin-1 is still worth logging.
            client: root
                .get("v")
                .and_then(Value::as_bytes)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
            request_queue: int("reqq").and_then(|q| u32::try_from(q).ok()),
            your_ip: root
                .get("yourip")
                .and_then(Value::as_bytes)
                .filter(|ip| ip_from_bytes(ip).is_some())
                .map(<[u8]>::to_vec),
            metadata_size: int("metadata_size").and_then(|s| u64::try_from(s).ok()),
            upload_only: int("upload_only").is_some_and(|u| u != 0),
        })
    }
}

/// The `m` dictionary; entries that are not UTF-8 names mapped to 0..=255
/// are skipped, as is an `m` that is not a dictionary.
fn extension_ids(m: &Value<'_>) -> BTreeMap<String, u8> {
    let Some(entries) = m.as_dict() else {
        return BTreeMap::new();
    };
    entries
        .iter()
        .filter_map(|(name, id)| {
            let name = std::str::from_utf8(name).ok()?;
            let id = u8::try_from(id.as_int()?).ok()?;
            Some((name.to_owned(), id))
        })
        .collect()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::V4(Ipv4Addr::from(v4)))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(IpAddr::V6(Ipv6Addr::from(v6)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_decodes() {
        // BEP 10's example, with the length of "µT_PEX" corrected: the spec
        // writes 6, but µ is two bytes in UTF-8.
        let payload =
            b"d1:md11:LT_metadatai1e7:\xc2\xb5T_PEXi2ee1:pi6881e1:v13:\xc2\xb5Torrent 1.2e";
        let hs = ExtensionHandshake::decode(payload).unwrap();
        assert_eq!(hs.message_id("LT_metadata"), Some(1));
        assert_eq!(hs.message_id("µT_PEX"), Some(2));
        assert_eq!(hs.listen_port, Some(6881));
        assert_eq!(hs.client.as_deref(), Some("µTorrent 1.2"));
    }

    #[test]
    fn zero_means_disabled_but_is_kept() {
        let hs = ExtensionHandshake::decode(b"d1:md11:LT_metadatai0eee").unwrap();
        assert_eq!(hs.messages.get("LT_metadata"), Some(&0));
        assert_eq!(hs.message_id("LT_metadata"), None);
    }

    #[test]
    fn not_a_dictionary_is_an_error() {
        for bad in [&b"i3e"[..], b"", b"d1:m", b"le"] {
            assert!(matches!(
                ExtensionHandshake::decode(bad),
                Err(WireError::BadExtensionHandshake(_))
            ));
        }
    }

    #[test]
    fn your_ip_addr_reads_both_families() {
        let mut hs = ExtensionHandshake {
            your_ip: Some(vec![192, 0, 2, 7]),
            ..Default::default()
        };
        assert_eq!(hs.your_ip_addr(), Some("192.0.2.7".parse().unwrap()));
        hs.your_ip = Some(vec![0; 16]);
        assert_eq!(hs.your_ip_addr(), Some("::".parse().unwrap()));
        hs.your_ip = Some(vec![1, 2, 3]);
        assert_eq!(hs.your_ip_addr(), None);
    }
}
