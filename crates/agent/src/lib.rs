//! The shoal agent: a background daemon on the customer's machine that
//! downloads and seeds releases through one [`engine::Engine`], keeps its
//! list of releases in a state folder so a restart resumes them all, and
//! takes orders over a local HTTP API (`/v1/...`) on a loopback address
//! only, guarded against web pages and other local accounts: loopback
//! `Host` only (DNS rebinding) and a per-install token for every endpoint
//! but the web UI's files, a page's hand-off and its stream. A hand-off
//! starts moving bytes only once the browser opens the stream as a
//! download (`handoff/`, `offer.rs`); see docs/architecture.md.

mod api;
mod daemon;
mod error;
mod guard;
pub mod handoff;
mod lifecycle;
mod lock;
mod offer;
pub mod quota;
mod release;
mod releases;
mod runner;
mod server;
pub mod settings;
pub mod source;
pub mod state;
pub mod stream;
pub mod token;
pub mod update;

pub use daemon::{ui_link, Daemon};
pub use error::AgentError;
pub use releases::{Phase, ReleaseView, SettingsUpdate};
pub use settings::{default_config_path, AgentSettings, SettingsError};
