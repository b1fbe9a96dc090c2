//! Why a torrent was refused. Every variant is the torrent's fault: the
//! caller's move is to report it (naming the file) and not use the torrent.

use crate::path::UnsafePath;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorrentError {
    #[error("the torrent is {size} bytes, more than the {max} a torrent may be")]
    TooLarge { size: u64, max: u64 },
    #[error(transparent)]
    Bencode(#[from] bencode::DecodeError),
    #[error("`{field}` is missing")]
    Missing { field: &'static str },
    #[error("`{field}` is malformed: {problem}")]
    Malformed { field: String, problem: String },
    #[error(transparent)]
    UnsafePath(#[from] UnsafePath),
    #[error("`piece layers` for {file:?}: {problem}")]
    PieceLayer { file: String, problem: String },
    #[error("the v1 and v2 parts of this hybrid torrent disagree: {0}")]
    HybridMismatch(String),
}

impl TorrentError {
    pub(crate) fn malformed(field: impl Into<String>, problem: impl Into<String>) -> Self {
        TorrentError::Malformed {
            field: field.into(),
            problem: problem.into(),
        }
    }
}
