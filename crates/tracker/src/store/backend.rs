//! The [`Store`] trait both backends implement, the records it takes and
//! returns, and its errors. The backends and the rest of the tracker
//! depend on this module; it depends on neither.

use std::net::SocketAddr;

use thiserror::Error;

use crate::accounting::{SessionReport, UsageDelta};
use crate::ids::{PublisherId, ReleaseId};

/// A publisher as the operator registered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    pub id: PublisherId,
    pub name: String,
    /// The ed25519 key its releases must be signed with.
    pub key: [u8; 32],
    pub created_unix: i64,
}

/// A release to register: a torrent whose signature was already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    pub publisher: PublisherId,
    pub name: String,
    /// The key peers announce with: the v1 info-hash when there is one,
    /// else the v2 info-hash truncated to 20 bytes.
    pub swarm: [u8; 20],
    /// For a hybrid release, the other announce key (the truncated v2
    /// info-hash): announces under it join the same swarm.
    pub alias: Option<[u8; 20]>,
    /// Total payload bytes.
    pub size: u64,
    /// The torrent file as uploaded.
    pub torrent: Vec<u8>,
    pub registered_unix: i64,
}

/// A registered release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub id: ReleaseId,
    pub publisher: PublisherId,
    pub name: String,
    pub swarm: [u8; 20],
    pub alias: Option<[u8; 20]>,
    pub size: u64,
    pub registered_unix: i64,
    /// Set once the publisher withdrew it: announces are refused.
    pub withdrawn_unix: Option<i64>,
}

/// One release's usage on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageRow {
    pub release: ReleaseId,
    pub day: i64,
    pub usage: UsageDelta,
    /// Distinct sessions (peer id, IP, key) that reported for this release
    /// on this day.
    pub distinct_peers: u64,
}

/// A peer as one tracker instance saw it, shared with the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPeer {
    pub swarm: [u8; 20],
    pub peer_id: [u8; 20],
    pub addr: SocketAddr,
    pub left: u64,
    /// When the instance last heard from the peer, unix milliseconds.
    pub seen_unix_ms: i64,
    /// The peer announced `stopped`: other instances drop it.
    pub stopped: bool,
}

/// What one accounting batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub sessions: usize,
    /// Sum of the usage the batch added (flagged bytes included in
    /// `flagged_bytes` only).
    pub added: UsageDelta,
    /// Completions not counted: the client's IP already had its allowance
    /// for that release and day.
    pub completions_refused: u64,
}

/// The physical and per-client bounds a batch applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceilings {
    /// Bytes/s one session can move (up + down); faster growth is flagged.
    pub max_rate: u64,
    /// Completions counted per client IP, release and UTC day.
    pub completions_per_ip_per_day: u32,
}

impl Ceilings {
    /// `max_rate` and one completion per IP, release and day.
    pub fn rate(max_rate: u64) -> Ceilings {
        Ceilings {
            max_rate,
            completions_per_ip_per_day: 1,
        }
    }
}

/// Why the store failed. Each message says what to check.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The `--db` value is not `sqlite://PATH` or `postgres://…`.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    #[error("cannot open database {url}: {reason}")]
    Open { url: String, reason: String },
    /// The database was written by a newer shoal-tracker.
    #[error("database schema version {found} is newer than this shoal-tracker knows ({known}); upgrade shoal-tracker")]
    SchemaTooNew { found: i64, known: i64 },
    /// A unique name or info-hash is already taken.
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Backend(String),
}

/// The operations the tracker needs from a database.
pub trait Store: Send + 'static {
    /// A short name for logs and metrics: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Whether peers are shared with other instances through this store.
    fn shares_peers(&self) -> bool;

    fn add_publisher(
        &mut self,
        name: &str,
        key: &[u8; 32],
        token_hash: &[u8; 32],
        now_unix: i64,
    ) -> Result<PublisherId, StoreError>;

    fn publishers(&mut self) -> Result<Vec<Publisher>, StoreError>;

    fn publisher_by_token(
        &mut self,
        token_hash: &[u8; 32],
    ) -> Result<Option<Publisher>, StoreError>;

    /// Registers a release. The same publisher registering the same swarm
    /// again gets the existing id back (a withdrawn release is restored);
    /// another publisher's swarm is a [`StoreError::Conflict`].
    fn add_release(&mut self, release: &NewRelease) -> Result<ReleaseId, StoreError>;

    /// Withdraws the publisher's release announced as `swarm` (or its
    /// alias). Returns false if the publisher has no such release.
    fn withdraw_release(
        &mut self,
        publisher: PublisherId,
        swarm: &[u8; 20],
        now_unix: i64,
    ) -> Result<bool, StoreError>;

    /// Every release, withdrawn ones included.
    fn releases(&mut self) -> Result<Vec<Release>, StoreError>;

    /// Applies one batch of session reports in one transaction: for each,
    /// reads the session's stored counters, computes the delta with
    /// [`crate::accounting::session_delta`], stores the new counters,
    /// counts a completion only within the client IP's allowance for the
    /// day, adds the delta (saturating) to the release's row for the
    /// report's day, and records the session for that day. Concurrent
    /// instances must not count a session twice (PostgreSQL: lock the
    /// session rows).
    fn apply_batch(
        &mut self,
        reports: &[SessionReport],
        ceilings: &Ceilings,
    ) -> Result<BatchOutcome, StoreError>;

    /// Deletes sessions last reported before `before_unix` and the per-day
    /// peer and completion lists of days before it (their peer counts are
    /// kept in the usage rows). Returns the rows deleted.
    fn prune(&mut self, before_unix: i64) -> Result<u64, StoreError>;

    /// Usage rows of the publisher's releases for days in `from..=to`.
    fn usage(
        &mut self,
        publisher: PublisherId,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<UsageRow>, StoreError>;

    /// Writes this instance's peers for the others (no-op without sharing).
    fn publish_peers(&mut self, instance: &str, peers: &[SharedPeer]) -> Result<(), StoreError>;

    /// Peers written by other instances with `seen_unix_ms > since_ms`
    /// (empty without sharing).
    fn peers_from_others(
        &mut self,
        instance: &str,
        since_ms: i64,
    ) -> Result<Vec<SharedPeer>, StoreError>;

    /// Forgets shared peers not seen since `before_ms`.
    fn expire_peers(&mut self, before_ms: i64) -> Result<(), StoreError>;
}
