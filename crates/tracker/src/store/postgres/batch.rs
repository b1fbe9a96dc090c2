//! One accounting batch in PostgreSQL, safe against other instances
//! applying batches for the same sessions at the same time.
//!
//! Sessions are handled in (release, peer id) order, in rounds:
//!
//! 1. lock the stored rows of the sessions (`SELECT … FOR UPDATE`, in key
//!    order); under READ COMMITTED a row another instance is updating is
//!    returned with that instance's committed totals once it is done;
//! 2. run [`session_delta`] over each session's reports;
//! 3. update the rows that existed; insert the others with
//!    `ON CONFLICT DO NOTHING`, which waits for another instance's
//!    uncommitted insert of the same key and then skips it;
//! 4. a session skipped that way now exists, committed: it goes round
//!    again, from step 1, so its growth is measured against those totals.
//!
//! Before the rounds, one unlocked read drops the sessions whose reports
//! change nothing ([`changes_anything`]): re-announces with the same
//! totals are most of a full swarm's traffic, and locking their rows
//! (a write in PostgreSQL) would make a batch cost follow the swarm's
//! size. Skipping is safe without the lock: a report with no growth over
//! what was read has none over anything written since, and it credits
//! nothing.
//!
//! Whole columns travel as arrays (`UNNEST`), so a round is four
//! statements whatever the batch size, and the usage sums and day-peer
//! rows are written once at the end. Completions (rare: one per download)
//! are counted one statement each against the client's daily allowance.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use postgres::types::ToSql;
use postgres::Transaction;

use super::super::schema::{self, from_column, to_column};
use super::super::{BatchOutcome, Ceilings, ReleaseId};
use crate::accounting::{
    changes_anything, day_of, session_delta, SessionReport, SessionState, UsageDelta,
};

/// A session as (release, peer id): also the lock order.
type SessionKey = (ReleaseId, [u8; 20]);

/// One session's reports in this batch, in the order they were given.
struct Session<'a> {
    key: SessionKey,
    reports: Vec<&'a SessionReport>,
}

/// A session's new totals and what its reports added, by day, with the
/// client each report came from.
struct Computed {
    state: SessionState,
    by_day: Vec<(i64, [u8; 16], UsageDelta)>,
}

/// What the batch adds, summed until the end of the transaction.
#[derive(Default)]
struct Tally {
    by_day: BTreeMap<(ReleaseId, i64), UsageDelta>,
    day_peers: BTreeSet<(ReleaseId, i64, [u8; 20])>,
    /// Completions to check against each client's allowance, in order.
    completions: Vec<(ReleaseId, i64, [u8; 16])>,
    added: UsageDelta,
}

impl Tally {
    fn count(&mut self, key: SessionKey, computed: &Computed) {
        for (day, client, usage) in &computed.by_day {
            let mut usage = *usage;
            for _ in 0..usage.completions {
                self.completions.push((key.0, *day, *client));
            }
            usage.completions = 0;
            self.by_day.entry((key.0, *day)).or_default().add(&usage);
            self.day_peers.insert((key.0, *day, key.1));
            self.added.add(&usage);
        }
    }

    /// Counts each pending completion the client's allowance still has
    /// room for; returns how many were refused.
    fn count_completions(
        &mut self,
        tx: &mut Transaction<'_>,
        per_ip_per_day: u32,
    ) -> Result<u64, postgres::Error> {
        let mut refused = 0;
        if self.completions.is_empty() {
            return Ok(0);
        }
        let statement = tx.prepare(&schema::count_completion_sql('$'))?;
        let limit = i64::from(per_ip_per_day);
        for (release, day, client) in std::mem::take(&mut self.completions) {
            let counted = tx
                .query_opt(&statement, &[&release, &day, &client.as_slice(), &limit])?
                .is_some();
            if counted {
                let one = UsageDelta {
                    completions: 1,
                    ..UsageDelta::default()
                };
                self.by_day.entry((release, day)).or_default().add(&one);
                self.added.add(&one);
            } else {
                refused += 1;
            }
        }
        Ok(refused)
    }
}

/// Applies `reports` inside `tx`; the caller commits.
pub(super) fn apply(
    tx: &mut Transaction<'_>,
    reports: &[SessionReport],
    ceilings: &Ceilings,
) -> Result<BatchOutcome, postgres::Error> {
    let max_rate = ceilings.max_rate;
    let sessions = group_by_session(reports);
    let mut tally = Tally::default();
    let all_keys: Vec<SessionKey> = sessions.iter().map(|s| s.key).collect();
    let peeked = read_stored(tx, &all_keys, false)?;
    let mut pending: Vec<&Session<'_>> = sessions
        .iter()
        .filter(|session| match peeked.get(&session.key) {
            Some(stored) => session
                .reports
                .iter()
                .any(|report| changes_anything(stored, report, max_rate)),
            None => true,
        })
        .collect();
    while !pending.is_empty() {
        let keys: Vec<SessionKey> = pending.iter().map(|s| s.key).collect();
        let stored = read_stored(tx, &keys, true)?;
        let mut known = Vec::new();
        let mut new = Vec::new();
        for session in pending {
            let before = stored.get(&session.key);
            let computed = compute(before, &session.reports, max_rate);
            if before.is_some() {
                known.push((session, computed));
            } else {
                new.push((session, computed));
            }
        }
        update_known(tx, &known)?;
        for (session, computed) in &known {
            tally.count(session.key, computed);
        }
        let inserted = insert_new(tx, &new)?;
        pending = Vec::new();
        for (session, computed) in &new {
            if inserted.contains(&session.key) {
                tally.count(session.key, computed);
            } else {
                pending.push(session);
            }
        }
    }
    let completions_refused = tally.count_completions(tx, ceilings.completions_per_ip_per_day)?;
    add_usage(tx, &tally.by_day)?;
    record_day_peers(tx, &tally.day_peers)?;
    Ok(BatchOutcome {
        sessions: reports.len(),
        added: tally.added,
        completions_refused,
    })
}

/// Reports grouped per session, sessions in key order; a stable sort keeps
/// each session's reports in the order given.
fn group_by_session(reports: &[SessionReport]) -> Vec<Session<'_>> {
    let mut sorted: Vec<&SessionReport> = reports.iter().collect();
    sorted.sort_by_key(|r| (r.release, r.session));
    sorted
        .chunk_by(|a, b| (a.release, a.session) == (b.release, b.session))
        .map(|reports| Session {
            key: (reports[0].release, reports[0].session),
            reports: reports.to_vec(),
        })
        .collect()
}

fn compute(before: Option<&SessionState>, reports: &[&SessionReport], max_rate: u64) -> Computed {
    let mut state = before.copied();
    let mut by_day = Vec::with_capacity(reports.len());
    for report in reports {
        let (next, usage) = session_delta(state.as_ref(), report, max_rate);
        state = Some(next);
        by_day.push((day_of(report.at_unix), report.client, usage));
    }
    Computed {
        state: state.unwrap_or_default(),
        by_day,
    }
}

/// Reads the stored rows among `keys` (sorted, distinct); with `lock`,
/// locks them until the transaction ends, in key order.
fn read_stored(
    tx: &mut Transaction<'_>,
    keys: &[SessionKey],
    lock: bool,
) -> Result<HashMap<SessionKey, SessionState>, postgres::Error> {
    let releases: Vec<i64> = keys.iter().map(|(release, _)| *release).collect();
    let peers: Vec<&[u8]> = keys.iter().map(|(_, peer)| peer.as_slice()).collect();
    let sql = format!(
        "SELECT s.release_id, s.peer_id, s.uploaded, s.downloaded, s.origin,
                s.reported_unix, s.completed
         FROM sessions s
         JOIN UNNEST($1::BIGINT[], $2::BYTEA[]) AS k(release_id, peer_id)
           ON s.release_id = k.release_id AND s.peer_id = k.peer_id
         ORDER BY s.release_id, s.peer_id{}",
        if lock { " FOR UPDATE OF s" } else { "" }
    );
    let rows = tx.query(sql.as_str(), &[&releases, &peers])?;
    let mut stored = HashMap::with_capacity(rows.len());
    for row in &rows {
        // Only 20-byte ids are ever written; anything else is not ours.
        let Ok(peer) = <[u8; 20]>::try_from(row.get::<_, &[u8]>(1)) else {
            continue;
        };
        let state = SessionState {
            uploaded: from_column(row.get(2)),
            downloaded: from_column(row.get(3)),
            origin: from_column(row.get(4)),
            reported_unix: row.get(5),
            completed: row.get(6),
        };
        stored.insert((row.get(0), peer), state);
    }
    Ok(stored)
}

/// The session columns of `sessions`, as arrays for `UNNEST`.
struct SessionColumns<'a> {
    releases: Vec<i64>,
    peers: Vec<&'a [u8]>,
    uploaded: Vec<i64>,
    downloaded: Vec<i64>,
    origin: Vec<i64>,
    reported: Vec<i64>,
    completed: Vec<bool>,
}

impl<'a> SessionColumns<'a> {
    fn of(sessions: &'a [(&Session<'_>, Computed)]) -> Self {
        let n = sessions.len();
        let mut columns = SessionColumns {
            releases: Vec::with_capacity(n),
            peers: Vec::with_capacity(n),
            uploaded: Vec::with_capacity(n),
            downloaded: Vec::with_capacity(n),
            origin: Vec::with_capacity(n),
            reported: Vec::with_capacity(n),
            completed: Vec::with_capacity(n),
        };
        for (session, computed) in sessions {
            let state = &computed.state;
            columns.releases.push(session.key.0);
            columns.peers.push(session.key.1.as_slice());
            columns.uploaded.push(to_column(state.uploaded));
            columns.downloaded.push(to_column(state.downloaded));
            columns.origin.push(to_column(state.origin));
            columns.reported.push(state.reported_unix);
            columns.completed.push(state.completed);
        }
        columns
    }

    /// The columns as `$1` to `$7`, in the order every statement on the
    /// sessions table lists them.
    fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.releases,
            &self.peers,
            &self.uploaded,
            &self.downloaded,
            &self.origin,
            &self.reported,
            &self.completed,
        ]
    }
}

fn update_known(
    tx: &mut Transaction<'_>,
    known: &[(&Session<'_>, Computed)],
) -> Result<(), postgres::Error> {
    if known.is_empty() {
        return Ok(());
    }
    let c = SessionColumns::of(known);
    tx.execute(
        "UPDATE sessions s SET
           uploaded = u.uploaded, downloaded = u.downloaded, origin = u.origin,
           reported_unix = u.reported_unix, completed = u.completed
         FROM UNNEST($1::BIGINT[], $2::BYTEA[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[],
                     $6::BIGINT[], $7::BOOLEAN[])
           AS u(release_id, peer_id, uploaded, downloaded, origin, reported_unix, completed)
         WHERE s.release_id = u.release_id AND s.peer_id = u.peer_id",
        &c.params(),
    )?;
    Ok(())
}

/// Inserts the sessions seen for the first time; returns the keys that
/// were inserted (the others were inserted meanwhile by another instance).
fn insert_new(
    tx: &mut Transaction<'_>,
    new: &[(&Session<'_>, Computed)],
) -> Result<HashSet<SessionKey>, postgres::Error> {
    if new.is_empty() {
        return Ok(HashSet::new());
    }
    let c = SessionColumns::of(new);
    let rows = tx.query(
        "INSERT INTO sessions
         (release_id, peer_id, uploaded, downloaded, origin, reported_unix, completed)
         SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[], $3::BIGINT[], $4::BIGINT[],
                              $5::BIGINT[], $6::BIGINT[], $7::BOOLEAN[])
         ON CONFLICT (release_id, peer_id) DO NOTHING
         RETURNING release_id, peer_id",
        &c.params(),
    )?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let peer = <[u8; 20]>::try_from(row.get::<_, &[u8]>(1)).ok()?;
            Some((row.get(0), peer))
        })
        .collect())
}

/// Adds each (release, day)'s sum, in key order like the session locks.
fn add_usage(
    tx: &mut Transaction<'_>,
    by_day: &BTreeMap<(ReleaseId, i64), UsageDelta>,
) -> Result<(), postgres::Error> {
    let column = |field: fn(&UsageDelta) -> u64| -> Vec<i64> {
        by_day.values().map(|u| to_column(field(u))).collect()
    };
    let releases: Vec<i64> = by_day.keys().map(|(release, _)| *release).collect();
    let days: Vec<i64> = by_day.keys().map(|(_, day)| *day).collect();
    let sql = "INSERT INTO usage_daily
         (release_id, day, peer_bytes, origin_bytes, unattributed_bytes,
          uploaded_bytes, flagged_bytes, completions)
         SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[],
                              $5::BIGINT[], $6::BIGINT[], $7::BIGINT[], $8::BIGINT[]) "
        .to_owned()
        + schema::ADD_USAGE_ON_CONFLICT;
    tx.execute(
        sql.as_str(),
        &[
            &releases,
            &days,
            &column(|u| u.peer_bytes),
            &column(|u| u.origin_bytes),
            &column(|u| u.unattributed_bytes),
            &column(|u| u.uploaded_bytes),
            &column(|u| u.flagged_bytes),
            &column(|u| u.completions),
        ],
    )?;
    Ok(())
}

fn record_day_peers(
    tx: &mut Transaction<'_>,
    day_peers: &BTreeSet<(ReleaseId, i64, [u8; 20])>,
) -> Result<(), postgres::Error> {
    let releases: Vec<i64> = day_peers.iter().map(|(release, _, _)| *release).collect();
    let days: Vec<i64> = day_peers.iter().map(|(_, day, _)| *day).collect();
    let peers: Vec<&[u8]> = day_peers
        .iter()
        .map(|(_, _, peer)| peer.as_slice())
        .collect();
    tx.execute(
        "INSERT INTO day_peers (release_id, day, peer_id)
         SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BYTEA[])
         ON CONFLICT DO NOTHING",
        &[&releases, &days, &peers],
    )?;
    Ok(())
}
