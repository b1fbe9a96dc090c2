//! The one place that decides whether a swarm may exist on this tracker.
//!
//! Today every info-hash is admitted. A later issue plugs in the registry of
//! signed releases: only info-hashes whose manifest a registered publisher
//! signed will be tracked, so content is never free-floating (DESIGN.md
//! §Trust chain). The announce and scrape handlers call this before they
//! touch the peer store.

/// Why a swarm was refused; shown to the client as the `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Decides which info-hashes the tracker serves. Called on every announce,
/// so an implementation answers from memory (a registry keeps its admitted
/// set cached) rather than doing I/O per request.
pub trait SwarmAdmission: Send + Sync + 'static {
    fn admit(&self, info_hash: &[u8; 20]) -> Result<(), Refusal>;
}

/// Admits every info-hash: an open tracker, until the registry exists.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdmitAll;

impl SwarmAdmission for AdmitAll {
    fn admit(&self, _info_hash: &[u8; 20]) -> Result<(), Refusal> {
        Ok(())
    }
}
