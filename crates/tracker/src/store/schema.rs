//! The database schema as numbered migration steps, one list per backend.
//!
//! Step `n` (1-based) of a list moves a database from version `n - 1` to
//! `n`; the `schema_version` table holds one row per applied step. A new
//! release of shoal-tracker only ever appends steps, so an older binary
//! meeting a newer database refuses to touch it
//! ([`StoreError::SchemaTooNew`]) instead of guessing.
//!
//! The two lists describe the same tables and differ only where the SQL
//! dialects do (identity columns, BLOB vs BYTEA, booleans). Everything a
//! shoal instance compares or sums is an integer: times in unix seconds
//! (`*_unix`) or milliseconds (`*_ms`), days since 1970-01-01, byte counts
//! as 64-bit integers.
//!
//! The hot accounting tables (`sessions`, `day_peers`) carry no foreign
//! key: every report names a release the tracker admitted, releases are
//! never deleted, and a per-row check would cost a lookup for each of the
//! hundred thousand rows a batch may write.

use super::{NewRelease, PublisherId, ReleaseId, StoreError};

/// Creates the version table; run before reading the version.
pub(crate) const VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_unix BIGINT NOT NULL)";

/// The highest applied step, 0 for an empty database.
pub(crate) const CURRENT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM schema_version";

/// SQLite: step `i` is `SQLITE[i - 1]`.
pub(crate) const SQLITE: &[&str] = &[
    // 1: publishers, releases, accounting, shared peers.
    "CREATE TABLE publishers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        key BLOB NOT NULL CHECK (length(key) = 32),
        token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
        created_unix INTEGER NOT NULL
    );
    CREATE TABLE releases (
        id INTEGER PRIMARY KEY,
        publisher_id INTEGER NOT NULL REFERENCES publishers(id),
        name TEXT NOT NULL,
        swarm BLOB NOT NULL UNIQUE CHECK (length(swarm) = 20),
        alias BLOB UNIQUE CHECK (alias IS NULL OR length(alias) = 20),
        size INTEGER NOT NULL,
        torrent BLOB NOT NULL,
        registered_unix INTEGER NOT NULL,
        withdrawn_unix INTEGER
    );
    CREATE INDEX releases_by_publisher ON releases (publisher_id);
    CREATE TABLE sessions (
        release_id INTEGER NOT NULL,
        peer_id BLOB NOT NULL,
        uploaded INTEGER NOT NULL,
        downloaded INTEGER NOT NULL,
        origin INTEGER NOT NULL,
        reported_unix INTEGER NOT NULL,
        completed INTEGER NOT NULL,
        PRIMARY KEY (release_id, peer_id)
    ) WITHOUT ROWID;
    CREATE TABLE usage_daily (
        release_id INTEGER NOT NULL REFERENCES releases(id),
        day INTEGER NOT NULL,
        peer_bytes INTEGER NOT NULL,
        origin_bytes INTEGER NOT NULL,
        unattributed_bytes INTEGER NOT NULL,
        uploaded_bytes INTEGER NOT NULL,
        flagged_bytes INTEGER NOT NULL,
        completions INTEGER NOT NULL,
        PRIMARY KEY (release_id, day)
    );
    CREATE TABLE day_peers (
        release_id INTEGER NOT NULL,
        day INTEGER NOT NULL,
        peer_id BLOB NOT NULL,
        PRIMARY KEY (release_id, day, peer_id)
    ) WITHOUT ROWID;
    CREATE TABLE shared_peers (
        swarm BLOB NOT NULL,
        peer_id BLOB NOT NULL,
        instance TEXT NOT NULL,
        ip TEXT NOT NULL,
        port INTEGER NOT NULL,
        left_bytes INTEGER NOT NULL,
        seen_ms INTEGER NOT NULL,
        stopped INTEGER NOT NULL,
        PRIMARY KEY (swarm, peer_id)
    );
    CREATE INDEX shared_peers_by_seen ON shared_peers (seen_ms);",
    // 2: completions per (IP, release, day); peer counts kept when the
    // day's peer list is pruned; an index for pruning old sessions; and
    // the repair of counters an overflowing sum turned into REAL values
    // (shoal-tracker before saturating sums).
    "CREATE TABLE day_completions (
        release_id INTEGER NOT NULL,
        day INTEGER NOT NULL,
        client BLOB NOT NULL CHECK (length(client) = 16),
        count INTEGER NOT NULL,
        PRIMARY KEY (release_id, day, client)
    ) WITHOUT ROWID;
    ALTER TABLE usage_daily ADD COLUMN pruned_peers INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX sessions_by_reported ON sessions (reported_unix);
    UPDATE usage_daily SET
        peer_bytes = CASE WHEN typeof(peer_bytes) = 'integer' THEN peer_bytes ELSE 9223372036854775807 END,
        origin_bytes = CASE WHEN typeof(origin_bytes) = 'integer' THEN origin_bytes ELSE 9223372036854775807 END,
        unattributed_bytes = CASE WHEN typeof(unattributed_bytes) = 'integer' THEN unattributed_bytes ELSE 9223372036854775807 END,
        uploaded_bytes = CASE WHEN typeof(uploaded_bytes) = 'integer' THEN uploaded_bytes ELSE 9223372036854775807 END,
        flagged_bytes = CASE WHEN typeof(flagged_bytes) = 'integer' THEN flagged_bytes ELSE 9223372036854775807 END,
        completions = CASE WHEN typeof(completions) = 'integer' THEN completions ELSE 9223372036854775807 END;",
];

/// PostgreSQL: step `i` is `POSTGRES[i - 1]`.
pub(crate) const POSTGRES: &[&str] = &[
    // 1: publishers, releases, accounting, shared peers.
    "CREATE TABLE publishers (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        key BYTEA NOT NULL CHECK (length(key) = 32),
        token_hash BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
        created_unix BIGINT NOT NULL
    );
    CREATE TABLE releases (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        publisher_id BIGINT NOT NULL REFERENCES publishers(id),
        name TEXT NOT NULL,
        swarm BYTEA NOT NULL UNIQUE CHECK (length(swarm) = 20),
        alias BYTEA UNIQUE CHECK (alias IS NULL OR length(alias) = 20),
        size BIGINT NOT NULL,
        torrent BYTEA NOT NULL,
        registered_unix BIGINT NOT NULL,
        withdrawn_unix BIGINT
    );
    CREATE INDEX releases_by_publisher ON releases (publisher_id);
    CREATE TABLE sessions (
        release_id BIGINT NOT NULL,
        peer_id BYTEA NOT NULL,
        uploaded BIGINT NOT NULL,
        downloaded BIGINT NOT NULL,
        origin BIGINT NOT NULL,
        reported_unix BIGINT NOT NULL,
        completed BOOLEAN NOT NULL,
        PRIMARY KEY (release_id, peer_id)
    );
    CREATE TABLE usage_daily (
        release_id BIGINT NOT NULL REFERENCES releases(id),
        day BIGINT NOT NULL,
        peer_bytes BIGINT NOT NULL,
        origin_bytes BIGINT NOT NULL,
        unattributed_bytes BIGINT NOT NULL,
        uploaded_bytes BIGINT NOT NULL,
        flagged_bytes BIGINT NOT NULL,
        completions BIGINT NOT NULL,
        PRIMARY KEY (release_id, day)
    );
    CREATE TABLE day_peers (
        release_id BIGINT NOT NULL,
        day BIGINT NOT NULL,
        peer_id BYTEA NOT NULL,
        PRIMARY KEY (release_id, day, peer_id)
    );
    CREATE TABLE shared_peers (
        swarm BYTEA NOT NULL,
        peer_id BYTEA NOT NULL,
        instance TEXT NOT NULL,
        ip TEXT NOT NULL,
        port INTEGER NOT NULL,
        left_bytes BIGINT NOT NULL,
        seen_ms BIGINT NOT NULL,
        stopped BOOLEAN NOT NULL,
        PRIMARY KEY (swarm, peer_id)
    );
    CREATE INDEX shared_peers_by_seen ON shared_peers (seen_ms);",
    // 2: as SQLite step 2 (PostgreSQL refused the overflowing sums, so
    // there is nothing to repair).
    "CREATE TABLE day_completions (
        release_id BIGINT NOT NULL,
        day BIGINT NOT NULL,
        client BYTEA NOT NULL CHECK (length(client) = 16),
        count BIGINT NOT NULL,
        PRIMARY KEY (release_id, day, client)
    );
    ALTER TABLE usage_daily ADD COLUMN pruned_peers BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX sessions_by_reported ON sessions (reported_unix);",
];

/// Adds a day's usage to its row without ever overflowing: each column
/// saturates at i64::MAX. The same text is valid SQLite and PostgreSQL
/// (`excluded` is case-insensitive; stored and added values are never
/// negative, so the subtraction cannot overflow).
pub(crate) const ADD_USAGE_ON_CONFLICT: &str = "ON CONFLICT (release_id, day) DO UPDATE SET
       peer_bytes = CASE WHEN usage_daily.peer_bytes > 9223372036854775807 - excluded.peer_bytes
         THEN 9223372036854775807 ELSE usage_daily.peer_bytes + excluded.peer_bytes END,
       origin_bytes = CASE WHEN usage_daily.origin_bytes > 9223372036854775807 - excluded.origin_bytes
         THEN 9223372036854775807 ELSE usage_daily.origin_bytes + excluded.origin_bytes END,
       unattributed_bytes = CASE WHEN usage_daily.unattributed_bytes > 9223372036854775807 - excluded.unattributed_bytes
         THEN 9223372036854775807 ELSE usage_daily.unattributed_bytes + excluded.unattributed_bytes END,
       uploaded_bytes = CASE WHEN usage_daily.uploaded_bytes > 9223372036854775807 - excluded.uploaded_bytes
         THEN 9223372036854775807 ELSE usage_daily.uploaded_bytes + excluded.uploaded_bytes END,
       flagged_bytes = CASE WHEN usage_daily.flagged_bytes > 9223372036854775807 - excluded.flagged_bytes
         THEN 9223372036854775807 ELSE usage_daily.flagged_bytes + excluded.flagged_bytes END,
       completions = CASE WHEN usage_daily.completions > 9223372036854775807 - excluded.completions
         THEN 9223372036854775807 ELSE usage_daily.completions + excluded.completions END";

/// Counts one completion of a client for a release and day, unless the
/// client already has `$4` of them; the row comes back only when counted.
/// Valid in both dialects with `?N` (SQLite) or `$N` (PostgreSQL).
pub(crate) fn count_completion_sql(placeholder: char) -> String {
    let p = |n: u8| format!("{placeholder}{n}");
    format!(
        "INSERT INTO day_completions (release_id, day, client, count) VALUES ({}, {}, {}, 1)
         ON CONFLICT (release_id, day, client) DO UPDATE SET count = day_completions.count + 1
         WHERE day_completions.count < {}
         RETURNING count",
        p(1),
        p(2),
        p(3),
        p(4)
    )
}

/// The statements, run in order in one transaction, that prune what a
/// retention starting at `before_unix` no longer needs. The bounds are
/// integers this process computed, written into the text (no dialect's
/// placeholders needed). Valid in both dialects.
pub(crate) fn prune_statements(before_unix: i64) -> Vec<String> {
    let first_day = crate::accounting::day_of(before_unix).to_string();
    let before = before_unix.to_string();
    PRUNE
        .iter()
        .map(|sql| sql.replace("{D}", &first_day).replace("{T}", &before))
        .collect()
}

/// `{D}`: the first day kept; `{T}`: the oldest session report kept.
const PRUNE: [&str; 4] = [
    "UPDATE usage_daily SET pruned_peers = pruned_peers
       + (SELECT COUNT(*) FROM day_peers d WHERE d.release_id = usage_daily.release_id AND d.day = usage_daily.day)
     WHERE day < {D} AND EXISTS
       (SELECT 1 FROM day_peers d WHERE d.release_id = usage_daily.release_id AND d.day = usage_daily.day)",
    "DELETE FROM day_peers WHERE day < {D}",
    "DELETE FROM day_completions WHERE day < {D}",
    "DELETE FROM sessions WHERE reported_unix < {T}",
];

/// The steps a database at version `found` still needs, numbered from
/// `found + 1`; refuses a database newer than `steps` knows.
pub(crate) fn pending_steps(
    found: i64,
    steps: &'static [&'static str],
) -> Result<impl Iterator<Item = (i64, &'static str)>, StoreError> {
    let known = known_version(steps);
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    let applied = usize::try_from(found).unwrap_or(0);
    Ok(steps
        .iter()
        .enumerate()
        .skip(applied)
        .map(|(index, sql)| (step_number(index), *sql)))
}

/// The version a database has once every step in `steps` ran.
pub(crate) fn known_version(steps: &[&str]) -> i64 {
    i64::try_from(steps.len()).unwrap_or(i64::MAX)
}

fn step_number(index: usize) -> i64 {
    i64::try_from(index).map_or(i64::MAX, |i| i + 1)
}

/// A byte count or size as a 64-bit signed column. Nothing shoal counts
/// comes near 2^63 bytes; saturating keeps a hostile report from wrapping
/// into a negative total.
pub(crate) fn to_column(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The inverse of [`to_column`]; a negative value (never written by
/// shoal) reads as zero.
pub(crate) fn from_column(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// What registering a release finds among the releases already holding
/// its swarm or alias (as either column): every announce key must name
/// exactly one release.
#[derive(Debug)]
pub(crate) enum ReleaseSlot {
    /// Nobody holds the keys: insert.
    Free,
    /// The same publisher registered the same swarm before: reuse (and
    /// restore) that release.
    Ours(ReleaseId),
    Taken(StoreError),
}

/// Decides [`ReleaseSlot`] from the `(id, publisher, swarm)` of each
/// release whose swarm or alias equals the new swarm or alias.
pub(crate) fn claim_release(
    release: &NewRelease,
    holders: &[(ReleaseId, PublisherId, [u8; 20])],
) -> ReleaseSlot {
    match holders {
        [] => ReleaseSlot::Free,
        [(id, publisher, swarm)] if *publisher == release.publisher && *swarm == release.swarm => {
            ReleaseSlot::Ours(*id)
        }
        _ if holders.iter().any(|(_, publisher, _)| *publisher != release.publisher) => {
            ReleaseSlot::Taken(StoreError::Conflict(
                "this info-hash is already registered by another publisher".into(),
            ))
        }
        _ => ReleaseSlot::Taken(StoreError::Conflict(
            "this info-hash is already registered as another of your releases; withdraw that one first"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_database_gets_every_step_in_order() {
        let steps: Vec<_> = pending_steps(0, POSTGRES).expect("fresh").collect();
        assert_eq!(steps.len(), POSTGRES.len());
        assert_eq!(steps[0].0, 1);
    }

    #[test]
    fn an_up_to_date_database_gets_nothing() {
        let known = known_version(SQLITE);
        assert_eq!(pending_steps(known, SQLITE).expect("current").count(), 0);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let known = known_version(SQLITE);
        let refused = pending_steps(known + 1, SQLITE).err();
        assert!(matches!(
            refused,
            Some(StoreError::SchemaTooNew { found, known: k }) if found == known + 1 && k == known
        ));
    }

    #[test]
    fn both_backends_know_the_same_version() {
        assert_eq!(known_version(SQLITE), known_version(POSTGRES));
    }
}
