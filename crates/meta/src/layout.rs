//! Where each piece's bytes live, and how to check them.
//!
//! Pieces are numbered over one byte stream in which every file stands at
//! its `offset`. In v1 and hybrid torrents that stream is the v1 one, pad
//! files included; in v2-only torrents each file starts on a piece boundary
//! and the gap after it behaves like a pad file. Either way piece `i` is
//! the stream range `[i * piece_length, …)`, cut short only at the end of
//! the stream (v1) or of its file (v2).
//!
//! Pad bytes are zeros that no file stores: they are never written, read
//! back as zeros, and never requested from peers.

use crate::merkle::{Hash256, BLOCK_SIZE};
use crate::torrent::{Hash160, Torrent};

/// One stretch of a piece that lies in a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpan {
    /// Index into `Torrent::files`.
    pub file: usize,
    /// Byte offset inside that file.
    pub file_offset: u64,
    /// Byte offset inside the piece.
    pub piece_offset: u32,
    pub length: u32,
}

/// What one piece is made of and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceInfo {
    /// Length on the wire: what peers request, pad bytes included.
    pub length: u32,
    /// The data-file stretches in piece order; what is not covered is padding.
    pub spans: Vec<FileSpan>,
    /// v1 SHA-1 of the whole piece (pad bytes as zeros), if the torrent has v1.
    pub v1_hash: Option<Hash160>,
    /// v2 merkle node of the piece's file data, if the torrent has v2.
    pub v2_node: Option<V2Node>,
}

/// The v2 hash a piece's data must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Node {
    pub hash: Hash256,
    /// Leaves under the node: a piece's worth of blocks, or, for a file no
    /// larger than one piece (whose node is its pieces root), only as many
    /// as the next power of two of its block count (BEP 52).
    pub leaves: u32,
    /// Bytes of file data the node covers (the piece minus padding).
    pub data_length: u32,
}

/// Piece geometry of a torrent, computed once.
#[derive(Debug, Clone)]
pub struct Layout {
    piece_length: u64,
    piece_count: u32,
    /// End of the piece stream in bytes.
    stream_length: u64,
    /// Data files sorted by offset: (file index, offset, length).
    data_files: Vec<(usize, u64, u64)>,
    v2_only: bool,
}

impl Layout {
    pub fn new(torrent: &Torrent) -> Layout {
        let data_files: Vec<(usize, u64, u64)> = torrent
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.pad && f.length > 0)
            .map(|(i, f)| (i, f.offset, f.length))
            .collect();
        let v2_only = torrent.v1_piece_hashes.is_empty();
        let stream_length = if v2_only {
            data_files
                .last()
                .map_or(0, |&(_, offset, length)| offset + length)
        } else {
            torrent.files.iter().map(|f| f.length).sum()
        };
        Layout {
            piece_length: torrent.piece_length,
            piece_count: u32::try_from(torrent.piece_count()).unwrap_or(u32::MAX),
            stream_length,
            data_files,
            v2_only,
        }
    }

    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// Wire length of piece `index`.
    pub fn piece_len(&self, index: u32) -> u32 {
        let start = u64::from(index) * self.piece_length;
        let end = if self.v2_only {
            // A v2 piece ends with its file.
            self.data_files
                .iter()
                .find(|&&(_, offset, length)| offset <= start && start < offset + length)
                .map_or(start, |&(_, offset, length)| {
                    (offset + length).min(start + self.piece_length)
                })
        } else {
            self.stream_length.min(start + self.piece_length)
        };
        (end.saturating_sub(start)) as u32
    }

    /// Number of 16 KiB blocks in piece `index` (the last may be short).
    pub fn block_count(&self, index: u32) -> u32 {
        self.piece_len(index).div_ceil(BLOCK_SIZE as u32)
    }

    /// The data-file stretches of piece `index`.
    pub fn spans(&self, index: u32) -> Vec<FileSpan> {
        let start = u64::from(index) * self.piece_length;
        let end = start + u64::from(self.piece_len(index));
        let first = self
            .data_files
            .partition_point(|&(_, offset, length)| offset + length <= start);
        self.data_files[first..]
            .iter()
            .take_while(|&&(_, offset, _)| offset < end)
            .map(|&(file, offset, length)| {
                let from = start.max(offset);
                let to = end.min(offset + length);
                FileSpan {
                    file,
                    file_offset: from - offset,
                    piece_offset: (from - start) as u32,
                    length: (to - from) as u32,
                }
            })
            .collect()
    }

    /// Whether the block at `offset` in piece `index` is all padding, so it
    /// is known (zeros) without asking anyone.
    pub fn block_is_padding(&self, index: u32, offset: u32) -> bool {
        let block_end = (offset + BLOCK_SIZE as u32).min(self.piece_len(index));
        !self
            .spans(index)
            .iter()
            .any(|s| s.piece_offset < block_end && offset < s.piece_offset + s.length)
    }

    /// Everything needed to store and check piece `index`.
    pub fn piece(&self, torrent: &Torrent, index: u32) -> PieceInfo {
        let spans = self.spans(index);
        let v1_hash = torrent.v1_piece_hashes.get(index as usize).copied();
        let v2_node = spans.first().and_then(|span| {
            let file = &torrent.files[span.file];
            let root = file.pieces_root?;
            let data_length = spans.iter().map(|s| s.length).sum();
            if file.length <= self.piece_length {
                let leaves = file.length.div_ceil(BLOCK_SIZE).next_power_of_two() as u32;
                return Some(V2Node {
                    hash: root,
                    leaves,
                    data_length,
                });
            }
            let local = (span.file_offset / self.piece_length) as usize;
            let hash = *torrent.piece_layers.get(&root)?.get(local)?;
            let leaves = (self.piece_length / BLOCK_SIZE) as u32;
            Some(V2Node {
                hash,
                leaves,
                data_length,
            })
        });
        PieceInfo {
            length: self.piece_len(index),
            spans,
            v1_hash,
            v2_node,
        }
    }
}

/// Which of a piece's hashes are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PieceHashes {
    /// Every hash the torrent carries: SHA-1 and the v2 merkle node for a
    /// hybrid. Right for any torrent whose publisher nobody vouched for:
    /// a v1 peer or tool trusts the SHA-1 list, so it must be honest too.
    #[default]
    All,
    /// The v2 merkle node only, wherever the piece has one (a piece of
    /// padding alone keeps its SHA-1). Only for a torrent whose v2
    /// info-hash a trusted publisher signed: the merkle tree is then the
    /// publisher's word, and the v1 list, made from the same bytes in the
    /// same pass, is the publisher's to get right.
    V2Only,
}

/// Checks a whole piece's bytes (pad bytes included, as zeros) against all
/// its hashes; see [`check_piece_with`].
pub fn check_piece(info: &PieceInfo, data: &[u8]) -> PieceVerdict {
    check_piece_with(info, data, PieceHashes::All)
}

/// Checks a whole piece's bytes (pad bytes included, as zeros) against the
/// hashes `hashes` names. Returns the v2 block hashes too, which tell, when
/// a piece fails, which of its blocks differ from a later good copy.
pub fn check_piece_with(info: &PieceInfo, data: &[u8], hashes: PieceHashes) -> PieceVerdict {
    use sha1::{Digest as _, Sha1};
    let data_length = info
        .v2_node
        .map_or(data.len(), |n| n.data_length as usize)
        .min(data.len());
    let block_hashes = crate::merkle::block_hashes(&data[..data_length]);
    let v2_ok = info.v2_node.is_none_or(|node| {
        block_hashes.len() <= node.leaves as usize
            && crate::merkle::root_of_layer(&block_hashes, node.leaves as usize, [0; 32])
                == node.hash
    });
    let v2_alone = hashes == PieceHashes::V2Only && info.v2_node.is_some();
    let v1_ok = v2_alone
        || info
            .v1_hash
            .is_none_or(|hash| <[u8; 20]>::from(Sha1::digest(data)) == hash);
    PieceVerdict {
        ok: v1_ok && v2_ok && data.len() == info.length as usize,
        block_hashes,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceVerdict {
    pub ok: bool,
    /// SHA-256 of each 16 KiB block of the piece's file data.
    pub block_hashes: Vec<Hash256>,
}
