//! The engine's HTTP clients: one per [`AddressPolicy`], shared by every
//! torrent's announcer and web seed, so an agent running a thousand
//! releases keeps one connection pool (per policy), not two thousand.
//! A `PublicOnly` client needs its own resolver and redirect check, hence
//! one client per policy rather than one in all.

use std::sync::OnceLock;

use crate::web_seed::settings::WebSeedSettings;
use crate::AddressPolicy;

/// The clients, each built on first use from the engine's settings.
#[derive(Debug, Default)]
pub(crate) struct HttpClients {
    any: OnceLock<reqwest::Client>,
    public_only: OnceLock<reqwest::Client>,
}

impl HttpClients {
    /// The client for `policy`. Building can only fail if the TLS backend
    /// cannot start, which retrying will not fix, so the error is kept as
    /// text for whoever reports it.
    pub(crate) fn get(
        &self,
        policy: AddressPolicy,
        settings: &WebSeedSettings,
    ) -> Result<reqwest::Client, String> {
        let cell = match policy {
            AddressPolicy::Any => &self.any,
            AddressPolicy::PublicOnly => &self.public_only,
        };
        if let Some(client) = cell.get() {
            return Ok(client.clone());
        }
        let client = build(policy, settings).map_err(|e| e.to_string())?;
        Ok(cell.get_or_init(|| client).clone())
    }
}

/// An HTTP client reaching only the addresses `policy` allows, at the URL
/// and at every redirect and name resolution.
///
/// HTTP/1.1 only: several web-seed ranges in flight then travel on
/// separate TCP connections instead of sharing one HTTP/2 flow. TLS is
/// rustls with certificates verified; no insecure mode exists here.
pub fn build(
    policy: AddressPolicy,
    settings: &WebSeedSettings,
) -> Result<reqwest::Client, reqwest::Error> {
    let builder =
        reqwest::Client::builder().user_agent(concat!("shoal/", env!("CARGO_PKG_VERSION")));
    policy
        .apply(builder, settings.max_redirects)
        .pool_max_idle_per_host(settings.pool_max_idle_per_host)
        .connect_timeout(settings.stall_timeout)
        .http1_only()
        .tcp_nodelay(true)
        .build()
}
