//! What every run of one invocation shares: random release data, a
//! publisher key, and one signed torrent per origin kind (the `web` one
//! lists the nginx origin in `url-list`; the `bt` one has no web seed).

use std::fs::File;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::procs::run;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// Name of the single-file release inside the torrent.
pub const RELEASE_NAME: &str = "release.bin";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginKind {
    /// A seeding BitTorrent peer of the implementation under test.
    Bt,
    /// nginx serving the file, listed as a BEP 19 web seed.
    Web,
}

impl OriginKind {
    pub fn name(self) -> &'static str {
        match self {
            OriginKind::Bt => "bt",
            OriginKind::Web => "web",
        }
    }
}

#[derive(Debug)]
pub struct Fixture {
    pub data_dir: PathBuf,
    pub sha256: [u8; 32],
    /// Publisher public key, hex.
    pub trust: String,
    pub piece_size: u64,
    torrents: Vec<(OriginKind, PathBuf)>,
}

impl Fixture {
    pub fn create(
        work: &Path,
        shoal: &Path,
        size: u64,
        piece_size: Option<u64>,
        tracker_url: &str,
        origin_ip: Ipv4Addr,
        kinds: &[OriginKind],
    ) -> Result<Fixture> {
        let data_dir = work.join("data");
        std::fs::create_dir_all(&data_dir)?;
        let path = data_dir.join(RELEASE_NAME);
        // Random bytes: nothing compresses or dedupes on the way.
        let mut random = File::open("/dev/urandom")?.take(size);
        let mut out = File::create(&path)?;
        std::io::copy(&mut random, &mut out)?;
        out.flush()?;
        let sha256 = sha256_file(&path)?;

        let key = work.join("publisher.key");
        let keygen = run(Command::new(shoal).arg("keygen").arg("--out").arg(&key))?;
        let trust = keygen.lines().next().unwrap_or_default().trim().to_owned();
        if trust.len() != 64 {
            bail!("shoal keygen printed {keygen:?}, not a public key");
        }

        let mut torrents = Vec::new();
        let mut actual_piece_size = 0;
        for &kind in kinds {
            let torrent = work.join(format!("{}.torrent", kind.name()));
            let mut cmd = Command::new(shoal);
            cmd.arg("publish")
                .arg(&path)
                .arg("--key")
                .arg(&key)
                .args(["--tracker", tracker_url])
                .arg("--out")
                .arg(&torrent)
                .arg("--json");
            if kind == OriginKind::Web {
                // Ends in '/': clients append the release name (BEP 19).
                cmd.args(["--web-seed", &format!("http://{origin_ip}/")]);
            }
            if let Some(piece_size) = piece_size {
                cmd.args(["--piece-size", &piece_size.to_string()]);
            }
            let json: serde_json::Value =
                serde_json::from_str(&run(&mut cmd)?).context("shoal publish --json output")?;
            actual_piece_size = json["piece_size"].as_u64().unwrap_or(0);
            torrents.push((kind, torrent));
        }
        Ok(Fixture {
            data_dir,
            sha256,
            trust,
            piece_size: actual_piece_size,
            torrents,
        })
    }

    pub fn torrent(&self, kind: OriginKind) -> &Path {
        self.torrents
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p.as_path())
            .unwrap_or_else(|| panic!("no torrent made for origin {kind:?}"))
    }
}

pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}
