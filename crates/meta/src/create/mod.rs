//! Making a new torrent from a file or folder: hybrid v1+v2 by default
//! (BEP 52 with BEP 47 pad files, so every file starts on a piece boundary
//! and v1 and v2 peers share one swarm), or v2 only.

mod error;
mod hasher;
mod source_file;

use std::collections::BTreeMap;
use std::path::Path;

use bencode::Bencode;
use sha2::{Digest, Sha256};

use crate::merkle::{Hash256, BLOCK_SIZE};
use crate::path::{check_component, SafePath};
use crate::signature::SignatureBlock;
use crate::torrent::MAX_PIECE_LENGTH;

pub use error::CreateError;
pub use hasher::FileHashes;
pub use source_file::SourceFile;

/// How to make the torrent. Defaults: hybrid, piece size chosen from the
/// release size, all cores.
#[derive(Debug, Clone, Default)]
pub struct CreateSettings {
    /// Bytes per piece: a power of two from 16 KiB to 256 MiB. `None` picks one.
    pub piece_length: Option<u64>,
    /// Leave out the v1 part (no SHA-1, no pad files).
    pub v2_only: bool,
    /// Announce URLs, each its own tier.
    pub trackers: Vec<String>,
    /// BEP 19 web seeds.
    pub web_seeds: Vec<String>,
    pub comment: Option<String>,
    /// Unix seconds written as `creation date`.
    pub creation_date: Option<i64>,
    /// Hashing threads; 0 means one per core.
    pub threads: usize,
}

/// What was found at the path to publish.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub multi_file: bool,
    /// In storage order: sorted by path, the order of the v2 file tree.
    pub files: Vec<SourceFile>,
}

impl Source {
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }
}

/// Lists the files at `root` (a file or a folder), checking every name.
pub fn scan(root: &Path) -> Result<Source, CreateError> {
    let metadata = std::fs::symlink_metadata(root).map_err(|e| CreateError::io(root, e))?;
    let name = root
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .or_else(|| {
            // `.` or a path ending in `..`: name the release after the folder.
            std::fs::canonicalize(root)
                .ok()
                .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        })
        .unwrap_or_default();
    check_component(&name).map_err(|source| CreateError::UnsafeName {
        path: root.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    let multi_file = metadata.is_dir();
    if metadata.is_file() {
        files.push(SourceFile {
            path: SafePath::new(vec![name.clone()]).expect("name checked"),
            disk_path: root.to_path_buf(),
            length: metadata.len(),
        });
    } else if multi_file {
        walk(root, &mut Vec::new(), &mut files)?;
    } else {
        return Err(CreateError::NotRegularFile(root.to_path_buf()));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if files.iter().all(|f| f.length == 0) {
        return Err(CreateError::NoData(root.to_path_buf()));
    }
    Ok(Source {
        name,
        multi_file,
        files,
    })
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    files: &mut Vec<SourceFile>,
) -> Result<(), CreateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CreateError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CreateError::io(dir, e))?;
        let disk_path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| CreateError::io(&disk_path, e))?;
        let unsafe_name = |source| CreateError::UnsafeName {
            path: disk_path.clone(),
            source,
        };
        let name = match entry.file_name().into_string() {
            Ok(name) => name,
            // Not UTF-8: this reports it with the name shown lossily.
            Err(raw) => {
                crate::path::component_from_bytes(raw.as_encoded_bytes()).map_err(unsafe_name)?
            }
        };
        prefix.push(name);
        if file_type.is_dir() {
            walk(&disk_path, prefix, files)?;
        } else if file_type.is_file() {
            let length = entry
                .metadata()
                .map_err(|e| CreateError::io(&disk_path, e))?
                .len();
            let path = SafePath::new(prefix.clone()).map_err(unsafe_name)?;
            files.push(SourceFile {
                path,
                disk_path,
                length,
            });
        } else {
            return Err(CreateError::NotRegularFile(disk_path));
        }
        prefix.pop();
    }
    Ok(())
}

/// The default piece size: the smallest power of two, from 16 KiB to
/// 16 MiB, that keeps the release under about 2,000 pieces. Small pieces
/// spread through a swarm sooner; the cap keeps v1 piece lists and v2 piece
/// layers (20 + 32 bytes a piece) small.
pub fn default_piece_length(total_size: u64) -> u64 {
    const TARGET_PIECES: u64 = 2000;
    let mut length = BLOCK_SIZE;
    while length < 16 * 1024 * 1024 && total_size.div_ceil(length) > TARGET_PIECES {
        length *= 2;
    }
    length
}

/// A freshly made torrent, not yet signed.
#[derive(Debug, Clone)]
pub struct NewTorrent {
    pub name: String,
    /// The encoded `info` dictionary; its hashes are the info-hashes.
    pub info_bytes: Vec<u8>,
    piece_layers: BTreeMap<Vec<u8>, Bencode>,
    settings: CreateSettings,
}

impl NewTorrent {
    pub fn info_hash_v2(&self) -> Hash256 {
        Sha256::digest(&self.info_bytes).into()
    }

    /// The whole `.torrent` file, with the publisher's signature if given.
    pub fn encode(&self, signature: Option<&SignatureBlock>) -> Vec<u8> {
        let mut top = BTreeMap::new();
        let mut insert = |key: &str, value| {
            top.insert(key.as_bytes().to_vec(), value);
        };
        insert("info", Bencode::Raw(self.info_bytes.clone()));
        insert("piece layers", Bencode::Dict(self.piece_layers.clone()));
        insert(
            "created by",
            Bencode::string(concat!("shoal/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(date) = self.settings.creation_date {
            insert("creation date", Bencode::int(date));
        }
        if let Some(comment) = &self.settings.comment {
            insert("comment", Bencode::string(comment));
        }
        if let Some(first) = self.settings.trackers.first() {
            insert("announce", Bencode::string(first));
            let tiers = self
                .settings
                .trackers
                .iter()
                .map(|url| Bencode::List(vec![Bencode::string(url)]))
                .collect();
            insert("announce-list", Bencode::List(tiers));
        }
        if !self.settings.web_seeds.is_empty() {
            let seeds = self
                .settings
                .web_seeds
                .iter()
                .map(|url| Bencode::string(url))
                .collect();
            insert("url-list", Bencode::List(seeds));
        }
        if let Some(block) = signature {
            insert("shoal", block.to_bencode());
        }
        Bencode::Dict(top).encode()
    }
}

/// Hashes `source` and builds its torrent. `progress` hears of hashed bytes.
pub fn create(
    source: &Source,
    settings: &CreateSettings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<NewTorrent, CreateError> {
    let piece_length = match settings.piece_length {
        Some(length)
            if !length.is_power_of_two() || !(BLOCK_SIZE..=MAX_PIECE_LENGTH).contains(&length) =>
        {
            return Err(CreateError::BadPieceLength(length))
        }
        Some(length) => length,
        None => default_piece_length(source.total_size()),
    };
    let hybrid = !settings.v2_only;
    let threads = match settings.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let job = hasher::HashJob {
        files: &source.files,
        piece_length,
        with_v1: hybrid,
        pad_v1_tails: needs_pad_files(source),
        threads,
    };
    let hashes = hasher::hash_files(&job, progress)?;
    let info = build_info(source, &hashes, piece_length, hybrid);
    let piece_layers = hashes
        .iter()
        .zip(&source.files)
        .filter(|(_, file)| file.length > piece_length)
        .map(|(h, _)| {
            let root = crate::merkle::root_from_piece_layer(
                &h.v2_layer,
                (piece_length / BLOCK_SIZE) as usize,
            );
            (root.to_vec(), Bencode::Bytes(h.v2_layer.concat()))
        })
        .collect();
    Ok(NewTorrent {
        name: source.name.clone(),
        info_bytes: info.encode(),
        piece_layers,
        settings: settings.clone(),
    })
}

fn pieces_root(hashes: &FileHashes, length: u64, piece_length: u64) -> Hash256 {
    if length <= piece_length {
        hashes.v2_layer[0]
    } else {
        crate::merkle::root_from_piece_layer(&hashes.v2_layer, (piece_length / BLOCK_SIZE) as usize)
    }
}

fn build_info(source: &Source, hashes: &[FileHashes], piece_length: u64, hybrid: bool) -> Bencode {
    let mut info = BTreeMap::new();
    let mut insert = |key: &str, value| {
        info.insert(key.as_bytes().to_vec(), value);
    };
    insert("name", Bencode::string(&source.name));
    insert("piece length", Bencode::int(piece_length as i64));
    insert("meta version", Bencode::int(2));

    // The v2 file tree: nested dictionaries, a file's leaf under the key "".
    let mut tree = BTreeMap::new();
    for (file, hashes) in source.files.iter().zip(hashes) {
        let mut leaf = BTreeMap::new();
        leaf.insert(b"length".to_vec(), Bencode::int(file.length as i64));
        if file.length > 0 {
            let root = pieces_root(hashes, file.length, piece_length);
            leaf.insert(b"pieces root".to_vec(), Bencode::bytes(root.to_vec()));
        }
        insert_leaf(
            &mut tree,
            file.path.components(),
            Bencode::Dict(BTreeMap::from([(Vec::new(), Bencode::Dict(leaf))])),
        );
    }
    insert("file tree", Bencode::Dict(tree));

    if hybrid {
        let pieces: Vec<u8> = hashes.iter().flat_map(|h| h.v1.concat()).collect();
        insert("pieces", Bencode::Bytes(pieces));
        if source.multi_file {
            let pad = needs_pad_files(source);
            insert(
                "files",
                Bencode::List(v1_file_list(source, piece_length, pad)),
            );
        } else {
            insert("length", Bencode::int(source.files[0].length as i64));
        }
    }
    Bencode::Dict(info)
}

fn insert_leaf(tree: &mut BTreeMap<Vec<u8>, Bencode>, path: &[String], leaf: Bencode) {
    let (first, rest) = path.split_first().expect("safe paths are never empty");
    if rest.is_empty() {
        tree.insert(first.as_bytes().to_vec(), leaf);
        return;
    }
    let node = tree
        .entry(first.as_bytes().to_vec())
        .or_insert_with(|| Bencode::Dict(BTreeMap::new()));
    if let Bencode::Dict(children) = node {
        insert_leaf(children, rest, leaf);
    }
}

/// Pad files align files to pieces; with one file there is nothing to
/// align. libtorrent decides the same way, so the two make identical
/// torrents from identical folders.
fn needs_pad_files(source: &Source) -> bool {
    source.files.len() > 1
}

/// The v1 `files` list with BEP 47 pad files. As libtorrent does, a pad
/// follows every non-empty file that does not end on a piece boundary,
/// the last one included, so v1 pieces line up with v2 pieces exactly.
fn v1_file_list(source: &Source, piece_length: u64, pad_files: bool) -> Vec<Bencode> {
    let mut list = Vec::new();
    for file in &source.files {
        let path = file
            .path
            .components()
            .iter()
            .map(|c| Bencode::string(c))
            .collect();
        list.push(Bencode::dict([
            ("length", Bencode::int(file.length as i64)),
            ("path", Bencode::List(path)),
        ]));
        let tail = file.length % piece_length;
        if pad_files && tail != 0 {
            let pad = piece_length - tail;
            list.push(Bencode::dict([
                ("attr", Bencode::string("p")),
                ("length", Bencode::int(pad as i64)),
                (
                    "path",
                    Bencode::List(vec![
                        Bencode::string(".pad"),
                        Bencode::string(&pad.to_string()),
                    ]),
                ),
            ]));
        }
    }
    list
}
