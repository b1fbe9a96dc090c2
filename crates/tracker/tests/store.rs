//! Both store backends through the same test bodies (each takes a
//! `&mut dyn Store`), then what only one backend does: SQLite's file
//! handling, PostgreSQL's sharing between instances.
//!
//! The PostgreSQL tests run against a real server the fixture starts
//! (`testkit::pg`); they fail, never skip, when it cannot be started.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use testkit::pg::PgServer;
use testkit::temp::TempDir;
use tracker::accounting::{Reported, SessionReport, UsageDelta};
use tracker::store::{
    Ceilings, NewRelease, PostgresStore, PublisherId, ReleaseId, SharedPeer, SqliteStore, Store,
    StoreError, UsageRow,
};

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200;
const DAY: i64 = 86_400;
const D0: i64 = T0 / DAY;
/// Limits nothing in these tests reaches.
const NO_LIMIT: &Ceilings = &Ceilings {
    max_rate: u64::MAX,
    completions_per_ip_per_day: u32::MAX,
};

fn add_publisher(store: &mut dyn Store, name: &str, n: u8) -> PublisherId {
    store
        .add_publisher(name, &[n; 32], &[n ^ 0xff; 32], T0)
        .expect("add publisher")
}

fn new_release(publisher: PublisherId, swarm: u8, alias: Option<u8>) -> NewRelease {
    NewRelease {
        publisher,
        name: format!("release-{swarm}"),
        swarm: [swarm; 20],
        alias: alias.map(|a| [a; 20]),
        size: 1 << 40,
        torrent: vec![b'd', swarm, b'e'],
        registered_unix: T0,
    }
}

fn registered_release(store: &mut dyn Store) -> (PublisherId, ReleaseId) {
    let publisher = add_publisher(store, "acme", 1);
    let release = store
        .add_release(&new_release(publisher, 1, None))
        .expect("add release");
    (publisher, release)
}

fn peer_id(peer: u32) -> [u8; 20] {
    let mut id = *b"-SH0001-000000000000";
    id[16..].copy_from_slice(&peer.to_be_bytes());
    id
}

/// A report with zero totals; tests fill in what they need. Its baseline
/// (the first announce of the window) is zeros a second before, as a
/// shoal agent's `started`; each peer has its own client address.
fn report(release: ReleaseId, peer: u32, at_unix: i64) -> SessionReport {
    let mut client = [0; 16];
    client[12..].copy_from_slice(&peer.to_be_bytes());
    SessionReport {
        release,
        publisher: 0,
        session: peer_id(peer),
        client,
        restarted: false,
        started_unix: 0,
        baseline: Reported {
            at_unix: at_unix - 1,
            ..Reported::default()
        },
        uploaded: 0,
        downloaded: 0,
        origin: None,
        completed: false,
        at_unix,
    }
}

fn usage_on(store: &mut dyn Store, publisher: PublisherId, day: i64) -> UsageRow {
    let rows = store.usage(publisher, day, day).expect("usage");
    assert_eq!(rows.len(), 1, "one row for day {day}: {rows:?}");
    rows[0]
}

// ---- bodies run on both backends ----

fn publishers_are_added_listed_and_found_by_token(store: &mut dyn Store) {
    let acme = store
        .add_publisher("acme", &[1; 32], &[11; 32], T0)
        .expect("acme");
    let globex = store
        .add_publisher("globex", &[2; 32], &[22; 32], T0 + 5)
        .expect("globex");
    assert_ne!(acme, globex);

    let listed = store.publishers().expect("list");
    let names: Vec<_> = listed.iter().map(|p| (p.id, p.name.as_str())).collect();
    assert_eq!(names, [(acme, "acme"), (globex, "globex")]);
    assert_eq!(listed[1].key, [2; 32]);
    assert_eq!(listed[1].created_unix, T0 + 5);

    let found = store.publisher_by_token(&[22; 32]).expect("by token");
    assert_eq!(found.as_ref(), Some(&listed[1]));
    assert_eq!(store.publisher_by_token(&[33; 32]).expect("by token"), None);
}

fn a_taken_publisher_name_or_token_is_a_conflict(store: &mut dyn Store) {
    add_publisher(store, "acme", 1);
    let same_name = store.add_publisher("acme", &[5; 32], &[55; 32], T0);
    assert!(
        matches!(&same_name, Err(StoreError::Conflict(m)) if m.contains("acme")),
        "{same_name:?}"
    );
    let same_token = store.add_publisher("globex", &[5; 32], &[1 ^ 0xff; 32], T0);
    assert!(
        matches!(same_token, Err(StoreError::Conflict(_))),
        "{same_token:?}"
    );
    assert_eq!(store.publishers().expect("list").len(), 1);
}

fn registering_a_release_again_is_idempotent_only_for_its_publisher(store: &mut dyn Store) {
    let acme = add_publisher(store, "acme", 1);
    let globex = add_publisher(store, "globex", 2);
    let first = store
        .add_release(&new_release(acme, 7, None))
        .expect("first");
    let again = store
        .add_release(&new_release(acme, 7, None))
        .expect("again");
    assert_eq!(
        first, again,
        "the same publisher gets the same release back"
    );

    let theirs = store.add_release(&new_release(globex, 7, None));
    assert!(matches!(theirs, Err(StoreError::Conflict(_))), "{theirs:?}");
    // An alias equal to someone's swarm would make one announce key name
    // two releases.
    let via_alias = store.add_release(&new_release(globex, 8, Some(7)));
    assert!(
        matches!(via_alias, Err(StoreError::Conflict(_))),
        "{via_alias:?}"
    );

    let releases = store.releases().expect("releases");
    assert_eq!(releases.len(), 1);
    let release = &releases[0];
    assert_eq!((release.id, release.publisher), (first, acme));
    assert_eq!((release.swarm, release.alias), ([7; 20], None));
    assert_eq!((release.size, release.registered_unix), (1 << 40, T0));
    assert_eq!(release.withdrawn_unix, None);
}

fn a_hybrid_release_is_withdrawn_by_its_alias_and_restored_by_registering(store: &mut dyn Store) {
    let acme = add_publisher(store, "acme", 1);
    let globex = add_publisher(store, "globex", 2);
    let id = store
        .add_release(&new_release(acme, 3, Some(4)))
        .expect("hybrid");
    assert_eq!(store.releases().expect("releases")[0].alias, Some([4; 20]));

    let alias_taken = store.add_release(&new_release(globex, 4, None));
    assert!(
        matches!(alias_taken, Err(StoreError::Conflict(_))),
        "an alias is an announce key too: {alias_taken:?}"
    );
    assert!(!store
        .withdraw_release(globex, &[4; 20], T0 + 10)
        .expect("withdraw"));
    assert!(store
        .withdraw_release(acme, &[4; 20], T0 + 10)
        .expect("withdraw"));
    assert!(
        store
            .withdraw_release(acme, &[3; 20], T0 + 20)
            .expect("withdraw"),
        "withdrawing twice still finds it"
    );
    let withdrawn = &store.releases().expect("releases")[0];
    assert_eq!(
        withdrawn.withdrawn_unix,
        Some(T0 + 10),
        "the first withdrawal's time stays"
    );

    let restored = store
        .add_release(&new_release(acme, 3, Some(4)))
        .expect("restore");
    assert_eq!(restored, id);
    assert_eq!(store.releases().expect("releases")[0].withdrawn_unix, None);
}

fn a_batch_counts_each_sessions_growth_once(store: &mut dyn Store) {
    let (publisher, release) = registered_release(store);
    let first = SessionReport {
        downloaded: 1000,
        uploaded: 50,
        origin: Some(300),
        ..report(release, 1, T0)
    };
    let outcome = store.apply_batch(&[first], NO_LIMIT).expect("batch");
    assert_eq!(outcome.sessions, 1);
    let expected = UsageDelta {
        peer_bytes: 700,
        origin_bytes: 300,
        uploaded_bytes: 50,
        ..UsageDelta::default()
    };
    assert_eq!(outcome.added, expected);

    let again = store.apply_batch(&[first], NO_LIMIT).expect("batch");
    assert_eq!(
        again.added,
        UsageDelta::default(),
        "a repeated report adds nothing"
    );

    let later = SessionReport {
        downloaded: 1500,
        uploaded: 80,
        at_unix: T0 + 60,
        ..first
    };
    store.apply_batch(&[later], NO_LIMIT).expect("batch");
    let row = usage_on(store, publisher, D0);
    assert_eq!((row.release, row.day), (release, D0));
    let expected = UsageDelta {
        peer_bytes: 1200,
        origin_bytes: 300,
        uploaded_bytes: 80,
        ..UsageDelta::default()
    };
    assert_eq!(row.usage, expected);
    assert_eq!(row.distinct_peers, 1);
}

fn a_session_named_twice_in_one_batch_counts_its_growth_once(store: &mut dyn Store) {
    let (publisher, release) = registered_release(store);
    let batch = [
        SessionReport {
            downloaded: 100,
            ..report(release, 1, T0)
        },
        SessionReport {
            downloaded: 300,
            ..report(release, 1, T0 + 30)
        },
    ];
    let outcome = store.apply_batch(&batch, NO_LIMIT).expect("batch");
    assert_eq!(outcome.added.unattributed_bytes, 300);
    assert_eq!(usage_on(store, publisher, D0).usage.unattributed_bytes, 300);
}

fn a_restarted_session_counts_from_zero_again(store: &mut dyn Store) {
    let (publisher, release) = registered_release(store);
    let before = SessionReport {
        downloaded: 1000,
        ..report(release, 1, T0)
    };
    store.apply_batch(&[before], NO_LIMIT).expect("batch");
    let restarted = SessionReport {
        downloaded: 400,
        restarted: true,
        started_unix: T0 + 60,
        ..report(release, 1, T0 + 60)
    };
    let outcome = store.apply_batch(&[restarted], NO_LIMIT).expect("batch");
    assert_eq!(outcome.added.unattributed_bytes, 400);
    assert_eq!(
        usage_on(store, publisher, D0).usage.unattributed_bytes,
        1400
    );
}

fn growth_faster_than_the_line_rate_is_flagged_and_billing_stays_physical(store: &mut dyn Store) {
    let (publisher, release) = registered_release(store);
    let max_rate = 1000;
    // A first report is measured over one second: 5000 bytes is too fast.
    let burst = SessionReport {
        downloaded: 5000,
        origin: Some(5000),
        ..report(release, 1, T0)
    };
    let outcome = store
        .apply_batch(&[burst], &Ceilings::rate(max_rate))
        .expect("batch");
    assert_eq!(
        outcome.added,
        UsageDelta {
            flagged_bytes: 5000,
            ..UsageDelta::default()
        }
    );
    // The stored totals advanced only by what one second could carry
    // (1000 bytes, all from the origin), so 9000 after ten more seconds is
    // 8000 of growth, within the limit: billed, 9000 in 11 s at most.
    let steady = SessionReport {
        downloaded: 9000,
        origin: Some(5000),
        at_unix: T0 + 10,
        ..burst
    };
    store
        .apply_batch(&[steady], &Ceilings::rate(max_rate))
        .expect("batch");
    let row = usage_on(store, publisher, D0);
    let expected = UsageDelta {
        peer_bytes: 4000,
        origin_bytes: 4000,
        flagged_bytes: 5000,
        ..UsageDelta::default()
    };
    assert_eq!(row.usage, expected, "billed at most at the line rate");
}

fn completions_count_once_per_session(store: &mut dyn Store) {
    let (publisher, release) = registered_release(store);
    let done = |peer, at| SessionReport {
        completed: true,
        ..report(release, peer, at)
    };
    store
        .apply_batch(&[done(1, T0), done(2, T0)], NO_LIMIT)
        .expect("batch");
    store
        .apply_batch(&[done(1, T0 + 60)], NO_LIMIT)
        .expect("batch");
    assert_eq!(usage_on(store, publisher, D0).usage.completions, 2);
}

fn distinct_peers_are_counted_per_day(store: &mut dyn Store) {
    let (publisher, release) = registered_release(store);
    let first_day: Vec<_> = (1..=3)
        .map(|peer| SessionReport {
            downloaded: 10,
            ..report(release, peer, T0)
        })
        .collect();
    store.apply_batch(&first_day, NO_LIMIT).expect("batch");
    let peer_one_again = SessionReport {
        downloaded: 20,
        ..report(release, 1, T0 + 3600)
    };
    store
        .apply_batch(&[peer_one_again], NO_LIMIT)
        .expect("batch");
    let next_day = SessionReport {
        downloaded: 30,
        ..report(release, 1, T0 + DAY)
    };
    store.apply_batch(&[next_day], NO_LIMIT).expect("batch");

    let rows = store.usage(publisher, D0, D0 + 1).expect("usage");
    let by_day: Vec<_> = rows
        .iter()
        .map(|r| (r.day, r.distinct_peers, r.usage.unattributed_bytes))
        .collect();
    assert_eq!(by_day, [(D0, 3, 40), (D0 + 1, 1, 10)]);
}

fn usage_covers_the_publishers_releases_within_the_day_range(store: &mut dyn Store) {
    let acme = add_publisher(store, "acme", 1);
    let globex = add_publisher(store, "globex", 2);
    let ours = store
        .add_release(&new_release(acme, 1, None))
        .expect("ours");
    let other = store
        .add_release(&new_release(acme, 2, None))
        .expect("other");
    let theirs = store
        .add_release(&new_release(globex, 3, None))
        .expect("theirs");
    let batch: Vec<_> = [(ours, -1), (ours, 0), (ours, 1), (other, 1), (theirs, 0)]
        .into_iter()
        .map(|(release, day)| SessionReport {
            downloaded: 100,
            ..report(release, u32::try_from(day + 1).unwrap_or(0), T0 + day * DAY)
        })
        .collect();
    store.apply_batch(&batch, NO_LIMIT).expect("batch");

    let rows = store.usage(acme, D0, D0 + 1).expect("usage");
    let keys: Vec<_> = rows.iter().map(|r| (r.day, r.release)).collect();
    assert_eq!(
        keys,
        [(D0, ours), (D0 + 1, ours), (D0 + 1, other)],
        "by day, then release"
    );
    let theirs_rows = store.usage(globex, D0 - 7, D0 + 7).expect("usage");
    assert_eq!(theirs_rows.len(), 1);
    assert_eq!(theirs_rows[0].release, theirs);
    assert!(store.usage(acme, D0 + 2, D0 + 9).expect("usage").is_empty());
}

/// Prints the time so the figure can be quoted; asserts generously (a
/// debug build on a loaded two-core machine).
fn a_batch_of_100_000_reports_is_applied_quickly(store: &mut dyn Store) {
    const REPORTS: u32 = 100_000;
    let limit = match store.backend() {
        "sqlite" => Duration::from_secs(5),
        _ => Duration::from_secs(30),
    };
    let (publisher, release) = registered_release(store);
    let fresh: Vec<_> = (0..REPORTS)
        .map(|peer| SessionReport {
            downloaded: 1000,
            uploaded: 10,
            origin: Some(400),
            ..report(release, peer, T0)
        })
        .collect();
    let started = Instant::now();
    let outcome = store.apply_batch(&fresh, NO_LIMIT).expect("fresh batch");
    let new_sessions = started.elapsed();
    assert_eq!(outcome.sessions, REPORTS as usize);

    let grown: Vec<_> = fresh
        .iter()
        .map(|r| SessionReport {
            downloaded: 2000,
            at_unix: T0 + 60,
            ..*r
        })
        .collect();
    let started = Instant::now();
    store.apply_batch(&grown, NO_LIMIT).expect("second batch");
    let known_sessions = started.elapsed();
    println!(
        "{}: apply_batch of {REPORTS} reports took {new_sessions:?} (new sessions), {known_sessions:?} (known sessions)",
        store.backend()
    );

    let row = usage_on(store, publisher, D0);
    let n = u64::from(REPORTS);
    let expected = UsageDelta {
        peer_bytes: n * 1600,
        origin_bytes: n * 400,
        uploaded_bytes: n * 10,
        ..UsageDelta::default()
    };
    assert_eq!(row.usage, expected);
    assert_eq!(row.distinct_peers, n);
    assert!(
        new_sessions < limit && known_sessions < limit,
        "{}: {new_sessions:?} and {known_sessions:?}, limit {limit:?}",
        store.backend()
    );
}

/// Regression (audit finding 1): sums of i64::MAX reports overflowed the
/// usage row (SQLite stored a REAL and every usage read failed;
/// PostgreSQL refused the batch, and every later one with it).
fn sums_of_absurd_reports_saturate_and_stay_readable(store: &mut dyn Store) {
    let (publisher, release) = registered_release(store);
    let max = i64::MAX as u64;
    for (peer, at) in [(1, T0), (2, T0 + 10), (3, T0 + 20)] {
        let mut absurd = SessionReport {
            uploaded: max,
            downloaded: max,
            origin: Some(0),
            ..report(release, peer, at)
        };
        // Without rate ceiling, the bytes are billed: the sums must saturate.
        store.apply_batch(&[absurd], NO_LIMIT).expect("batch");
        absurd.at_unix += 1;
        store
            .apply_batch(&[absurd], &Ceilings::rate(1))
            .expect("the next batch still applies");
    }
    let row = usage_on(store, publisher, D0);
    assert_eq!(row.usage.peer_bytes, max, "saturated at i64::MAX");
    assert_eq!(row.usage.uploaded_bytes, max);
    // Flagged sums saturate too.
    let flagged: Vec<SessionReport> = (10..13)
        .map(|peer| SessionReport {
            uploaded: max,
            downloaded: max,
            ..report(release, peer, T0 + 30)
        })
        .collect();
    for one in flagged {
        store
            .apply_batch(&[one], &Ceilings::rate(1))
            .expect("batch");
    }
    let row = usage_on(store, publisher, D0);
    assert_eq!(row.usage.flagged_bytes, max);
    assert_eq!(row.usage.peer_bytes, max);
}

/// Completions count once per (client IP, release, day), whatever the
/// number of sessions the client opens.
fn completions_count_once_per_client_ip_and_day(store: &mut dyn Store) {
    let (publisher, release) = registered_release(store);
    let same_client = |peer, at| {
        let mut r = SessionReport {
            completed: true,
            ..report(release, peer, at)
        };
        r.client = [9; 16];
        r
    };
    let one_a_day = Ceilings::rate(u64::MAX);
    let outcome = store
        .apply_batch(&[same_client(1, T0), same_client(2, T0)], &one_a_day)
        .expect("batch");
    assert_eq!(outcome.completions_refused, 1);
    store
        .apply_batch(&[same_client(3, T0 + 60)], &one_a_day)
        .expect("batch");
    assert_eq!(usage_on(store, publisher, D0).usage.completions, 1);
    // The next day, the client may complete again; another client too.
    store
        .apply_batch(&[same_client(4, T0 + DAY)], &one_a_day)
        .expect("batch");
    assert_eq!(usage_on(store, publisher, D0 + 1).usage.completions, 1);
    store
        .apply_batch(
            &[SessionReport {
                completed: true,
                ..report(release, 5, T0 + DAY)
            }],
            &one_a_day,
        )
        .expect("batch");
    assert_eq!(usage_on(store, publisher, D0 + 1).usage.completions, 2);
}

/// Sessions and per-day peer lists older than the retention go; the
/// usage rows keep their distinct-peer counts.
fn pruning_forgets_old_sessions_and_keeps_peer_counts(store: &mut dyn Store) {
    let (publisher, release) = registered_release(store);
    let grown = |peer, at| SessionReport {
        downloaded: 100,
        ..report(release, peer, at)
    };
    store
        .apply_batch(&[grown(1, T0), grown(2, T0)], NO_LIMIT)
        .expect("batch");
    store
        .apply_batch(&[grown(3, T0 + 3 * DAY)], NO_LIMIT)
        .expect("batch");
    let deleted = store.prune(T0 + 2 * DAY).expect("prune");
    // Two sessions and two day-peer rows of day 0.
    assert_eq!(deleted, 4);
    assert_eq!(store.prune(T0 + 2 * DAY).expect("prune again"), 0);
    let day0 = usage_on(store, publisher, D0);
    assert_eq!(day0.distinct_peers, 2, "kept in the usage row");
    assert_eq!(day0.usage.unattributed_bytes, 200);
    // A pruned session comes back as a new one: its report is a baseline.
    store
        .apply_batch(&[grown(1, T0 + 3 * DAY)], NO_LIMIT)
        .expect("batch");
    let day3 = usage_on(store, publisher, D0 + 3);
    assert_eq!(day3.distinct_peers, 2);
    assert_eq!(day3.usage.unattributed_bytes, 200);
}

// ---- both backends ----

fn sqlite_store() -> (TempDir, SqliteStore) {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.path().join("tracker.db")).expect("open sqlite");
    (dir, store)
}

fn postgres_store() -> PostgresStore {
    PostgresStore::connect(&PgServer::shared().create_database()).expect("connect postgres")
}

macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $body() {
                    let (_dir, mut store) = super::sqlite_store();
                    super::$body(&mut store);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $body() {
                    let mut store = super::postgres_store();
                    super::$body(&mut store);
                }
            )*
        }
    };
}

on_both_backends!(
    publishers_are_added_listed_and_found_by_token,
    a_taken_publisher_name_or_token_is_a_conflict,
    registering_a_release_again_is_idempotent_only_for_its_publisher,
    a_hybrid_release_is_withdrawn_by_its_alias_and_restored_by_registering,
    a_batch_counts_each_sessions_growth_once,
    a_session_named_twice_in_one_batch_counts_its_growth_once,
    a_restarted_session_counts_from_zero_again,
    growth_faster_than_the_line_rate_is_flagged_and_billing_stays_physical,
    completions_count_once_per_session,
    distinct_peers_are_counted_per_day,
    usage_covers_the_publishers_releases_within_the_day_range,
    a_batch_of_100_000_reports_is_applied_quickly,
    sums_of_absurd_reports_saturate_and_stay_readable,
    completions_count_once_per_client_ip_and_day,
    pruning_forgets_old_sessions_and_keeps_peer_counts,
);

// ---- SQLite only ----

mod sqlite_file {
    use super::*;

    #[test]
    fn reopening_keeps_the_data() {
        let dir = TempDir::new();
        let path = dir.path().join("nested/folder/tracker.db");
        {
            let mut store = SqliteStore::open(&path).expect("create, folders too");
            add_publisher(&mut store, "acme", 1);
        }
        let mut store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.publishers().expect("list").len(), 1);
    }

    #[test]
    fn a_database_from_a_newer_tracker_is_refused() {
        let dir = TempDir::new();
        let path = dir.path().join("tracker.db");
        drop(SqliteStore::open(&path).expect("create"));
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute(
            "INSERT INTO schema_version (version, applied_unix) VALUES (999, 0)",
            [],
        )
        .expect("pretend a newer tracker migrated");
        drop(conn);
        let refused = SqliteStore::open(&path);
        assert!(
            matches!(refused, Err(StoreError::SchemaTooNew { found: 999, .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn an_open_error_names_the_file() {
        let dir = TempDir::new();
        let blocker = dir.path().join("not-a-folder");
        std::fs::write(&blocker, b"x").expect("write");
        let path = blocker.join("tracker.db");
        let message = SqliteStore::open(&path)
            .expect_err("a file where the folder should be")
            .to_string();
        assert!(
            message.contains(&blocker.display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn peers_are_not_shared() {
        let (_dir, mut store) = sqlite_store();
        assert!(!store.shares_peers());
        let peer = shared_peer(1, 1000, IpAddr::V4(Ipv4Addr::LOCALHOST));
        store.publish_peers("east", &[peer]).expect("no-op");
        assert!(store
            .peers_from_others("west", 0)
            .expect("empty")
            .is_empty());
        store.expire_peers(i64::MAX).expect("no-op");
    }
}

// ---- PostgreSQL only: several instances on one database ----

fn shared_peer(n: u8, seen_unix_ms: i64, ip: IpAddr) -> SharedPeer {
    SharedPeer {
        swarm: [9; 20],
        peer_id: [n; 20],
        addr: SocketAddr::new(ip, 6880 + u16::from(n)),
        left: 1000 * u64::from(n),
        seen_unix_ms,
        stopped: false,
    }
}

mod postgres_instances {
    use super::*;

    #[test]
    fn two_instances_applying_overlapping_batches_count_each_session_once() {
        const ROUNDS: u64 = 6;
        let url = PgServer::shared().create_database();
        let mut setup = PostgresStore::connect(&url).expect("connect");
        let (publisher, release) = registered_release(&mut setup);
        let barrier = Arc::new(Barrier::new(2));
        let instance = |peers: Vec<u32>| {
            let url = url.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut store = PostgresStore::connect(&url).expect("connect");
                barrier.wait();
                let mut added = UsageDelta::default();
                for round in 1..=ROUNDS {
                    let at = T0 + i64::try_from(round).unwrap_or(0);
                    let batch: Vec<_> = peers
                        .iter()
                        .map(|&peer| SessionReport {
                            downloaded: round * 1000,
                            uploaded: round * 10,
                            ..report(release, peer, at)
                        })
                        .collect();
                    let outcome = store.apply_batch(&batch, NO_LIMIT).expect("batch");
                    added.add(&outcome.added);
                }
                added
            })
        };
        // Peers 1000..2000 are in both; the second instance names them in
        // the opposite order, which would deadlock without sorted locking.
        let east = instance((0..2000).collect());
        let west = instance((1000..3000).rev().collect());
        let mut added = east.join().expect("east");
        added.add(&west.join().expect("west"));

        let peers = 3000;
        let expected = UsageDelta {
            unattributed_bytes: peers * ROUNDS * 1000,
            uploaded_bytes: peers * ROUNDS * 10,
            ..UsageDelta::default()
        };
        assert_eq!(added, expected, "what the two instances added");
        let row = usage_on(&mut setup, publisher, D0);
        assert_eq!(row.usage, expected, "what the database holds");
        assert_eq!(row.distinct_peers, peers);
    }

    #[test]
    fn instances_share_peers_with_each_other() {
        let url = PgServer::shared().create_database();
        let mut east = PostgresStore::connect(&url).expect("east");
        let mut west = PostgresStore::connect(&url).expect("west");
        assert!(east.shares_peers());

        let one = shared_peer(1, 1000, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let two = shared_peer(2, 2000, IpAddr::V6(Ipv6Addr::LOCALHOST));
        east.publish_peers("east", &[one.clone(), two.clone()])
            .expect("publish");
        assert_eq!(
            west.peers_from_others("west", 0).expect("read"),
            [one.clone(), two.clone()]
        );
        assert_eq!(
            west.peers_from_others("west", 1000).expect("read"),
            std::slice::from_ref(&two)
        );
        assert!(
            east.peers_from_others("east", 0).expect("read").is_empty(),
            "an instance does not read its own peers back"
        );

        // West heard from peer one later, and it stopped: the newest
        // sighting wins, and a stale one does not overwrite it.
        let moved = SharedPeer {
            seen_unix_ms: 3000,
            stopped: true,
            ..one.clone()
        };
        west.publish_peers("west", std::slice::from_ref(&moved))
            .expect("publish");
        east.publish_peers("east", &[one]).expect("stale publish");
        assert_eq!(
            east.peers_from_others("east", 0).expect("read"),
            std::slice::from_ref(&moved)
        );
        assert_eq!(west.peers_from_others("west", 0).expect("read"), [two]);

        east.expire_peers(2500).expect("expire");
        assert!(west.peers_from_others("west", 0).expect("read").is_empty());
        assert_eq!(east.peers_from_others("east", 0).expect("read"), [moved]);
    }

    #[test]
    fn instances_starting_together_migrate_once() {
        const INSTANCES: usize = 4;
        let url = PgServer::shared().create_database();
        let barrier = Arc::new(Barrier::new(INSTANCES));
        let starting: Vec<_> = (0..INSTANCES)
            .map(|_| {
                let url = url.clone();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    PostgresStore::connect(&url).map(drop)
                })
            })
            .collect();
        for instance in starting {
            instance.join().expect("thread").expect("connect");
        }
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).expect("client");
        let row = client
            .query_one("SELECT COUNT(*), MAX(version) FROM schema_version", &[])
            .expect("versions");
        let (steps, latest): (i64, i64) = (row.get(0), row.get(1));
        assert!(steps >= 1);
        assert_eq!(steps, latest, "each step recorded once");
    }

    #[test]
    fn a_database_from_a_newer_tracker_is_refused() {
        let url = PgServer::shared().create_database();
        drop(PostgresStore::connect(&url).expect("create"));
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).expect("client");
        client
            .execute(
                "INSERT INTO schema_version (version, applied_unix) VALUES (999, 0)",
                &[],
            )
            .expect("pretend a newer tracker migrated");
        let refused = PostgresStore::connect(&url);
        assert!(
            matches!(refused, Err(StoreError::SchemaTooNew { found: 999, .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn a_connect_error_names_the_database_but_not_the_password() {
        let url = PgServer::shared().url("no_such_database") + " password=hunter2";
        let message = PostgresStore::connect(&url)
            .expect_err("no such database")
            .to_string();
        assert!(message.contains("no_such_database"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
