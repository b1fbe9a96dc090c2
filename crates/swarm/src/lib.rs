//! The swarm as a sans-IO state machine (docs/architecture.md).
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
mod origin_share;
mod peer;
mod peer_state;
pub mod picker;
pub mod rate;
mod reveal;
mod settings;
mod smart_ban;
mod swarm;

pub use action::{Action, DisconnectReason, Outgoing};
pub use bitfield::Bitfield;
pub use origin_share::origin_share_id;
pub use peer::{PeerCaps, PeerKey, ORIGIN};
pub use peer_state::PeerState;
pub use settings::SwarmSettings;
pub use swarm::{ProtocolViolation, Swarm, SwarmStats};
