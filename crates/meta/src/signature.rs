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

/// Bounds on the publisher's ceiling on origin copies, in thousandths of
/// a copy: from 0.001 to 1,000 copies of the release.
pub const ORIGIN_CEILING_MILLICOPIES: std::ops::RangeInclusive<u32> = 1..=1_000_000;

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
    /// The most the origin should send to one swarm, in thousandths of a
    /// copy of the release (1500 = 1.5 copies); peers still use the origin
    /// beyond it when no peer can supply them. Optional: manifests signed
    /// before it existed have none, and still verify.
    pub max_origin_millicopies: Option<u32>,
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let mut fields = vec![
            ("created", Bencode::int(self.created)),
            ("info hash v2", Bencode::bytes(self.info_hash_v2.to_vec())),
            ("name", Bencode::string(&self.name)),
            (
                "origins",
                Bencode::List(self.origins.iter().map(|o| Bencode::string(o)).collect()),
            ),
            ("version", Bencode::string(&self.version)),
        ];
        // Absent unless set, so a manifest without it encodes as before.
        if let Some(ceiling) = self.max_origin_millicopies {
            fields.push((CEILING_KEY, Bencode::int(i64::from(ceiling))));
        }
        Bencode::dict(fields).encode()
    }

    /// The ceiling in bytes for a release of `release_bytes`, if set.
    pub fn max_origin_bytes(&self, release_bytes: u64) -> Option<u64> {
        self.max_origin_millicopies
            .map(|milli| release_bytes.saturating_mul(u64::from(milli)) / 1000)
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
        let max_origin_millicopies = match value.get(CEILING_KEY) {
            None => None,
            Some(v) => Some(
                v.as_int()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| ORIGIN_CEILING_MILLICOPIES.contains(n))
                    .ok_or_else(|| {
                        format!(
                            "manifest `{CEILING_KEY}` must be an integer from {} to {}",
                            ORIGIN_CEILING_MILLICOPIES.start(),
                            ORIGIN_CEILING_MILLICOPIES.end()
                        )
                    })?,
            ),
        };
        Ok(Manifest {
            info_hash_v2,
            name: text("name")?,
            version: text("version")?,
            created,
            origins,
            max_origin_millicopies,
        })
    }
}

/// The manifest key of the ceiling on origin copies.
const CEILING_KEY: &str = "max origin millicopies";

/// Reads a number of copies as a publisher writes it (`1.5`, `2`,
/// `0.125`: at most three decimals) into thousandths, within
/// [`ORIGIN_CEILING_MILLICOPIES`].
pub fn parse_origin_copies(text: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "{text:?} is not a number of copies from 0.001 to 1000 with at most three decimals, like 1.5"
        )
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.len() <= 7 && s.bytes().all(|b| b.is_ascii_digit());
    let dotted = text.contains('.');
    if !digits(whole) || fraction.len() > 3 || (dotted && !digits(fraction)) {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let fraction: u32 = format!("{fraction:0<3}").parse().map_err(|_| bad())?;
    let milli = whole
        .checked_mul(1000)
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(bad)?;
    if !ORIGIN_CEILING_MILLICOPIES.contains(&milli) {
        return Err(bad());
    }
    Ok(milli)
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
            max_origin_millicopies: None,
        }
    }

    /// A manifest as signed before the ceiling existed (no such key) still
    /// verifies and reads as having none; one with a ceiling round-trips,
    /// and one whose ceiling is out of bounds or not an integer is
    /// refused, signed or not.
    #[test]
    fn the_origin_ceiling_is_optional_and_bounded() {
        let old = b"d7:createdi1700000000e12:info hash v232:\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x074:name9:setup.exe7:originsl29:https://downloads.example.come7:version5:1.2.3e";
        assert_eq!(manifest().encode(), old.to_vec(), "no ceiling, no new key");
        let signed_before = SignatureBlock::sign(&manifest(), &key(1));
        let status = signed_before.check(Some(&[7; 32]), "setup.exe");
        assert_eq!(status.manifest().unwrap().max_origin_millicopies, None);

        let capped = Manifest {
            max_origin_millicopies: Some(1500),
            ..manifest()
        };
        let block = SignatureBlock::sign(&capped, &key(1));
        let status = block.check(Some(&[7; 32]), "setup.exe");
        assert_eq!(status.manifest(), Some(&capped));
        assert_eq!(capped.max_origin_bytes(1000), Some(1500));
        assert_eq!(capped.max_origin_bytes(u64::MAX), Some(u64::MAX / 1000));

        for bad in [
            b"i0e".as_slice(),
            b"i-5e",
            b"i1000001e",
            b"i99999999999999999999e",
            b"3:abc",
        ] {
            let mut bytes = old[..old.len() - 1].to_vec();
            // Keys stay sorted: "max origin…" goes before "name".
            let at = bytes.windows(6).position(|w| w == b"4:name").unwrap();
            let entry = [b"22:max origin millicopies".as_slice(), bad].concat();
            bytes.splice(at..at, entry);
            bytes.push(b'e');
            let block = SignatureBlock {
                publisher: key(1).verifying_key().to_bytes(),
                sig: key(1).sign(&signing_input(&bytes)).to_bytes(),
                signed: bytes,
            };
            assert_eq!(
                block.check(Some(&[7; 32]), "setup.exe").as_str(),
                "invalid",
                "ceiling {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn origin_copies_are_read_as_a_publisher_writes_them() {
        assert_eq!(parse_origin_copies("1.5"), Ok(1500));
        assert_eq!(parse_origin_copies("2"), Ok(2000));
        assert_eq!(parse_origin_copies("0.125"), Ok(125));
        assert_eq!(parse_origin_copies("1000"), Ok(1_000_000));
        for bad in [
            "",
            ".",
            "1.",
            ".5",
            "0",
            "0.0001",
            "1000.001",
            "-1",
            "1e3",
            "1,5",
            " 1",
            "nan",
            "99999999999",
        ] {
            assert!(parse_origin_copies(bad).is_err(), "{bad:?} accepted");
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
