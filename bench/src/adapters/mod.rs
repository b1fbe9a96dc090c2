//! The BitTorrent implementations under test, one adapter each. An adapter
//! only says how to start a seed and a downloader and how to read their
//! output; the harness does the rest, identically for every implementation.
//! Adding a client (aria2, rqbit, …) is one more file here, its name in
//! [`ALL`] and one line in [`by_name`].

mod libtorrent;
mod shoal;
mod spec;

use std::path::PathBuf;

pub use libtorrent::Libtorrent;
pub use shoal::Shoal;
pub use spec::{Completion, Implementation, LeechSpec, SeedSpec};

/// Paths of the programs the adapters run.
#[derive(Debug, Clone)]
pub struct Programs {
    pub shoal: PathBuf,
    pub python: PathBuf,
    pub lt_driver: PathBuf,
}

/// Every adapter's name, in the order `--impl all` runs them.
pub const ALL: [&str; 2] = ["shoal", "libtorrent"];

pub fn by_name(name: &str, programs: &Programs) -> Option<Box<dyn Implementation>> {
    match name {
        "shoal" => Some(Box::new(Shoal::new(programs.shoal.clone()))),
        "libtorrent" => Some(Box::new(Libtorrent::new(
            programs.python.clone(),
            programs.lt_driver.clone(),
        ))),
        _ => None,
    }
}
