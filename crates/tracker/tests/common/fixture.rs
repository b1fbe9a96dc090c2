//! What the tests that run whole trackers share: a signed release, a
//! runtime per test, and the small helpers of announce queries.

// Each test binary uses only part of this.
#![allow(dead_code)]

use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use meta::create::{self, CreateSettings};
use meta::{Manifest, SignatureBlock};

use super::TempDir;

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
    };
    torrent.encode(Some(&SignatureBlock::sign(&manifest, key)))
}

/// Runs a test body on a runtime of its own. A body that panics leaves
/// trackers running; dropping the runtime would then drop their
/// PostgreSQL clients inside async code, which panics again and buries
/// the first message, so the runtime is leaked instead (the test failed;
/// its process ends soon).
pub fn block_on(test: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the tokio runtime");
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| runtime.block_on(test))) {
        std::mem::forget(runtime);
        resume_unwind(panic);
    }
}

/// Percent-escapes every byte, as clients send info-hashes and peer ids.
pub fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}
