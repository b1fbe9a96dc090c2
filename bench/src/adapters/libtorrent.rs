//! libtorrent 2.0 through tests/interop/lt_driver.py (Debian's
//! python3-libtorrent): the same driver the interop tests use, bound to the
//! host's namespace address with `--listen-ip`.

use std::ffi::OsString;
use std::path::PathBuf;

use super::spec::{os, Completion, Implementation, LeechSpec, SeedSpec, PEER_PORT};

#[derive(Debug)]
pub struct Libtorrent {
    python: PathBuf,
    driver: PathBuf,
}

impl Libtorrent {
    pub fn new(python: PathBuf, driver: PathBuf) -> Libtorrent {
        Libtorrent { python, driver }
    }
}

impl Libtorrent {
    /// `lt_driver.py ROLE TORRENT DIR` bound to the host's address.
    fn driver_cmd(
        &self,
        role: &str,
        torrent: &dyn AsRef<std::ffi::OsStr>,
        dir: &dyn AsRef<std::ffi::OsStr>,
        ip: impl ToString,
        timeout_s: impl ToString,
    ) -> Vec<OsString> {
        let (ip, port, timeout) = (ip.to_string(), PEER_PORT.to_string(), timeout_s.to_string());
        os(&[
            &self.python,
            &self.driver,
            &role,
            torrent,
            dir,
            &"--listen-ip",
            &ip,
            &"--listen-port",
            &port,
            &"--timeout",
            &timeout,
        ])
    }
}

impl Implementation for Libtorrent {
    fn name(&self) -> &'static str {
        "libtorrent"
    }

    fn seed_cmd(&self, spec: &SeedSpec) -> Vec<OsString> {
        self.driver_cmd(
            "seed",
            &spec.torrent,
            &spec.data_dir,
            spec.ip,
            spec.timeout_s,
        )
    }

    fn seed_ready(&self, line: &str) -> bool {
        line.contains("\"listening\"")
    }

    fn leech_cmd(&self, spec: &LeechSpec) -> Vec<OsString> {
        let mut cmd = self.driver_cmd(
            "download",
            &spec.torrent,
            &spec.out_dir,
            spec.ip,
            spec.timeout_s,
        );
        cmd.push("--keep-seeding".into());
        cmd
    }

    fn parse_completion(&self, line: &str) -> Option<Completion> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        value.get("complete")?.as_bool()?.then(Completion::default)
    }
}
