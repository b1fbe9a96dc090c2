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
//!
//! Consent: a hand-off alone moves nothing. The checked torrent waits in
//! memory as a *pending offer* (few, small, expiring); only when the
//! browser opens the stream URL as a download, which the customer sees in
//! its download list, is the release added and started (`offer.rs`).
//! What a page can make the agent spend is bounded too: hand-offs per
//! origin per minute, torrent fetches at once, pending offers and their
//! bytes. And a page cannot use the agent to reach the customer's own
//! network: the torrent is fetched from the page's origin only (redirects
//! included), a preflight fetches nothing, and a release from a public
//! origin may not name trackers or web seeds on local addresses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::address_policy::is_public;
use meta::{SignatureStatus, Torrent};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AgentError;

/// How long a stream URL stays valid: long enough to resume a download.
const TICKET_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Most live stream URLs; the oldest is dropped past this.
const MAX_TICKETS: usize = 1024;
/// How long a pending offer waits for the browser to open its stream.
const OFFER_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Most pending offers, and the most torrent bytes they hold together;
/// the oldest are dropped past either.
const MAX_OFFERS: usize = 16;
const MAX_OFFER_BYTES: usize = 32 * 1024 * 1024;
/// Torrent fetches for hand-offs at once; more are refused (503).
const MAX_FETCHES: usize = 2;
/// Origins whose hand-off counts are kept.
const MAX_RATED_ORIGINS: usize = 1024;
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// How long resolving a tracker's or web seed's name may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// `.well-known/shoal.json`: a few keys.
const MAX_WELL_KNOWN_BYTES: usize = 64 * 1024;
const WELL_KNOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an origin's published keys are believed.
const WELL_KNOWN_CACHE: Duration = Duration::from_secs(600);
/// Most origins whose keys are cached.
const MAX_CACHED_ORIGINS: usize = 256;

/// A web origin, `scheme://host[:port]`, lower-case, default port left out:
/// the form browsers send in `Origin` and compare by.
pub use meta::normalize_origin;

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
        .map(|key| crate::settings::parse_key(key))
        .collect()
}

/// Refuses a hand-off from a page on a public origin whose release names
/// a tracker or web seed on a local address (literal, or a name that
/// resolves to one). A name that does not resolve now passes: the engine
/// checks every address again when it connects (`AddressPolicy`).
pub async fn check_remotes(torrent_url: &str, torrent: &Torrent) -> Result<(), AgentError> {
    let urls = torrent
        .tracker_urls()
        .into_iter()
        .chain(torrent.web_seeds.iter().map(String::as_str));
    for url in urls.take(64) {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            continue;
        };
        let refuse = |reason: String| {
            AgentError::Forbidden(format!(
                "{torrent_url} names {url}: {reason}; a page on a public origin may not \
                 make the agent reach local addresses"
            ))
        };
        engine::AddressPolicy::PublicOnly
            .check_url(&parsed)
            .map_err(refuse)?;
        let Some(host) = parsed.host_str().map(str::to_owned) else {
            continue;
        };
        let port = parsed.port_or_known_default().unwrap_or(0);
        let lookup = tokio::net::lookup_host((host.clone(), port));
        if let Ok(Ok(addrs)) = tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            if let Some(local) = addrs.map(|a| a.ip()).find(|ip| !is_public(*ip)) {
                return Err(refuse(format!(
                    "{host} resolves to the local address {local}"
                )));
            }
        }
    }
    Ok(())
}

/// A checked hand-off waiting for the browser to open its stream.
#[derive(Debug)]
pub struct Offer {
    pub torrent: Arc<Torrent>,
    pub bytes: Vec<u8>,
    /// Its trackers and web seeds must be on public addresses.
    pub public_remotes_only: bool,
    created: Instant,
}

impl Offer {
    pub fn new(torrent: Torrent, bytes: Vec<u8>, public_remotes_only: bool) -> Offer {
        Offer {
            torrent: Arc::new(torrent),
            bytes,
            public_remotes_only,
            created: Instant::now(),
        }
    }
}

#[derive(Debug, Clone)]
struct Ticket {
    release: String,
    created: Instant,
}

/// Keys an origin published, and when we fetched them.
type PublishedKeys = (Instant, Vec<[u8; 32]>);

/// The hand-off's memory: live stream URLs, pending offers, origins'
/// published keys and hand-off counts, and the fetch slots.
#[derive(Debug)]
pub struct Handoffs {
    tickets: Mutex<HashMap<String, Ticket>>,
    offers: Mutex<HashMap<String, Offer>>,
    well_known: Mutex<HashMap<String, PublishedKeys>>,
    /// Per origin: when its window started, hand-offs in it.
    rates: Mutex<HashMap<String, (Instant, u32)>>,
    per_origin_per_minute: u32,
    fetches: Arc<Semaphore>,
}

/// Why a hand-off was turned away before any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    TooMany,
    Busy,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl Handoffs {
    pub fn new(per_origin_per_minute: u32) -> Handoffs {
        Handoffs {
            tickets: Mutex::default(),
            offers: Mutex::default(),
            well_known: Mutex::default(),
            rates: Mutex::default(),
            per_origin_per_minute,
            fetches: Arc::new(Semaphore::new(MAX_FETCHES)),
        }
    }

    /// Counts a hand-off from `origin` and takes a fetch slot for it, or
    /// says why not: the origin asked too often this minute, or too many
    /// fetches are under way.
    pub fn admit(&self, origin: &str) -> Result<OwnedSemaphorePermit, Admission> {
        {
            let now = Instant::now();
            let mut rates = lock(&self.rates);
            if rates.len() >= MAX_RATED_ORIGINS {
                rates.retain(|_, (start, _)| now.duration_since(*start) < RATE_WINDOW);
            }
            if rates.len() >= MAX_RATED_ORIGINS && !rates.contains_key(origin) {
                return Err(Admission::TooMany);
            }
            let (start, count) = rates.entry(origin.to_owned()).or_insert((now, 0));
            if now.duration_since(*start) >= RATE_WINDOW {
                (*start, *count) = (now, 0);
            }
            if *count >= self.per_origin_per_minute {
                return Err(Admission::TooMany);
            }
            *count += 1;
        }
        self.fetches
            .clone()
            .try_acquire_owned()
            .map_err(|_| Admission::Busy)
    }

    /// Keeps `offer` until the browser opens its stream; returns the
    /// stream secret. The oldest offers go when there are too many.
    pub fn offer(&self, offer: Offer) -> String {
        let secret = new_secret();
        let mut offers = lock(&self.offers);
        offers.retain(|_, o| o.created.elapsed() < OFFER_LIFETIME);
        let held = |offers: &HashMap<String, Offer>| -> usize {
            offers.values().map(|o| o.bytes.len()).sum()
        };
        while !offers.is_empty()
            && (offers.len() >= MAX_OFFERS || held(&offers) + offer.bytes.len() > MAX_OFFER_BYTES)
        {
            let oldest = offers
                .iter()
                .min_by_key(|(_, o)| o.created)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                offers.remove(&oldest);
            }
        }
        offers.insert(secret.clone(), offer);
        secret
    }

    /// The pending offer behind `secret`, taken out (its stream opened).
    pub fn take_offer(&self, secret: &str) -> Option<Offer> {
        let mut offers = lock(&self.offers);
        let offer = offers.remove(secret)?;
        (offer.created.elapsed() < OFFER_LIFETIME).then_some(offer)
    }

    /// What a pending offer serves (name, length), without taking it.
    pub fn peek_offer<T>(&self, secret: &str, look: impl FnOnce(&Offer) -> T) -> Option<T> {
        let offers = lock(&self.offers);
        offers
            .get(secret)
            .filter(|o| o.created.elapsed() < OFFER_LIFETIME)
            .map(look)
    }

    /// A new stream secret for `release`: 128 random bits, in hex.
    pub fn issue(&self, release: &str) -> String {
        let secret = new_secret();
        self.bind(&secret, release);
        secret
    }

    /// Binds `secret` (an offer's, once accepted) to `release`.
    pub fn bind(&self, secret: &str, release: &str) {
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
            secret.to_owned(),
            Ticket {
                release: release.to_owned(),
                created: now,
            },
        );
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
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let body = engine::http_body::read_capped(response, MAX_WELL_KNOWN_BYTES as u64)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    parse_well_known(&body).map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
        let key = "cd".repeat(32);
        let body = format!("{{\"publishers\": [\"{key}\"]}}");
        assert_eq!(parse_well_known(body.as_bytes()), Ok(vec![[0xcd; 32]]));
        assert!(parse_well_known(b"{\"publishers\": [\"abc\"]}").is_err());
        // 64 hex digits, but no ed25519 point.
        let not_a_point = format!("{{\"publishers\": [\"{}\"]}}", "ab".repeat(32));
        assert!(parse_well_known(not_a_point.as_bytes()).is_err());
        assert!(parse_well_known(b"[]").is_err());
        assert!(parse_well_known(&vec![b' '; MAX_WELL_KNOWN_BYTES + 1]).is_err());
    }

    #[test]
    fn stream_secrets_are_long_random_and_bound_to_their_release() {
        let handoffs = Handoffs::new(6);
        let a = handoffs.issue("release-a");
        let b = handoffs.issue("release-a");
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(handoffs.redeem(&a).as_deref(), Some("release-a"));
        assert_eq!(handoffs.redeem("0".repeat(32).as_str()), None);
        assert_eq!(handoffs.redeem(""), None);
    }

    #[test]
    fn each_origin_gets_a_few_hand_offs_a_minute_and_fetches_are_few() {
        let handoffs = Handoffs::new(3);
        let mut held = Vec::new();
        held.push(handoffs.admit("https://a.example").unwrap());
        held.push(handoffs.admit("https://a.example").unwrap());
        // Both fetch slots taken: a third fetch waits for none.
        assert_eq!(
            handoffs.admit("https://b.example").err(),
            Some(Admission::Busy)
        );
        held.clear();
        let _slot = handoffs.admit("https://a.example").unwrap();
        drop(_slot);
        assert_eq!(
            handoffs.admit("https://a.example").err(),
            Some(Admission::TooMany)
        );
        assert!(handoffs.admit("https://c.example").is_ok());
    }

    #[test]
    fn pending_offers_are_few_and_taken_once() {
        let handoffs = Handoffs::new(6);
        let torrent = || {
            let bytes = b"d4:infod6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee".to_vec();
            let torrent = Torrent::from_bytes(&bytes).unwrap();
            Offer::new(torrent, bytes, true)
        };
        let secrets: Vec<String> = (0..MAX_OFFERS + 4)
            .map(|_| handoffs.offer(torrent()))
            .collect();
        let live = secrets
            .iter()
            .filter(|s| handoffs.peek_offer(s, |_| ()).is_some())
            .count();
        assert_eq!(live, MAX_OFFERS);
        let newest = secrets.last().unwrap();
        assert!(handoffs.take_offer(newest).is_some());
        assert!(handoffs.take_offer(newest).is_none());
    }
}
