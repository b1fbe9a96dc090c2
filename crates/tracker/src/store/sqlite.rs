//! The single-instance backend: one SQLite file beside the tracker.
//!
//! WAL journaling with `synchronous=NORMAL`: a crash may lose the last
//! committed batches but never corrupts the file, and readers (a usage
//! report) do not block the batch writer. One batch is one transaction
//! with cached prepared statements, so a 100,000-report batch costs a few
//! hundred thousand B-tree operations and one commit.
//!
//! SQLite serves one tracker instance: [`Store::shares_peers`] is false and
//! the peer-sharing calls do nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use super::schema::{self, from_column, to_column, ReleaseSlot};
use super::{
    BatchOutcome, Ceilings, NewRelease, Publisher, PublisherId, Release, ReleaseId, SharedPeer,
    Store, StoreError, UsageRow,
};
use crate::accounting::{
    changes_anything, day_of, session_delta, SessionReport, SessionState, UsageDelta,
};

/// How long a writer waits for another process holding the file's lock
/// (an operator's `sqlite3` shell, a second tracker started by mistake).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The statements one batch runs per report, plus a margin; all stay
/// prepared for the life of the connection.
const STATEMENT_CACHE: usize = 32;

/// A tracker database in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens `path`, creating the file and its folder if needed, and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            url: format!("sqlite://{}", path.display()),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                open_error(format!("cannot create folder {}: {e}", parent.display()))
            })?;
        }
        let conn = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        let mut store = SqliteStore {
            conn,
            path: path.to_owned(),
        };
        store.configure().map_err(|e| open_error(e.to_string()))?;
        store.migrate().map_err(|e| match e {
            StoreError::Backend(reason) => open_error(reason),
            other => other,
        })?;
        Ok(store)
    }

    fn configure(&mut self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // `journal_mode` answers with the mode now in force; a file on a
        // filesystem without shared memory stays in its old mode, which is
        // slower but still correct.
        let _mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.conn
            .set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(())
    }

    /// Runs the missing migration steps. `BEGIN IMMEDIATE` takes the write
    /// lock first, so two processes opening a new file do not both migrate.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let fail = failure(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        tx.execute(schema::VERSION_TABLE, []).map_err(&fail)?;
        let found: i64 = tx
            .query_row(schema::CURRENT_VERSION, [], |row| row.get(0))
            .map_err(&fail)?;
        for (version, sql) in schema::pending_steps(found, schema::SQLITE)? {
            tx.execute_batch(sql).map_err(&fail)?;
            tx.execute(
                "INSERT INTO schema_version (version, applied_unix) VALUES (?1, unixepoch())",
                [version],
            )
            .map_err(&fail)?;
        }
        tx.commit().map_err(&fail)
    }
}

/// Turns a SQLite error into a [`StoreError`] naming the file; unique
/// violations become [`StoreError::Conflict`] only where the caller says.
fn failure(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Backend(format!("{}: {e}", path.display()))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation)
}

fn publisher_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Publisher> {
    Ok(Publisher {
        id: row.get(0)?,
        name: row.get(1)?,
        key: row.get(2)?,
        created_unix: row.get(3)?,
    })
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn shares_peers(&self) -> bool {
        false
    }

    fn add_publisher(
        &mut self,
        name: &str,
        key: &[u8; 32],
        token_hash: &[u8; 32],
        now_unix: i64,
    ) -> Result<PublisherId, StoreError> {
        let fail = failure(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        let taken = tx
            .query_row("SELECT 1 FROM publishers WHERE name = ?1", [name], |_| {
                Ok(())
            })
            .optional()
            .map_err(&fail)?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "a publisher named {name:?} already exists"
            )));
        }
        let inserted = tx.execute(
            "INSERT INTO publishers (name, key, token_hash, created_unix) VALUES (?1, ?2, ?3, ?4)",
            params![name, key, token_hash, now_unix],
        );
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(
                    "another publisher already has this token; issue a new one".into(),
                ))
            }
            Err(e) => return Err(fail(e)),
        }
        let id = tx.last_insert_rowid();
        tx.commit().map_err(&fail)?;
        Ok(id)
    }

    fn publishers(&mut self) -> Result<Vec<Publisher>, StoreError> {
        let fail = failure(&self.path);
        let mut statement = self
            .conn
            .prepare_cached("SELECT id, name, key, created_unix FROM publishers ORDER BY id")
            .map_err(&fail)?;
        let rows = statement.query_map([], publisher_from_row).map_err(&fail)?;
        rows.collect::<rusqlite::Result<_>>().map_err(&fail)
    }

    fn publisher_by_token(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<Publisher>, StoreError> {
        let fail = failure(&self.path);
        self.conn
            .prepare_cached(
                "SELECT id, name, key, created_unix FROM publishers WHERE token_hash = ?1",
            )
            .map_err(&fail)?
            .query_row([token_hash], publisher_from_row)
            .optional()
            .map_err(&fail)
    }

    fn add_release(&mut self, release: &NewRelease) -> Result<ReleaseId, StoreError> {
        let fail = failure(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        // Every announce key must name one release: the new swarm and alias
        // may match neither column of any other release.
        let holders: Vec<(ReleaseId, PublisherId, [u8; 20])> = {
            let mut statement = tx
                .prepare_cached(
                    "SELECT id, publisher_id, swarm FROM releases
                     WHERE swarm IN (?1, ?2) OR alias IN (?1, ?2)",
                )
                .map_err(&fail)?;
            let rows = statement
                .query_map(params![release.swarm, release.alias], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .map_err(&fail)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&fail)?
        };
        let id = match schema::claim_release(release, &holders) {
            ReleaseSlot::Free => {
                tx.execute(
                    "INSERT INTO releases
                     (publisher_id, name, swarm, alias, size, torrent, registered_unix)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        release.publisher,
                        release.name,
                        release.swarm,
                        release.alias,
                        to_column(release.size),
                        release.torrent,
                        release.registered_unix,
                    ],
                )
                .map_err(&fail)?;
                tx.last_insert_rowid()
            }
            ReleaseSlot::Ours(id) => {
                tx.execute(
                    "UPDATE releases SET withdrawn_unix = NULL WHERE id = ?1",
                    [id],
                )
                .map_err(&fail)?;
                id
            }
            ReleaseSlot::Taken(conflict) => return Err(conflict),
        };
        tx.commit().map_err(&fail)?;
        Ok(id)
    }

    fn withdraw_release(
        &mut self,
        publisher: PublisherId,
        swarm: &[u8; 20],
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE releases SET withdrawn_unix = COALESCE(withdrawn_unix, ?3)
                 WHERE publisher_id = ?1 AND (swarm = ?2 OR alias = ?2)",
                params![publisher, swarm, now_unix],
            )
            .map_err(failure(&self.path))?;
        Ok(changed > 0)
    }

    fn releases(&mut self) -> Result<Vec<Release>, StoreError> {
        let fail = failure(&self.path);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT id, publisher_id, name, swarm, alias, size, registered_unix, withdrawn_unix
                 FROM releases ORDER BY id",
            )
            .map_err(&fail)?;
        let rows = statement
            .query_map([], |row| {
                Ok(Release {
                    id: row.get(0)?,
                    publisher: row.get(1)?,
                    name: row.get(2)?,
                    swarm: row.get(3)?,
                    alias: row.get(4)?,
                    size: from_column(row.get(5)?),
                    registered_unix: row.get(6)?,
                    withdrawn_unix: row.get(7)?,
                })
            })
            .map_err(&fail)?;
        rows.collect::<rusqlite::Result<_>>().map_err(&fail)
    }

    fn apply_batch(
        &mut self,
        reports: &[SessionReport],
        ceilings: &Ceilings,
    ) -> Result<BatchOutcome, StoreError> {
        let fail = failure(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        let mut outcome = BatchOutcome {
            sessions: reports.len(),
            ..BatchOutcome::default()
        };
        // Summed in memory: one usage write per (release, day), not per report.
        let mut by_day: BTreeMap<(ReleaseId, i64), UsageDelta> = BTreeMap::new();
        {
            let mut read = tx
                .prepare_cached(
                    "SELECT uploaded, downloaded, origin, reported_unix, completed
                     FROM sessions WHERE release_id = ?1 AND peer_id = ?2",
                )
                .map_err(&fail)?;
            let mut write = tx
                .prepare_cached(
                    "INSERT INTO sessions
                     (release_id, peer_id, uploaded, downloaded, origin, reported_unix, completed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (release_id, peer_id) DO UPDATE SET
                       uploaded = excluded.uploaded,
                       downloaded = excluded.downloaded,
                       origin = excluded.origin,
                       reported_unix = excluded.reported_unix,
                       completed = excluded.completed",
                )
                .map_err(&fail)?;
            let mut seen = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO day_peers (release_id, day, peer_id) VALUES (?1, ?2, ?3)",
                )
                .map_err(&fail)?;
            let mut complete = tx
                .prepare_cached(&schema::count_completion_sql('?'))
                .map_err(&fail)?;
            for report in reports {
                let stored = read
                    .query_row(params![report.release, report.session], |row| {
                        Ok(SessionState {
                            uploaded: from_column(row.get(0)?),
                            downloaded: from_column(row.get(1)?),
                            origin: from_column(row.get(2)?),
                            reported_unix: row.get(3)?,
                            completed: row.get(4)?,
                        })
                    })
                    .optional()
                    .map_err(&fail)?;
                if stored
                    .as_ref()
                    .is_some_and(|s| !changes_anything(s, report, ceilings.max_rate))
                {
                    continue;
                }
                let (state, mut usage) = session_delta(stored.as_ref(), report, ceilings.max_rate);
                write
                    .execute(params![
                        report.release,
                        report.session,
                        to_column(state.uploaded),
                        to_column(state.downloaded),
                        to_column(state.origin),
                        state.reported_unix,
                        state.completed,
                    ])
                    .map_err(&fail)?;
                let day = day_of(report.at_unix);
                seen.execute(params![report.release, day, report.session])
                    .map_err(&fail)?;
                if usage.completions > 0 {
                    let counted = complete
                        .query_row(
                            params![
                                report.release,
                                day,
                                report.client,
                                ceilings.completions_per_ip_per_day
                            ],
                            |_| Ok(()),
                        )
                        .optional()
                        .map_err(&fail)?;
                    if counted.is_none() {
                        usage.completions = 0;
                        outcome.completions_refused += 1;
                    }
                }
                by_day.entry((report.release, day)).or_default().add(&usage);
                outcome.added.add(&usage);
            }
            let mut add = tx
                .prepare_cached(
                    &("INSERT INTO usage_daily
                     (release_id, day, peer_bytes, origin_bytes, unattributed_bytes,
                      uploaded_bytes, flagged_bytes, completions)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                        .to_owned()
                        + schema::ADD_USAGE_ON_CONFLICT),
                )
                .map_err(&fail)?;
            for ((release, day), usage) in &by_day {
                add.execute(params![
                    release,
                    day,
                    to_column(usage.peer_bytes),
                    to_column(usage.origin_bytes),
                    to_column(usage.unattributed_bytes),
                    to_column(usage.uploaded_bytes),
                    to_column(usage.flagged_bytes),
                    to_column(usage.completions),
                ])
                .map_err(&fail)?;
            }
        }
        tx.commit().map_err(&fail)?;
        Ok(outcome)
    }

    fn usage(
        &mut self,
        publisher: PublisherId,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let fail = failure(&self.path);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT u.release_id, u.day, u.peer_bytes, u.origin_bytes, u.unattributed_bytes,
                        u.uploaded_bytes, u.flagged_bytes, u.completions,
                        u.pruned_peers + (SELECT COUNT(*) FROM day_peers d
                         WHERE d.release_id = u.release_id AND d.day = u.day)
                 FROM usage_daily u JOIN releases r ON r.id = u.release_id
                 WHERE r.publisher_id = ?1 AND u.day BETWEEN ?2 AND ?3
                 ORDER BY u.day, u.release_id",
            )
            .map_err(&fail)?;
        let rows = statement
            .query_map(params![publisher, from_day, to_day], |row| {
                Ok(UsageRow {
                    release: row.get(0)?,
                    day: row.get(1)?,
                    usage: UsageDelta {
                        peer_bytes: from_column(row.get(2)?),
                        origin_bytes: from_column(row.get(3)?),
                        unattributed_bytes: from_column(row.get(4)?),
                        uploaded_bytes: from_column(row.get(5)?),
                        flagged_bytes: from_column(row.get(6)?),
                        completions: from_column(row.get(7)?),
                    },
                    distinct_peers: from_column(row.get(8)?),
                })
            })
            .map_err(&fail)?;
        rows.collect::<rusqlite::Result<_>>().map_err(&fail)
    }

    fn prune(&mut self, before_unix: i64) -> Result<u64, StoreError> {
        let fail = failure(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&fail)?;
        let mut deleted = 0;
        for sql in schema::prune_statements(before_unix) {
            let changed = tx.execute(&sql, []).map_err(&fail)?;
            if sql.starts_with("DELETE") {
                deleted += changed;
            }
        }
        tx.commit().map_err(&fail)?;
        Ok(deleted as u64)
    }

    fn publish_peers(&mut self, _instance: &str, _peers: &[SharedPeer]) -> Result<(), StoreError> {
        Ok(())
    }

    fn peers_from_others(
        &mut self,
        _instance: &str,
        _since_ms: i64,
    ) -> Result<Vec<SharedPeer>, StoreError> {
        Ok(Vec::new())
    }

    fn expire_peers(&mut self, _before_ms: i64) -> Result<(), StoreError> {
        Ok(())
    }
}
