//! Where a release comes from: a `.torrent` path or an http(s) URL to one,
//! and whether its publisher is one the agent trusts. Unlike the CLI, the
//! agent has no "allow unsigned" escape: it acts on requests, not on a
//! person at a terminal.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use meta::{SignatureStatus, Torrent};

use crate::AgentError;

/// Largest torrent we fetch or read.
pub const MAX_TORRENT_BYTES: u64 = 32 * 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The torrent at `source` (a path or an http(s) URL), and its bytes.
pub async fn load(source: &str) -> Result<(Torrent, Vec<u8>), AgentError> {
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        fetch(source).await?
    } else {
        let path = Path::new(source).to_owned();
        tokio::task::spawn_blocking(move || read_bounded(&path))
            .await
            .map_err(|e| AgentError::Internal(e.to_string()))??
    };
    let torrent = Torrent::from_bytes(&bytes).map_err(|e| AgentError::NotATorrent {
        location: source.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((torrent, bytes))
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, AgentError> {
    let fetch_error = |reason: String| AgentError::Fetch {
        location: path.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| fetch_error(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_TORRENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fetch_error(e.to_string()))?;
    if bytes.len() as u64 > MAX_TORRENT_BYTES {
        return Err(fetch_error(format!(
            "larger than {MAX_TORRENT_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

async fn fetch(url: &str) -> Result<Vec<u8>, AgentError> {
    let fetch_error = |reason: String| AgentError::Fetch {
        location: url.to_owned(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| AgentError::Internal(e.to_string()))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| fetch_error(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fetch_error(format!("answered {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| fetch_error(e.to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MAX_TORRENT_BYTES {
            return Err(fetch_error(format!(
                "larger than {MAX_TORRENT_BYTES} bytes"
            )));
        }
    }
    Ok(body)
}

/// Refuses a torrent unless a trusted publisher validly signed it.
pub fn check_publisher(
    source: &str,
    torrent: &Torrent,
    trusted: &[[u8; 32]],
) -> Result<(), AgentError> {
    match &torrent.signature {
        SignatureStatus::Valid { publisher, .. } if trusted.contains(publisher) => Ok(()),
        SignatureStatus::Valid { publisher, .. } => Err(AgentError::Untrusted {
            location: source.to_owned(),
            publisher: hex::encode(publisher),
        }),
        SignatureStatus::Invalid { reason, .. } => Err(AgentError::BadSignature {
            location: source.to_owned(),
            reason: reason.clone(),
        }),
        SignatureStatus::Absent => Err(AgentError::Unsigned {
            location: source.to_owned(),
        }),
    }
}

/// The id a release goes by in the API: its v2 info-hash in hex when it
/// has one, else its v1 info-hash.
pub fn release_id(torrent: &Torrent) -> String {
    match (torrent.info_hashes.v2, torrent.info_hashes.v1) {
        (Some(v2), _) => hex::encode(v2),
        (None, Some(v1)) => hex::encode(v1),
        (None, None) => String::new(),
    }
}
