//! A small release signed as `shoal publish` signs it, made in-process
//! (no `shoal` binary), for tests of what reads signed torrents.

use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use meta::create::{self, CreateSettings};
use meta::{Manifest, SignatureBlock};

use crate::temp::TempDir;

/// Seconds since 1970, as manifests and announces count time.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A small hybrid release signed as `shoal publish` signs it.
pub fn signed_torrent(key: &SigningKey) -> Vec<u8> {
    let dir = TempDir::new();
    let file = dir.path().join("release.bin");
    let payload: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, payload).expect("write the release file");
    let source = create::scan(&file).expect("scan the release");
    let now = unix_now();
    let settings = CreateSettings {
        creation_date: Some(now),
        threads: 1,
        ..CreateSettings::default()
    };
    let torrent = create::create(&source, &settings, &|_| {}).expect("create the torrent");
    let manifest = Manifest {
        info_hash_v2: torrent.info_hash_v2(),
        name: torrent.name.clone(),
        version: "1.0".into(),
        created: now,
        origins: Vec::new(),
        max_origin_millicopies: None,
    };
    torrent.encode(Some(&SignatureBlock::sign(&manifest, key)))
}
