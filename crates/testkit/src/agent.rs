//! Driving a real `shoal agent` process through its local HTTP API: start
//! it on loopback, call it with the right `Host` and token (or the wrong
//! ones), and publish and seed releases for it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bins::shoal;
use crate::command::run;
use crate::http::exchange;
use crate::json::field;
use crate::process::{Proc, Scene};

/// A running agent and what a client needs to talk to it.
#[derive(Debug)]
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

/// Starts `shoal seed TORRENT --data DATA` on loopback, trusting
/// `publisher`, as the process `name`, and waits until it serves (its
/// `started` event, which it returns) or `deadline`.
pub fn start_seed(
    scene: &Scene,
    name: &str,
    torrent: &Path,
    data: &Path,
    publisher: &str,
    deadline: Instant,
) -> (Proc, Value) {
    start_seed_with(scene, name, torrent, data, publisher, &[], deadline)
}

/// [`start_seed`] with more `shoal seed` flags (`--max-up`).
pub fn start_seed_with(
    scene: &Scene,
    name: &str,
    torrent: &Path,
    data: &Path,
    publisher: &str,
    extra: &[&str],
    deadline: Instant,
) -> (Proc, Value) {
    let mut seed = scene.spawn(
        name,
        shoal()
            .arg("seed")
            .arg(torrent)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--json", "--trust", publisher])
            .args(extra),
    );
    let started = seed.wait_started(deadline);
    (seed, started)
}
