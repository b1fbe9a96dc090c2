//! The publisher's secret key on disk: one line of hex (the 32-byte ed25519
//! seed) after a comment, readable only by its owner (0600 on Unix, a
//! protected one-entry ACL on Windows: `engine::owner_only`).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use engine::owner_only::{self, Creation};

const HEADER: &str =
    "# shoal publisher secret key: keep it private; anyone holding it can sign releases as you\n";

pub fn write_new(path: &Path, key: &SigningKey, overwrite: bool) -> Result<()> {
    let creation = if overwrite {
        Creation::Replace
    } else {
        Creation::New
    };
    let mut file = owner_only::create_file(path, creation).with_context(|| {
        if path.exists() && !overwrite {
            format!(
                "{} already exists; pass --force to replace it",
                path.display()
            )
        } else {
            format!("cannot create key file {}", path.display())
        }
    })?;
    writeln!(file, "{HEADER}{}", hex::encode(key.to_bytes()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write key file {}", path.display()))
}

pub fn read(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read key file {} (make one with `shoal keygen --out FILE`)",
            path.display()
        )
    })?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let mut seed = [0u8; 32];
    if hex::decode_to_slice(line, &mut seed).is_err() {
        bail!(
            "{} is not a shoal key file (expected 64 hex digits)",
            path.display()
        );
    }
    Ok(SigningKey::from_bytes(&seed))
}

/// Parses a public key given as 64 hex digits (`--trust`).
pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    text.parse::<meta::PublisherKey>()
        .map(meta::PublisherKey::to_bytes)
        .map_err(|e| e.to_string())
}
