//! What every adapter is given and answers: the seed's and downloader's
//! start parameters, the completion report and the adapter trait. Kept
//! apart from the list of adapters so that each adapter depends on this
//! and the list on the adapters, never round in a circle.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::Path;

/// Port every seed and peer listens on (each host has its own address).
pub const PEER_PORT: u16 = 6881;

/// What a seed (the `bt` origin) is started with.
#[derive(Debug)]
pub struct SeedSpec<'a> {
    pub torrent: &'a Path,
    /// Folder holding the release under its torrent name.
    pub data_dir: &'a Path,
    pub ip: Ipv4Addr,
    /// Publisher key (hex) the torrent is signed with.
    pub trust: &'a str,
    /// Upper bound on the process lifetime, seconds (a safety net).
    pub timeout_s: f64,
}

/// What a downloading peer is started with. It must keep sharing after it
/// completes, until SIGTERM: a flash crowd's finished peers keep uploading.
#[derive(Debug)]
pub struct LeechSpec<'a> {
    pub torrent: &'a Path,
    /// Empty folder; the release must appear in it under its torrent name.
    pub out_dir: &'a Path,
    pub ip: Ipv4Addr,
    pub trust: &'a str,
    pub timeout_s: f64,
}

/// What an implementation reports about itself on completion; the harness
/// measures time, bytes on the wire and correctness itself.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Completion {
    pub bytes_from_peers: Option<u64>,
    pub bytes_from_origin: Option<u64>,
}

pub trait Implementation: std::fmt::Debug {
    /// Short name used in flags, records and plots.
    fn name(&self) -> &'static str;
    /// argv of a seed serving `spec.data_dir`.
    fn seed_cmd(&self, spec: &SeedSpec) -> Vec<OsString>;
    /// Whether a seed's stdout line says it accepts peers.
    fn seed_ready(&self, line: &str) -> bool;
    /// argv of a downloader.
    fn leech_cmd(&self, spec: &LeechSpec) -> Vec<OsString>;
    /// `Some` if a downloader's stdout line says the release is complete.
    fn parse_completion(&self, line: &str) -> Option<Completion>;
}

/// An argv from a mix of strings and paths.
pub(super) fn os(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_os_string()).collect()
}
