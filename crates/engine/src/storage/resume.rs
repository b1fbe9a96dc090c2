//! Which pieces of a download are verified, saved so a restart re-downloads
//! nothing it already checked.
//!
//! The file is a small bencoded dictionary (BEP 3 encoding, canonical):
//!
//! ```text
//! { "checksum":  SHA-256 (32 bytes) of the fields below, see `checksum`,
//!   "format":    "shoal resume",
//!   "info hash": the v2 info-hash (32 bytes), or the v1 one (20) for v1 torrents,
//!   "pieces":    piece count,
//!   "verified":  bitfield, high bit of byte 0 = piece 0 (as BEP 3's bitfield),
//!                spare bits zero,
//!   "version":   1 }
//! ```
//!
//! Saving is atomic: the new state goes to a temporary file in the same
//! folder, is fsynced, renamed over the old file, and the folder is fsynced
//! (Unix). A crash at any moment leaves the old state or the new one. A
//! file that does not parse, fails its checksum or belongs to another
//! torrent is never fatal: loading returns an empty state and a warning.
//!
//! A download that fills the disk must still save which pieces it verified:
//! `resume.reserve`, 64 KiB set aside beside the file when the download
//! starts, is given up to make room for that last save.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use bencode::Bencode;
use meta::Torrent;
use sha2::{Digest as _, Sha256};

use crate::atomic_file::{write_atomically, FileAccess, TEMP_MARKER};
use crate::storage::StorageError;

const FORMAT: &[u8] = b"shoal resume";
const VERSION: i64 = 1;
/// Bytes a resume file may hold beyond its bitfield: keys, hashes, numbers.
const OVERHEAD: u64 = 512;

/// The verified pieces of one torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState {
    info_hash: Vec<u8>,
    piece_count: u32,
    verified: Vec<u8>,
    verified_count: u32,
}

/// A loaded state, and why saved progress was discarded, if it was.
#[derive(Debug)]
pub struct LoadedResume {
    pub state: ResumeState,
    pub warning: Option<ResumeWarning>,
}

/// Saved progress that could not be used; the download starts over (or
/// from whatever the caller re-checks) rather than trust it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeWarning {
    #[error("{path}: saved progress is damaged ({reason}); starting without it")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: saved progress belongs to another release; starting without it")]
    OtherTorrent { path: PathBuf },
    #[error(
        "{path}: partly downloaded file is missing or resized; its pieces will be fetched again"
    )]
    DataMissing { path: PathBuf },
}

/// The identity resume files are matched on: the v2 info-hash when there
/// is one (it is what the signature covers), else the v1 one.
pub fn info_hash_of(torrent: &Torrent) -> Vec<u8> {
    match (torrent.info_hashes.v2, torrent.info_hashes.v1) {
        (Some(v2), _) => v2.to_vec(),
        (None, Some(v1)) => v1.to_vec(),
        (None, None) => Vec::new(),
    }
}

impl ResumeState {
    /// No piece verified.
    pub fn new(torrent: &Torrent) -> ResumeState {
        let piece_count = u32::try_from(torrent.piece_count()).unwrap_or(u32::MAX);
        ResumeState {
            info_hash: info_hash_of(torrent),
            piece_count,
            verified: vec![0; piece_count.div_ceil(8) as usize],
            verified_count: 0,
        }
    }

    /// Reads the state saved at `path`. A missing file is no progress, with
    /// no warning; an unusable one is no progress, with a warning. Only an
    /// I/O failure other than "not found" is an error.
    pub fn load(path: &Path, torrent: &Torrent) -> Result<LoadedResume, StorageError> {
        let empty = ResumeState::new(torrent);
        let limit = u64::from(empty.piece_count).div_ceil(8) + OVERHEAD;
        let mut bytes = Vec::new();
        match std::fs::File::open(path) {
            Ok(file) => file.take(limit + 1).read_to_end(&mut bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LoadedResume {
                    state: empty,
                    warning: None,
                })
            }
            Err(e) => Err(e),
        }
        .map_err(|e| StorageError::io(path, "read saved progress", e))?;
        let corrupt = |reason: &str| ResumeWarning::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let parsed = if bytes.len() as u64 > limit {
            Err(corrupt("too large"))
        } else {
            decode(&bytes).map_err(corrupt).and_then(|state| {
                if state.info_hash != empty.info_hash {
                    Err(ResumeWarning::OtherTorrent {
                        path: path.to_path_buf(),
                    })
                } else if state.piece_count != empty.piece_count {
                    Err(corrupt("wrong piece count"))
                } else {
                    Ok(state)
                }
            })
        };
        Ok(match parsed {
            Ok(state) => LoadedResume {
                state,
                warning: None,
            },
            Err(warning) => LoadedResume {
                state: empty,
                warning: Some(warning),
            },
        })
    }

    /// Records piece `piece` as verified; out-of-range indexes are ignored.
    pub fn mark_verified(&mut self, piece: u32) {
        self.set(piece, true);
    }

    /// Forgets piece `piece`, for data found missing or damaged.
    pub fn mark_unverified(&mut self, piece: u32) {
        self.set(piece, false);
    }

    fn set(&mut self, piece: u32, on: bool) {
        if piece >= self.piece_count {
            return;
        }
        if self.is_verified(piece) != on {
            self.verified[(piece / 8) as usize] ^= 0x80 >> (piece % 8);
            if on {
                self.verified_count += 1;
            } else {
                self.verified_count -= 1;
            }
        }
    }

    pub fn is_verified(&self, piece: u32) -> bool {
        piece < self.piece_count && self.verified[(piece / 8) as usize] & (0x80 >> (piece % 8)) != 0
    }

    pub fn verified_count(&self) -> u32 {
        self.verified_count
    }

    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    pub fn is_complete(&self) -> bool {
        self.verified_count == self.piece_count
    }

    /// The verified pieces as a BEP 3 bitfield, ready for the wire.
    pub fn bitfield(&self) -> &[u8] {
        &self.verified
    }

    /// Replaces the state at `path` atomically (see the module doc). On a
    /// full disk it gives up the space [`reserve_space`] set aside and
    /// tries once more: the save that follows "disk full" is the one that
    /// must not be lost.
    pub fn save(&self, path: &Path) -> Result<(), StorageError> {
        match self.replace(path) {
            Err(StorageError::DiskFull { .. }) if remove_reserve(path) => self.replace(path),
            result => result,
        }
    }

    fn replace(&self, path: &Path) -> Result<(), StorageError> {
        write_atomically(path, &self.encode(), FileAccess::Default)
            .map_err(|e| StorageError::io(&e.path, e.action, e.source))
    }

    fn encode(&self) -> Vec<u8> {
        Bencode::dict([
            ("checksum", Bencode::bytes(self.checksum())),
            ("format", Bencode::bytes(FORMAT)),
            ("info hash", Bencode::bytes(self.info_hash.clone())),
            ("pieces", Bencode::int(self.piece_count)),
            ("verified", Bencode::bytes(self.verified.clone())),
            ("version", Bencode::int(VERSION)),
        ])
        .encode()
    }

    /// SHA-256 of the version, info-hash, piece count and bitfield, each
    /// length-prefixed or fixed-width so no two states hash alike.
    fn checksum(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(FORMAT);
        hash.update(VERSION.to_be_bytes());
        hash.update((self.info_hash.len() as u64).to_be_bytes());
        hash.update(&self.info_hash);
        hash.update(u64::from(self.piece_count).to_be_bytes());
        hash.update(&self.verified);
        hash.finalize().into()
    }
}

/// Bytes set aside beside the resume file: far more than a save needs
/// (a temporary file of a few hundred bytes plus a folder entry), so it
/// fits on filesystems with large blocks too.
const RESERVE_BYTES: usize = 64 * 1024;

fn reserve_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".reserve");
    path.with_file_name(name)
}

/// Sets aside [`RESERVE_BYTES`] beside `path` for the save after the disk
/// fills up, unless it is there already. Best effort: on a disk that is
/// already full there is nothing to set aside.
pub(crate) fn reserve_space(path: &Path) {
    let reserve = reserve_path(path);
    if std::fs::metadata(&reserve).is_ok_and(|m| m.len() == RESERVE_BYTES as u64) {
        return;
    }
    if std::fs::write(&reserve, vec![0u8; RESERVE_BYTES]).is_err() {
        let _ = std::fs::remove_file(&reserve);
    }
}

/// Gives the reserved space back; whether there was any.
pub(crate) fn remove_reserve(path: &Path) -> bool {
    std::fs::remove_file(reserve_path(path)).is_ok()
}

/// Removes temporary files a killed process left beside `path`.
pub(crate) fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let mut prefix = name.to_os_string();
    prefix.push(TEMP_MARKER);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        if entry_name
            .as_encoded_bytes()
            .starts_with(prefix.as_encoded_bytes())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn decode(bytes: &[u8]) -> Result<ResumeState, &'static str> {
    if bytes.is_empty() {
        return Err("empty file");
    }
    let limits = bencode::Limits {
        max_depth: 2,
        max_values: 16,
    };
    let dict = bencode::decode(bytes, limits).map_err(|_| "not bencode")?;
    let field = |key| dict.get(key).ok_or("a field is missing");
    if field("format")?.as_bytes() != Some(FORMAT) {
        return Err("not a shoal resume file");
    }
    if field("version")?.as_int() != Some(VERSION) {
        return Err("unknown version");
    }
    let info_hash = field("info hash")?.as_bytes().ok_or("bad info hash")?;
    let piece_count = field("pieces")?
        .as_int()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or("bad piece count")?;
    let verified = field("verified")?.as_bytes().ok_or("bad bitfield")?;
    if verified.len() != piece_count.div_ceil(8) as usize {
        return Err("bitfield length does not match the piece count");
    }
    let spare = (8 - piece_count % 8) % 8;
    if verified
        .last()
        .is_some_and(|&b| b & ((1u16 << spare) - 1) as u8 != 0)
    {
        return Err("bits set past the last piece");
    }
    let state = ResumeState {
        info_hash: info_hash.to_vec(),
        piece_count,
        verified: verified.to_vec(),
        verified_count: verified.iter().map(|b| b.count_ones()).sum(),
    };
    if field("checksum")?.as_bytes() != Some(&state.checksum()[..]) {
        return Err("checksum mismatch");
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic_file::temp_path;

    fn state(pieces: u32) -> ResumeState {
        ResumeState {
            info_hash: vec![7; 32],
            piece_count: pieces,
            verified: vec![0; pieces.div_ceil(8) as usize],
            verified_count: 0,
        }
    }

    #[test]
    fn encode_decode_round_trip_and_bit_order() {
        let mut s = state(11);
        s.mark_verified(0);
        s.mark_verified(10);
        s.mark_verified(10);
        s.mark_verified(99);
        assert_eq!(s.verified_count(), 2);
        assert_eq!(s.bitfield(), &[0x80, 0x20]);
        assert_eq!(decode(&s.encode()), Ok(s.clone()));
        s.mark_unverified(0);
        assert_eq!(s.verified_count(), 1);
        assert!(!s.is_verified(0) && s.is_verified(10));
    }

    #[test]
    fn every_single_byte_change_is_caught() {
        let mut s = state(20);
        s.mark_verified(3);
        let good = s.encode();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(decode(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
        for len in 0..good.len() {
            assert!(decode(&good[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn spare_bits_must_be_zero() {
        let mut s = state(9);
        s.verified[1] = 0x01;
        s.verified_count = 1;
        assert_eq!(decode(&s.encode()), Err("bits set past the last piece"));
    }

    #[test]
    fn stale_temps_are_removed_and_the_state_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resume");
        state(3).save(&path).unwrap();
        std::fs::write(temp_path(&path, 99), b"half").unwrap();
        std::fs::write(dir.path().join("other"), b"keep").unwrap();
        remove_stale_temps(&path);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["other", "resume"]);
    }
}
