//! What a publisher's upload must be to become a release: a torrent whose
//! shoal signature verifies under the key the operator registered for
//! that publisher. Pure: bytes in, a release to store or a refusal out.

use meta::{SignatureStatus, Torrent};
use thiserror::Error;

use crate::store::{NewRelease, Publisher};

/// Largest torrent file accepted for registration: the one limit every
/// shoal crate applies to a torrent ([`meta::MAX_TORRENT_BYTES`]), as a
/// body length.
pub const MAX_TORRENT_BYTES: usize = meta::MAX_TORRENT_BYTES as usize;

/// Why a registration was refused; the publisher's to fix.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationError {
    #[error("the torrent is larger than {MAX_TORRENT_BYTES} bytes")]
    TooLarge,
    #[error("not a valid torrent: {0}")]
    NotATorrent(String),
    #[error("the torrent is not signed: sign it with `shoal publish --key` using the key registered for publisher {0:?}")]
    Unsigned(String),
    #[error("the torrent's signature does not verify ({0}): publish it again")]
    BadSignature(String),
    #[error("the torrent is signed by key {signed_by}, not by the key registered for publisher {publisher:?}")]
    WrongKey {
        publisher: String,
        signed_by: String,
    },
}

/// Checks `torrent` for `publisher` and returns the release to store.
pub fn check_release(
    torrent: &[u8],
    publisher: &Publisher,
    now_unix: i64,
) -> Result<NewRelease, RegistrationError> {
    if torrent.len() > MAX_TORRENT_BYTES {
        return Err(RegistrationError::TooLarge);
    }
    let parsed =
        Torrent::from_bytes(torrent).map_err(|e| RegistrationError::NotATorrent(e.to_string()))?;
    match &parsed.signature {
        SignatureStatus::Absent => return Err(RegistrationError::Unsigned(publisher.name.clone())),
        SignatureStatus::Invalid { reason, .. } => {
            return Err(RegistrationError::BadSignature(reason.clone()))
        }
        SignatureStatus::Valid { publisher: key, .. } if *key != publisher.key => {
            return Err(RegistrationError::WrongKey {
                publisher: publisher.name.clone(),
                signed_by: hex::encode(key),
            })
        }
        SignatureStatus::Valid { .. } => {}
    }
    let truncated_v2 = parsed.info_hashes.v2.map(|h| {
        let mut short = [0u8; 20];
        short.copy_from_slice(&h[..20]);
        short
    });
    let (swarm, alias) = match (parsed.info_hashes.v1, truncated_v2) {
        (Some(v1), v2) => (v1, v2),
        (None, Some(v2)) => (v2, None),
        (None, None) => return Err(RegistrationError::NotATorrent("no info-hash".into())),
    };
    Ok(NewRelease {
        publisher: publisher.id,
        name: parsed.name.clone(),
        swarm,
        alias,
        size: parsed.total_size(),
        torrent: torrent.to_vec(),
        registered_unix: now_unix,
    })
}
