//! Why a torrent could not be made.

use std::path::{Path, PathBuf};

use crate::path::UnsafePath;

/// Why a torrent could not be made. Mostly the user's input: the message
/// names the path and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: is a symbolic link or special file; shoal publishes regular files only")]
    NotRegularFile(PathBuf),
    #[error("{0}: holds no data (all files are empty); there is nothing to publish")]
    NoData(PathBuf),
    #[error("{path} cannot be published under its name (rename it)")]
    UnsafeName { path: PathBuf, source: UnsafePath },
    #[error("{0}: changed while it was being hashed; publish again once it is final")]
    FileChanged(PathBuf),
    #[error("piece size {0} is not a power of two between 16 KiB and 256 MiB")]
    BadPieceLength(u64),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CreateError {
    pub(super) fn io(path: &Path, source: std::io::Error) -> Self {
        CreateError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
