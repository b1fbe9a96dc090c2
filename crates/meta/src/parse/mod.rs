//! Parsing a `.torrent`: v1 (BEP 3), v2 (BEP 52) and hybrid (BEP 47/52),
//! with `announce-list` (BEP 12), `url-list` (BEP 19) and shoal's signature.
//!
//! Everything in a torrent is untrusted. Counts and sizes the torrent
//! declares are checked against the bytes it actually carries before
//! anything is built from them, so a few hundred bytes cannot make us
//! allocate gigabytes; arithmetic on declared sizes is checked.
//!
//! This module assembles a [`Torrent`]; `fields`, `v1`, `v2` and `sources`
//! each read one part and depend on nothing here.

mod fields;
mod sources;
mod v1;
mod v2;

use std::collections::HashMap;

use bencode::{Limits, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::error::TorrentError;
use crate::merkle::Hash256;
use crate::signature::{SignatureBlock, SignatureStatus};
use crate::torrent::{FileEntry, InfoHashes, Torrent, MAX_TORRENT_BYTES};

use fields::{optional_int, parse_name, parse_piece_length};
use sources::{parse_trackers, parse_web_seeds};
use v1::{parse_v1_files, parse_v1_pieces};
use v2::{check_hybrid, parse_file_tree, parse_piece_layers};

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
