//! The one place that decides whether a swarm may exist on this tracker.
//!
//! An open tracker ([`AdmitAll`]) serves every info-hash; with a database,
//! the [`Registry`](crate::registry::Registry) admits only releases a
//! registered publisher signed (docs/architecture.md, "The trust chain"). The announce and
//! scrape handlers call this before they touch the peer store.

use crate::store::{PublisherId, ReleaseId};

/// Why a swarm was refused; shown to the client as the `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Whose bytes an admitted swarm moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub publisher: PublisherId,
    pub release: ReleaseId,
}

/// An admitted announce: the swarm it joins, and who is billed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// The peer-store key. A hybrid release is announced under its v1 and
    /// its truncated v2 info-hash; both map to one swarm.
    pub swarm: [u8; 20],
    /// `None` on an open tracker: nothing is accounted.
    pub account: Option<Account>,
}

/// Decides which info-hashes the tracker serves. Called on every announce,
/// so an implementation answers from memory (the registry keeps its
/// admitted set cached) rather than doing I/O per request.
pub trait SwarmAdmission: Send + Sync + 'static {
    fn admit(&self, info_hash: &[u8; 20]) -> Result<Admitted, Refusal>;
}

/// Admits every info-hash: an open tracker (`shoal-tracker serve --open`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AdmitAll;

impl SwarmAdmission for AdmitAll {
    fn admit(&self, info_hash: &[u8; 20]) -> Result<Admitted, Refusal> {
        Ok(Admitted {
            swarm: *info_hash,
            account: None,
        })
    }
}
