//! The demo's origin: a small web server that serves one release folder
//! the way a publisher's download server would, as a BEP 19 web seed.
//!
//! A web seed URL ending in `/` gets the torrent name and each file's path
//! appended, percent-encoded (see `engine::web_seed`), so a file is served
//! at `/<name>/<dir>/<file>`. Only the files found in the release folder at
//! start are served: a URL is looked up in that list, never joined onto a
//! disk path, so no URL reaches outside the release.
//!
//! HTTP/1.1 ranges (RFC 9110 §14): one `bytes=` range gets `206` with
//! `Content-Range`, a range past the end `416`, no range (or one this
//! server does not handle, such as several ranges) the whole file with
//! `200`. Every byte the server writes goes through one token bucket, so
//! the origin's upload cap holds over all connections together.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use agent::stream::{parse_range, RangeRequest};
use anyhow::{Context as _, Result};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::Listener;
use axum::Router;
use engine::RateLimiter;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Most bytes handed to the socket per write, so the token bucket paces a
/// large response in small steps instead of one burst and one long wait.
const WRITE_CHUNK: usize = 32 * 1024;

/// A running origin: where it listens and what it has sent.
#[derive(Debug, Clone)]
pub struct Origin {
    pub addr: SocketAddr,
    served: Arc<AtomicU64>,
}

impl Origin {
    /// Body bytes of the responses sent so far.
    pub fn served_bytes(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

/// What the request handler needs.
#[derive(Debug)]
struct Served {
    /// URL path components (decoded) → the file on disk.
    files: HashMap<Vec<String>, PathBuf>,
    served: Arc<AtomicU64>,
}

/// Binds `listen` and serves `release` (a folder; its name is the first URL
/// component) at `upload_bps` (0 = unlimited) until `shutdown` completes.
/// Must be called inside a tokio runtime.
pub async fn start(
    listen: SocketAddr,
    release: &Path,
    upload_bps: u64,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Origin> {
    let files = scan(release)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for the demo origin"))?;
    let addr = listener.local_addr()?;
    let served = Arc::new(AtomicU64::new(0));
    let state = Arc::new(Served {
        files,
        served: served.clone(),
    });
    let app = Router::new().fallback(serve_file).with_state(state);
    let listener = ThrottledListener {
        inner: listener,
        limit: Arc::new(RateLimiter::new(upload_bps)),
    };
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!("the demo origin stopped: {e}");
        }
    });
    Ok(Origin { addr, served })
}

/// Every regular file under `release`, keyed by the URL path components
/// that name it: the folder's name, then the path inside it.
fn scan(release: &Path) -> Result<HashMap<Vec<String>, PathBuf>> {
    let name = release
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no UTF-8 folder name", release.display()))?;
    let mut files = HashMap::new();
    let mut pending = vec![(vec![name.to_owned()], release.to_path_buf())];
    while let Some((components, dir)) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let mut path = components.clone();
            path.push(name);
            // `file_type` does not follow symbolic links: they are skipped.
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push((path, entry.path()));
            } else if kind.is_file() {
                files.insert(path, entry.path());
            }
        }
    }
    Ok(files)
}

/// Splits a URL path into decoded components. `None` for what no file
/// can be called: `.` or `..`, bytes that are not UTF-8, a bad `%` escape.
fn url_components(path: &str) -> Option<Vec<String>> {
    let path = path.strip_prefix('/')?;
    path.split('/')
        .map(|segment| {
            let bytes = tracker::announce_query::percent_decode(segment.as_bytes())?;
            let text = String::from_utf8(bytes).ok()?;
            (text != "." && text != "..").then_some(text)
        })
        .collect()
}

async fn serve_file(
    State(state): State<Arc<Served>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "only GET and HEAD\n",
        )
            .into_response();
    }
    let Some(components) = url_components(uri.path()) else {
        return (StatusCode::BAD_REQUEST, "bad path\n").into_response();
    };
    let Some(path) = state.files.get(&components) else {
        return (StatusCode::NOT_FOUND, "no such file in this release\n").into_response();
    };
    match respond(path, &method, &headers, &state.served).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!("demo origin: {}: {e}", path.display());
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n").into_response()
        }
    }
}

async fn respond(
    path: &Path,
    method: &Method,
    headers: &HeaderMap,
    served: &AtomicU64,
) -> io::Result<Response> {
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, first, count, content_range) = match parse_range(range, len) {
        RangeRequest::Whole => (StatusCode::OK, 0, len, None),
        RangeRequest::Part {
            start: first,
            end: last,
        } => (
            StatusCode::PARTIAL_CONTENT,
            first,
            last - first + 1,
            Some(format!("bytes {first}-{last}/{len}")),
        ),
        RangeRequest::Unsatisfiable => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response())
        }
    };
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        let mut data = vec![0; usize::try_from(count).map_err(io::Error::other)?];
        file.seek(io::SeekFrom::Start(first)).await?;
        file.read_exact(&mut data).await?;
        served.fetch_add(count, Ordering::Relaxed);
        Body::from(data)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let out = response.headers_mut();
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(value) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        out.insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}

/// Accepts TCP connections whose writes share one upload cap.
struct ThrottledListener {
    inner: TcpListener,
    limit: Arc<RateLimiter>,
}

impl Listener for ThrottledListener {
    type Io = ThrottledStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let _ = stream.set_nodelay(true);
        let stream = ThrottledStream {
            stream,
            limit: self.limit.clone(),
            debt: None,
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that pays for each write after making it: the next write
/// waits until the bucket has refilled what the last one took.
struct ThrottledStream {
    stream: TcpStream,
    limit: Arc<RateLimiter>,
    debt: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl AsyncRead for ThrottledStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ThrottledStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(debt) = &mut this.debt {
            ready!(debt.as_mut().poll(cx));
            this.debt = None;
        }
        let chunk = &buf[..buf.len().min(WRITE_CHUNK)];
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, chunk))?;
        let limit = this.limit.clone();
        let mut debt: Pin<Box<dyn Future<Output = ()> + Send>> =
            Box::pin(async move { limit.acquire(written as u64).await });
        // Taking the tokens happens on the first poll; the wait, if any,
        // is served before the next write.
        if debt.as_mut().poll(cx).is_pending() {
            this.debt = Some(debt);
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let part = |start, end| RangeRequest::Part { start, end };
        assert_eq!(parse_range(None, 100), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), part(0, 9));
        assert_eq!(parse_range(Some("bytes=90-"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=90-500"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-500"), 100), part(0, 99));
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 100),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=0-"), 0),
            RangeRequest::Unsatisfiable
        );
        for ignored in [
            "items=0-9",
            "bytes=0-9,20-29",
            "bytes=9-1",
            "bytes=a-b",
            "bytes=1-x",
        ] {
            assert_eq!(
                parse_range(Some(ignored), 100),
                RangeRequest::Whole,
                "{ignored}"
            );
        }
    }

    #[test]
    fn url_paths_are_decoded_and_never_climb() {
        let owned = |parts: &[&str]| parts.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            url_components("/rel%201/a%20b/c%2Bd.bin"),
            Some(owned(&["rel 1", "a b", "c+d.bin"]))
        );
        // An encoded slash stays inside its component: it names no file.
        assert_eq!(url_components("/r/a%2Fb"), Some(owned(&["r", "a/b"])));
        for bad in ["/r/../x", "/r/%2E%2E/x", "/r/./x", "/r/%zz", "/r/%FF", "r"] {
            assert_eq!(url_components(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_files_of_the_release_are_listed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let release = dir.path().join("rel");
        std::fs::create_dir_all(release.join("sub")).expect("mkdir");
        std::fs::write(release.join("a.bin"), b"a").expect("write");
        std::fs::write(release.join("sub/b.bin"), b"b").expect("write");
        std::fs::write(dir.path().join("secret"), b"s").expect("write");
        let files = scan(&release).expect("scan");
        let mut keys: Vec<String> = files.keys().map(|k| k.join("/")).collect();
        keys.sort();
        assert_eq!(keys, ["rel/a.bin", "rel/sub/b.bin"]);
    }
}
