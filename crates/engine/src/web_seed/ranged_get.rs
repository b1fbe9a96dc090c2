//! One ranged GET: send `Range: bytes=a-b`, insist on `206` with the same
//! `Content-Range`, and stream the body into the caller's buffer with a
//! stall timeout per chunk and an exact length cap.

use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{StatusCode, Url};

use super::WebSeedError;

/// One attempt at the bytes of `dest[*filled..]`, which are the file's
/// bytes from `file_offset + *filled` on. `*filled` advances with every
/// chunk written, so when the attempt fails, or is cancelled by the
/// caller's deadline, the next one asks only for the rest.
pub(super) async fn fetch_into(
    client: &reqwest::Client,
    url: &Url,
    file_offset: u64,
    dest: &mut [u8],
    filled: &mut usize,
    stall: Duration,
    max_redirects: usize,
) -> Result<(), WebSeedError> {
    let first = file_offset + *filled as u64;
    let last = file_offset + dest.len() as u64 - 1;
    let expected = dest.len() as u64 - *filled as u64;
    let name = || url.to_string();
    let request = client
        .get(url.clone())
        .header(RANGE, format!("bytes={first}-{last}"));
    let mut response = match tokio::time::timeout(stall, request.send()).await {
        Err(_elapsed) => return Err(stalled(url, stall)),
        Ok(Err(e)) => return Err(from_reqwest(url, e, max_redirects)),
        Ok(Ok(response)) => response,
    };
    match response.status() {
        StatusCode::PARTIAL_CONTENT => {}
        // The whole file, ignoring the range: drop the response unread
        // rather than download a release we asked one piece of.
        StatusCode::OK => return Err(WebSeedError::NoRangeSupport { url: name() }),
        StatusCode::NOT_FOUND | StatusCode::GONE => {
            return Err(WebSeedError::NotFound { url: name() })
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            return Err(WebSeedError::RangeNotSatisfiable { url: name() })
        }
        status => {
            return Err(WebSeedError::HttpStatus {
                url: name(),
                status: status.as_u16(),
            })
        }
    }
    let content_range = response
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_content_range);
    if content_range != Some((first, last)) {
        return Err(WebSeedError::NoRangeSupport { url: name() });
    }
    if response.content_length().is_some_and(|len| len > expected) {
        return Err(WebSeedError::LongBody {
            url: name(),
            expected,
        });
    }
    let start = *filled;
    loop {
        let chunk = match tokio::time::timeout(stall, response.chunk()).await {
            Err(_elapsed) => return Err(stalled(url, stall)),
            Ok(Err(e)) => return Err(from_reqwest(url, e, max_redirects)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        if chunk.len() > dest.len() - *filled {
            return Err(WebSeedError::LongBody {
                url: name(),
                expected,
            });
        }
        dest[*filled..*filled + chunk.len()].copy_from_slice(&chunk);
        *filled += chunk.len();
    }
    if *filled < dest.len() {
        return Err(WebSeedError::ShortBody {
            url: name(),
            expected,
            got: (*filled - start) as u64,
        });
    }
    Ok(())
}

fn stalled(url: &Url, after: Duration) -> WebSeedError {
    WebSeedError::Stalled {
        url: url.to_string(),
        after,
    }
}

/// Sorts a reqwest failure: a redirect limit, a bad URL, or the network.
fn from_reqwest(url: &Url, error: reqwest::Error, max_redirects: usize) -> WebSeedError {
    let url = url.to_string();
    // A redirect the address policy refused says so in its causes.
    let refused_redirect = error.is_redirect()
        && std::iter::successors(std::error::Error::source(&error), |e| e.source())
            .any(|cause| cause.to_string().contains("local network"));
    if refused_redirect {
        let detail = std::iter::successors(std::error::Error::source(&error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        return WebSeedError::BadUrl {
            url,
            detail: format!("it redirects to a local address: {detail}"),
        };
    }
    if error.is_redirect() {
        return WebSeedError::TooManyRedirects {
            url,
            limit: max_redirects,
        };
    }
    let builder = error.is_builder();
    // reqwest's own message is terse; the causes below it say what failed.
    let error = error.without_url();
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    if builder {
        return WebSeedError::BadUrl { url, detail };
    }
    WebSeedError::Unreachable { url, detail }
}

/// Parses `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`) into `(FIRST, LAST)`.
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.trim().split_once('-')?;
    let (first, last) = (first.parse::<u64>().ok()?, last.parse::<u64>().ok()?);
    let total_ok = total == "*" || total.parse::<u64>().is_ok_and(|t| last < t);
    (first <= last && total_ok).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_range_is_parsed_strictly() {
        assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 5-5/*"), Some((5, 5)));
        for bad in [
            "bytes 0-99/50",
            "bytes 9-1/100",
            "0-99/1000",
            "bytes */1000",
            "bytes a-b/c",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }
}
