//! shoal itself: `shoal seed` as the origin, `shoal get --seed` as a peer,
//! both with `--json` (see the README's JSON lines).

use std::ffi::OsString;
use std::path::PathBuf;

use super::spec::{os, Completion, Implementation, LeechSpec, SeedSpec, PEER_PORT};

#[derive(Debug)]
pub struct Shoal {
    bin: PathBuf,
}

impl Shoal {
    pub fn new(bin: PathBuf) -> Shoal {
        Shoal { bin }
    }
}

impl Implementation for Shoal {
    fn name(&self) -> &'static str {
        "shoal"
    }

    fn seed_cmd(&self, spec: &SeedSpec) -> Vec<OsString> {
        let listen = format!("{}:{PEER_PORT}", spec.ip);
        os(&[
            &self.bin,
            &"seed",
            &spec.torrent,
            &"--data",
            &spec.data_dir,
            &"--listen",
            &listen,
            &"--trust",
            &spec.trust,
            &"--json",
        ])
    }

    fn seed_ready(&self, line: &str) -> bool {
        // `started` is printed once the data is checked and peers are accepted.
        event(line).as_deref() == Some("started")
    }

    fn leech_cmd(&self, spec: &LeechSpec) -> Vec<OsString> {
        let listen = format!("{}:{PEER_PORT}", spec.ip);
        os(&[
            &self.bin,
            &"get",
            &spec.torrent,
            &"--out",
            &spec.out_dir,
            &"--listen",
            &listen,
            &"--trust",
            &spec.trust,
            &"--seed",
            &"--json",
        ])
    }

    fn parse_completion(&self, line: &str) -> Option<Completion> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        if value.get("event")?.as_str()? != "complete" {
            return None;
        }
        Some(Completion {
            bytes_from_peers: value.get("bytes_from_peers").and_then(|v| v.as_u64()),
            bytes_from_origin: value.get("bytes_from_origin").and_then(|v| v.as_u64()),
        })
    }
}

fn event(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(value.get("event")?.as_str()?.to_owned())
}
