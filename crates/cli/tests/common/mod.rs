//! Helpers shared by the CLI integration tests: running commands with
//! failure messages that say what ran and why it failed, and deterministic
//! fixture data.

// Every test crate compiles this module but uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// A `Command` for the `shoal` binary built alongside these tests.
pub fn shoal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
}

/// Runs `cmd`, panicking with its command line, status, stderr and stdout
/// unless it exits successfully.
pub fn run(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if !output.status.success() {
        panic!("{}", describe_failure(cmd, &output, "command failed"));
    }
    output
}

/// Runs `cmd` like [`run`] and parses its stdout as one JSON value.
pub fn run_json(cmd: &mut Command) -> Value {
    let output = run(cmd);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{}",
            describe_failure(cmd, &output, &format!("stdout is not JSON ({e})"))
        )
    })
}

fn describe_failure(cmd: &Command, output: &Output, what: &str) -> String {
    format!(
        "{what}: {cmd:?}\nstatus: {}\n--- stderr ---\n{}\n--- stdout ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout),
    )
}

/// `object[key]`, panicking (with the whole object) when the key is absent,
/// so that a missing field cannot pass for an expected `null`.
pub fn field<'a>(object: &'a Value, key: &str) -> &'a Value {
    object
        .get(key)
        .unwrap_or_else(|| panic!("no {key:?} in {object:#}"))
}

/// A `files` array of `{"path", "size"}` objects as comparable pairs.
pub fn file_list(files: &Value) -> Vec<(String, u64)> {
    let entries = files
        .as_array()
        .unwrap_or_else(|| panic!("files is not an array: {files:#}"));
    entries
        .iter()
        .map(|entry| {
            let path = field(entry, "path").as_str();
            let size = field(entry, "size").as_u64();
            match (path, size) {
                (Some(path), Some(size)) => (path.to_owned(), size),
                _ => panic!("malformed file entry: {entry:#}"),
            }
        })
        .collect()
}

/// Writes `len` pseudo-random bytes determined by `seed` to `path`, creating
/// parent directories. Random rather than constant content makes every piece
/// hash distinct, so misplaced pieces cannot verify by accident.
pub fn write_random_file(path: &Path, len: u64, seed: u64) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    }
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

/// SplitMix64: tiny, well distributed, and stable across platforms and crate
/// versions, which fixture data must be.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn python() -> String {
    std::env::var("SHOAL_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_owned())
}

/// A `Command` running the libtorrent driver, after checking (once per test
/// process) that the interpreter can import libtorrent.
pub fn lt_driver() -> Command {
    static IMPORT_CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let python = python();
    let import = IMPORT_CHECK.get_or_init(|| {
        let output = Command::new(&python)
            .args(["-c", "import libtorrent"])
            .output()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    });
    if let Err(reason) = import {
        panic!(
            "the interop tests need Python 3 with libtorrent 2.x bindings, \
             but `{python} -c 'import libtorrent'` failed:\n{reason}\n\
             Run scripts/test.sh, which installs python3-libtorrent, or point \
             SHOAL_TEST_PYTHON at a Python that has it."
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/lt_driver.py");
    let mut cmd = Command::new(python);
    cmd.arg(script);
    cmd
}
