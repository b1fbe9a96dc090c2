//! What a page's hand-off request may ask for: a torrent on its own
//! origin, signed by a publisher whose manifest lists that origin, naming
//! no tracker or web seed on a local address when the page is public.

use std::time::Duration;

use engine::address_policy::is_public;
use meta::{SignatureStatus, Torrent};

use crate::AgentError;

/// How long resolving a tracker's or web seed's name may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

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
}
