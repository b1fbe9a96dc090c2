//! Where a download starts: a `.torrent` path or an http(s) URL to one,
//! and whether its publisher is one we accept.

use anyhow::{bail, Context, Result};
use meta::{SignatureStatus, Torrent, MAX_TORRENT_BYTES};

/// Reads the torrent at `source`: a file path, or an http(s) URL fetched
/// with certificate checks and a size cap.
pub async fn load(source: &str) -> Result<Torrent> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let bytes = fetch(source).await?;
        return Torrent::from_bytes(&bytes)
            .with_context(|| format!("{source} is not a usable torrent"));
    }
    Ok(meta::read_torrent_file(std::path::Path::new(source))?)
}

async fn fetch(url: &str) -> Result<Vec<u8>> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .context("cannot start the HTTP client")?;
    let mut response =
        client.get(url).send().await.with_context(|| {
            format!("cannot fetch {url}; check the address and your connection")
        })?;
    if !response.status().is_success() {
        bail!("{url} answered {}; check the link", response.status());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("reading {url}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MAX_TORRENT_BYTES {
            bail!("{url} is larger than a torrent can be ({MAX_TORRENT_BYTES} bytes); is it the right link?");
        }
    }
    Ok(body)
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
