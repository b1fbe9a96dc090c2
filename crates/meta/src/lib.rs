//! Torrents for shoal: the BitTorrent v1, v2 and hybrid formats (BEP 3, 52,
//! 47), parsed from untrusted bytes or created from files on disk, the BEP 52
//! merkle trees, safe file paths, and the publisher's signed manifest.

pub mod create;
mod error;
pub mod merkle;
mod origin;
mod parse;
pub mod path;
pub mod publish;
mod publisher_key;
pub mod signature;
mod torrent;

pub use error::TorrentError;
pub use origin::normalize_origin;
pub use publisher_key::{PublisherKey, PublisherKeyError};
pub use signature::{Manifest, SignatureBlock, SignatureStatus};
pub use torrent::{
    FileEntry, Hash160, InfoHashes, MetaVersion, Torrent, MAX_PIECE_LENGTH, MAX_TORRENT_BYTES,
    MIN_V2_PIECE_LENGTH,
};

/// Reads and parses a torrent file, refusing one too large to be a torrent
/// before reading it whole.
pub fn read_torrent_file(path: &std::path::Path) -> Result<Torrent, ReadTorrentError> {
    let bytes = read_torrent_bytes(path)?;
    Torrent::from_bytes(&bytes).map_err(|source| ReadTorrentError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a torrent file's bytes, at most one past [`MAX_TORRENT_BYTES`]: a
/// huge file is never read whole, and [`Torrent::from_bytes`] refuses what
/// was read as too large.
pub fn read_torrent_bytes(path: &std::path::Path) -> Result<Vec<u8>, ReadTorrentError> {
    use std::io::Read;
    let io = |source| ReadTorrentError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_TORRENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// A torrent file that could not be read or is not a valid torrent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadTorrentError {
    #[error("cannot read {path}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a usable torrent")]
    Invalid {
        path: std::path::PathBuf,
        source: TorrentError,
    },
}
pub mod layout;
