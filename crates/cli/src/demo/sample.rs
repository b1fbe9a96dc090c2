//! The publisher's side of the demo: a sample release folder, and its
//! signed hybrid torrent naming the demo's tracker and origin.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use meta::create::{self, CreateSettings};
use meta::publish::{create_signed, ReleaseInfo};

/// How many files the sample release has.
pub const FILES: usize = 3;

/// Writes a folder of a few incompressible-looking files, `size` bytes in all.
pub fn write_sample_release(root: &Path, size: u64) -> Result<()> {
    let files: [(&str, u64); FILES] = [
        ("setup.bin", size / 2),
        ("data/part-1.bin", size / 4),
        ("data/part-2.bin", size - size / 2 - size / 4),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for (name, length) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(root))?;
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        let mut left = length;
        while left > 0 {
            // xorshift: cheap, incompressible-looking sample bytes.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let word = state.to_le_bytes();
            let take = left.min(8) as usize;
            out.write_all(&word[..take])?;
            left -= take as u64;
        }
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// A signed torrent and how making it went.
#[derive(Debug)]
pub struct Published {
    pub bytes: Vec<u8>,
    pub torrent: meta::Torrent,
    /// Hashing speed, bytes/s.
    pub hash_rate: f64,
}

/// Makes the signed hybrid torrent of `release`: the demo tracker's
/// announce URL, the origin as web seed (BEP 19) and in the manifest.
pub fn publish(
    release: &Path,
    key: &SigningKey,
    announce: &str,
    origin: &str,
    created_unix: i64,
) -> Result<Published> {
    let started = Instant::now();
    let source = create::scan(release)?;
    let settings = CreateSettings {
        trackers: vec![announce.to_owned()],
        web_seeds: vec![format!("{origin}/")],
        ..CreateSettings::default()
    };
    let release = ReleaseInfo {
        version: "1.0.0".into(),
        created_unix,
        origins: vec![origin.to_owned()],
        max_origin_millicopies: None,
    };
    let bytes = create_signed(&source, &settings, &|_| {}, &release, key)?;
    let seconds = started.elapsed().as_secs_f64();
    let torrent = meta::Torrent::from_bytes(&bytes).context("the demo torrent does not parse")?;
    Ok(Published {
        hash_rate: torrent.total_size() as f64 / seconds.max(1e-6),
        bytes,
        torrent,
    })
}

/// What a reader of a copy of `bytes` with one bit of `info` flipped (the
/// first v1 piece hash) makes of its signature.
pub fn tampered_verdict(bytes: &[u8]) -> Result<String> {
    let mut tampered = bytes.to_vec();
    let at = find(&tampered, b"6:pieces").context("no piece hashes in the demo torrent")?;
    let colon = at + 8 + find(&tampered[at + 8..], b":").context("malformed demo torrent")?;
    tampered[colon + 1] ^= 1;
    Ok(match meta::Torrent::from_bytes(&tampered) {
        Ok(torrent) => torrent.signature.as_str().to_owned(),
        Err(e) => format!("refused ({e})"),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
