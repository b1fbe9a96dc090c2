//! A publisher's web server on loopback for browser tests: it serves a
//! download page, shoal.js, the torrent and the release file (with
//! single `Range` requests, as web seeds and resuming browsers send), and
//! logs every request with its `User-Agent`, so a test can tell whether a
//! browser or an agent fetched the file. Ranged answers can be slowed to
//! a rate, as a busy origin's are, so that the swarm has a part to play
//! next to the web seed; any one path can be slowed, or redirected
//! elsewhere. One thread per connection.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http::parse_range;

/// One request as the site saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub user_agent: String,
}

impl Request {
    /// Browsers say `Mozilla/5.0 …`; shoal's HTTP clients do not.
    pub fn by_browser(&self) -> bool {
        self.user_agent.starts_with("Mozilla/")
    }
}

/// What every connection shares.
#[derive(Debug, Default)]
struct Shared {
    files: Mutex<HashMap<String, Vec<u8>>>,
    log: Mutex<Vec<Request>>,
    /// Bytes per second for each `206` answer; 0 = as fast as possible.
    ranged_rate_bps: AtomicU64,
    /// Paths answered with a `302` to another URL.
    redirects: Mutex<HashMap<String, String>>,
    /// Paths whose every answer is slowed to so many bytes per second.
    slow_paths: Mutex<HashMap<String, u64>>,
}

#[derive(Debug)]
pub struct PublisherSite {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl PublisherSite {
    /// Listens at once (a release names its origin before it is served);
    /// files are added with [`PublisherSite::put`].
    pub fn start() -> PublisherSite {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared: Arc<Shared> = Arc::default();
        let served = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = served.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        PublisherSite { addr, shared }
    }

    /// `http://127.0.0.1:PORT`, as a browser writes the site's origin.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.shared
            .files
            .lock()
            .unwrap()
            .insert(path.to_owned(), body);
    }

    /// Slows every ranged answer (a web seed's requests) to `bps`.
    pub fn limit_ranged_answers(&self, bps: u64) {
        self.shared.ranged_rate_bps.store(bps, Ordering::Relaxed);
    }

    /// Answers `path` with `302 Found` to `location`.
    pub fn redirect(&self, path: &str, location: &str) {
        self.shared
            .redirects
            .lock()
            .unwrap()
            .insert(path.to_owned(), location.to_owned());
    }

    /// Slows every answer for `path` to `bps`, and sends it without a
    /// length (its end is the connection's), as some servers do: the
    /// client learns the size only by reading.
    pub fn slow_down(&self, path: &str, bps: u64) {
        self.shared
            .slow_paths
            .lock()
            .unwrap()
            .insert(path.to_owned(), bps);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The requests for `path`.
    pub fn requests_for(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return;
        }
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut first = head.split("\r\n").next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let path = first.next().unwrap_or("/").to_owned();
    let header = |name: &str| {
        head.split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    shared.log.lock().unwrap().push(Request {
        method: method.clone(),
        path: path.clone(),
        user_agent: header("user-agent").unwrap_or_default(),
    });
    let redirect = shared.redirects.lock().unwrap().get(&path).cloned();
    if let Some(location) = redirect {
        let _ = stream.write_all(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        return;
    }
    let body = shared.files.lock().unwrap().get(&path).cloned();
    let Some(body) = body else {
        let _ = stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        );
        return;
    };
    let kind = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("torrent") => "application/x-bittorrent",
        _ => "application/octet-stream",
    };
    let len = body.len() as u64;
    let (status, start, end) = match header("range")
        .as_deref()
        .and_then(parse_range)
        .and_then(|r| r.resolve(len))
    {
        Some((start, end)) => ("206 Partial Content", start, end),
        None => ("200 OK", 0, len),
    };
    let slow = shared.slow_paths.lock().unwrap().get(&path).copied();
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n\
         Accept-Ranges: bytes\r\nConnection: close\r\n"
    );
    if slow.is_none() {
        reply.push_str(&format!("Content-Length: {}\r\n", end - start));
    }
    if status.starts_with("206") {
        reply.push_str(&format!(
            "Content-Range: bytes {start}-{}/{len}\r\n",
            end - 1
        ));
    }
    if path.starts_with("/files/") {
        // As publishers serve downloads: saved, never shown.
        reply.push_str("Content-Disposition: attachment\r\n");
    }
    reply.push_str("\r\n");
    let _ = stream.write_all(reply.as_bytes());
    if method == "HEAD" {
        return;
    }
    let body = &body[start as usize..end as usize];
    let rate = match slow {
        Some(bps) => bps,
        None if status.starts_with("206") => shared.ranged_rate_bps.load(Ordering::Relaxed),
        None => 0,
    };
    if rate == 0 {
        let _ = stream.write_all(body);
        return;
    }
    for chunk in body.chunks(16 * 1024) {
        if stream.write_all(chunk).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_secs_f64(chunk.len() as f64 / rate as f64));
    }
}
