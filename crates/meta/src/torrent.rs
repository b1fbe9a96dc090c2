//! What a torrent says, once parsed and checked: the model every other crate
//! works from. Parsing lives in `parse.rs`, creation in `create/`.

use std::collections::HashMap;

use crate::merkle::Hash256;
use crate::path::SafePath;
use crate::signature::SignatureStatus;

/// Largest piece accepted: bigger pieces make every lost block expensive and
/// are a way for a hostile torrent to demand huge buffers.
pub const MAX_PIECE_LENGTH: u64 = 256 * 1024 * 1024;
/// Smallest v2 piece: one merkle leaf block.
pub const MIN_V2_PIECE_LENGTH: u64 = crate::merkle::BLOCK_SIZE;
/// Largest torrent file read, parsed, fetched or registered, by every
/// crate: a 1 TiB release in 4 MiB pieces needs about 13 MiB of piece
/// hashes as a hybrid torrent (20 + 32 bytes a piece).
pub const MAX_TORRENT_BYTES: u64 = 32 * 1024 * 1024;

/// A v1 piece hash (SHA-1).
pub type Hash160 = [u8; 20];

/// The two identities of a torrent: SHA-1 and SHA-256 of the same `info` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InfoHashes {
    pub v1: Option<Hash160>,
    pub v2: Option<Hash256>,
}

impl InfoHashes {
    /// The v2 info-hash truncated to 20 bytes, as used on the wire and by
    /// trackers for v2 swarms (BEP 52).
    pub fn v2_truncated(&self) -> Option<Hash160> {
        self.v2.map(|full| {
            let mut short = [0u8; 20];
            short.copy_from_slice(&full[..20]);
            short
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaVersion {
    V1,
    V2,
    Hybrid,
}

impl MetaVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            MetaVersion::V1 => "v1",
            MetaVersion::V2 => "v2",
            MetaVersion::Hybrid => "hybrid",
        }
    }
}

/// One file of the release, in storage order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the release root: for a single-file torrent, the file
    /// name; for a multi-file one, the path inside the folder `name`.
    pub path: SafePath,
    pub length: u64,
    /// Where the file starts in the concatenated piece stream.
    pub offset: u64,
    /// A BEP 47 pad file: zeros that align the next file, never stored.
    pub pad: bool,
    /// BEP 52 merkle root; `None` for v1-only torrents, pad and empty files.
    pub pieces_root: Option<Hash256>,
}

#[derive(Debug, Clone)]
pub struct Torrent {
    pub info_hashes: InfoHashes,
    pub name: String,
    /// True when the release is a folder named `name` holding `files`.
    pub multi_file: bool,
    pub piece_length: u64,
    pub files: Vec<FileEntry>,
    /// v1 SHA-1 per piece; empty for a v2-only torrent.
    pub v1_piece_hashes: Vec<Hash160>,
    /// v2 piece layer per pieces root, for files longer than one piece.
    pub piece_layers: HashMap<Hash256, Vec<Hash256>>,
    /// Announce URLs by tier (BEP 12); a lone `announce` is one tier.
    pub trackers: Vec<Vec<String>>,
    /// BEP 19 web seeds (`url-list`).
    pub web_seeds: Vec<String>,
    pub creation_date: Option<i64>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub signature: SignatureStatus,
    /// The `info` dictionary exactly as found in the file.
    pub info_bytes: Vec<u8>,
}

impl Torrent {
    pub fn version(&self) -> MetaVersion {
        match (self.info_hashes.v1.is_some(), self.info_hashes.v2.is_some()) {
            (true, true) => MetaVersion::Hybrid,
            (false, true) => MetaVersion::V2,
            _ => MetaVersion::V1,
        }
    }

    /// Bytes of real data, pad files excluded.
    pub fn total_size(&self) -> u64 {
        self.data_files().map(|f| f.length).sum()
    }

    /// Files that hold data, in storage order: pad files left out.
    pub fn data_files(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.iter().filter(|f| !f.pad)
    }

    /// Number of pieces. For v2, pieces never span files, so each file
    /// rounds up on its own; for v1 and hybrid, pad files make that the same
    /// count as the padded stream's.
    pub fn piece_count(&self) -> u64 {
        if !self.v1_piece_hashes.is_empty() {
            return self.v1_piece_hashes.len() as u64;
        }
        self.data_files()
            .map(|f| f.length.div_ceil(self.piece_length))
            .sum()
    }

    /// Every tracker URL once, tier by tier.
    pub fn tracker_urls(&self) -> Vec<&str> {
        let mut urls: Vec<&str> = Vec::new();
        for url in self.trackers.iter().flatten() {
            if !urls.contains(&url.as_str()) {
                urls.push(url);
            }
        }
        urls
    }
}
