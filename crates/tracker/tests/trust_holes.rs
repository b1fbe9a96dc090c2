//! The audit's attacks, replayed against the tracker over real HTTP on
//! loopback, each now doing no harm: absurd totals (SQLite and
//! PostgreSQL), a thousand sybil sessions from one address, another
//! address or key stopping or silencing a session, the metrics without
//! the operator's token, a cross-site dashboard login, an upload without
//! a token.
//!
//! "Another address" is a trusted proxy's `X-Forwarded-For`: the tracker
//! believes it from 127.0.0.1 only because these tests list it.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bencode::{decode, Limits};
use ed25519_dalek::SigningKey;
use serde_json::Value;
use testkit::http::escape;
use testkit::pg::PgServer;
use testkit::runtime::block_on;
use testkit::signed::{signed_torrent, unix_now};
use testkit::temp::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracker::store::{PostgresStore, SqliteStore, Store};
use tracker::{Tracker, TrackerError, TrackerSettings};

const METRICS_TOKEN: &str = "operator-token-for-the-attack-tests";
const LIMIT: Duration = Duration::from_secs(20);
const I64_MAX: u64 = i64::MAX as u64;

/// A store with one publisher, and a release it signed (not registered).
struct Setup {
    token: String,
    torrent: Vec<u8>,
    store: Box<dyn Store>,
    _dir: TempDir,
}

/// Blocking (PostgreSQL's client has its own runtime): call before the
/// test's runtime is built.
fn setup(postgres: bool) -> Setup {
    let dir = TempDir::new();
    let mut store: Box<dyn Store> = if postgres {
        Box::new(
            PostgresStore::connect(&PgServer::shared().create_database())
                .expect("connect postgres"),
        )
    } else {
        Box::new(SqliteStore::open(&dir.path().join("tracker.db")).expect("open sqlite"))
    };
    let key = SigningKey::from_bytes(&[9; 32]);
    let token = tracker::new_token();
    store
        .add_publisher(
            "acme",
            &key.verifying_key().to_bytes(),
            &tracker::token_hash(&token),
            unix_now(),
        )
        .expect("add the publisher");
    Setup {
        token,
        torrent: signed_torrent(&key),
        store,
        _dir: dir,
    }
}

fn settings() -> TrackerSettings {
    TrackerSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        batch_secs: 1,
        trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
        metrics_token: Some(METRICS_TOKEN.to_owned()),
        ..TrackerSettings::default()
    }
}

/// A running tracker and a client for it.
struct Running {
    addr: SocketAddr,
    token: String,
    http: reqwest::Client,
    stop: oneshot::Sender<()>,
    served: JoinHandle<Result<(), TrackerError>>,
}

impl Running {
    async fn start(store: Option<Box<dyn Store>>, token: &str, settings: TrackerSettings) -> Self {
        let mut tracker = Tracker::new(settings).with_rng_seed(5);
        if let Some(store) = store {
            tracker = tracker.with_store(store);
        }
        let bound = tracker.bind().await.expect("bind");
        let addr = bound.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(bound.run(async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Running {
            addr,
            token: token.to_owned(),
            http,
            stop,
            served,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let served = tokio::time::timeout(Duration::from_secs(30), self.served).await;
        assert!(
            matches!(served, Ok(Ok(Ok(())))),
            "the tracker stops cleanly"
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn register(&self, torrent: &[u8]) -> [u8; 20] {
        let response = self
            .http
            .post(self.url("/api/v1/releases"))
            .bearer_auth(&self.token)
            .body(torrent.to_vec())
            .send()
            .await
            .expect("register");
        assert_eq!(response.status(), 201);
        let reply: Value =
            serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
        let hash = hex::decode(reply["info_hash"].as_str().expect("info_hash")).expect("hex");
        hash.try_into().expect("20 bytes")
    }

    /// One announce from `client_ip` (through the trusted proxy header);
    /// the decoded reply, or the failure reason.
    async fn announce(&self, client_ip: &str, query: &str) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .get(self.url(&format!("/announce?{query}")))
            .header("X-Forwarded-For", client_ip)
            .send()
            .await
            .expect("announce");
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.expect("body");
        let reply = decode(&body, Limits::default()).expect("bencoded reply");
        match reply.get("failure reason") {
            Some(reason) => Err(reason.as_str().unwrap_or_default().to_owned()),
            None => Ok(body.to_vec()),
        }
    }

    /// `GET /api/v1/usage`: status and body.
    async fn usage(&self) -> (u16, Value) {
        let response = self
            .http
            .get(self.url("/api/v1/usage"))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("usage");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn metric(&self, name: &str) -> u64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    }

    /// Waits until every announce so far is written: nothing pending,
    /// then long enough for the batch that took them to commit.
    async fn written(&self) {
        let deadline = Instant::now() + LIMIT;
        loop {
            if self.metric("shoal_tracker_pending_sessions").await == 0 {
                tokio::time::sleep(Duration::from_millis(1200)).await;
                if self.metric("shoal_tracker_pending_sessions").await == 0 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the batch was not written");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn peer_id(n: u32) -> [u8; 20] {
    let mut id = *b"-AT0001-000000000000";
    id[16..].copy_from_slice(&n.to_be_bytes());
    id
}

fn query(swarm: &[u8; 20], peer: u32, port: u16, totals: (u64, u64, u64), extra: &str) -> String {
    let (up, down, origin) = totals;
    // A seed unless `extra` says otherwise.
    let left = if extra.contains("&left=") {
        ""
    } else {
        "&left=0"
    };
    format!(
        "info_hash={}&peer_id={}&port={port}&uploaded={up}&downloaded={down}&shoal_origin_bytes={origin}{left}{extra}",
        escape(swarm),
        escape(&peer_id(peer))
    )
}

fn total(usage: &Value, field: &str) -> u64 {
    usage["totals"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {usage:#}"))
}

// ---- finding 1: absurd totals ----

fn absurd_totals_leave_the_usage_report_readable(postgres: bool) {
    let setup = setup(postgres);
    block_on(async move {
        let t = Running::start(Some(setup.store), &setup.token, settings()).await;
        let swarm = t.register(&setup.torrent).await;
        let max = (I64_MAX, I64_MAX, 0);
        // Two sessions report i64::MAX, in two different batches: the
        // second sum used to overflow the day's row.
        for (peer, ip) in [(1, "192.0.2.1"), (2, "192.0.2.2")] {
            t.announce(ip, &query(&swarm, peer, 7000, (0, 0, 0), "&event=started"))
                .await
                .expect("accepted");
            t.announce(ip, &query(&swarm, peer, 7000, max, ""))
                .await
                .expect("accepted");
            t.written().await;
        }
        // An honest session afterwards is still accounted.
        let ip = "192.0.2.3";
        t.announce(ip, &query(&swarm, 3, 7000, (0, 0, 0), "&event=started"))
            .await
            .expect("accepted");
        t.written().await;
        t.announce(
            ip,
            &query(&swarm, 3, 7000, (10, 5000, 1000), "&event=completed"),
        )
        .await
        .expect("accepted");
        t.written().await;
        let (status, usage) = t.usage().await;
        assert_eq!(status, 200, "{usage:#}");
        assert_eq!(total(&usage, "flagged_bytes"), I64_MAX, "saturated");
        assert_eq!(total(&usage, "peer_bytes"), 4000, "{usage:#}");
        assert_eq!(total(&usage, "origin_bytes"), 1000);
        assert_eq!(total(&usage, "uploaded_bytes"), 10);
        assert_eq!(total(&usage, "completions"), 1);
        let page = t
            .http
            .get(t.url("/dashboard"))
            .header("Cookie", format!("shoal_token={}", setup.token))
            .send()
            .await
            .expect("dashboard");
        assert_eq!(page.status(), 200);
        assert!(page.text().await.expect("page").contains("id=\"flagged\""));
        assert_eq!(t.metric("shoal_tracker_batch_errors_total").await, 0);
        t.stop().await;
    });
}

#[test]
fn absurd_totals_leave_the_usage_report_readable_on_sqlite() {
    absurd_totals_leave_the_usage_report_readable(false);
}

#[test]
fn absurd_totals_leave_the_usage_report_readable_on_postgres() {
    absurd_totals_leave_the_usage_report_readable(true);
}

// ---- finding 2: forged accounting ----

#[test]
fn a_thousand_sybil_sessions_from_one_address_add_at_most_its_allowance() {
    let setup = setup(false);
    block_on(async move {
        let t = Running::start(Some(setup.store), &setup.token, settings()).await;
        let swarm = t.register(&setup.torrent).await;
        let allowance = TrackerSettings::default().max_sessions_per_ip;
        let forged = (0, 1_250_000_000, 0);
        let mut accepted = Vec::new();
        for peer in 0..1000u32 {
            let port = 10_000 + peer as u16;
            let q = query(&swarm, peer, port, forged, "&event=completed");
            match t.announce("203.0.113.7", &q).await {
                Ok(_) => accepted.push((peer, port)),
                Err(reason) => assert!(reason.contains("too many sessions"), "{reason}"),
            }
        }
        assert_eq!(accepted.len(), allowance as usize);
        t.written().await;
        // The accepted ones claim their completion again, a batch later.
        for (peer, port) in &accepted {
            let q = query(&swarm, *peer, *port, forged, "&event=completed");
            t.announce("203.0.113.7", &q)
                .await
                .expect("still its own session");
        }
        t.written().await;
        let (status, usage) = t.usage().await;
        assert_eq!(status, 200);
        assert_eq!(total(&usage, "peer_bytes"), 0, "{usage:#}");
        assert_eq!(total(&usage, "origin_bytes"), 0);
        assert_eq!(total(&usage, "completions"), 0);
        assert!(total(&usage, "peer_days") <= u64::from(allowance));
        assert_eq!(
            t.metric("shoal_tracker_sessions_refused_total").await,
            1000 - u64::from(allowance)
        );
        // Sessions that really download from one address: their bytes
        // count, their completions once for the day.
        for peer in 2000..2000 + allowance {
            let port = peer as u16;
            t.announce(
                "203.0.113.8",
                &query(&swarm, peer, port, (0, 0, 0), "&event=started"),
            )
            .await
            .expect("accepted");
        }
        t.written().await;
        for peer in 2000..2000 + allowance {
            let q = query(&swarm, peer, peer as u16, (0, 1000, 0), "&event=completed");
            t.announce("203.0.113.8", &q).await.expect("accepted");
        }
        t.written().await;
        let (_, usage) = t.usage().await;
        assert_eq!(total(&usage, "peer_bytes"), 1000 * u64::from(allowance));
        assert_eq!(total(&usage, "completions"), 1, "once per IP and day");
        assert!(t.metric("shoal_tracker_completions_refused_total").await >= 1);
        t.stop().await;
    });
}

#[test]
fn another_address_or_key_cannot_stop_or_silence_a_session() {
    let setup = setup(false);
    block_on(async move {
        let t = Running::start(Some(setup.store), &setup.token, settings()).await;
        let swarm = t.register(&setup.torrent).await;
        let victim_ip = "198.51.100.1";
        let victim =
            |totals, extra: &str| query(&swarm, 1, 7001, totals, &format!("&key=secret1{extra}"));
        t.announce(victim_ip, &victim((0, 0, 0), "&event=started"))
            .await
            .expect("the victim starts");
        t.written().await;
        // Another address: stop, or report huge totals to silence it.
        let stranger = query(&swarm, 1, 7001, (0, 0, 0), "&key=secret1&event=stopped");
        let refused = t.announce("198.51.100.66", &stranger).await;
        assert!(
            matches!(&refused, Err(r) if r.contains("in use")),
            "{refused:?}"
        );
        let silence = query(&swarm, 1, 7001, (I64_MAX, I64_MAX, 0), "&key=secret1");
        assert!(t.announce("198.51.100.66", &silence).await.is_err());
        // The victim's address without its key, or with another key.
        for extra in ["&event=stopped", "&key=guess&event=stopped", "&key=guess"] {
            let forged = query(&swarm, 1, 7001, (I64_MAX, I64_MAX, 0), extra);
            let refused = t.announce(victim_ip, &forged).await;
            assert!(refused.is_err(), "{extra}: {refused:?}");
        }
        t.written().await;
        // Still listed for the others...
        let other = query(&swarm, 2, 7002, (0, 0, 0), "&left=5&numwant=10");
        let body = t.announce("198.51.100.2", &other).await.expect("accepted");
        let reply = decode(&body, Limits::default()).expect("bencoded reply");
        let peers = reply
            .get("peers")
            .and_then(|p| p.as_bytes())
            .expect("peers");
        assert_eq!(
            peers,
            [198, 51, 100, 1, 0x1b, 0x59],
            "the victim, port 7001"
        );
        // ...and its real traffic is counted.
        t.announce(victim_ip, &victim((0, 3000, 1000), ""))
            .await
            .expect("the victim goes on");
        t.written().await;
        let (_, usage) = t.usage().await;
        assert_eq!(total(&usage, "peer_bytes"), 2000, "{usage:#}");
        assert_eq!(total(&usage, "origin_bytes"), 1000);
        assert_eq!(
            total(&usage, "flagged_bytes"),
            0,
            "no forged report reached the books"
        );
        assert!(t.metric("shoal_tracker_peer_id_refused_total").await >= 5);
        t.stop().await;
    });
}

// ---- finding 10: metrics, login, cookie ----

#[test]
fn metrics_need_the_operator_token() {
    block_on(async {
        let t = Running::start(None, "", settings()).await;
        let get = |token: Option<&'static str>| {
            let mut request = t.http.get(t.url("/metrics"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        assert_eq!(get(None).await.expect("answer").status(), 401);
        assert_eq!(get(Some("guess")).await.expect("answer").status(), 401);
        let ok = get(Some(METRICS_TOKEN)).await.expect("answer");
        assert_eq!(ok.status(), 200);
        assert!(ok
            .text()
            .await
            .expect("body")
            .contains("shoal_tracker_announces_total"));
        t.stop().await;
        let off = Running::start(
            None,
            "",
            TrackerSettings {
                metrics_token: None,
                ..settings()
            },
        )
        .await;
        let response = off
            .http
            .get(off.url("/metrics"))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 404, "no token configured: no metrics");
        off.stop().await;
    });
}

#[test]
fn a_cross_site_login_is_refused_and_the_cookie_is_strict() {
    let setup = setup(false);
    block_on(async move {
        let t = Running::start(Some(setup.store), &setup.token, settings()).await;
        let login = |origin: String, proto: Option<&'static str>| {
            let mut request = t
                .http
                .post(t.url("/dashboard/login"))
                .header("Origin", origin)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!("token={}", setup.token));
            if let Some(proto) = proto {
                request = request.header("X-Forwarded-Proto", proto);
            }
            request.send()
        };
        let evil = login("https://evil.example".into(), None)
            .await
            .expect("answer");
        assert_eq!(evil.status(), 403);
        assert!(evil.headers().get("set-cookie").is_none());
        let own = login(format!("http://{}", t.addr), None)
            .await
            .expect("answer");
        assert_eq!(own.status(), 303);
        let cookie = own.headers()["set-cookie"]
            .to_str()
            .expect("text")
            .to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
        // Behind the trusted proxy terminating TLS: Secure.
        let https = login(format!("https://{}", t.addr), Some("https"))
            .await
            .expect("answer");
        let cookie = https.headers()["set-cookie"]
            .to_str()
            .expect("text")
            .to_owned();
        assert!(cookie.contains("Secure"), "{cookie}");
        t.stop().await;
    });
}

// ---- finding 5: the body is not read before the token ----

#[test]
fn an_upload_without_a_token_is_refused_before_its_body() {
    let setup = setup(false);
    block_on(async move {
        let t = Running::start(Some(setup.store), &setup.token, settings()).await;
        let addr = t.addr;
        let answer = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let head = format!(
                "POST /api/v1/releases HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
                31 << 20
            );
            stream.write_all(head.as_bytes()).expect("send the head");
            // Not one byte of the body: the answer must come anyway.
            let mut reply = [0; 64];
            let n = stream.read(&mut reply).expect("an answer before the body");
            String::from_utf8_lossy(&reply[..n]).into_owned()
        })
        .await
        .expect("join");
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        t.stop().await;
    });
}
