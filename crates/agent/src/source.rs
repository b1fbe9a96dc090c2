//! Where a release comes from: a `.torrent` path or an http(s) URL to one,
//! and whether its publisher is one the agent trusts. Unlike the CLI, the
//! agent has no "allow unsigned" escape: it acts on requests, not on a
//! person at a terminal.

use std::net::SocketAddr;
use std::time::Duration;

use engine::torrent_source::{self, LoadError};
use meta::{SignatureStatus, Torrent};

use crate::AgentError;

/// Largest torrent a page may hand off: a single-file release's torrent
/// is tens of KiB to a few MiB (piece hashes). Smaller than the general
/// bound because a page, not the customer, makes the agent hold it.
pub const MAX_HANDOFF_TORRENT_BYTES: u64 = 8 * 1024 * 1024;
/// Redirects followed, within the page's origin, for a hand-off.
const MAX_HANDOFF_REDIRECTS: usize = 5;
/// A hand-off's torrent fetch: the page (shoal.js) stops waiting after
/// 3 s and goes to the origin, so a fetch slot is never held for long.
const HANDOFF_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The torrent at `source` (a path or an http(s) URL), and its bytes.
pub async fn load(source: &str) -> Result<(Torrent, Vec<u8>), AgentError> {
    let client = torrent_source::fetch_client().map_err(|e| AgentError::Internal(e.to_string()))?;
    let loaded = torrent_source::load(source, &client)
        .await
        .map_err(agent_error)?;
    Ok((loaded.torrent, loaded.bytes))
}

/// A load failure in the API's terms: a torrent that is not one, or one
/// that could not be had (the request's fault either way).
fn agent_error(error: LoadError) -> AgentError {
    let fetch = |location: String, reason: String| AgentError::Fetch { location, reason };
    match error {
        LoadError::Read { location, source } => fetch(location, source.to_string()),
        LoadError::Unreachable { location, reason } => fetch(location, reason),
        LoadError::Status { location, status } => fetch(location, format!("answered {status}")),
        LoadError::TooLarge { location, limit } => {
            fetch(location, format!("larger than {limit} bytes"))
        }
        LoadError::Invalid { location, source } => AgentError::NotATorrent {
            location,
            reason: source.to_string(),
        },
        other => AgentError::Internal(other.to_string()),
    }
}

/// A torrent a page handed off, and the address it came from.
#[derive(Debug)]
pub struct Fetched {
    pub torrent: Torrent,
    pub bytes: Vec<u8>,
    /// The server's address (of the last hop): whether the page's origin
    /// is on a local network, as far as the agent can see.
    pub from: Option<SocketAddr>,
}

/// Fetches the torrent a page on `page_origin` handed off: redirects are
/// followed only within that origin (a page may not make the agent ask
/// other hosts for anything), no proxy (the address reached is what the
/// address policy judges), at most [`MAX_HANDOFF_TORRENT_BYTES`].
pub async fn fetch_for_page(url: &str, page_origin: &str) -> Result<Fetched, AgentError> {
    let origin = page_origin.to_owned();
    let mut builder = reqwest::Client::builder();
    if rebindable(page_origin) {
        builder = engine::AddressPolicy::PublicOnly.apply(builder, MAX_HANDOFF_REDIRECTS);
    }
    // The redirect policy below replaces the one `apply` set.
    let client = builder
        .timeout(HANDOFF_FETCH_TIMEOUT)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_HANDOFF_REDIRECTS {
                return attempt.error("too many redirects");
            }
            let target = crate::handoff::normalize_origin(attempt.url().as_str());
            if target.as_deref() == Some(origin.as_str()) {
                attempt.follow()
            } else {
                let shown = target.unwrap_or_else(|| attempt.url().to_string());
                attempt.error(format!(
                    "it redirects to {shown}, outside the page's origin {origin}; not followed"
                ))
            }
        }))
        .build()
        .map_err(|e| AgentError::Internal(e.to_string()))?;
    let loaded = torrent_source::fetch(&client, url, MAX_HANDOFF_TORRENT_BYTES)
        .await
        .map_err(agent_error)?;
    Ok(Fetched {
        torrent: loaded.torrent,
        bytes: loaded.bytes,
        from: loaded.from,
    })
}

/// Whether a page's origin could be turned against the customer's own
/// network by DNS rebinding: plain `http` to a host *name* (its name
/// could resolve to 127.0.0.1 for us, and the request would reach a
/// local service). Such an origin's torrent is fetched from public
/// addresses only. Over `https` a local service cannot pass the TLS
/// handshake for the page's name, so no request reaches it; an origin
/// that is a literal address or `localhost` says openly where it is
/// (the browser applies its own local-network rules to such a page).
fn rebindable(page_origin: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(page_origin) else {
        return true;
    };
    let host = url.host_str().unwrap_or("");
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok();
    url.scheme() == "http" && !literal && !host.eq_ignore_ascii_case("localhost")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_origins_by_name_can_be_rebound() {
        assert!(rebindable("http://downloads.example.com"));
        assert!(rebindable("http://downloads.example.com:8080"));
        assert!(!rebindable("https://downloads.example.com"));
        assert!(!rebindable("http://127.0.0.1:8080"));
        assert!(!rebindable("http://[::1]:8080"));
        assert!(!rebindable("http://198.51.100.2:8000"));
        assert!(!rebindable("http://localhost:8000"));
    }
}
