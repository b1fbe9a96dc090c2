//! Plain HTTP/1.1 on loopback for tests: a client that shows every header
//! ([`exchange`]), the one `Range` header reader the tests' servers share
//! ([`parse_range`]), and percent-escaping for query strings.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An HTTP answer: status, headers (names lower-case) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 exchange with any headers; the body is read to the end
/// (the request says `Connection: close`), chunked bodies decoded.
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "not an HTTP response: {}",
                String::from_utf8_lossy(&response)
            )
        });
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = response[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 || raw.len() < end + 2 + size {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[(end + 4 + size).min(raw.len())..];
    }
}

/// One `Range: bytes=…` request as the client wrote it (RFC 9110 §14.1.2),
/// before it is held against a body's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=FIRST-LAST`, both inclusive.
    FromTo(u64, u64),
    /// `bytes=FIRST-`: to the end.
    From(u64),
    /// `bytes=-N`: the last `N` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The bytes `[start, end)` of a body of `len` bytes this range asks
    /// for, clamped to the body; `None` when none of them exist.
    pub fn resolve(self, len: u64) -> Option<(u64, u64)> {
        let (start, end) = match self {
            ByteRange::FromTo(first, last) => (first, last.saturating_add(1).min(len)),
            ByteRange::From(first) => (first, len),
            ByteRange::Suffix(n) => (len.saturating_sub(n), len),
        };
        (start < end).then_some((start, end))
    }
}

/// Reads a `Range` header's value: one `bytes=A-B`, `bytes=A-` or
/// `bytes=-N`. Several ranges or anything malformed give `None`, which a
/// server answers with the whole body.
pub fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    Some(match (a.trim(), b.trim()) {
        ("", n) => ByteRange::Suffix(n.parse().ok()?),
        (a, "") => ByteRange::From(a.parse().ok()?),
        (a, b) => ByteRange::FromTo(a.parse().ok()?, b.parse().ok()?),
    })
}

/// Percent-escapes every byte, as clients send info-hashes and peer ids.
pub fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Percent-encodes everything but ASCII letters and digits, for a URL in
/// a query string (`/v1/handoff?torrent=…`).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{parse_range, ByteRange};

    #[test]
    fn ranges_are_read_once_and_clamped_to_the_body() {
        let resolve = |value: &str, len| parse_range(value).and_then(|r| r.resolve(len));
        assert_eq!(parse_range("bytes=0-9"), Some(ByteRange::FromTo(0, 9)));
        assert_eq!(resolve("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(resolve("bytes=90-", 100), Some((90, 100)));
        assert_eq!(resolve("bytes=-10", 100), Some((90, 100)));
        assert_eq!(resolve("bytes=50-5000", 100), Some((50, 100)));
        assert_eq!(resolve("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6"), None);
        assert_eq!(parse_range("bytes=x-1"), None);
        assert_eq!(parse_range("items=0-1"), None);
    }
}
