//! A published single-file release for tests that run `shoal seed` and
//! `shoal get` on loopback: the original, its signed torrent, the
//! publisher's key, and the command lines both sides need.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::bins::shoal;
use crate::command::run;
use crate::data::write_random_file;

/// A published single-file release and its scratch space: the original
/// under `seed_dir/NAME`, the signed torrent, the publisher's public key.
#[derive(Debug)]
pub struct Release {
    pub tmp: TempDir,
    pub name: String,
    pub seed_dir: PathBuf,
    pub torrent: PathBuf,
    pub public_key: String,
}

impl Release {
    pub fn publish(name: &str, size: u64, piece_size: u64, tracker: &str, seed: u64) -> Release {
        let tmp = tempfile::tempdir().unwrap();
        let seed_dir = tmp.path().join("seed");
        write_random_file(&seed_dir.join(name), size, seed);
        let key = tmp.path().join("publisher.key");
        let keygen = run(shoal().arg("keygen").arg("--out").arg(&key));
        let public_key = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();
        let torrent = tmp.path().join("release.torrent");
        run(shoal()
            .arg("publish")
            .arg(seed_dir.join(name))
            .arg("--key")
            .arg(&key)
            .args(["--tracker", tracker])
            .arg("--piece-size")
            .arg(piece_size.to_string())
            .arg("--out")
            .arg(&torrent));
        Release {
            tmp,
            name: name.to_owned(),
            seed_dir,
            torrent,
            public_key,
        }
    }

    pub fn original(&self) -> PathBuf {
        self.seed_dir.join(&self.name)
    }

    /// A fresh, empty download folder.
    pub fn out_dir(&self, label: &str) -> PathBuf {
        let dir = self.tmp.path().join(label);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `shoal seed` of the original, with `extra` arguments.
    pub fn seed(&self, extra: &[&str]) -> Command {
        let mut cmd = shoal();
        cmd.arg("seed")
            .arg(&self.torrent)
            .arg("--data")
            .arg(&self.seed_dir);
        self.common_args(&mut cmd);
        cmd.args(extra);
        cmd
    }

    /// `shoal get` into `out`, with `extra` arguments.
    pub fn get(&self, out: &Path, extra: &[&str]) -> Command {
        let mut cmd = shoal();
        cmd.arg("get").arg(&self.torrent).arg("--out").arg(out);
        self.common_args(&mut cmd);
        cmd.args(extra);
        cmd
    }

    /// Loopback, JSON events, the publisher's key, and connection logs
    /// (why peers were dropped) on stderr for failure reports.
    pub fn common_args(&self, cmd: &mut Command) {
        cmd.args(["--listen", "127.0.0.1:0", "--json", "--trust"])
            .arg(&self.public_key)
            .env("RUST_LOG", "engine=debug,warn");
    }

    /// Asserts that `out/NAME` holds exactly the original bytes.
    pub fn assert_downloaded(&self, out: &Path, expected: &[u8], who: &str) {
        let path = out.join(&self.name);
        let got = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{who}: cannot read {}: {e}", path.display()));
        assert_eq!(
            got.len(),
            expected.len(),
            "{who}: size of {}",
            path.display()
        );
        if let Some(at) = got.iter().zip(expected).position(|(a, b)| a != b) {
            panic!(
                "{who}: {} differs from the original at byte {at}",
                path.display()
            );
        }
    }
}
