//! Builds announce and scrape URLs (BEP 3 §trackers, BEP 48).
//!
//! `info_hash` and `peer_id` are raw bytes, so they are percent-encoded
//! here byte by byte: everything but RFC 3986 unreserved characters becomes
//! `%XX`, which every tracker decodes the same way.

use super::TrackerError;

/// BEP 3 announce events; a regular re-announce has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    Started,
    Completed,
    Stopped,
}

impl AnnounceEvent {
    fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Stopped => "stopped",
        }
    }
}

/// One announce, in the terms of BEP 3. Byte counts are totals for this
/// torrent since the client started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    /// The port we accept peer connections on.
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Bytes still missing; 0 announces us as a seed.
    pub left: u64,
    pub event: Option<AnnounceEvent>,
    /// Peers wanted; `None` lets the tracker choose (usually 50).
    pub numwant: Option<u32>,
    /// Random per session: lets the tracker recognise us if our IP changes.
    pub key: u32,
    /// Ask for BEP 23 compact peer lists (what we want; trackers may ignore it).
    pub compact: bool,
    /// shoal's accounting: payload bytes this download got from the origin
    /// web server, sent as `shoal_origin_bytes` (other trackers ignore
    /// unknown parameters). `downloaded` stays the BEP 3 total.
    pub origin_bytes: Option<u64>,
}

/// The announce URL: `base` plus the request's parameters, after `?`, or
/// after `&` when `base` already has a query (private trackers put a
/// passkey there).
pub fn announce_url(base: &str, req: &AnnounceRequest) -> Result<String, TrackerError> {
    let mut url = checked_base(base)?;
    let mut param = |name: &str, value: &str| {
        if !url.ends_with('?') && !url.ends_with('&') {
            url.push('&');
        }
        url.push_str(name);
        url.push('=');
        url.push_str(value);
    };
    param("info_hash", &percent_encode(&req.info_hash));
    param("peer_id", &percent_encode(&req.peer_id));
    param("port", &req.port.to_string());
    param("uploaded", &req.uploaded.to_string());
    param("downloaded", &req.downloaded.to_string());
    param("left", &req.left.to_string());
    param("compact", if req.compact { "1" } else { "0" });
    if let Some(event) = req.event {
        param("event", event.as_str());
    }
    if let Some(numwant) = req.numwant {
        param("numwant", &numwant.to_string());
    }
    param("key", &format!("{:08x}", req.key));
    if let Some(bytes) = req.origin_bytes {
        param("shoal_origin_bytes", &bytes.to_string());
    }
    Ok(url)
}

/// The BEP 48 scrape URL for `info_hashes`: the last path segment of the
/// announce URL must start with `announce`, which becomes `scrape`.
pub fn scrape_url(announce_base: &str, info_hashes: &[[u8; 20]]) -> Result<String, TrackerError> {
    let base = checked_base(announce_base)?;
    let (path_end, query) = match base.find('?') {
        Some(q) => (q, &base[q..]),
        None => (base.len(), ""),
    };
    let last_slash = base[..path_end].rfind('/').unwrap_or(0);
    let segment = &base[last_slash + 1..path_end];
    let Some(rest) = segment.strip_prefix("announce") else {
        return Err(TrackerError::BadUrl {
            url: announce_base.to_owned(),
            detail: "the tracker has no scrape URL (its path does not end in /announce…)".into(),
        });
    };
    let mut url = format!("{}scrape{rest}{query}", &base[..last_slash + 1]);
    for hash in info_hashes {
        if !url.ends_with('?') && !url.ends_with('&') {
            url.push(if url.contains('?') { '&' } else { '?' });
        }
        url.push_str("info_hash=");
        url.push_str(&percent_encode(hash));
    }
    Ok(url)
}

/// Percent-encodes every byte that is not RFC 3986 unreserved.
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

/// Checks that `base` is an http(s) URL we can append a query to, and
/// returns it with a `?` added when it has no query yet.
fn checked_base(base: &str) -> Result<String, TrackerError> {
    let bad = |detail: &str| TrackerError::BadUrl {
        url: base.to_owned(),
        detail: detail.to_owned(),
    };
    let parsed = reqwest::Url::parse(base).map_err(|e| bad(&e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => {}
        "udp" => {
            return Err(bad(
                "UDP trackers (BEP 15) are not supported; use an http(s) tracker",
            ))
        }
        _ => return Err(bad("only http and https trackers are supported")),
    }
    if parsed.fragment().is_some() {
        return Err(bad("an announce URL must not have a #fragment"));
    }
    // A base that names its own info_hash would send two, and a tracker
    // would answer for whichever it reads first.
    if parsed.query_pairs().any(|(key, _)| key == "info_hash") {
        return Err(bad("an announce URL must not carry its own info_hash"));
    }
    // The parsed form, not the raw text: it has spaces and control
    // characters percent-encoded or removed, so what we send is one URL
    // every server reads the same way.
    let had_query = parsed.query().is_some();
    let mut url = String::from(parsed);
    if !had_query {
        url.push('?');
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: *b"\x00\x01 ~+%&=/?abcdefghij",
            peer_id: *b"-SH0100-012345678901",
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Some(AnnounceEvent::Started),
            numwant: Some(30),
            key: 0xbeef,
            compact: true,
            origin_bytes: Some(4),
        }
    }

    #[test]
    fn announce_url_encodes_raw_bytes_and_joins_queries() {
        let url = announce_url("http://t.example/announce", &request()).expect("valid url");
        assert_eq!(
            url,
            "http://t.example/announce?info_hash=%00%01%20~%2B%25%26%3D%2F%3Fabcdefghij\
             &peer_id=-SH0100-012345678901&port=6881&uploaded=1&downloaded=2&left=3\
             &compact=1&event=started&numwant=30&key=0000beef&shoal_origin_bytes=4"
        );
        let keyed = announce_url("https://t.example/a?passkey=x", &request()).expect("valid url");
        assert!(
            keyed.starts_with("https://t.example/a?passkey=x&info_hash="),
            "{keyed}"
        );
        let open = announce_url("http://t.example/a?", &request()).expect("valid url");
        assert!(open.starts_with("http://t.example/a?info_hash="), "{open}");
    }

    #[test]
    fn bad_urls_are_ours_to_fix() {
        for base in [
            "not a url",
            "udp://t.example:80",
            "ftp://x/announce",
            "http://x/a#frag",
            "http://x/announce?info_hash=%AB",
            "http://x/announce?pk=1&info%5Fhash=1",
        ] {
            assert!(
                matches!(
                    announce_url(base, &request()),
                    Err(TrackerError::BadUrl { .. })
                ),
                "{base}"
            );
        }
    }

    #[test]
    fn urls_are_sent_in_their_parsed_form() {
        let url = announce_url(" http://T.example:80/an nounce\t", &request()).expect("valid");
        assert!(
            url.starts_with("http://t.example/an%20nounce?info_hash="),
            "{url}"
        );
    }

    #[test]
    fn scrape_url_follows_bep_48() {
        let hashes = [[0xFF; 20]];
        let url = scrape_url("http://t.example/x/announce.php?pk=1", &hashes).expect("scrapable");
        assert_eq!(
            url,
            format!(
                "http://t.example/x/scrape.php?pk=1&info_hash={}",
                "%FF".repeat(20)
            )
        );
        let url = scrape_url("http://t.example/announce", &hashes).expect("scrapable");
        assert!(
            url.starts_with("http://t.example/scrape?info_hash=%FF"),
            "{url}"
        );
        assert!(matches!(
            scrape_url("http://t.example/a", &hashes),
            Err(TrackerError::BadUrl { .. })
        ));
    }
}
