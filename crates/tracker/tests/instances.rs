//! Two tracker instances on one PostgreSQL database, as behind a load
//! balancer: a release registered through one is admitted by the other,
//! a peer announced to one is handed out by the other until it stops, and
//! a peer session whose announces alternate between them is accounted
//! once.
//!
//! Each test connects its stores before it builds its tokio runtime: the
//! synchronous PostgreSQL client runs a runtime of its own, so it must not
//! be created or dropped inside async code (a tracker closes its store on
//! a blocking thread when it stops, and every test stops its instances).
//! Every wait polls against a deadline sized for a loaded two-core machine
//! and panics saying what did not happen and what it saw last.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bencode::{decode, Limits};
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use testkit::http::escape;
use testkit::pg::PgServer;
use testkit::runtime::block_on;
use testkit::signed::{signed_torrent, unix_now};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracker::store::{PostgresStore, Store};
use tracker::{Tracker, TrackerError, TrackerSettings};

/// The accounting window the tests run with, seconds.
const BATCH_SECS: u64 = 1;
/// A window no test outlives: only a shutdown writes it.
const NEVER_SECS: u64 = 3600;
const SYNC_MILLIS: u64 = 200;
/// Longest wait for what the peer exchange carries: many sync periods.
const SYNC_LIMIT: Duration = Duration::from_secs(15);
/// Longest wait for an accounting batch to show in the usage.
const FLUSH_LIMIT: Duration = Duration::from_secs(20);
/// Longest wait for an instance to write its last window and stop.
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// Longest wait for one HTTP request.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// A fresh database with one publisher, a release signed by it (not yet
/// registered), and a connected store for each of the two instances.
struct Fixture {
    token: String,
    torrent: Vec<u8>,
    store_a: Box<dyn Store>,
    store_b: Box<dyn Store>,
}

impl Fixture {
    /// Blocking: call it before building the runtime.
    fn new() -> Fixture {
        let url = PgServer::shared().create_database();
        let key = SigningKey::from_bytes(&[7; 32]);
        let token = tracker::new_token();
        let mut setup = PostgresStore::connect(&url).expect("connect the setup store");
        setup
            .add_publisher(
                "acme",
                &key.verifying_key().to_bytes(),
                &tracker::token_hash(&token),
                unix_now(),
            )
            .expect("add the publisher");
        drop(setup);
        let connect = |name: &str| -> Box<dyn Store> {
            let store = PostgresStore::connect(&url)
                .unwrap_or_else(|e| panic!("connect instance {name}'s store: {e}"));
            Box::new(store)
        };
        Fixture {
            token,
            torrent: signed_torrent(&key),
            store_a: connect("A"),
            store_b: connect("B"),
        }
    }
}

/// The operator's token for `/metrics` on every instance.
const METRICS_TOKEN: &str = "operator-token-for-the-instance-tests";

fn settings(batch_secs: u64) -> TrackerSettings {
    TrackerSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        batch_secs,
        sync_millis: SYNC_MILLIS,
        metrics_token: Some(METRICS_TOKEN.to_owned()),
        ..TrackerSettings::default()
    }
}

/// A running tracker instance.
struct Instance {
    name: &'static str,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    served: JoinHandle<Result<(), TrackerError>>,
}

impl Instance {
    async fn start(name: &'static str, store: Box<dyn Store>, batch_secs: u64) -> Instance {
        let bound = Tracker::new(settings(batch_secs))
            .with_store(store)
            .bind()
            .await
            .unwrap_or_else(|e| panic!("instance {name} does not start: {e}"));
        let addr = bound.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(bound.run(async move {
            let _ = stopped.await;
        }));
        Instance {
            name,
            addr,
            stop,
            served,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Graceful shutdown: returns once the last window is written and the
    /// store is closed.
    async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(STOP_LIMIT, self.served).await {
            Err(_) => panic!("instance {} did not stop within {STOP_LIMIT:?}", self.name),
            Ok(Err(join)) => panic!("instance {} panicked: {join}", self.name),
            Ok(Ok(Err(e))) => panic!("instance {} failed: {e}", self.name),
            Ok(Ok(Ok(()))) => {}
        }
    }
}

/// Polls until something happens, at most `limit`.
struct Deadline {
    what: &'static str,
    limit: Duration,
    at: Instant,
}

impl Deadline {
    fn after(limit: Duration, what: &'static str) -> Deadline {
        Deadline {
            what,
            limit,
            at: Instant::now() + limit,
        }
    }

    /// Waits before the next try, or panics with what was `last` seen.
    async fn retry(&self, last: &impl Debug) {
        assert!(
            Instant::now() < self.at,
            "{} did not happen within {:?}; last seen: {last:?}",
            self.what,
            self.limit
        );
        tokio::time::sleep(POLL).await;
    }
}

/// One announce: a peer session's totals so far.
#[derive(Debug, Clone, Copy)]
struct Announce {
    swarm: [u8; 20],
    peer: u8,
    port: u16,
    uploaded: u64,
    downloaded: u64,
    /// `shoal_origin_bytes`.
    origin: Option<u64>,
    left: u64,
    event: Option<&'static str>,
}

impl Announce {
    /// A downloader that has moved nothing yet.
    fn new(swarm: [u8; 20], peer: u8, port: u16) -> Announce {
        Announce {
            swarm,
            peer,
            port,
            uploaded: 0,
            downloaded: 0,
            origin: None,
            left: 1 << 16,
            event: None,
        }
    }

    /// The same session with these totals (`uploaded`, `downloaded`,
    /// `shoal_origin_bytes`) and no event.
    fn totals(self, uploaded: u64, downloaded: u64, origin: u64) -> Announce {
        Announce {
            uploaded,
            downloaded,
            origin: Some(origin),
            event: None,
            ..self
        }
    }

    fn event(self, event: &'static str) -> Announce {
        Announce {
            event: Some(event),
            ..self
        }
    }

    fn query(&self) -> String {
        let mut peer_id = *b"-TE0001-instances-00";
        peer_id[19] = self.peer;
        let mut query = format!(
            "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}",
            escape(&self.swarm),
            escape(&peer_id),
            self.port,
            self.uploaded,
            self.downloaded,
            self.left
        );
        if let Some(origin) = self.origin {
            query += &format!("&shoal_origin_bytes={origin}");
        }
        if let Some(event) = self.event {
            query += &format!("&event={event}");
        }
        query
    }
}

/// The usage totals `GET /api/v1/usage` reports (unknown fields ignored).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
struct Totals {
    peer_bytes: u64,
    origin_bytes: u64,
    unattributed_bytes: u64,
    uploaded_bytes: u64,
    flagged_bytes: u64,
    completions: u64,
}

/// Plain HTTP to the instances, as a peer, a publisher and an operator.
struct Client {
    http: reqwest::Client,
    token: String,
}

impl Client {
    fn new(token: &str) -> Client {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_LIMIT)
            .no_proxy()
            .build()
            .expect("HTTP client");
        Client {
            http,
            token: token.to_owned(),
        }
    }

    async fn get(&self, at: &Instance, path_and_query: &str) -> (u16, Vec<u8>) {
        self.get_as(at, path_and_query, &self.token).await
    }

    async fn get_as(&self, at: &Instance, path_and_query: &str, token: &str) -> (u16, Vec<u8>) {
        let response = self
            .http
            .get(at.url(path_and_query))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path_and_query} at instance {}: {e}", at.name));
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("body of GET {path_and_query} at {}: {e}", at.name));
        (status, body.to_vec())
    }

    /// Registers `torrent` through `at`'s API; returns the swarm key.
    async fn register(&self, at: &Instance, torrent: &[u8]) -> [u8; 20] {
        let response = self
            .http
            .post(at.url("/api/v1/releases"))
            .bearer_auth(&self.token)
            .body(torrent.to_vec())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /api/v1/releases at instance {}: {e}", at.name));
        let status = response.status().as_u16();
        let body = response.text().await.expect("registration body");
        assert_eq!(status, 201, "registration at instance {}: {body}", at.name);
        let reply: serde_json::Value = serde_json::from_str(&body).expect("registration JSON");
        let info_hash = reply["info_hash"].as_str().expect("info_hash in the reply");
        hex::decode(info_hash)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .unwrap_or_else(|| panic!("info_hash {info_hash:?} is not 40 hex digits"))
    }

    /// The compact IPv4 peers' ports (sorted), or the failure reason.
    async fn announce(&self, at: &Instance, announce: &Announce) -> Result<Vec<u16>, String> {
        let (status, body) = self
            .get(at, &format!("/announce?{}", announce.query()))
            .await;
        assert_eq!(status, 200, "announce at instance {}", at.name);
        let reply = decode(&body, Limits::default()).expect("bencoded announce reply");
        if let Some(reason) = reply.get("failure reason") {
            return Err(reason.as_str().unwrap_or("(not UTF-8)").to_owned());
        }
        let peers = reply
            .get("peers")
            .and_then(|p| p.as_bytes())
            .expect("compact peers");
        let mut ports: Vec<u16> = peers
            .chunks_exact(6)
            .map(|entry| u16::from_be_bytes([entry[4], entry[5]]))
            .collect();
        ports.sort_unstable();
        Ok(ports)
    }

    /// An announce that must be admitted; returns the peers' ports.
    async fn peers(&self, at: &Instance, announce: &Announce) -> Vec<u16> {
        self.announce(at, announce)
            .await
            .unwrap_or_else(|reason| panic!("instance {} refused {announce:?}: {reason}", at.name))
    }

    /// Whether `at` admits `swarm`: a scrape lists admitted swarms only,
    /// and unlike an announce it adds no peer.
    async fn admits(&self, at: &Instance, swarm: &[u8; 20]) -> bool {
        let (status, body) = self
            .get(at, &format!("/scrape?info_hash={}", escape(swarm)))
            .await;
        assert_eq!(status, 200, "scrape at instance {}", at.name);
        let reply = decode(&body, Limits::default()).expect("bencoded scrape reply");
        let files = reply
            .get("files")
            .and_then(|f| f.as_dict())
            .expect("files in the scrape reply");
        files.iter().any(|(key, _)| *key == swarm.as_slice())
    }

    /// The publisher's totals over the last 30 days, as `at` reads them.
    async fn usage(&self, at: &Instance) -> Totals {
        let (status, body) = self.get(at, "/api/v1/usage").await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "usage at instance {}: {text}", at.name);
        let report: serde_json::Value = serde_json::from_slice(&body).expect("usage JSON");
        serde_json::from_value(report["totals"].clone())
            .unwrap_or_else(|e| panic!("totals in the usage at {}: {e}: {text}", at.name))
    }

    /// A counter or gauge from `at`'s `/metrics`.
    async fn metric(&self, at: &Instance, name: &str) -> u64 {
        let (status, body) = self.get_as(at, "/metrics", METRICS_TOKEN).await;
        assert_eq!(status, 200, "metrics at instance {}", at.name);
        let text = String::from_utf8_lossy(&body);
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the metrics of instance {}", at.name))
    }
}

/// Registers the fixture's release through `a` and waits until `b` has
/// reloaded it from the database.
async fn register_at_a_until_b_admits(
    client: &Client,
    a: &Instance,
    b: &Instance,
    torrent: &[u8],
) -> [u8; 20] {
    let swarm = client.register(a, torrent).await;
    assert!(
        client.admits(a, &swarm).await,
        "A admits what it registered"
    );
    let deadline = Deadline::after(SYNC_LIMIT, "B admitting the release registered at A");
    while !client.admits(b, &swarm).await {
        deadline.retry(&"B's scrape does not list the swarm").await;
    }
    swarm
}

/// Waits until both instances have written what they hold and the usage
/// reads `expected`; then, three batch windows later, checks that both
/// still read exactly `expected`: nothing was counted a second time.
async fn usage_settles_at(client: &Client, a: &Instance, b: &Instance, expected: Totals) {
    let deadline = Deadline::after(FLUSH_LIMIT, "the usage reaching the expected totals");
    loop {
        let seen = client.usage(a).await;
        if seen == expected {
            break;
        }
        deadline.retry(&(seen, "expected", expected)).await;
    }
    for instance in [a, b] {
        let deadline = Deadline::after(FLUSH_LIMIT, "an instance emptying its window");
        loop {
            let pending = client
                .metric(instance, "shoal_tracker_pending_sessions")
                .await;
            if pending == 0 {
                break;
            }
            deadline.retry(&(instance.name, pending)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3 * BATCH_SECS)).await;
    assert_eq!(client.usage(a).await, expected, "usage read at A");
    assert_eq!(client.usage(b).await, expected, "usage read at B");
    for instance in [a, b] {
        let errors = client
            .metric(instance, "shoal_tracker_batch_errors_total")
            .await;
        assert_eq!(errors, 0, "batch errors at instance {}", instance.name);
    }
}

#[test]
fn a_release_registered_at_one_instance_is_admitted_by_the_other() {
    let fixture = Fixture::new();
    block_on(async move {
        let a = Instance::start("A", fixture.store_a, BATCH_SECS).await;
        let b = Instance::start("B", fixture.store_b, BATCH_SECS).await;
        let client = Client::new(&fixture.token);

        let unregistered = [0x5a; 20];
        let stranger = Announce::new(unregistered, 1, 7001).event("started");
        for instance in [&a, &b] {
            let refused = client.announce(instance, &stranger).await;
            assert!(
                matches!(&refused, Err(reason) if reason.contains("not registered")),
                "instance {} must refuse an unregistered info-hash: {refused:?}",
                instance.name
            );
        }

        let swarm = register_at_a_until_b_admits(&client, &a, &b, &fixture.torrent).await;
        let member = Announce::new(swarm, 2, 7002).event("started");
        assert_eq!(client.peers(&b, &member).await, Vec::<u16>::new());
        // Registering one release admits that one only.
        let refused = client.announce(&b, &stranger).await;
        assert!(
            refused.is_err(),
            "B still refuses the stranger: {refused:?}"
        );
        assert_eq!(client.metric(&b, "shoal_tracker_releases").await, 1);

        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn a_peer_announced_to_one_instance_is_handed_out_by_the_other_until_it_stops() {
    let fixture = Fixture::new();
    block_on(async move {
        let a = Instance::start("A", fixture.store_a, BATCH_SECS).await;
        let b = Instance::start("B", fixture.store_b, BATCH_SECS).await;
        let client = Client::new(&fixture.token);
        let swarm = register_at_a_until_b_admits(&client, &a, &b, &fixture.torrent).await;

        let at_a = Announce::new(swarm, 1, 7001);
        let at_b = Announce::new(swarm, 2, 7002);
        assert_eq!(
            client.peers(&a, &at_a.event("started")).await,
            Vec::<u16>::new()
        );
        client.peers(&b, &at_b.event("started")).await;

        let deadline = Deadline::after(SYNC_LIMIT, "B handing out the peer announced to A");
        loop {
            let ports = client.peers(&b, &at_b).await;
            if ports == [7001] {
                break;
            }
            deadline.retry(&ports).await;
        }
        let deadline = Deadline::after(SYNC_LIMIT, "A handing out the peer announced to B");
        loop {
            let ports = client.peers(&a, &at_a).await;
            if ports == [7002] {
                break;
            }
            deadline.retry(&ports).await;
        }

        assert_eq!(
            client.peers(&a, &at_a.event("stopped")).await,
            Vec::<u16>::new()
        );
        let deadline = Deadline::after(SYNC_LIMIT, "B forgetting the peer that stopped at A");
        loop {
            let ports = client.peers(&b, &at_b).await;
            if ports.is_empty() {
                break;
            }
            deadline.retry(&ports).await;
        }

        a.stop().await;
        b.stop().await;
    });
}

/// The announces of one session go to A and B in turn, as a load balancer
/// without affinity sends them, with a stale announce arriving late and
/// one repeated; each instance writes its own window. The usage, read at
/// either instance, counts every byte and the completion once.

#[test]
fn a_session_alternating_between_instances_is_accounted_once() {
    let fixture = Fixture::new();
    block_on(async move {
        let a = Instance::start("A", fixture.store_a, BATCH_SECS).await;
        let b = Instance::start("B", fixture.store_b, BATCH_SECS).await;
        let client = Client::new(&fixture.token);
        let swarm = register_at_a_until_b_admits(&client, &a, &b, &fixture.torrent).await;
        let session = Announce::new(swarm, 9, 7009);

        client
            .peers(&a, &session.totals(0, 1000, 400).event("started"))
            .await;
        // A session's first report sets its baseline and credits nothing.
        usage_settles_at(&client, &a, &b, Totals::default()).await;

        client.peers(&b, &session.totals(100, 3000, 1000)).await;
        // Older totals arriving after newer ones, then a repeat.
        client.peers(&a, &session.totals(50, 2000, 800)).await;
        client.peers(&b, &session.totals(100, 3000, 1000)).await;
        let middle = Totals {
            peer_bytes: 1400,
            origin_bytes: 600,
            uploaded_bytes: 100,
            ..Totals::default()
        };
        usage_settles_at(&client, &a, &b, middle).await;

        // A stale announce after the newer totals were written, then the
        // completion, sent to both (a retry through the balancer).
        client.peers(&a, &session.totals(80, 2500, 900)).await;
        let done = Announce {
            left: 0,
            ..session.totals(500, 6000, 2000).event("completed")
        };
        client.peers(&a, &done).await;
        client.peers(&b, &done).await;
        let end = Totals {
            peer_bytes: 3400,
            origin_bytes: 1600,
            uploaded_bytes: 500,
            completions: 1,
            ..Totals::default()
        };
        usage_settles_at(&client, &a, &b, end).await;

        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn an_instance_stopping_writes_its_last_window() {
    let fixture = Fixture::new();
    block_on(async move {
        // A's window never closes on its own: only the shutdown writes it.
        let a = Instance::start("A", fixture.store_a, NEVER_SECS).await;
        let b = Instance::start("B", fixture.store_b, BATCH_SECS).await;
        let client = Client::new(&fixture.token);
        let swarm = register_at_a_until_b_admits(&client, &a, &b, &fixture.torrent).await;

        let session = Announce::new(swarm, 3, 7003);
        client
            .peers(&a, &session.totals(0, 0, 0).event("started"))
            .await;
        let done = Announce {
            left: 0,
            ..session.totals(200, 5000, 1000).event("completed")
        };
        client.peers(&a, &done).await;
        assert_eq!(client.metric(&a, "shoal_tracker_pending_sessions").await, 1);
        assert_eq!(
            client.usage(&b).await,
            Totals::default(),
            "nothing written yet"
        );

        a.stop().await;
        let expected = Totals {
            peer_bytes: 4000,
            origin_bytes: 1000,
            uploaded_bytes: 200,
            completions: 1,
            ..Totals::default()
        };
        assert_eq!(
            client.usage(&b).await,
            expected,
            "A's last window, read at B"
        );
        b.stop().await;
    });
}

/// Regression: a `started` announce merged into one instance's window used
/// to be applied as "the client's totals restarted from zero" whenever that
/// window was written, even after another instance had stored totals the
/// session reached later, counting them twice. A restart now resets only
/// totals older than itself.
#[test]
fn a_started_written_after_later_totals_from_another_instance_counts_once() {
    let fixture = Fixture::new();
    block_on(async move {
        let a = Instance::start("A", fixture.store_a, NEVER_SECS).await;
        let b = Instance::start("B", fixture.store_b, BATCH_SECS).await;
        let client = Client::new(&fixture.token);
        let swarm = register_at_a_until_b_admits(&client, &a, &b, &fixture.torrent).await;
        let session = Announce::new(swarm, 4, 7004);

        client
            .peers(&a, &session.totals(0, 1000, 400).event("started"))
            .await;
        // B's first report sets the session's baseline...
        client.peers(&b, &session.totals(50, 2000, 600)).await;
        let deadline = Deadline::after(FLUSH_LIMIT, "B writing the session's baseline");
        loop {
            let written = client
                .metric(&b, "shoal_tracker_batch_sessions_total")
                .await;
            if written >= 1 {
                break;
            }
            deadline.retry(&written).await;
        }
        // ...and its growth from there is what counts.
        client.peers(&b, &session.totals(100, 3000, 1000)).await;
        let expected = Totals {
            peer_bytes: 600,
            origin_bytes: 400,
            uploaded_bytes: 50,
            ..Totals::default()
        };
        let deadline = Deadline::after(FLUSH_LIMIT, "B writing the session's later totals");
        loop {
            let seen = client.usage(&b).await;
            if seen == expected {
                break;
            }
            deadline.retry(&seen).await;
        }

        // A writes its window, holding the earlier `started`, last.
        a.stop().await;
        assert_eq!(
            client.usage(&b).await,
            expected,
            "the earlier started must add nothing"
        );
        b.stop().await;
    });
}
