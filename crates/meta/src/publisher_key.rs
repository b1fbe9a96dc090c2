//! A publisher's public key: the 32-byte ed25519 key (RFC 8032 §5.1.2) that
//! signs manifests (see `signature.rs`), written as 64 hex digits wherever a
//! person or a file names it (`--trust`, the agent's `trusted_publishers`,
//! `/.well-known/shoal.json`, `shoal-tracker publisher add --key`).
//!
//! Every one of those places parses through [`PublisherKey::from_str`], so a
//! key that is not a point on the curve is refused where it is typed, not
//! later when no signature ever verifies against it.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;

/// An ed25519 public key known to be a valid curve point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublisherKey([u8; 32]);

/// Why text or bytes are not a publisher key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublisherKeyError {
    #[error("{0:?} is not a publisher key (expected 64 hex digits)")]
    NotHex(String),
    #[error("{0:?} is not a valid ed25519 public key")]
    NotOnCurve(String),
}

impl PublisherKey {
    /// The key, if `bytes` are a valid ed25519 point.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<PublisherKey, PublisherKeyError> {
        VerifyingKey::from_bytes(&bytes)
            .map(|_| PublisherKey(bytes))
            .map_err(|_| PublisherKeyError::NotOnCurve(hex::encode(bytes)))
    }

    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<&ed25519_dalek::SigningKey> for PublisherKey {
    fn from(key: &ed25519_dalek::SigningKey) -> PublisherKey {
        PublisherKey(key.verifying_key().to_bytes())
    }
}

impl FromStr for PublisherKey {
    type Err = PublisherKeyError;

    /// 64 hex digits, either case; surrounding whitespace is ignored.
    fn from_str(text: &str) -> Result<PublisherKey, PublisherKeyError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| PublisherKeyError::NotHex(text.to_owned()))?;
        PublisherKey::from_bytes(bytes).map_err(|_| PublisherKeyError::NotOnCurve(text.to_owned()))
    }
}

/// Lower-case hex, as `shoal keygen` prints it.
impl fmt::Display for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublisherKey({self})")
    }
}

impl serde::Serialize for PublisherKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublisherKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn valid() -> PublisherKey {
        PublisherKey::from(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]))
    }

    #[test]
    fn hex_round_trips_through_display_and_parse() {
        let key = valid();
        let text = key.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<PublisherKey>().unwrap(), key);
        assert_eq!(
            format!("  {}\n", text.to_uppercase())
                .parse::<PublisherKey>()
                .unwrap(),
            key
        );
    }

    #[test]
    fn text_that_is_not_64_hex_digits_is_refused() {
        for text in [
            "",
            "xyz",
            &"ab".repeat(31),
            &"ab".repeat(33),
            &"zz".repeat(32),
        ] {
            assert!(
                matches!(
                    text.parse::<PublisherKey>(),
                    Err(PublisherKeyError::NotHex(_))
                ),
                "{text:?}"
            );
        }
    }

    /// Regression: only `--trust` checked that a key is a curve point; the
    /// agent's settings, `.well-known/shoal.json` and the tracker's
    /// `publisher add` took any 32 bytes.
    #[test]
    fn bytes_that_are_not_a_curve_point_are_refused() {
        let mut bytes = [0u8; 32];
        bytes[0] = 2; // y = 2 has no x on the curve.
        let text = hex::encode(bytes);
        let error = text.parse::<PublisherKey>().unwrap_err();
        assert_eq!(error, PublisherKeyError::NotOnCurve(text.clone()));
        assert!(error.to_string().contains("not a valid ed25519"), "{error}");
        assert!(PublisherKey::from_bytes(bytes).is_err());
    }

    #[test]
    fn serde_uses_the_hex_text() {
        let key = valid();
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{key}\""));
        assert_eq!(serde_json::from_str::<PublisherKey>(&json).unwrap(), key);
        assert!(serde_json::from_str::<PublisherKey>("\"abc\"").is_err());
    }
}
