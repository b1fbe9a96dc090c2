//! A token bucket shared by every connection: the customer's upload and
//! download caps hold over the sum of all peers.
//!
//! Callers take tokens before moving bytes and sleep when there are none.
//! The bucket holds at most a tenth of a second's worth, so a cap of X
//! bytes/s holds within a few percent over any ten seconds, and bursts stay
//! small. The rate can change at any time (the agent's controls).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    rate_bps: AtomicU64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// May go negative: a caller that took more than was there waits it off.
    tokens: f64,
    refilled_at: Instant,
}

impl RateLimiter {
    /// `rate_bps` of 0 means unlimited.
    pub fn new(rate_bps: u64) -> RateLimiter {
        RateLimiter {
            rate_bps: AtomicU64::new(rate_bps),
            state: Mutex::new(Bucket {
                tokens: 0.0,
                refilled_at: Instant::now(),
            }),
        }
    }

    pub fn set_rate(&self, rate_bps: u64) {
        self.rate_bps.store(rate_bps, Ordering::Relaxed);
    }

    pub fn rate(&self) -> u64 {
        self.rate_bps.load(Ordering::Relaxed)
    }

    /// Takes `bytes` tokens, sleeping as long as the cap requires.
    pub async fn acquire(&self, bytes: u64) {
        let wait = self.take(bytes, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes tokens now and says how long to wait before using them.
    fn take(&self, bytes: u64, now: Instant) -> Duration {
        let rate = self.rate();
        if rate == 0 {
            return Duration::ZERO;
        }
        let mut bucket = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rate = rate as f64;
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate / 10.0);
        bucket.refilled_at = now;
        bucket.tokens -= bytes as f64;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_holds_over_ten_seconds() {
        let limiter = RateLimiter::new(1_000_000);
        let start = Instant::now();
        // Callers take 16 KiB at a time and honour the waits they are given.
        let mut now = start;
        let mut moved = 0u64;
        while now < start + Duration::from_secs(10) {
            now += limiter.take(16384, now);
            moved += 16384;
        }
        let rate = moved as f64 / (now - start).as_secs_f64();
        assert!((rate - 1_000_000.0).abs() < 30_000.0, "{rate}");
    }

    #[test]
    fn zero_means_unlimited_and_rates_change_at_once() {
        let limiter = RateLimiter::new(0);
        assert_eq!(limiter.take(1 << 30, Instant::now()), Duration::ZERO);
        limiter.set_rate(1000);
        let wait = limiter.take(2000, Instant::now());
        assert!(wait >= Duration::from_millis(1900), "{wait:?}");
    }
}
