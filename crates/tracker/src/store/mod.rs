//! Durable state behind one trait, two backends: publishers, releases,
//! accounting, and — for instances sharing PostgreSQL — the peers other
//! instances have seen.
//!
//! The trait is synchronous on purpose: SQLite is a blocking library and
//! the accounting writes are batched, so the tracker owns one store on a
//! blocking thread (`tokio::task::spawn_blocking`) and nothing on the
//! announce path waits for it. Announces are answered from memory.
//!
//! `backend` holds the trait and what it returns; this module picks a
//! backend for a URL. Times are unix seconds (`i64`); days are days since 1970-01-01 (UTC),
//! so both backends store plain integers and agree on day boundaries.

mod backend;
mod postgres;
mod schema;
mod sqlite;

pub use self::backend::{
    BatchOutcome, Ceilings, NewRelease, Publisher, Release, SharedPeer, Store, StoreError, UsageRow,
};
pub use self::postgres::PostgresStore;
pub use self::sqlite::SqliteStore;
pub use crate::ids::{PublisherId, ReleaseId};

use crate::accounting::SessionReport;

/// Opens (creating and migrating if needed) the database a `--db` URL
/// names: `sqlite://PATH` or `postgres://…` / `postgresql://…`.
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return Ok(Box::new(SqliteStore::open(std::path::Path::new(path))?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(PostgresStore::connect(url)?));
    }
    Err(StoreError::BadUrl(url.to_owned()))
}

/// What a tracker holds after closing its database: every call fails.
#[derive(Debug)]
pub(crate) struct Closed;

impl Closed {
    fn error<T>() -> Result<T, StoreError> {
        Err(StoreError::Backend("the database is closed".into()))
    }
}

impl Store for Closed {
    fn backend(&self) -> &'static str {
        "closed"
    }
    fn shares_peers(&self) -> bool {
        false
    }
    fn add_publisher(
        &mut self,
        _: &str,
        _: &[u8; 32],
        _: &[u8; 32],
        _: i64,
    ) -> Result<PublisherId, StoreError> {
        Closed::error()
    }
    fn publishers(&mut self) -> Result<Vec<Publisher>, StoreError> {
        Closed::error()
    }
    fn publisher_by_token(&mut self, _: &[u8; 32]) -> Result<Option<Publisher>, StoreError> {
        Closed::error()
    }
    fn add_release(&mut self, _: &NewRelease) -> Result<ReleaseId, StoreError> {
        Closed::error()
    }
    fn withdraw_release(
        &mut self,
        _: PublisherId,
        _: &[u8; 20],
        _: i64,
    ) -> Result<bool, StoreError> {
        Closed::error()
    }
    fn releases(&mut self) -> Result<Vec<Release>, StoreError> {
        Closed::error()
    }
    fn apply_batch(
        &mut self,
        _: &[SessionReport],
        _: &Ceilings,
    ) -> Result<BatchOutcome, StoreError> {
        Closed::error()
    }
    fn prune(&mut self, _: i64) -> Result<u64, StoreError> {
        Closed::error()
    }
    fn usage(&mut self, _: PublisherId, _: i64, _: i64) -> Result<Vec<UsageRow>, StoreError> {
        Closed::error()
    }
    fn publish_peers(&mut self, _: &str, _: &[SharedPeer]) -> Result<(), StoreError> {
        Closed::error()
    }
    fn peers_from_others(&mut self, _: &str, _: i64) -> Result<Vec<SharedPeer>, StoreError> {
        Closed::error()
    }
    fn expire_peers(&mut self, _: i64) -> Result<(), StoreError> {
        Closed::error()
    }
}
