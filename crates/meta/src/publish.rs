//! The publisher's whole job in one call: hash a release, build its
//! torrent, sign its manifest (the trust chain in docs/architecture.md) and encode the
//! signed torrent. `shoal publish` and the demo both publish through here,
//! so a demo torrent is signed exactly like a real one.

use ed25519_dalek::SigningKey;

use crate::create::{create, CreateError, CreateSettings, NewTorrent, Source};
use crate::signature::{Manifest, SignatureBlock};

/// What the publisher signs beyond what the torrent itself fixes (its v2
/// info-hash and name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    pub version: String,
    /// Unix seconds.
    pub created_unix: i64,
    /// Web origins (`https://host[:port]`) allowed to hand the release to
    /// an agent.
    pub origins: Vec<String>,
    /// The publisher's ceiling on origin copies per swarm, in thousandths.
    pub max_origin_millicopies: Option<u32>,
}

/// Hashes `source`, builds its torrent and returns the torrent file signed
/// by `key`. `progress` hears of hashed bytes.
pub fn create_signed(
    source: &Source,
    settings: &CreateSettings,
    progress: &(dyn Fn(u64) + Sync),
    release: &ReleaseInfo,
    key: &SigningKey,
) -> Result<Vec<u8>, CreateError> {
    Ok(create(source, settings, progress)?.encode_signed(release, key))
}

impl NewTorrent {
    /// The manifest of this torrent for `release`.
    pub fn manifest(&self, release: &ReleaseInfo) -> Manifest {
        Manifest {
            info_hash_v2: self.info_hash_v2(),
            name: self.name.clone(),
            version: release.version.clone(),
            created: release.created_unix,
            origins: release.origins.clone(),
            max_origin_millicopies: release.max_origin_millicopies,
        }
    }

    /// The whole `.torrent` file, its manifest signed by `key`.
    pub fn encode_signed(&self, release: &ReleaseInfo, key: &SigningKey) -> Vec<u8> {
        self.encode(Some(&SignatureBlock::sign(&self.manifest(release), key)))
    }
}
