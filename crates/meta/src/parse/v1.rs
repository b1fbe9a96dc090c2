//! The v1 half of a torrent (BEP 3): the `files` list (or single
//! `length`) with pad files (BEP 47), and the SHA-1 `pieces` string, whose
//! size must match what the files need.

use bencode::Value;

use super::fields::{add_size, parse_length, utf8_preferred};
use crate::error::TorrentError;
use crate::path::{component_from_bytes, SafePath};
use crate::torrent::{FileEntry, Hash160};

pub(super) struct V1Files {
    pub(super) files: Vec<FileEntry>,
    pub(super) multi_file: bool,
}

pub(super) fn parse_v1_files(info: &Value<'_>, name: &str) -> Result<V1Files, TorrentError> {
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

pub(super) fn parse_v1_pieces(
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
