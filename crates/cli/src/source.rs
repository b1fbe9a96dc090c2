//! Where a download starts: a `.torrent` path or an http(s) URL to one,
//! and whether its publisher is one we accept.

use anyhow::{anyhow, bail, Context, Result};
use engine::torrent_source::{self, LoadError};
use meta::{SignatureStatus, Torrent};

/// Reads the torrent at `source`: a file path, or an http(s) URL fetched
/// with certificate checks and a size cap.
pub async fn load(source: &str) -> Result<Torrent> {
    let client = torrent_source::fetch_client().context("cannot start the HTTP client")?;
    match torrent_source::load(source, &client).await {
        Ok(loaded) => Ok(loaded.torrent),
        Err(error) => Err(with_advice(error)),
    }
}

/// What the user can do about a torrent that did not load.
fn with_advice(error: LoadError) -> anyhow::Error {
    let advice = match &error {
        LoadError::Unreachable { .. } => "check the address and your connection",
        LoadError::Status { .. } => "check the link",
        LoadError::TooLarge { .. } => "is it the right link?",
        _ => return error.into(),
    };
    anyhow!("{error}; {advice}")
}

/// Refuses a torrent whose signature does not hold, or that is signed by
/// someone not in `trust` when keys are given. Unsigned torrents need
/// `allow_unsigned`. Returns a note for the user, if any.
pub fn check_publisher(
    source: &str,
    torrent: &Torrent,
    trust: &[[u8; 32]],
    allow_unsigned: bool,
) -> Result<Option<String>> {
    match &torrent.signature {
        SignatureStatus::Absent if allow_unsigned => Ok(Some(format!(
            "{source} is not signed; downloading it as asked"
        ))),
        SignatureStatus::Absent => {
            bail!("{source} is not signed by a publisher; pass --allow-unsigned to download it anyway")
        }
        SignatureStatus::Invalid { reason, .. } => {
            bail!("{source} has an invalid publisher signature ({reason}); it may have been tampered with")
        }
        SignatureStatus::Valid { publisher, .. }
            if !trust.is_empty() && !trust.contains(publisher) =>
        {
            bail!(
                "{source} is signed by {}, which is not among the --trust keys",
                hex::encode(publisher)
            )
        }
        SignatureStatus::Valid { publisher, .. } if trust.is_empty() => Ok(Some(format!(
            "{source} is signed by publisher {}; pass --trust with that key to require it",
            hex::encode(publisher)
        ))),
        SignatureStatus::Valid { .. } => Ok(None),
    }
}

/// What the engine is told of the publisher: trusted only when `trust`
/// names the key that validly signed `torrent`. A signature checked
/// against no `--trust` key proves only that someone signed it.
pub fn publisher_trust(torrent: &Torrent, trust: &[[u8; 32]]) -> engine::PublisherTrust {
    match torrent.signature.publisher() {
        Some(publisher) if torrent.signature.is_trusted_by(trust) => {
            engine::PublisherTrust::Trusted {
                publisher: *publisher,
            }
        }
        _ => engine::PublisherTrust::Unestablished,
    }
}
