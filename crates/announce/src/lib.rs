//! The announce protocol as both ends speak it (BEP 3 §trackers, BEP 23,
//! BEP 48): the event names, the query parameter names, and the escaping
//! of raw 20-byte values in a query. The engine's tracker client writes
//! announces with these, the tracker reads them; keeping one copy means the
//! two cannot drift apart.
//!
//! Pure: no I/O, no dependencies.

pub mod param;

/// The BEP 3 announce events; a regular re-announce has none (`empty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    Started,
    Completed,
    Stopped,
}

/// An `event` value that is none of BEP 3's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownEvent;

impl AnnounceEvent {
    /// The value of the `event` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Stopped => "stopped",
        }
    }

    /// Reads an `event` value; absent, empty and `empty` mean no event.
    pub fn parse(value: Option<&[u8]>) -> Result<Option<AnnounceEvent>, UnknownEvent> {
        match value {
            None | Some(b"") | Some(b"empty") => Ok(None),
            Some(b"started") => Ok(Some(AnnounceEvent::Started)),
            Some(b"completed") => Ok(Some(AnnounceEvent::Completed)),
            Some(b"stopped") => Ok(Some(AnnounceEvent::Stopped)),
            Some(_) => Err(UnknownEvent),
        }
    }
}

/// Percent-encodes every byte that is not RFC 3986 unreserved, as clients
/// send `info_hash` and `peer_id`.
pub fn percent_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
    out
}

/// `%xx` → one byte, anything else literal (`+` too: RFC 3986 gives it no
/// meaning in a query). `None` on a truncated or non-hex escape.
pub fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hi = hex_value(*input.get(i + 1)?)?;
            let lo = hex_value(*input.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_names() {
        for event in [
            AnnounceEvent::Started,
            AnnounceEvent::Completed,
            AnnounceEvent::Stopped,
        ] {
            assert_eq!(
                AnnounceEvent::parse(Some(event.as_str().as_bytes())),
                Ok(Some(event))
            );
        }
        for none in [None, Some(&b""[..]), Some(b"empty")] {
            assert_eq!(AnnounceEvent::parse(none), Ok(None));
        }
        assert_eq!(AnnounceEvent::parse(Some(b"paused")), Err(UnknownEvent));
    }

    #[test]
    fn every_byte_survives_encoding_and_decoding() {
        let bytes: Vec<u8> = (0..=255).collect();
        let encoded = percent_encode(&bytes);
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'&' && b != b'='));
        assert_eq!(percent_decode(encoded.as_bytes()), Some(bytes));
        assert_eq!(percent_decode(b"a+b%41"), Some(b"a+bA".to_vec()));
        assert_eq!(percent_decode(b"%4"), None);
        assert_eq!(percent_decode(b"%zz"), None);
    }
}
