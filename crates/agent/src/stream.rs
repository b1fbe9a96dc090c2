//! Streaming a release's file to the browser (the hand-off's second half):
//! bytes in order as verified pieces arrive, with the length known up
//! front so the browser's download manager shows progress, and single
//! byte ranges (RFC 9110 §14) so it can resume an interrupted download.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::PieceReader;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read per chunk of the response body.
const CHUNK_BYTES: u32 = 256 * 1024;

/// Where a stream's bytes come from.
#[derive(Debug)]
pub enum StreamSource {
    /// A running release: verified pieces, waiting for those not there yet.
    Live { reader: PieceReader, file: usize },
    /// A complete release that is not running (seeding is off): its file.
    OnDisk { path: PathBuf },
}

/// What a `Range` header asks of a body of `length` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, or one we serve whole (several ranges, other units).
    Whole,
    /// `start..=end`, within the body.
    Part { start: u64, end: u64 },
    /// Outside the body: 416.
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 §14.2): one `bytes=` range,
/// first-last, first- or -suffix. Headers not handled here (other units,
/// several ranges, malformed ones) are ignored, as RFC 9110 allows: the
/// answer is then the whole body. The agent's stream and the demo's origin
/// server both answer ranges through this.
pub fn parse_range(value: Option<&str>, length: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, false) => match number(last) {
            Some(0) => return RangeRequest::Unsatisfiable,
            Some(suffix) => (length.saturating_sub(suffix), length.saturating_sub(1)),
            None => return RangeRequest::Whole,
        },
        (false, true) => match number(first) {
            Some(start) => (start, length.saturating_sub(1)),
            None => return RangeRequest::Whole,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end => (start, end.min(length.saturating_sub(1))),
            _ => return RangeRequest::Whole,
        },
        (true, true) => return RangeRequest::Whole,
    };
    if length == 0 || start >= length {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part { start, end }
}

/// `Content-Disposition` for `name`: a plain ASCII fallback and the exact
/// UTF-8 name (RFC 6266, RFC 8187).
pub fn content_disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The response for a stream of a file `length` bytes long named `name`.
pub fn respond(
    source: Option<StreamSource>,
    name: &str,
    length: u64,
    request_headers: &HeaderMap,
    head_only: bool,
) -> Response {
    let range = request_headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (status, start, end) = match parse_range(range, length) {
        RangeRequest::Whole => (StatusCode::OK, 0, length),
        RangeRequest::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        RangeRequest::Unsatisfiable => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{length}"))],
            )
                .into_response()
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(name));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{}/{length}", end - 1)) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    let Some(source) = source.filter(|_| !head_only) else {
        return (status, headers).into_response();
    };
    (status, headers, Body::from_stream(body(source, start, end))).into_response()
}

/// The bytes `start..end` of the source, chunk by chunk. An error ends the
/// body early, which the browser sees as an interrupted download it can
/// resume with a range.
///
/// The body is always the file or an error, never a clean short end: the
/// live reader hands out only bytes of pieces it checked itself
/// (`engine::PieceReader`), each chunk moves the position by exactly its
/// length, and an empty read before `end` (a file that shrank, a reader
/// at its end too soon) is an error, so the connection is cut instead of
/// ending as if complete.
fn body(
    source: StreamSource,
    start: u64,
    end: u64,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    enum Cursor {
        Live(PieceReader, usize),
        Disk(PathBuf, Option<tokio::fs::File>),
    }
    let cursor = match source {
        StreamSource::Live { reader, file } => Cursor::Live(reader, file),
        StreamSource::OnDisk { path } => Cursor::Disk(path, None),
    };
    futures_util::stream::unfold((cursor, start), move |(mut cursor, at)| async move {
        if at >= end {
            return None;
        }
        let want = u32::try_from(end - at).unwrap_or(u32::MAX).min(CHUNK_BYTES);
        let chunk = match &mut cursor {
            Cursor::Live(reader, file) => reader
                .read_file(*file, at, want)
                .await
                .map_err(std::io::Error::other),
            Cursor::Disk(path, file) => read_disk(path, file, at, want).await,
        };
        match chunk {
            Ok(bytes) if bytes.is_empty() => {
                let short = std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the file ended at byte {at}, before byte {end}"),
                );
                tracing::warn!("a stream to the browser ended early: {short}");
                Some((Err(short), (cursor, end)))
            }
            Ok(bytes) => {
                let next = at + bytes.len() as u64;
                Some((Ok(bytes), (cursor, next)))
            }
            Err(e) => {
                tracing::warn!("a stream to the browser ended early: {e}");
                Some((Err(e), (cursor, end)))
            }
        }
    })
}

async fn read_disk(
    path: &PathBuf,
    file: &mut Option<tokio::fs::File>,
    at: u64,
    want: u32,
) -> std::io::Result<Vec<u8>> {
    if file.is_none() {
        let mut opened = tokio::fs::File::open(path).await?;
        opened.seek(std::io::SeekFrom::Start(at)).await?;
        *file = Some(opened);
    }
    let Some(file) = file.as_mut() else {
        return Ok(Vec::new());
    };
    let mut buffer = vec![0u8; want as usize];
    let read = file.read(&mut buffer).await?;
    buffer.truncate(read);
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let whole = RangeRequest::Whole;
        assert_eq!(parse_range(None, 100), whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), whole);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), whole);
        assert_eq!(parse_range(Some("bytes=x-1"), 100), whole);
        assert_eq!(parse_range(Some("bytes=9-3"), 100), whole);
        let part = |start, end| RangeRequest::Part { start, end };
        assert_eq!(parse_range(Some("bytes=0-9"), 100), part(0, 9));
        assert_eq!(parse_range(Some("bytes=90-"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-1000"), 100), part(0, 99));
        assert_eq!(parse_range(Some("bytes=50-5000"), 100), part(50, 99));
        let none = RangeRequest::Unsatisfiable;
        assert_eq!(parse_range(Some("bytes=100-"), 100), none);
        assert_eq!(parse_range(Some("bytes=-0"), 100), none);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), none);
    }

    /// Regression: a body whose file ran out before its end used to end
    /// cleanly, short, which a browser may keep as a complete download.
    #[tokio::test]
    async fn a_file_shorter_than_its_body_ends_in_an_error_not_short() {
        use futures_util::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.bin");
        std::fs::write(&path, [7u8; 10]).unwrap();
        let items: Vec<_> = body(StreamSource::OnDisk { path }, 2, 20).collect().await;
        let bytes: Vec<u8> = items
            .iter()
            .filter_map(|item| item.as_ref().ok())
            .flatten()
            .copied()
            .collect();
        assert_eq!(bytes, [7u8; 8]);
        assert!(
            items.last().is_some_and(Result::is_err),
            "the body must end in an error"
        );
    }

    #[test]
    fn file_names_are_quoted_safely() {
        let value = content_disposition("My \"App\" 2.0 ü.iso");
        let text = value.to_str().unwrap_or_default();
        assert!(
            text.starts_with("attachment; filename=\"My _App_ 2.0 _.iso\""),
            "{text}"
        );
        assert!(
            text.ends_with("filename*=UTF-8''My%20%22App%22%202.0%20%C3%BC.iso"),
            "{text}"
        );
    }
}
