//! How patient a web seed is: the knobs of the fetcher and of the HTTP
//! client it shares with the announcers (`http_client.rs`).

use std::time::Duration;

/// How patient a web seed is. Durations are wall-clock.
#[derive(Debug, Clone)]
pub struct WebSeedSettings {
    /// Whole-request deadline per attempt: connect, headers and body.
    /// Default 60 s.
    pub request_timeout: Duration,
    /// No byte (nor response head) for this long counts as a stall.
    /// Default 10 s.
    pub stall_timeout: Duration,
    /// Redirects followed per request before giving up. Default 5.
    pub max_redirects: usize,
    /// Attempts per range before giving up on a transient failure (at
    /// least one is always made). Default 4.
    pub retries: u32,
    /// Pause after the first failed attempt, doubling after each further
    /// one, capped at 10 s. Default 500 ms.
    pub backoff_start: Duration,
    /// Idle keep-alive connections kept per host. Default 8.
    pub pool_max_idle_per_host: usize,
}

impl Default for WebSeedSettings {
    fn default() -> Self {
        WebSeedSettings {
            request_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(10),
            max_redirects: 5,
            retries: 4,
            backoff_start: Duration::from_millis(500),
            pool_max_idle_per_host: 8,
        }
    }
}
