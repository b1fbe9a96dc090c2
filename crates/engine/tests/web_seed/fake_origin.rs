//! A one-request-per-connection HTTP server that answers each request as
//! a test script says: correctly, with an error status, ignoring the range,
//! stalling, sending too much, or redirecting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use testkit::http::{parse_range, ByteRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the hand-written server does with request number `n`.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A correct `206` for the range asked.
    Serve,
    Status(u16),
    /// `200` for a 1 GiB "file": the first bytes, then nothing.
    Whole,
    /// `206` claiming a range one byte later than asked.
    WrongRange,
    /// Correct headers, `n` bytes of the body, then silence.
    StallAfter(usize),
    /// The range asked plus 100 bytes, with or without `Content-Length`.
    Long {
        content_length: bool,
    },
    Redirect(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub path: String,
    pub range: Option<(u64, u64)>,
}

pub type Script = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

/// A one-request-per-connection HTTP server over `content`.
pub struct FakeOrigin {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeOrigin {
    pub async fn start(content: Arc<Vec<u8>>, script: Arc<Script>) -> FakeOrigin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, content.clone(), script.clone(), log.clone()));
            }
        });
        FakeOrigin {
            url: format!("http://{addr}/blob.bin"),
            seen,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    mut stream: tokio::net::TcpStream,
    content: Arc<Vec<u8>>,
    script: Arc<Script>,
    log: Arc<Mutex<Vec<Seen>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    // The range as asked (only `bytes=FIRST-LAST`, which is what the web
    // seed sends), not clamped: the tests check what was asked.
    let range = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.eq_ignore_ascii_case("range") {
            return None;
        }
        match parse_range(value)? {
            ByteRange::FromTo(first, last) => Some((first, last)),
            ByteRange::From(_) | ByteRange::Suffix(_) => None,
        }
    });
    let seen = Seen { path, range };
    let n = {
        let mut log = log.lock().unwrap();
        log.push(seen.clone());
        log.len() - 1
    };
    let total = content.len() as u64;
    let (a, b) = range.unwrap_or((0, total - 1));
    let body = &content[a as usize..=b.min(total - 1) as usize];
    let partial = |first: u64, len: usize| {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{}/{total}\r\n\
             Content-Length: {len}\r\nConnection: close\r\n\r\n",
            first + body.len() as u64 - 1
        )
    };
    let mut out = Vec::new();
    let mut stall = false;
    match script(n, &seen) {
        Reply::Serve => out.extend([partial(a, body.len()).as_bytes(), body].concat()),
        Reply::Status(code) => out.extend(
            format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").bytes(),
        ),
        Reply::Whole => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n";
            out.extend([head.as_bytes(), &content[..]].concat());
            stall = true;
        }
        Reply::WrongRange => out.extend([partial(a + 1, body.len()).as_bytes(), body].concat()),
        Reply::StallAfter(k) => {
            out.extend([partial(a, body.len()).as_bytes(), &body[..k]].concat());
            stall = true;
        }
        Reply::Long { content_length } => {
            let long = [body, &[7u8; 100][..]].concat();
            let mut head = partial(a, long.len());
            if !content_length {
                head = head.replace(&format!("Content-Length: {}\r\n", long.len()), "");
            }
            out.extend([head.as_bytes(), &long].concat());
        }
        Reply::Redirect(to) => out.extend(
            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n").bytes(),
        ),
    }
    let _ = stream.write_all(&out).await;
    if stall {
        // Dropped with the test's runtime if the client never hangs up.
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}
