//! Driving a real `shoal agent` process through its local HTTP API: start
//! it on loopback, call it with the right `Host` and token (or the wrong
//! ones), and publish releases for it.

// Every test crate that includes this uses only part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{field, run, shoal};
use crate::swarm::{Proc, Scene};

pub const MIB: u64 = 1024 * 1024;

/// A running agent and what a client needs to talk to it.
pub struct Agent {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub token: String,
}

impl Agent {
    pub fn start(scene: &Scene, name: &str, config: &Path, state: &Path) -> Agent {
        let mut cmd = shoal();
        cmd.arg("agent").arg("--config").arg(config);
        let mut proc = scene.spawn(name, &mut cmd);
        let addr = proc.next_line(Instant::now() + Duration::from_secs(30), |line| {
            line.strip_prefix("agent listening on http://")
                .map(|a| a.parse().unwrap())
        });
        let token = std::fs::read_to_string(state.join("api-token")).unwrap();
        Agent { proc, addr, token }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    /// A request with the right `Host` and token; panics unless `expect`.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>, expect: u16) -> Value {
        let (status, text) = http(
            self.addr,
            method,
            path,
            &self.host(),
            Some(&self.token),
            body,
        );
        assert_eq!(status, expect, "{method} {path} answered: {text}");
        assert!(
            !text.contains(&self.token),
            "{method} {path} leaked the token"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The one release the agent lists.
    pub fn release(&self) -> Value {
        let list = self.call("GET", "/v1/releases", None, 200);
        let releases = field(&list, "releases").as_array().unwrap().clone();
        assert_eq!(releases.len(), 1, "expected one release: {list:#}");
        releases[0].clone()
    }
}

/// One HTTP/1.1 exchange; returns the status and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let mut headers = vec![("Content-Type", "application/json".to_owned())];
    if let Some(token) = token {
        headers.push(("X-Shoal-Token", token.to_owned()));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let answer = exchange(addr, method, path, host, &headers, body.as_bytes());
    (
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    )
}

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

/// A key pair; returns the key file and the public key in hex.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = run(shoal().arg("keygen").arg("--out").arg(&key));
    (
        key,
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    )
}

/// Publishes `data` signed with `key`; returns the torrent's path.
pub fn publish(data: &Path, key: &Path, tracker: &str, out: &Path) -> PathBuf {
    publish_with(data, key, tracker, out, &[])
}

/// [`publish`] with more `shoal publish` flags (`--origin`, `--web-seed`).
pub fn publish_with(data: &Path, key: &Path, tracker: &str, out: &Path, extra: &[&str]) -> PathBuf {
    run(shoal()
        .arg("publish")
        .arg(data)
        .arg("--key")
        .arg(key)
        .args(["--tracker", tracker, "--piece-size", "65536", "--out"])
        .arg(out)
        .args(extra));
    out.to_owned()
}

/// An agent config on loopback, trusting `publisher`.
pub fn write_config(scene: &Scene, publisher: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (state, downloads) = (scene.path("state"), scene.path("downloads"));
    let config = scene.path("agent.toml");
    // Literal TOML strings: Windows paths keep their backslashes.
    let text = format!(
        "api = \"127.0.0.1:0\"\nlisten = \"127.0.0.1:0\"\nstate_dir = '{}'\n\
         download_dir = '{}'\ntrusted_publishers = [\"{publisher}\"]\n",
        state.display(),
        downloads.display()
    );
    std::fs::write(&config, text).unwrap();
    (config, state, downloads)
}

/// Polls the release until `done` holds, panicking with `what` and the
/// last listing at `deadline`.
pub fn wait_release(
    agent: &Agent,
    deadline: Instant,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let release = agent.release();
        if done(&release) {
            return release;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {release:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn bytes(release: &Value, key: &str) -> u64 {
    field(release, key).as_u64().unwrap()
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
