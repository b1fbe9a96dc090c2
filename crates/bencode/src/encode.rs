//! The encoder: an owned value tree written in canonical form.

use std::collections::BTreeMap;

/// An owned bencode value to be written. Dictionaries are `BTreeMap`s, so
/// keys come out sorted as raw bytes, which is what canonical bencoding asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bencode {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Bencode>),
    Dict(BTreeMap<Vec<u8>, Bencode>),
    /// A value that is already encoded, written verbatim. Used to carry an
    /// `info` dictionary whose exact bytes define an info-hash.
    Raw(Vec<u8>),
}

impl Bencode {
    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        Bencode::Bytes(b.into())
    }

    pub fn string(s: &str) -> Self {
        Bencode::Bytes(s.as_bytes().to_vec())
    }

    pub fn int(n: impl Into<i64>) -> Self {
        Bencode::Int(n.into())
    }

    /// Builds a dictionary from `(key, value)` pairs; a later duplicate key wins.
    pub fn dict<'k>(entries: impl IntoIterator<Item = (&'k str, Bencode)>) -> Self {
        Bencode::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Int(n) => {
                out.push(b'i');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'e');
            }
            Bencode::Bytes(b) => write_bytes(out, b),
            Bencode::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Bencode::Dict(entries) => {
                out.push(b'd');
                for (key, value) in entries {
                    write_bytes(out, key);
                    value.encode_into(out);
                }
                out.push(b'e');
            }
            Bencode::Raw(raw) => out.extend_from_slice(raw),
        }
    }
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, Limits};

    #[test]
    fn canonical_form_sorts_keys_as_bytes() {
        let value = Bencode::dict([
            ("zeta", Bencode::int(-3)),
            ("Alpha", Bencode::string("x")),
            (
                "alpha",
                Bencode::List(vec![Bencode::int(0), Bencode::bytes(vec![0xff])]),
            ),
        ]);
        assert_eq!(value.encode(), b"d5:Alpha1:x5:alphali0e1:\xffe4:zetai-3ee");
    }

    #[test]
    fn raw_values_are_written_verbatim_and_decode_back_to_the_same_span() {
        let info = b"d1:bi1e1:ai2ee".to_vec(); // unsorted on purpose
        let top = Bencode::dict([("info", Bencode::Raw(info.clone()))]).encode();
        let decoded = decode(&top, Limits::default()).unwrap();
        assert_eq!(decoded.get("info").unwrap().raw, &info[..]);
    }

    #[test]
    fn decode_of_encode_round_trips() {
        let value = Bencode::dict([
            ("n", Bencode::int(i64::MIN)),
            ("s", Bencode::bytes(b"".to_vec())),
            ("l", Bencode::List(vec![Bencode::dict([])])),
        ]);
        let encoded = value.encode();
        let decoded = decode(&encoded, Limits::default()).unwrap();
        assert_eq!(decoded.raw, &encoded[..]);
        assert_eq!(decoded.get("n").unwrap().as_int(), Some(i64::MIN));
    }
}
