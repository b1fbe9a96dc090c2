//! The swarm as a sans-IO state machine (DESIGN.md principle 5).
//!
//! A [`Swarm`] is one release's download and upload logic: which peers to
//! dial, what to request from whom ([`picker`]), whom to upload to
//! ([`choker`]), when a peer is too slow or lies. It performs no I/O and
//! reads no clock: the driver feeds it events with `handle_*(now, …)` and
//! carries out the [`Action`]s it returns from `poll_action`, and its
//! randomness comes from a seed. The same code runs in the tokio engine and
//! in a deterministic simulation with virtual time (`tests/sim`).

mod action;
pub mod bitfield;
mod book;
pub mod choker;
mod peer;
pub mod picker;
pub mod rate;
mod settings;
mod smart_ban;
mod swarm;

pub use action::{Action, DisconnectReason, Outgoing};
pub use bitfield::Bitfield;
pub use peer::PeerCaps;
pub use settings::SwarmSettings;
pub use swarm::{origin_share_id, ProtocolViolation, Swarm, SwarmStats, ORIGIN};

/// A connected peer, as the swarm and its driver call it. Never reused
/// within one swarm, so a stale key cannot reach a newer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub u32);
