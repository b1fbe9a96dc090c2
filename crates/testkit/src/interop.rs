//! What the interop tests need of other BitTorrent clients: the libtorrent
//! driver (`tests/interop/lt_driver.py`) and a check that a client is
//! installed, and the command lines that run Transmission and aria2 in
//! tests. A missing client fails the test with an install hint; it is
//! never skipped.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::process::{free_port, Scene};

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

/// aria2c options for every role: peers only from the tracker, TCP on
/// `ip` only, no user configuration, a debug log for failures (in the
/// scene's logs as `aria2-ROLE.log`). aria2 opens each connection with an
/// MSE (encryption) handshake; shoal, which speaks plaintext only, resets
/// it and aria2 retries with a plain handshake a second later
/// (`--bt-require-crypto=false`, the default, allows that).
pub fn aria2c(scene: &Scene, role: &str, torrent: &Path, dir: &Path, ip: &str) -> Command {
    let mut cmd = Command::new("aria2c");
    cmd.arg("--no-conf=true")
        .arg(format!("--dir={}", dir.display()))
        .arg(format!("--listen-port={}", free_port()))
        // Binds every socket, the tracker client's included, to `ip`.
        .arg(format!("--interface={ip}"))
        .arg("--disable-ipv6=true")
        .arg("--enable-dht=false")
        .arg("--enable-dht6=false")
        .arg("--bt-enable-lpd=false")
        .arg("--enable-peer-exchange=false")
        .arg("--file-allocation=none")
        .arg("--summary-interval=0")
        .arg("--console-log-level=warn")
        .arg(format!(
            "--log={}",
            scene.log_path(&format!("aria2-{role}.log")).display()
        ))
        .arg("--log-level=debug")
        .arg(torrent);
    cmd
}

/// `transmission-cli` with its own configuration folder (and `HOME`), so it
/// neither reads nor writes the user's, and settings that keep it to plain
/// TCP on `ip` with peers only from the tracker, no rate limits.
/// `transmission-cli` never exits by itself; the caller stops it.
pub fn transmission_cli(scene: &Scene, role: &str, dir: &Path, ip: &str) -> Command {
    let config = scene.dir(&format!("transmission-{role}-config"));
    let port = free_port();
    let settings = serde_json::json!({
        "dht-enabled": false,
        "lpd-enabled": false,
        "pex-enabled": false,
        "utp-enabled": false,
        "port-forwarding-enabled": false,
        // The RPC server would otherwise take port 9091 in every instance.
        "rpc-enabled": false,
        "bind-address-ipv4": ip,
        "bind-address-ipv6": "::1",
        "peer-port": port,
        // 0: prefer plaintext, accept encrypted.
        "encryption": 0,
        "message-level": 3,
        "ratio-limit-enabled": false,
        "idle-seeding-limit-enabled": false,
    });
    fs::write(config.join("settings.json"), settings.to_string()).expect("write settings.json");
    let mut cmd = Command::new("transmission-cli");
    cmd.env("HOME", &config)
        .env("XDG_CONFIG_HOME", &config)
        .arg("--config-dir")
        .arg(&config)
        .arg("--download-dir")
        .arg(dir)
        .args(["--port", &port.to_string()])
        .arg("--no-portmap")
        .arg("--encryption-tolerated")
        .arg("--no-uplimit")
        .arg("--no-downlimit");
    cmd
}
