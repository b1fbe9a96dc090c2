//! An origin's `/.well-known/shoal.json`: the publisher keys it vouches
//! for, fetched over HTTPS only and cached for a while.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::memory::Handoffs;
use crate::lock::lock;

/// `.well-known/shoal.json`: a few keys.
const MAX_WELL_KNOWN_BYTES: usize = 64 * 1024;
const WELL_KNOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an origin's published keys are believed.
const WELL_KNOWN_CACHE: Duration = Duration::from_secs(600);
/// Most origins whose keys are cached.
const MAX_CACHED_ORIGINS: usize = 256;

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

impl Handoffs {
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
}
