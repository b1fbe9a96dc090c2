//! The shared backend: several tracker instances behind a load balancer
//! keep publishers, releases, accounting and the peers each has seen in
//! one PostgreSQL database.
//!
//! Accounting must count each session's growth once even when two
//! instances apply batches naming the same session at the same moment:
//! `batch` locks the session rows it reads until it commits, in key order,
//! and a deadlock or serialization failure PostgreSQL reports anyway is
//! retried. Migrations run under an advisory lock, so instances starting
//! together apply each step once.
//!
//! The connection has no TLS (`NoTls`): TLS to the database is future
//! work. Until then, connect over a local Unix socket or a private
//! network only.

mod batch;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};

use super::schema::{self, from_column, to_column, ReleaseSlot};
use super::{
    BatchOutcome, Ceilings, NewRelease, Publisher, PublisherId, Release, ReleaseId, SharedPeer,
    Store, StoreError, UsageRow,
};
use crate::accounting::{SessionReport, UsageDelta};

/// Taken by every instance that migrates, so two starting together run
/// the steps once. Any constant works; this one spells "shoal" in ASCII.
const MIGRATION_LOCK: i64 = 0x73_68_6f_61_6c;

/// Attempts at a batch PostgreSQL aborted to break a deadlock.
const BATCH_ATTEMPTS: usize = 5;

/// A tracker database in PostgreSQL, shared by instances.
pub struct PostgresStore {
    client: Client,
    /// `user@host:port/db`, for messages: never the password.
    target: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL or a `key=value` string as
    /// libpq takes them) and brings the schema up to date.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let config = Config::from_str(url).map_err(|e| StoreError::Open {
            url: "the PostgreSQL URL".into(),
            reason: e.to_string(),
        })?;
        let target = describe(&config);
        let open_error = |target: &str, reason: String| StoreError::Open {
            url: target.to_owned(),
            reason,
        };
        let client = config
            .connect(NoTls)
            .map_err(|e| open_error(&target, e.to_string()))?;
        let mut store = PostgresStore { client, target };
        store.migrate().map_err(|e| match e {
            StoreError::Backend(reason) => open_error(&store.target, reason),
            other => other,
        })?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let mut tx = self.client.transaction().map_err(backend)?;
        // Held to the end of the transaction: a second instance waits here
        // and then finds the steps applied.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(backend)?;
        tx.batch_execute(schema::VERSION_TABLE).map_err(backend)?;
        let found: i64 = tx
            .query_one(schema::CURRENT_VERSION, &[])
            .map_err(backend)?
            .get(0);
        for (version, sql) in schema::pending_steps(found, schema::POSTGRES)? {
            tx.batch_execute(sql).map_err(backend)?;
            tx.execute(
                "INSERT INTO schema_version (version, applied_unix)
                 VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)",
                &[&version],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }
}

/// `user@host:port/db` from a parsed configuration.
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

fn backend(e: postgres::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// PostgreSQL gave up on the transaction to let a concurrent one finish:
/// running it again is safe.
fn is_retryable(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

fn id_20(bytes: &[u8]) -> Result<[u8; 20], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend(format!("a stored id has {} bytes, not 20", bytes.len())))
}

fn key_32(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend(format!("a stored key has {} bytes, not 32", bytes.len())))
}

fn publisher_from_row(row: &postgres::Row) -> Result<Publisher, StoreError> {
    Ok(Publisher {
        id: row.get(0),
        name: row.get(1),
        key: key_32(row.get(2))?,
        created_unix: row.get(3),
    })
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn shares_peers(&self) -> bool {
        true
    }

    fn add_publisher(
        &mut self,
        name: &str,
        key: &[u8; 32],
        token_hash: &[u8; 32],
        now_unix: i64,
    ) -> Result<PublisherId, StoreError> {
        let inserted = self.client.query_one(
            "INSERT INTO publishers (name, key, token_hash, created_unix)
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[&name, &key.as_slice(), &token_hash.as_slice(), &now_unix],
        );
        match inserted {
            Ok(row) => Ok(row.get(0)),
            Err(e) if is_unique_violation(&e) => {
                let constraint = e.as_db_error().and_then(|db| db.constraint()).unwrap_or("");
                Err(StoreError::Conflict(if constraint.contains("name") {
                    format!("a publisher named {name:?} already exists")
                } else {
                    "another publisher already has this token; issue a new one".into()
                }))
            }
            Err(e) => Err(backend(e)),
        }
    }

    fn publishers(&mut self) -> Result<Vec<Publisher>, StoreError> {
        self.client
            .query(
                "SELECT id, name, key, created_unix FROM publishers ORDER BY id",
                &[],
            )
            .map_err(backend)?
            .iter()
            .map(publisher_from_row)
            .collect()
    }

    fn publisher_by_token(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<Publisher>, StoreError> {
        self.client
            .query_opt(
                "SELECT id, name, key, created_unix FROM publishers WHERE token_hash = $1",
                &[&token_hash.as_slice()],
            )
            .map_err(backend)?
            .as_ref()
            .map(publisher_from_row)
            .transpose()
    }

    fn add_release(&mut self, release: &NewRelease) -> Result<ReleaseId, StoreError> {
        // A second instance registering the same torrent at the same moment
        // trips the unique index; looking again then finds its row.
        match self.try_add_release(release) {
            Err(RegisterError::Db(e)) if is_unique_violation(&e) => self
                .try_add_release(release)
                .map_err(RegisterError::into_store_error),
            other => other.map_err(RegisterError::into_store_error),
        }
    }

    fn withdraw_release(
        &mut self,
        publisher: PublisherId,
        swarm: &[u8; 20],
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        let changed = self
            .client
            .execute(
                "UPDATE releases SET withdrawn_unix = COALESCE(withdrawn_unix, $3)
                 WHERE publisher_id = $1 AND (swarm = $2 OR alias = $2)",
                &[&publisher, &swarm.as_slice(), &now_unix],
            )
            .map_err(backend)?;
        Ok(changed > 0)
    }

    fn releases(&mut self) -> Result<Vec<Release>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT id, publisher_id, name, swarm, alias, size, registered_unix, withdrawn_unix
                 FROM releases ORDER BY id",
                &[],
            )
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(Release {
                    id: row.get(0),
                    publisher: row.get(1),
                    name: row.get(2),
                    swarm: id_20(row.get(3))?,
                    alias: row.get::<_, Option<&[u8]>>(4).map(id_20).transpose()?,
                    size: from_column(row.get(5)),
                    registered_unix: row.get(6),
                    withdrawn_unix: row.get(7),
                })
            })
            .collect()
    }

    fn apply_batch(
        &mut self,
        reports: &[SessionReport],
        ceilings: &Ceilings,
    ) -> Result<BatchOutcome, StoreError> {
        if reports.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let mut attempt = 1;
        loop {
            let result = self.client.transaction().and_then(|mut tx| {
                let outcome = batch::apply(&mut tx, reports, ceilings)?;
                tx.commit()?;
                Ok(outcome)
            });
            match result {
                Err(e) if is_retryable(&e) && attempt < BATCH_ATTEMPTS => attempt += 1,
                other => return other.map_err(backend),
            }
        }
    }

    fn usage(
        &mut self,
        publisher: PublisherId,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT u.release_id, u.day, u.peer_bytes, u.origin_bytes, u.unattributed_bytes,
                        u.uploaded_bytes, u.flagged_bytes, u.completions,
                        u.pruned_peers + (SELECT COUNT(*) FROM day_peers d
                         WHERE d.release_id = u.release_id AND d.day = u.day)
                 FROM usage_daily u JOIN releases r ON r.id = u.release_id
                 WHERE r.publisher_id = $1 AND u.day BETWEEN $2 AND $3
                 ORDER BY u.day, u.release_id",
                &[&publisher, &from_day, &to_day],
            )
            .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| UsageRow {
                release: row.get(0),
                day: row.get(1),
                usage: UsageDelta {
                    peer_bytes: from_column(row.get(2)),
                    origin_bytes: from_column(row.get(3)),
                    unattributed_bytes: from_column(row.get(4)),
                    uploaded_bytes: from_column(row.get(5)),
                    flagged_bytes: from_column(row.get(6)),
                    completions: from_column(row.get(7)),
                },
                distinct_peers: from_column(row.get(8)),
            })
            .collect())
    }

    fn prune(&mut self, before_unix: i64) -> Result<u64, StoreError> {
        let mut tx = self.client.transaction().map_err(backend)?;
        let mut deleted = 0;
        for sql in schema::prune_statements(before_unix) {
            let changed = tx.execute(sql.as_str(), &[]).map_err(backend)?;
            if sql.starts_with("DELETE") {
                deleted += changed;
            }
        }
        tx.commit().map_err(backend)?;
        Ok(deleted)
    }

    fn publish_peers(&mut self, instance: &str, peers: &[SharedPeer]) -> Result<(), StoreError> {
        // One row per (swarm, peer): an upsert may not touch a row twice.
        let mut latest: BTreeMap<([u8; 20], [u8; 20]), &SharedPeer> = BTreeMap::new();
        for peer in peers {
            let slot = latest.entry((peer.swarm, peer.peer_id)).or_insert(peer);
            if peer.seen_unix_ms > slot.seen_unix_ms {
                *slot = peer;
            }
        }
        if latest.is_empty() {
            return Ok(());
        }
        let peers: Vec<&SharedPeer> = latest.into_values().collect();
        let swarms: Vec<&[u8]> = peers.iter().map(|p| p.swarm.as_slice()).collect();
        let ids: Vec<&[u8]> = peers.iter().map(|p| p.peer_id.as_slice()).collect();
        let ips: Vec<String> = peers.iter().map(|p| p.addr.ip().to_string()).collect();
        let ports: Vec<i32> = peers.iter().map(|p| i32::from(p.addr.port())).collect();
        let left: Vec<i64> = peers.iter().map(|p| to_column(p.left)).collect();
        let seen: Vec<i64> = peers.iter().map(|p| p.seen_unix_ms).collect();
        let stopped: Vec<bool> = peers.iter().map(|p| p.stopped).collect();
        // The newest sighting wins, whichever instance made it.
        self.client
            .execute(
                "INSERT INTO shared_peers
                 (swarm, peer_id, instance, ip, port, left_bytes, seen_ms, stopped)
                 SELECT u.swarm, u.peer_id, $1, u.ip, u.port, u.left_bytes, u.seen_ms, u.stopped
                 FROM UNNEST($2::BYTEA[], $3::BYTEA[], $4::TEXT[], $5::INTEGER[], $6::BIGINT[],
                             $7::BIGINT[], $8::BOOLEAN[])
                   AS u(swarm, peer_id, ip, port, left_bytes, seen_ms, stopped)
                 ON CONFLICT (swarm, peer_id) DO UPDATE SET
                   instance = EXCLUDED.instance, ip = EXCLUDED.ip, port = EXCLUDED.port,
                   left_bytes = EXCLUDED.left_bytes, seen_ms = EXCLUDED.seen_ms,
                   stopped = EXCLUDED.stopped
                 WHERE shared_peers.seen_ms <= EXCLUDED.seen_ms",
                &[
                    &instance, &swarms, &ids, &ips, &ports, &left, &seen, &stopped,
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn peers_from_others(
        &mut self,
        instance: &str,
        since_ms: i64,
    ) -> Result<Vec<SharedPeer>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT swarm, peer_id, ip, port, left_bytes, seen_ms, stopped
                 FROM shared_peers WHERE instance <> $1 AND seen_ms > $2
                 ORDER BY seen_ms",
                &[&instance, &since_ms],
            )
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let ip: &str = row.get(2);
                let ip = IpAddr::from_str(ip).map_err(|_| {
                    StoreError::Backend(format!("shared_peers holds an invalid IP address {ip:?}"))
                })?;
                let port = u16::try_from(row.get::<_, i32>(3)).map_err(|_| {
                    StoreError::Backend("shared_peers holds an invalid port".into())
                })?;
                Ok(SharedPeer {
                    swarm: id_20(row.get(0))?,
                    peer_id: id_20(row.get(1))?,
                    addr: SocketAddr::new(ip, port),
                    left: from_column(row.get(4)),
                    seen_unix_ms: row.get(5),
                    stopped: row.get(6),
                })
            })
            .collect()
    }

    fn expire_peers(&mut self, before_ms: i64) -> Result<(), StoreError> {
        self.client
            .execute("DELETE FROM shared_peers WHERE seen_ms < $1", &[&before_ms])
            .map_err(backend)?;
        Ok(())
    }
}

/// Why one registration attempt failed: a database error may be retried
/// by the caller, a conflict is final.
enum RegisterError {
    Db(postgres::Error),
    Store(StoreError),
}

impl RegisterError {
    fn into_store_error(self) -> StoreError {
        match self {
            RegisterError::Db(e) if is_unique_violation(&e) => StoreError::Conflict(
                "this info-hash was registered concurrently by another request".into(),
            ),
            RegisterError::Db(e) => backend(e),
            RegisterError::Store(e) => e,
        }
    }
}

impl From<postgres::Error> for RegisterError {
    fn from(e: postgres::Error) -> Self {
        RegisterError::Db(e)
    }
}

impl PostgresStore {
    fn try_add_release(&mut self, release: &NewRelease) -> Result<ReleaseId, RegisterError> {
        let mut tx = self.client.transaction()?;
        let swarm = release.swarm.as_slice();
        let alias = release.alias.as_ref().map(|a| a.as_slice());
        let holders = tx
            .query(
                "SELECT id, publisher_id, swarm FROM releases
                 WHERE swarm IN ($1, $2) OR alias IN ($1, $2)
                 ORDER BY id FOR UPDATE",
                &[&swarm, &alias],
            )?
            .iter()
            .map(|row| Ok((row.get(0), row.get(1), id_20(row.get(2))?)))
            .collect::<Result<Vec<_>, StoreError>>()
            .map_err(RegisterError::Store)?;
        let id = match schema::claim_release(release, &holders) {
            ReleaseSlot::Free => tx
                .query_one(
                    "INSERT INTO releases
                     (publisher_id, name, swarm, alias, size, torrent, registered_unix)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[
                        &release.publisher,
                        &release.name,
                        &swarm,
                        &alias,
                        &to_column(release.size),
                        &release.torrent,
                        &release.registered_unix,
                    ],
                )?
                .get(0),
            ReleaseSlot::Ours(id) => {
                tx.execute(
                    "UPDATE releases SET withdrawn_unix = NULL WHERE id = $1",
                    &[&id],
                )?;
                id
            }
            ReleaseSlot::Taken(conflict) => return Err(RegisterError::Store(conflict)),
        };
        tx.commit()?;
        Ok(id)
    }
}
