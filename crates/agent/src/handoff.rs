//! The browser hand-off (DESIGN.md): a publisher's download page asks the
//! agent to fetch a release, and the browser then downloads the file from
//! the agent. A page is a stranger, so a hand-off is accepted only when
//! * the torrent is on the page's own origin (a page cannot point the
//!   agent at other hosts),
//! * the release's signed manifest lists that origin, and
//! * its publisher is trusted: pinned in the config, or named by that
//!   origin's `https://…/.well-known/shoal.json` (web PKI vouches for it).
//!
//! The answer is a stream URL holding 128 random bits, bound to the one
//! release that was asked for; the page never chooses anything on disk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use meta::{SignatureStatus, Torrent};
use serde::Deserialize;

use crate::AgentError;

/// How long a stream URL stays valid: long enough to resume a download.
const TICKET_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Most live stream URLs; the oldest is dropped past this.
const MAX_TICKETS: usize = 1024;
/// `.well-known/shoal.json`: a few keys.
const MAX_WELL_KNOWN_BYTES: usize = 64 * 1024;
const WELL_KNOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an origin's published keys are believed.
const WELL_KNOWN_CACHE: Duration = Duration::from_secs(600);
/// Most origins whose keys are cached.
const MAX_CACHED_ORIGINS: usize = 256;

/// A web origin, `scheme://host[:port]`, lower-case, default port left out:
/// the form browsers send in `Origin` and compare by.
pub fn normalize_origin(text: &str) -> Option<String> {
    let url = reqwest::Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// The origin of a URL the page gave, if it is an http(s) URL.
pub fn origin_of_url(text: &str) -> Option<String> {
    normalize_origin(text)
}

/// Why the page's request is refused, before any release is added.
pub fn check_page_origin(page_origin: &str, torrent_url: &str) -> Result<(), AgentError> {
    match origin_of_url(torrent_url) {
        Some(origin) if origin == page_origin => Ok(()),
        Some(origin) => Err(AgentError::Forbidden(format!(
            "a page on {page_origin} may hand off only torrents on its own origin, not {origin}"
        ))),
        None => Err(AgentError::Invalid(format!(
            "{torrent_url:?} is not an http(s) URL of a torrent"
        ))),
    }
}

/// The publisher of `torrent` if its manifest lists `page_origin`.
pub fn publisher_for_origin(
    torrent_url: &str,
    torrent: &Torrent,
    page_origin: &str,
) -> Result<[u8; 32], AgentError> {
    match &torrent.signature {
        SignatureStatus::Valid {
            publisher,
            manifest,
        } => {
            let listed = manifest
                .origins
                .iter()
                .filter_map(|o| normalize_origin(o))
                .any(|o| o == page_origin);
            if listed {
                Ok(*publisher)
            } else {
                Err(AgentError::Forbidden(format!(
                    "{page_origin} is not among the origins the publisher signed for {torrent_url}"
                )))
            }
        }
        SignatureStatus::Invalid { reason, .. } => Err(AgentError::BadSignature {
            location: torrent_url.to_owned(),
            reason: reason.clone(),
        }),
        SignatureStatus::Absent => Err(AgentError::Unsigned {
            location: torrent_url.to_owned(),
        }),
    }
}

/// `/.well-known/shoal.json`: the publisher keys an origin vouches for.
#[derive(Debug, Deserialize)]
struct WellKnown {
    publishers: Vec<String>,
}

/// Reads the keys out of a `.well-known/shoal.json` body.
pub fn parse_well_known(body: &[u8]) -> Result<Vec<[u8; 32]>, String> {
    if body.len() > MAX_WELL_KNOWN_BYTES {
        return Err(format!("larger than {MAX_WELL_KNOWN_BYTES} bytes"));
    }
    let parsed: WellKnown = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    parsed
        .publishers
        .iter()
        .take(crate::settings::MAX_TRUSTED_KEYS)
        .map(|key| {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(key, &mut bytes)
                .map_err(|_| format!("{key:?} is not a 64-hex-digit public key"))?;
            Ok(bytes)
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Ticket {
    release: String,
    created: Instant,
}

/// Keys an origin published, and when we fetched them.
type PublishedKeys = (Instant, Vec<[u8; 32]>);

/// The hand-off's memory: live stream URLs and origins' published keys.
#[derive(Debug, Default)]
pub struct Handoffs {
    tickets: Mutex<HashMap<String, Ticket>>,
    well_known: Mutex<HashMap<String, PublishedKeys>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Handoffs {
    /// A new stream secret for `release`: 128 random bits, in hex.
    pub fn issue(&self, release: &str) -> String {
        let secret = hex::encode(rand::random::<[u8; 16]>());
        let mut tickets = lock(&self.tickets);
        let now = Instant::now();
        tickets.retain(|_, t| now.duration_since(t.created) < TICKET_LIFETIME);
        if tickets.len() >= MAX_TICKETS {
            let oldest = tickets
                .iter()
                .min_by_key(|(_, t)| t.created)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                tickets.remove(&oldest);
            }
        }
        tickets.insert(
            secret.clone(),
            Ticket {
                release: release.to_owned(),
                created: now,
            },
        );
        secret
    }

    /// The release a stream secret was issued for, while it is valid.
    pub fn redeem(&self, secret: &str) -> Option<String> {
        let tickets = lock(&self.tickets);
        let ticket = tickets.get(secret)?;
        (ticket.created.elapsed() < TICKET_LIFETIME).then(|| ticket.release.clone())
    }

    /// Whether `origin` vouches for `publisher` in its
    /// `/.well-known/shoal.json`, fetched over HTTPS (never plain HTTP:
    /// the web PKI is what makes it mean anything).
    pub async fn origin_vouches(&self, origin: &str, publisher: &[u8; 32]) -> Result<bool, String> {
        if !origin.starts_with("https://") {
            return Ok(false);
        }
        let cached = lock(&self.well_known)
            .get(origin)
            .filter(|(at, _)| at.elapsed() < WELL_KNOWN_CACHE)
            .map(|(_, keys)| keys.clone());
        let keys = match cached {
            Some(keys) => keys,
            None => {
                let keys = fetch_well_known(origin).await?;
                let mut cache = lock(&self.well_known);
                if cache.len() >= MAX_CACHED_ORIGINS {
                    cache.clear();
                }
                cache.insert(origin.to_owned(), (Instant::now(), keys.clone()));
                keys
            }
        };
        Ok(keys.contains(publisher))
    }
}

async fn fetch_well_known(origin: &str) -> Result<Vec<[u8; 32]>, String> {
    let url = format!("{origin}/.well-known/shoal.json");
    let client = reqwest::Client::builder()
        .timeout(WELL_KNOWN_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_WELL_KNOWN_BYTES {
            return Err(format!("{url} is larger than {MAX_WELL_KNOWN_BYTES} bytes"));
        }
    }
    parse_well_known(&body).map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_as_browsers_send_them() {
        let norm = |s| normalize_origin(s);
        assert_eq!(
            norm("https://Downloads.Example.com"),
            Some("https://downloads.example.com".into())
        );
        assert_eq!(
            norm("https://example.com:443/"),
            Some("https://example.com".into())
        );
        assert_eq!(
            norm("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080".into())
        );
        assert_eq!(norm("null"), None);
        assert_eq!(norm("file:///etc/passwd"), None);
        assert_eq!(norm("javascript:alert(1)"), None);
        assert_eq!(
            origin_of_url("https://example.com/a/b.torrent?x=1"),
            Some("https://example.com".into())
        );
    }

    #[test]
    fn a_page_hands_off_only_torrents_on_its_own_origin() {
        let page = "https://downloads.example.com";
        assert!(check_page_origin(page, "https://downloads.example.com/app.torrent").is_ok());
        let other = check_page_origin(page, "https://attacker.example/app.torrent");
        assert!(matches!(other, Err(AgentError::Forbidden(_))), "{other:?}");
        let scheme = check_page_origin(page, "http://downloads.example.com/app.torrent");
        assert!(
            matches!(scheme, Err(AgentError::Forbidden(_))),
            "{scheme:?}"
        );
        let local = check_page_origin(page, "/etc/shadow");
        assert!(matches!(local, Err(AgentError::Invalid(_))), "{local:?}");
    }

    #[test]
    fn well_known_keys_are_parsed_and_bounded() {
        let key = "ab".repeat(32);
        let body = format!("{{\"publishers\": [\"{key}\"]}}");
        assert_eq!(parse_well_known(body.as_bytes()), Ok(vec![[0xab; 32]]));
        assert!(parse_well_known(b"{\"publishers\": [\"abc\"]}").is_err());
        assert!(parse_well_known(b"[]").is_err());
        assert!(parse_well_known(&vec![b' '; MAX_WELL_KNOWN_BYTES + 1]).is_err());
    }

    #[test]
    fn stream_secrets_are_long_random_and_bound_to_their_release() {
        let handoffs = Handoffs::default();
        let a = handoffs.issue("release-a");
        let b = handoffs.issue("release-a");
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(handoffs.redeem(&a).as_deref(), Some("release-a"));
        assert_eq!(handoffs.redeem("0".repeat(32).as_str()), None);
        assert_eq!(handoffs.redeem(""), None);
    }
}
