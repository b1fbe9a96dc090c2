//! Parses the raw query string of `/announce` and `/scrape` (BEP 3
//! §trackers, BEP 48).
//!
//! `info_hash` and `peer_id` are raw 20-byte values percent-encoded into the
//! URL, so a generic form decoder (which wants UTF-8) cannot be used. Each
//! value is decoded byte by byte: `%xx` becomes one byte, any other byte is
//! taken literally. `+` stays a literal plus: RFC 3986 gives it no special
//! meaning in a query, only HTML forms do, and opentracker (the reference
//! tracker) reads it the same way. Clients percent-encode every
//! non-unreserved byte anyway.

use announce::param;
pub use announce::{percent_decode, AnnounceEvent};
use thiserror::Error;

/// Longest query accepted. A real announce is a few hundred bytes; this caps
/// the work an abusive request costs.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Most info-hashes accepted in one scrape.
pub const MAX_SCRAPE_HASHES: usize = 64;

/// A well-formed announce, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceQuery {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    /// The port the peer listens on; never 0.
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Bytes still to download; 0 means the peer is a seed.
    pub left: u64,
    pub event: Option<AnnounceEvent>,
    /// BEP 23: compact unless the client sent `compact=0`.
    pub compact: bool,
    pub numwant: Option<u32>,
    /// The client's opaque `key`, kept for a later check of IP changes.
    pub key: Option<Vec<u8>>,
    pub no_peer_id: bool,
    /// `shoal_origin_bytes`: of `downloaded`, the bytes a shoal agent got
    /// from the publisher's origin server. Other clients do not send it.
    pub origin_bytes: Option<u64>,
}

/// Why a query was refused; the text goes back to the client as the
/// `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("query longer than {MAX_QUERY_BYTES} bytes")]
    TooLong,
    #[error("bad percent-escape in parameter {0:?}")]
    BadEscape(String),
    #[error("missing parameter {0:?}")]
    Missing(&'static str),
    #[error("parameter {0:?} appears more than once")]
    Duplicate(&'static str),
    #[error("parameter {name:?} is invalid: {why}")]
    Invalid {
        name: &'static str,
        why: &'static str,
    },
    #[error("more than {MAX_SCRAPE_HASHES} info_hash values in one scrape")]
    TooManyHashes,
}

/// A decoded query parameter.
type NameValue = (Vec<u8>, Vec<u8>);

/// Splits `a=b&c=d` into decoded `(name, value)` pairs. Names are decoded
/// too (clients do not escape them, but nothing forbids it).
fn pairs(query: &[u8]) -> Result<Vec<NameValue>, QueryError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(QueryError::TooLong);
    }
    let mut out = Vec::new();
    for part in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match part.iter().position(|&b| b == b'=') {
            Some(eq) => (&part[..eq], &part[eq + 1..]),
            None => (part, &b""[..]),
        };
        let bad = || QueryError::BadEscape(String::from_utf8_lossy(name).into_owned());
        out.push((
            percent_decode(name).ok_or_else(bad)?,
            percent_decode(value).ok_or_else(bad)?,
        ));
    }
    Ok(out)
}

/// Parses an announce query (the part after `?`, without it).
pub fn parse_announce_query(query: &[u8]) -> Result<AnnounceQuery, QueryError> {
    const KNOWN: [&str; 12] = [
        param::INFO_HASH,
        param::PEER_ID,
        param::PORT,
        param::UPLOADED,
        param::DOWNLOADED,
        param::LEFT,
        param::EVENT,
        param::COMPACT,
        param::NUMWANT,
        param::KEY,
        param::NO_PEER_ID,
        param::SHOAL_ORIGIN_BYTES,
    ];
    let mut seen: [Option<Vec<u8>>; KNOWN.len()] = Default::default();
    for (name, value) in pairs(query)? {
        // Unknown parameters (`ip`, `supportcrypto`, future extensions) are
        // ignored; `ip` on purpose: the connection's address is the truth.
        if let Some(i) = KNOWN.iter().position(|k| k.as_bytes() == name) {
            if seen[i].replace(value).is_some() {
                return Err(QueryError::Duplicate(KNOWN[i]));
            }
        }
    }
    let [info_hash, peer_id, port, uploaded, downloaded, left, event, compact, numwant, key, no_peer_id, origin_bytes] =
        seen;
    let port = number(port.as_deref(), param::PORT)?.ok_or(QueryError::Missing(param::PORT))?;
    let port = u16::try_from(port)
        .ok()
        .filter(|&p| p != 0)
        .ok_or(QueryError::Invalid {
            name: param::PORT,
            why: "must be 1..=65535",
        })?;
    let numwant =
        number(numwant.as_deref(), param::NUMWANT)?.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(AnnounceQuery {
        info_hash: hash20(info_hash.as_deref(), param::INFO_HASH)?,
        peer_id: hash20(peer_id.as_deref(), param::PEER_ID)?,
        port,
        uploaded: number(uploaded.as_deref(), param::UPLOADED)?.unwrap_or(0),
        downloaded: number(downloaded.as_deref(), param::DOWNLOADED)?.unwrap_or(0),
        left: number(left.as_deref(), param::LEFT)?.ok_or(QueryError::Missing(param::LEFT))?,
        event: parse_event(event.as_deref())?,
        compact: flag(compact.as_deref(), param::COMPACT, true)?,
        numwant,
        key,
        no_peer_id: flag(no_peer_id.as_deref(), param::NO_PEER_ID, false)?,
        origin_bytes: number(origin_bytes.as_deref(), param::SHOAL_ORIGIN_BYTES)?,
    })
}

/// Parses a scrape query: one or more `info_hash` values, nothing else used.
pub fn parse_scrape_query(query: &[u8]) -> Result<Vec<[u8; 20]>, QueryError> {
    let mut hashes = Vec::new();
    for (name, value) in pairs(query)? {
        if name == param::INFO_HASH.as_bytes() {
            if hashes.len() == MAX_SCRAPE_HASHES {
                return Err(QueryError::TooManyHashes);
            }
            let hash = hash20(Some(&value), param::INFO_HASH)?;
            if !hashes.contains(&hash) {
                hashes.push(hash);
            }
        }
    }
    if hashes.is_empty() {
        return Err(QueryError::Missing(param::INFO_HASH));
    }
    Ok(hashes)
}

fn hash20(value: Option<&[u8]>, name: &'static str) -> Result<[u8; 20], QueryError> {
    let value = value.ok_or(QueryError::Missing(name))?;
    value.try_into().map_err(|_| QueryError::Invalid {
        name,
        why: "must be exactly 20 bytes",
    })
}

/// A non-negative decimal that fits in 64 bits; `None` when absent.
fn number(value: Option<&[u8]>, name: &'static str) -> Result<Option<u64>, QueryError> {
    let Some(value) = value else { return Ok(None) };
    let invalid = QueryError::Invalid {
        name,
        why: "must be a decimal number from 0 to 9223372036854775807",
    };
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return Err(invalid);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        // Databases store signed 64-bit integers; nothing real is larger.
        .filter(|&n| i64::try_from(n).is_ok())
        .map(Some)
        .ok_or(invalid)
}

fn flag(value: Option<&[u8]>, name: &'static str, default: bool) -> Result<bool, QueryError> {
    match value {
        None => Ok(default),
        Some(b"1") => Ok(true),
        Some(b"0") => Ok(false),
        Some(_) => Err(QueryError::Invalid {
            name,
            why: "must be 0 or 1",
        }),
    }
}

fn parse_event(value: Option<&[u8]>) -> Result<Option<AnnounceEvent>, QueryError> {
    AnnounceEvent::parse(value).map_err(|_| QueryError::Invalid {
        name: param::EVENT,
        why: "must be started, completed, stopped or empty",
    })
}

#[cfg(test)]
#[path = "announce_query_tests.rs"]
mod tests;
