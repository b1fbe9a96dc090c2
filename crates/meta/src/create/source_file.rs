//! One file of a release, as the scan found it and the hasher reads it.

use std::path::PathBuf;

use crate::path::SafePath;

/// One file of the release as found on disk.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: SafePath,
    pub disk_path: PathBuf,
    pub length: u64,
}
