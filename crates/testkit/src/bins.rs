//! The workspace's own programs (`shoal`, `shoal-tracker`), found where
//! cargo built them for the running test.
//!
//! Cargo tells an integration test where its package's binaries are only
//! at compile time (`env!("CARGO_BIN_EXE_…")`), which a library cannot
//! read on the test's behalf. At run time a test is
//! `target/PROFILE/deps/NAME-HASH` and the binaries are in
//! `target/PROFILE`, built before the tests of the package that owns them
//! (and by `cargo test --workspace` before any test).

use std::path::PathBuf;
use std::process::Command;

/// A `Command` for the `shoal` binary.
pub fn shoal() -> Command {
    Command::new(cargo_bin("shoal"))
}

/// A `Command` for the `shoal-tracker` binary.
pub fn shoal_tracker() -> Command {
    Command::new(cargo_bin("shoal-tracker"))
}

/// The path of the workspace binary `name`, panicking with what to run
/// when it has not been built.
pub fn cargo_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("cannot find this test: {e}"));
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| panic!("{} is not under target/PROFILE/deps", exe.display()));
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} missing: run `cargo test --workspace` (it builds the workspace \
         binaries) or `cargo build --bin {name}` first",
        path.display()
    );
    path
}
