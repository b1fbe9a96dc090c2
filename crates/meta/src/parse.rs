//! Parsing a `.torrent`: v1 (BEP 3), v2 (BEP 52) and hybrid (BEP 47/52),
//! with `announce-list` (BEP 12), `url-list` (BEP 19) and shoal's signature.
//!
//! Everything in a torrent is untrusted. Counts and sizes the torrent
//! declares are checked against the bytes it actually carries before
//! anything is built from them, so a few hundred bytes cannot make us
//! allocate gigabytes; arithmetic on declared sizes is checked.

use std::collections::HashMap;

use bencode::{Limits, Value, ValueKind};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::error::TorrentError;
use crate::merkle::{self, Hash256, BLOCK_SIZE};
use crate::path::{check_component, component_from_bytes, SafePath};
use crate::signature::{SignatureBlock, SignatureStatus};
use crate::torrent::{
    FileEntry, Hash160, InfoHashes, Torrent, MAX_PIECE_LENGTH, MAX_TORRENT_BYTES,
    MIN_V2_PIECE_LENGTH,
};

impl Torrent {
    /// Parses and checks a whole torrent file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Torrent, TorrentError> {
        if bytes.len() as u64 > MAX_TORRENT_BYTES {
            return Err(TorrentError::TooLarge {
                size: bytes.len() as u64,
                max: MAX_TORRENT_BYTES,
            });
        }
        let top = bencode::decode(bytes, Limits::default())?;
        if top.as_dict().is_none() {
            return Err(TorrentError::malformed("torrent", "not a dictionary"));
        }
        let info = top
            .get("info")
            .ok_or(TorrentError::Missing { field: "info" })?;
        if info.as_dict().is_none() {
            return Err(TorrentError::malformed("info", "not a dictionary"));
        }
        let info_bytes = info.raw;

        let meta_version = optional_int(info, "meta version")?;
        let has_v2 = match meta_version {
            None => false,
            Some(2) => true,
            Some(other) => {
                return Err(TorrentError::malformed(
                    "info.meta version",
                    format!("version {other} is not supported"),
                ))
            }
        };
        let has_v1 = info.get("pieces").is_some();
        if !has_v1 && !has_v2 {
            return Err(TorrentError::Missing {
                field: "info.pieces",
            });
        }

        let name = parse_name(info)?;
        let piece_length = parse_piece_length(info, has_v2)?;

        let v2_files = if has_v2 {
            let tree = info.get("file tree").ok_or(TorrentError::Missing {
                field: "info.file tree",
            })?;
            Some(parse_file_tree(
                tree,
                &name,
                info.get("files").is_some(),
                piece_length,
            )?)
        } else {
            None
        };
        let v1 = if has_v1 {
            Some(parse_v1_files(info, &name)?)
        } else {
            None
        };

        let (files, multi_file) = match (&v1, v2_files) {
            (Some(v1), Some((v2, v2_multi))) => {
                check_hybrid(&v1.files, &v2, piece_length)?;
                // The v1 list carries pad files and offsets; add the roots.
                let mut roots = v2.into_iter().map(|f| f.pieces_root);
                let files = v1
                    .files
                    .iter()
                    .map(|f| FileEntry {
                        pieces_root: if f.pad { None } else { roots.next().flatten() },
                        ..f.clone()
                    })
                    .collect();
                (files, v1.multi_file || v2_multi)
            }
            (Some(v1), None) => (v1.files.clone(), v1.multi_file),
            (None, Some((v2, multi))) => (v2, multi),
            (None, None) => unreachable!("checked above that one version is present"),
        };

        let v1_piece_hashes = match &v1 {
            Some(_) => parse_v1_pieces(info, &files, piece_length)?,
            None => Vec::new(),
        };
        let piece_layers = if has_v2 {
            parse_piece_layers(top.get("piece layers"), &files, piece_length)?
        } else {
            HashMap::new()
        };

        let info_hash_v2: Option<Hash256> = has_v2.then(|| Sha256::digest(info_bytes).into());
        let signature = match top.get("shoal") {
            None => SignatureStatus::Absent,
            Some(block) => match SignatureBlock::from_value(block) {
                Ok(block) => block.check(info_hash_v2.as_ref(), &name),
                Err(reason) => SignatureStatus::Invalid {
                    publisher: None,
                    reason,
                },
            },
        };

        Ok(Torrent {
            info_hashes: InfoHashes {
                v1: has_v1.then(|| Sha1::digest(info_bytes).into()),
                v2: info_hash_v2,
            },
            name,
            multi_file,
            piece_length,
            files,
            v1_piece_hashes,
            piece_layers,
            trackers: parse_trackers(&top),
            web_seeds: parse_web_seeds(&top),
            creation_date: top.get("creation date").and_then(Value::as_int),
            created_by: top
                .get("created by")
                .and_then(Value::as_str)
                .map(str::to_owned),
            comment: top
                .get("comment")
                .and_then(Value::as_str)
                .map(str::to_owned),
            signature,
            info_bytes: info_bytes.to_vec(),
        })
    }
}

fn optional_int(dict: &Value<'_>, key: &str) -> Result<Option<i64>, TorrentError> {
    match dict.get(key) {
        None => Ok(None),
        Some(v) => v.as_int().map(Some).ok_or_else(|| {
            TorrentError::malformed(
                key,
                format!("expected an integer, found a {}", v.type_name()),
            )
        }),
    }
}

/// The `.utf-8` variant of a text field wins when present (old clients
/// wrote names in a local code page under the plain key).
fn utf8_preferred<'v, 'a>(dict: &'v Value<'a>, key: &str) -> Option<&'v Value<'a>> {
    dict.get(&format!("{key}.utf-8")).or_else(|| dict.get(key))
}

fn parse_name(info: &Value<'_>) -> Result<String, TorrentError> {
    let raw = utf8_preferred(info, "name")
        .and_then(Value::as_bytes)
        .ok_or(TorrentError::Missing { field: "info.name" })?;
    let name = component_from_bytes(raw)?;
    check_component(&name)?;
    Ok(name)
}

fn parse_piece_length(info: &Value<'_>, has_v2: bool) -> Result<u64, TorrentError> {
    let field = "info.piece length";
    let raw = optional_int(info, "piece length")?.ok_or(TorrentError::Missing { field })?;
    let length = u64::try_from(raw)
        .map_err(|_| TorrentError::malformed(field, format!("{raw} is negative")))?;
    if length == 0 || length > MAX_PIECE_LENGTH {
        return Err(TorrentError::malformed(
            field,
            format!("{length} is not between 1 and {MAX_PIECE_LENGTH}"),
        ));
    }
    if has_v2 && (!length.is_power_of_two() || length < MIN_V2_PIECE_LENGTH) {
        return Err(TorrentError::malformed(
            field,
            format!(
                "{length} is not a power of two of at least {MIN_V2_PIECE_LENGTH}, as v2 requires"
            ),
        ));
    }
    Ok(length)
}

fn parse_length(value: Option<&Value<'_>>, field: &str) -> Result<u64, TorrentError> {
    let value = value.ok_or_else(|| TorrentError::malformed(field, "no `length`"))?;
    let n = value
        .as_int()
        .ok_or_else(|| TorrentError::malformed(field, "`length` is not an integer"))?;
    u64::try_from(n).map_err(|_| TorrentError::malformed(field, format!("length {n} is negative")))
}

fn add_size(total: u64, length: u64) -> Result<u64, TorrentError> {
    total
        .checked_add(length)
        .ok_or_else(|| TorrentError::malformed("info", "file sizes add up past 2^64 bytes"))
}

struct V1Files {
    files: Vec<FileEntry>,
    multi_file: bool,
}

fn parse_v1_files(info: &Value<'_>, name: &str) -> Result<V1Files, TorrentError> {
    if let Some(list) = info.get("files") {
        let entries = list
            .as_list()
            .ok_or_else(|| TorrentError::malformed("info.files", "not a list"))?;
        let mut files = Vec::with_capacity(entries.len());
        let mut offset = 0u64;
        for (index, entry) in entries.iter().enumerate() {
            let field = format!("info.files[{index}]");
            let length = parse_length(entry.get("length"), &field)?;
            let attr = entry.get("attr").and_then(Value::as_bytes).unwrap_or(b"");
            if attr.contains(&b'l') {
                return Err(TorrentError::malformed(
                    field,
                    "symbolic links are not supported",
                ));
            }
            let components = utf8_preferred(entry, "path")
                .and_then(Value::as_list)
                .ok_or_else(|| TorrentError::malformed(&field, "no `path` list"))?
                .iter()
                .map(|c| {
                    let raw = c.as_bytes().ok_or_else(|| {
                        TorrentError::malformed(&field, "path element is not a string")
                    })?;
                    Ok(component_from_bytes(raw)?)
                })
                .collect::<Result<Vec<String>, TorrentError>>()?;
            let pad = attr.contains(&b'p') || components.first().is_some_and(|c| c == ".pad");
            files.push(FileEntry {
                path: SafePath::new(components)?,
                length,
                offset,
                pad,
                pieces_root: None,
            });
            offset = add_size(offset, length)?;
        }
        if files.iter().all(|f| f.pad) {
            return Err(TorrentError::malformed("info.files", "no files"));
        }
        Ok(V1Files {
            files,
            multi_file: true,
        })
    } else {
        let length = parse_length(info.get("length"), "info")?;
        Ok(V1Files {
            files: vec![FileEntry {
                path: SafePath::new(vec![name.to_owned()])?,
                length,
                offset: 0,
                pad: false,
                pieces_root: None,
            }],
            multi_file: false,
        })
    }
}

/// Walks a BEP 52 `file tree` depth-first in key order, which is the
/// storage order. Returns the files (offsets as if each started on a piece
/// boundary, which v2 guarantees) and whether the release is a folder.
fn parse_file_tree(
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
fn check_hybrid(v1: &[FileEntry], v2: &[FileEntry], piece_length: u64) -> Result<(), TorrentError> {
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

fn parse_v1_pieces(
    info: &Value<'_>,
    files: &[FileEntry],
    piece_length: u64,
) -> Result<Vec<Hash160>, TorrentError> {
    let field = "info.pieces";
    let pieces = info
        .get("pieces")
        .and_then(Value::as_bytes)
        .ok_or_else(|| TorrentError::malformed(field, "not a byte string"))?;
    if pieces.len() % 20 != 0 {
        return Err(TorrentError::malformed(
            field,
            format!(
                "{} bytes is not a whole number of SHA-1 hashes",
                pieces.len()
            ),
        ));
    }
    let stream_length = files
        .iter()
        .try_fold(0u64, |total, f| add_size(total, f.length))?;
    let expected = stream_length.div_ceil(piece_length);
    let found = pieces.len() as u64 / 20;
    if found != expected {
        return Err(TorrentError::malformed(
            field,
            format!("it holds {found} piece hashes but the files need {expected}"),
        ));
    }
    Ok(pieces
        .chunks_exact(20)
        .map(|c| Hash160::try_from(c).expect("chunks of 20"))
        .collect())
}

/// Reads `piece layers` and checks every layer against its file's pieces
/// root, so a torrent cannot smuggle in hashes its info-hash does not pin.
fn parse_piece_layers(
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

fn parse_trackers(top: &Value<'_>) -> Vec<Vec<String>> {
    let tiers: Vec<Vec<String>> = top
        .get("announce-list")
        .and_then(Value::as_list)
        .map(|tiers| {
            tiers
                .iter()
                .filter_map(Value::as_list)
                .map(|tier| {
                    tier.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .filter(|tier| !tier.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !tiers.is_empty() {
        return tiers;
    }
    // BEP 12: `announce` is used only when there is no usable announce-list.
    top.get("announce")
        .and_then(Value::as_str)
        .filter(|url| !url.is_empty())
        .map(|url| vec![vec![url.to_owned()]])
        .unwrap_or_default()
}

fn parse_web_seeds(top: &Value<'_>) -> Vec<String> {
    match top.get("url-list") {
        Some(v) => match &v.kind {
            ValueKind::Bytes(_) => v
                .as_str()
                .filter(|s| !s.is_empty())
                .map(|s| vec![s.to_owned()])
                .unwrap_or_default(),
            ValueKind::List(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        },
        None => Vec::new(),
    }
}
