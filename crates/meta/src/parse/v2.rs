//! The v2 half of a torrent (BEP 52): the `file tree`, the `piece
//! layers` checked against each file's pieces root, and, for a hybrid
//! (BEP 47/52), the check that v1 and v2 describe the same files.

use std::collections::HashMap;

use bencode::{Value, ValueKind};

use super::fields::parse_length;
use crate::error::TorrentError;
use crate::merkle::{self, Hash256, BLOCK_SIZE};
use crate::path::{component_from_bytes, SafePath};
use crate::torrent::FileEntry;

/// Walks a BEP 52 `file tree` depth-first in key order, which is the
/// storage order. Returns the files (offsets as if each started on a piece
/// boundary, which v2 guarantees) and whether the release is a folder.
pub(super) fn parse_file_tree(
    tree: &Value<'_>,
    name: &str,
    has_v1_files: bool,
    piece_length: u64,
) -> Result<(Vec<FileEntry>, bool), TorrentError> {
    let entries = tree
        .as_dict()
        .ok_or_else(|| TorrentError::malformed("info.file tree", "not a dictionary"))?;
    let single = !has_v1_files && entries.len() == 1 && is_leaf(&entries[0].1);
    let mut files = Vec::new();
    let mut path = Vec::new();
    walk_tree(tree, &mut path, &mut files)?;
    if files.is_empty() {
        return Err(TorrentError::malformed("info.file tree", "no files"));
    }
    let mut offset = 0u64;
    for file in &mut files {
        file.offset = offset;
        let pieces = file.length.div_ceil(piece_length);
        offset = pieces
            .checked_mul(piece_length)
            .and_then(|span| offset.checked_add(span))
            .ok_or_else(|| {
                TorrentError::malformed("info.file tree", "file sizes add up past 2^64 bytes")
            })?;
    }
    if single && files[0].path.components() != [name] {
        // Single-file v2 torrents name the file by the tree's only key;
        // keep the release name and that key in step.
        return Err(TorrentError::malformed(
            "info.file tree",
            "single file name differs from info.name",
        ));
    }
    Ok((files, !single))
}

fn is_leaf(node: &Value<'_>) -> bool {
    node.as_dict()
        .is_some_and(|d| d.len() == 1 && d[0].0.is_empty())
}

fn walk_tree(
    node: &Value<'_>,
    path: &mut Vec<String>,
    files: &mut Vec<FileEntry>,
) -> Result<(), TorrentError> {
    let field = |path: &[String]| format!("info.file tree/{}", path.join("/"));
    let entries = node
        .as_dict()
        .ok_or_else(|| TorrentError::malformed(field(path), "not a dictionary"))?;
    for (key, child) in entries {
        if key.is_empty() {
            return Err(TorrentError::malformed(
                field(path),
                "a file entry beside folder entries",
            ));
        }
        path.push(component_from_bytes(key)?);
        if is_leaf(child) {
            let Some(&[(_, ref leaf)]) = child.as_dict() else {
                unreachable!("is_leaf checked the shape")
            };
            let field = field(path);
            let length = parse_length(leaf.get("length"), &field)?;
            if leaf
                .get("attr")
                .and_then(Value::as_bytes)
                .is_some_and(|a| a.contains(&b'l'))
            {
                return Err(TorrentError::malformed(
                    field,
                    "symbolic links are not supported",
                ));
            }
            let pieces_root = match leaf.get("pieces root").map(Value::as_bytes) {
                _ if length == 0 => None,
                Some(Some(root)) if root.len() == 32 => {
                    Some(<Hash256>::try_from(root).expect("length checked"))
                }
                _ => return Err(TorrentError::malformed(field, "no 32-byte `pieces root`")),
            };
            files.push(FileEntry {
                path: SafePath::new(path.clone())?,
                length,
                offset: 0,
                pad: false,
                pieces_root,
            });
        } else {
            walk_tree(child, path, files)?;
        }
        path.pop();
    }
    Ok(())
}

/// A hybrid torrent is two descriptions of one set of files; if they
/// differ, v1 and v2 peers would download different data.
pub(super) fn check_hybrid(
    v1: &[FileEntry],
    v2: &[FileEntry],
    piece_length: u64,
) -> Result<(), TorrentError> {
    // A pad only ever fills the rest of a piece; a longer one would put
    // whole v1 pieces of zeros where v2 has none.
    if let Some(pad) = v1.iter().find(|f| f.pad && f.length >= piece_length) {
        return Err(TorrentError::HybridMismatch(format!(
            "pad file {} is {} bytes, not shorter than a piece",
            pad.path, pad.length
        )));
    }
    let v1_data: Vec<&FileEntry> = v1.iter().filter(|f| !f.pad).collect();
    if v1_data.len() != v2.len() {
        return Err(TorrentError::HybridMismatch(format!(
            "{} files in v1, {} in v2",
            v1_data.len(),
            v2.len()
        )));
    }
    for (a, b) in v1_data.iter().zip(v2) {
        if a.path != b.path || a.length != b.length {
            return Err(TorrentError::HybridMismatch(format!(
                "v1 has {} ({} bytes) where v2 has {} ({} bytes)",
                a.path, a.length, b.path, b.length
            )));
        }
        if a.length > 0 && a.offset % piece_length != 0 {
            return Err(TorrentError::HybridMismatch(format!(
                "{} does not start on a piece boundary (missing pad file)",
                a.path
            )));
        }
    }
    Ok(())
}

/// Reads `piece layers` and checks every layer against its file's pieces
/// root, so a torrent cannot smuggle in hashes its info-hash does not pin.
pub(super) fn parse_piece_layers(
    layers: Option<&Value<'_>>,
    files: &[FileEntry],
    piece_length: u64,
) -> Result<HashMap<Hash256, Vec<Hash256>>, TorrentError> {
    let entries: HashMap<&[u8], &Value<'_>> = match layers.map(|v| &v.kind) {
        None => HashMap::new(),
        Some(ValueKind::Dict(entries)) => entries.iter().map(|(k, v)| (*k, v)).collect(),
        Some(_) => return Err(TorrentError::malformed("piece layers", "not a dictionary")),
    };
    let blocks_per_piece = (piece_length / BLOCK_SIZE) as usize;
    let mut result = HashMap::new();
    for file in files.iter().filter(|f| !f.pad && f.length > piece_length) {
        let Some(root) = file.pieces_root else {
            continue; // only v2 files have roots; parse_file_tree requires them
        };
        if result.contains_key(&root) {
            continue; // identical files share a root and a layer
        }
        let problem = |problem: String| TorrentError::PieceLayer {
            file: file.path.to_string(),
            problem,
        };
        let layer = entries
            .get(root.as_slice())
            .and_then(|v| v.as_bytes())
            .ok_or_else(|| problem("missing".into()))?;
        let expected = file.length.div_ceil(piece_length);
        if layer.len() as u64 != expected * 32 {
            return Err(problem(format!(
                "{} bytes where {expected} hashes were expected",
                layer.len()
            )));
        }
        let hashes: Vec<Hash256> = layer
            .chunks_exact(32)
            .map(|c| Hash256::try_from(c).expect("chunks of 32"))
            .collect();
        if merkle::root_from_piece_layer(&hashes, blocks_per_piece) != root {
            return Err(problem(
                "the hashes do not add up to the file's pieces root".into(),
            ));
        }
        result.insert(root, hashes);
    }
    Ok(result)
}
