//! The publisher's signature (docs/architecture.md, "The trust chain").
//!
//! A torrent carries, outside `info` so the info-hash does not change and
//! other clients ignore it, a top-level dictionary
//! `shoal = { publisher: 32-byte ed25519 key, signed: bencoded manifest, sig: 64 bytes }`.
//! The manifest names the v2 info-hash, the release name and version, when
//! it was made, and the web origins allowed to hand it to an agent. The v2
//! info-hash pins the merkle roots, and so every byte of the release.

use bencode::{Bencode, Limits, Value};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::merkle::Hash256;

/// Prefixed to the manifest bytes before signing, so a shoal signature can
/// never be replayed as a signature over anything else made with the key.
const SIGNING_CONTEXT: &[u8] = b"shoal manifest v1\0";

/// Caps the manifest: it is a handful of short fields.
const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// What the publisher signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub info_hash_v2: Hash256,
    pub name: String,
    pub version: String,
    /// Unix seconds.
    pub created: i64,
    /// Web origins (`https://host[:port]`) allowed to hand this release to an agent.
    pub origins: Vec<String>,
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        Bencode::dict([
            ("created", Bencode::int(self.created)),
            ("info hash v2", Bencode::bytes(self.info_hash_v2.to_vec())),
            ("name", Bencode::string(&self.name)),
            (
                "origins",
                Bencode::List(self.origins.iter().map(|o| Bencode::string(o)).collect()),
            ),
            ("version", Bencode::string(&self.version)),
        ])
        .encode()
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(format!(
                "manifest is {} bytes, more than {MAX_MANIFEST_BYTES}",
                bytes.len()
            ));
        }
        let value =
            bencode::decode(bytes, Limits::default()).map_err(|e| format!("manifest: {e}"))?;
        let text = |key: &str| -> Result<String, String> {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("manifest has no text `{key}`"))
        };
        let info_hash_v2 = value
            .get("info hash v2")
            .and_then(Value::as_bytes)
            .and_then(|b| Hash256::try_from(b).ok())
            .ok_or("manifest has no 32-byte `info hash v2`")?;
        let created = value
            .get("created")
            .and_then(Value::as_int)
            .ok_or("manifest has no integer `created`")?;
        let origins = value
            .get("origins")
            .and_then(Value::as_list)
            .ok_or("manifest has no `origins` list")?
            .iter()
            .map(|o| {
                o.as_str()
                    .map(str::to_owned)
                    .ok_or("manifest origin is not text")
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Manifest {
            info_hash_v2,
            name: text("name")?,
            version: text("version")?,
            created,
            origins,
        })
    }
}

/// The `shoal` dictionary as found in, or to be put into, a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureBlock {
    pub publisher: [u8; 32],
    /// The manifest bytes exactly as signed.
    pub signed: Vec<u8>,
    pub sig: [u8; 64],
}

impl SignatureBlock {
    pub fn sign(manifest: &Manifest, key: &SigningKey) -> SignatureBlock {
        let signed = manifest.encode();
        let sig = key.sign(&signing_input(&signed)).to_bytes();
        SignatureBlock {
            publisher: key.verifying_key().to_bytes(),
            signed,
            sig,
        }
    }

    pub fn to_bencode(&self) -> Bencode {
        Bencode::dict([
            ("publisher", Bencode::bytes(self.publisher.to_vec())),
            ("sig", Bencode::bytes(self.sig.to_vec())),
            ("signed", Bencode::bytes(self.signed.clone())),
        ])
    }

    /// Reads the block's shape; whether it verifies is [`SignatureBlock::check`]'s job.
    pub fn from_value(value: &Value<'_>) -> Result<SignatureBlock, String> {
        let field = |key: &str, len: usize| -> Result<&[u8], String> {
            value
                .get(key)
                .and_then(Value::as_bytes)
                .filter(|b| len == 0 || b.len() == len)
                .ok_or_else(|| format!("`shoal.{key}` is missing or malformed"))
        };
        let mut publisher = [0u8; 32];
        publisher.copy_from_slice(field("publisher", 32)?);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(field("sig", 64)?);
        Ok(SignatureBlock {
            publisher,
            signed: field("signed", 0)?.to_vec(),
            sig,
        })
    }

    /// Verifies the signature strictly and that the manifest describes this
    /// torrent (same v2 info-hash and name).
    pub fn check(&self, info_hash_v2: Option<&Hash256>, name: &str) -> SignatureStatus {
        let invalid = |reason: String| SignatureStatus::Invalid {
            publisher: Some(self.publisher),
            reason,
        };
        let key = match VerifyingKey::from_bytes(&self.publisher) {
            Ok(key) => key,
            Err(_) => return invalid("the publisher key is not a valid ed25519 key".into()),
        };
        let sig = Signature::from_bytes(&self.sig);
        if key
            .verify_strict(&signing_input(&self.signed), &sig)
            .is_err()
        {
            return invalid("the signature does not match the manifest".into());
        }
        let manifest = match Manifest::decode(&self.signed) {
            Ok(manifest) => manifest,
            Err(reason) => return invalid(reason),
        };
        match info_hash_v2 {
            None => return invalid("a v1-only torrent cannot carry a shoal signature".into()),
            Some(hash) if *hash != manifest.info_hash_v2 => {
                return invalid(
                    "the signed info-hash is not this torrent's: its `info` was changed".into(),
                )
            }
            Some(_) => {}
        }
        if manifest.name != name {
            return invalid(format!(
                "the signed name {:?} is not the torrent's {name:?}",
                manifest.name
            ));
        }
        SignatureStatus::Valid {
            publisher: self.publisher,
            manifest,
        }
    }
}

fn signing_input(signed: &[u8]) -> Vec<u8> {
    [SIGNING_CONTEXT, signed].concat()
}

/// Whether and by whom a torrent is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    Absent,
    Valid {
        publisher: [u8; 32],
        manifest: Manifest,
    },
    Invalid {
        /// The claimed publisher, when the block was readable.
        publisher: Option<[u8; 32]>,
        reason: String,
    },
}

impl SignatureStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            SignatureStatus::Absent => "absent",
            SignatureStatus::Valid { .. } => "valid",
            SignatureStatus::Invalid { .. } => "invalid",
        }
    }

    pub fn publisher(&self) -> Option<&[u8; 32]> {
        match self {
            SignatureStatus::Absent => None,
            SignatureStatus::Valid { publisher, .. } => Some(publisher),
            SignatureStatus::Invalid { publisher, .. } => publisher.as_ref(),
        }
    }

    pub fn manifest(&self) -> Option<&Manifest> {
        match self {
            SignatureStatus::Valid { manifest, .. } => Some(manifest),
            _ => None,
        }
    }

    /// Valid and made by one of `keys`.
    pub fn is_trusted_by(&self, keys: &[[u8; 32]]) -> bool {
        matches!(self, SignatureStatus::Valid { publisher, .. } if keys.contains(publisher))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn manifest() -> Manifest {
        Manifest {
            info_hash_v2: [7; 32],
            name: "setup.exe".into(),
            version: "1.2.3".into(),
            created: 1_700_000_000,
            origins: vec!["https://downloads.example.com".into()],
        }
    }

    #[test]
    fn a_signed_manifest_verifies_and_decodes() {
        let block = SignatureBlock::sign(&manifest(), &key(1));
        let status = block.check(Some(&[7; 32]), "setup.exe");
        assert_eq!(status.manifest(), Some(&manifest()));
        assert!(status.is_trusted_by(&[key(1).verifying_key().to_bytes()]));
        assert!(!status.is_trusted_by(&[key(2).verifying_key().to_bytes()]));
    }

    #[test]
    fn any_change_invalidates() {
        let block = SignatureBlock::sign(&manifest(), &key(1));
        assert_eq!(block.check(Some(&[8; 32]), "setup.exe").as_str(), "invalid");
        assert_eq!(block.check(Some(&[7; 32]), "other.exe").as_str(), "invalid");
        assert_eq!(block.check(None, "setup.exe").as_str(), "invalid");
        let mut tampered = block.clone();
        *tampered.signed.last_mut().unwrap() ^= 1;
        assert_eq!(
            tampered.check(Some(&[7; 32]), "setup.exe").as_str(),
            "invalid"
        );
        let mut swapped = block.clone();
        swapped.publisher = key(2).verifying_key().to_bytes();
        assert_eq!(
            swapped.check(Some(&[7; 32]), "setup.exe").as_str(),
            "invalid"
        );
    }

    #[test]
    fn block_round_trips_through_bencode() {
        let block = SignatureBlock::sign(&manifest(), &key(3));
        let encoded = block.to_bencode().encode();
        let value = bencode::decode(&encoded, Limits::default()).unwrap();
        assert_eq!(SignatureBlock::from_value(&value).unwrap(), block);
        let broken = bencode::decode(b"d9:publisher3:abce", Limits::default()).unwrap();
        assert!(SignatureBlock::from_value(&broken)
            .unwrap_err()
            .contains("shoal.publisher"));
    }
}
