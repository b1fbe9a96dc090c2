//! Helpers shared by shoal's integration tests, so that each exists once:
//! starting real `shoal` processes and waiting for them to serve, a signed
//! release, a scratch tracker, PostgreSQL and web servers, raw and lying
//! peers, and deterministic release content.
//!
//! Dev-only: crates list it under `[dev-dependencies]` and never publish
//! it. A helper that only one test binary uses stays in that binary.
//!
//! Every wait has a deadline and every failure names what was running and
//! what it said, so a broken test fails with a reason instead of hanging.

// In test helpers a panic is the failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]

pub mod agent;
pub mod bins;
pub mod command;
pub mod content;
pub mod data;
pub mod http;
pub mod interop;
pub mod json;
pub mod layout;
#[cfg(target_os = "linux")]
pub mod netns;
// Both rely on Unix: SO_REUSEPORT, and running the server as `postgres`.
#[cfg(unix)]
pub mod lying_seed;
#[cfg(unix)]
pub mod pg;
pub mod process;
pub mod publisher_site;
pub mod release;
pub mod root;
pub mod runtime;
pub mod signed;
pub mod temp;
pub mod tracker;

pub use bins::{shoal, shoal_tracker};
pub use command::{run, run_json};
pub use data::{write_random_file, write_tree};
pub use json::field;
pub use process::{wait_until, Proc, Scene};

/// One mebibyte, the unit test releases are sized in.
pub const MIB: u64 = 1024 * 1024;
