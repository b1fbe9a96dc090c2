//! What the interop tests need of other BitTorrent clients: the libtorrent
//! driver (`tests/interop/lt_driver.py`) and a check that a client is
//! installed. A missing client fails the test with an install hint; it is
//! never skipped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

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

/// Panics with an install hint unless `program` runs with `--version`.
pub fn require_program(program: &str, package: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "these interop tests need `{program}` (Debian package {package}); \
         run scripts/test.sh, which installs it"
    );
}
