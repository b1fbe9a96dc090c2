//! Deterministic release content: the same seed gives the same bytes on
//! every platform and with every crate version, so a failure reproduces.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `len` pseudo-random bytes determined by `seed` to `path`, creating
/// parent directories. Random rather than constant content makes every piece
/// hash distinct, so misplaced pieces cannot verify by accident.
pub fn write_random_file(path: &Path, len: u64, seed: u64) {
    create_parent(path);
    let file =
        fs::File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let mut out = BufWriter::new(file);
    let mut state = seed;
    let mut remaining = len;
    while remaining > 0 {
        let word = splitmix64(&mut state).to_le_bytes();
        let take = remaining.min(word.len() as u64);
        out.write_all(&word[..take as usize])
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        remaining -= take;
    }
    out.flush()
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Writes each `(relative path, length)` of `files` under `root`, each file
/// with its own seed derived from `seed`.
pub fn write_tree(root: &Path, files: &[(&str, u64)], seed: u64) {
    for (index, (relative, len)) in (0u64..).zip(files) {
        write_random_file(&root.join(relative), *len, seed.wrapping_add(index));
    }
}

/// Writes `len` bytes of a cheap pattern that differs per `seed` and per
/// offset (and between 2 KiB stretches), creating parent directories: for
/// the engine's storage and web seed tests, whose files are small.
pub fn write_pattern_file(path: &Path, len: usize, seed: u8) {
    create_parent(path);
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect();
    fs::write(path, data).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn create_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    }
}

/// SplitMix64: tiny, well distributed, and stable across platforms and crate
/// versions, which fixture data must be.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
