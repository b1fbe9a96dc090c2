//! Builds announce and scrape URLs (BEP 3 §trackers, BEP 48).
//!
//! `info_hash` and `peer_id` are raw bytes, so they are percent-encoded
//! here byte by byte: everything but RFC 3986 unreserved characters becomes
//! `%XX`, which every tracker decodes the same way.

use announce::param;
pub use announce::{percent_encode, AnnounceEvent};

use super::TrackerError;

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
    let mut query = QueryWriter::after(checked_base(base)?);
    query.param(param::INFO_HASH, &percent_encode(&req.info_hash));
    query.param(param::PEER_ID, &percent_encode(&req.peer_id));
    query.param(param::PORT, &req.port.to_string());
    query.param(param::UPLOADED, &req.uploaded.to_string());
    query.param(param::DOWNLOADED, &req.downloaded.to_string());
    query.param(param::LEFT, &req.left.to_string());
    query.param(param::COMPACT, if req.compact { "1" } else { "0" });
    if let Some(event) = req.event {
        query.param(param::EVENT, event.as_str());
    }
    if let Some(numwant) = req.numwant {
        query.param(param::NUMWANT, &numwant.to_string());
    }
    query.param(param::KEY, &format!("{:08x}", req.key));
    if let Some(bytes) = req.origin_bytes {
        query.param(param::SHOAL_ORIGIN_BYTES, &bytes.to_string());
    }
    Ok(query.finish())
}

/// The BEP 48 scrape URL for `info_hashes`: the last path segment of the
/// announce URL must start with `announce`, which becomes `scrape`.
pub fn scrape_url(announce_base: &str, info_hashes: &[[u8; 20]]) -> Result<String, TrackerError> {
    let base = checked_base(announce_base)?;
    // `checked_base` always leaves a `?`, and the first one ends the path.
    let path_end = base.find('?').unwrap_or(base.len());
    let last_slash = base[..path_end].rfind('/').unwrap_or(0);
    let segment = &base[last_slash + 1..path_end];
    let Some(rest) = segment.strip_prefix("announce") else {
        return Err(TrackerError::BadUrl {
            url: announce_base.to_owned(),
            detail: "the tracker has no scrape URL (its path does not end in /announce…)".into(),
        });
    };
    let scrape = format!(
        "{}scrape{rest}{}",
        &base[..last_slash + 1],
        &base[path_end..]
    );
    let mut query = QueryWriter::after(scrape);
    for hash in info_hashes {
        query.param(param::INFO_HASH, &percent_encode(hash));
    }
    Ok(query.finish())
}

/// Appends `name=value` pairs to a URL that ends in its query.
///
/// Whether a `&` is needed is decided once from the query as parsed, not
/// from the last character: a passkey query such as `?pk=?` ends in `?`
/// yet is not empty, and writing straight after it would make our first
/// parameter part of the passkey.
struct QueryWriter {
    url: String,
    needs_separator: bool,
}

impl QueryWriter {
    fn after(url: String) -> Self {
        let query = url.split_once('?').map_or("", |(_, query)| query);
        let needs_separator = !query.is_empty() && !query.ends_with('&');
        QueryWriter {
            url,
            needs_separator,
        }
    }

    fn param(&mut self, name: &str, value: &str) {
        if self.needs_separator {
            self.url.push('&');
        }
        self.needs_separator = true;
        self.url.push_str(name);
        self.url.push('=');
        self.url.push_str(value);
    }

    fn finish(self) -> String {
        self.url
    }
}

/// The query parameters `announce_url` and `scrape_url` write.
const OUR_PARAMETERS: [&str; 11] = [
    param::INFO_HASH,
    param::PEER_ID,
    param::PORT,
    param::UPLOADED,
    param::DOWNLOADED,
    param::LEFT,
    param::COMPACT,
    param::EVENT,
    param::NUMWANT,
    param::KEY,
    param::SHOAL_ORIGIN_BYTES,
];

/// Checks that `base` is an http(s) URL we can append a query to, and
/// returns it in its parsed form with a `?` added when it has no query yet.
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
    // A base that sets a parameter we send would send it twice, and a
    // tracker would act on whichever it reads first.
    if let Some((key, _)) = parsed
        .query_pairs()
        .find(|(key, _)| OUR_PARAMETERS.contains(&key.as_ref()))
    {
        return Err(bad(&format!(
            "an announce URL must not set `{key}`, which shoal sends itself"
        )));
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
        let joined = announce_url("http://t.example/a?pk=1&", &request()).expect("valid url");
        assert!(
            joined.starts_with("http://t.example/a?pk=1&info_hash="),
            "{joined}"
        );
    }

    #[test]
    fn a_query_ending_in_a_question_mark_keeps_its_value() {
        // Found by the tracker_url fuzz target: `?pk=?` is a passkey whose
        // value is `?`, and our parameters must follow it after a `&`.
        let url = announce_url("http://t.example/a?pk=?", &request()).expect("valid url");
        assert!(
            url.starts_with("http://t.example/a?pk=?&info_hash="),
            "{url}"
        );
        let url = scrape_url("http://t.example/announce?pk=?", &[[1; 20]]).expect("scrapable");
        assert_eq!(
            url,
            format!(
                "http://t.example/scrape?pk=?&info_hash={}",
                "%01".repeat(20)
            )
        );
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
            "http://x/announce?peer_id=x",
            "http://x/announce?pk=1&key=2",
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
