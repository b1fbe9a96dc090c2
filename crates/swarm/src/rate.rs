//! Transfer rates, measured over a sliding window of virtual time so the
//! simulation and the real engine measure alike.

use std::time::{Duration, Instant};

/// Bytes per second over roughly the last `window`, in one-second buckets.
#[derive(Debug, Clone)]
pub struct RateMeter {
    buckets: [u64; 8],
    /// Second (since `origin`) that `buckets[current]` counts.
    current_second: u64,
    current: usize,
    origin: Instant,
    total: u64,
}

impl RateMeter {
    pub fn new(now: Instant) -> RateMeter {
        RateMeter {
            buckets: [0; 8],
            current_second: 0,
            current: 0,
            origin: now,
            total: 0,
        }
    }

    fn advance(&mut self, now: Instant) {
        let second = now.saturating_duration_since(self.origin).as_secs();
        let steps = second
            .saturating_sub(self.current_second)
            .min(self.buckets.len() as u64);
        for _ in 0..steps {
            self.current = (self.current + 1) % self.buckets.len();
            self.buckets[self.current] = 0;
        }
        self.current_second = self.current_second.max(second);
    }

    pub fn record(&mut self, now: Instant, bytes: u64) {
        self.advance(now);
        self.buckets[self.current] += bytes;
        self.total += bytes;
    }

    /// Bytes per second over the completed buckets plus the current one,
    /// scaled by how much of the current second has passed.
    pub fn rate(&mut self, now: Instant) -> u64 {
        self.advance(now);
        let elapsed = now.saturating_duration_since(self.origin);
        let whole = (self.buckets.len() as u64 - 1).min(elapsed.as_secs());
        let fraction = elapsed
            .saturating_sub(Duration::from_secs(elapsed.as_secs()))
            .as_secs_f64();
        let span = whole as f64 + fraction;
        if span <= 0.0 {
            return 0;
        }
        let sum: u64 = (0..=whole as usize)
            .map(|back| {
                self.buckets[(self.current + self.buckets.len() - back) % self.buckets.len()]
            })
            .sum();
        (sum as f64 / span) as u64
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_is_measured() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new(t0);
        for ms in (0..20_000).step_by(100) {
            meter.record(t0 + Duration::from_millis(ms), 100_000); // 1 MB/s
        }
        let rate = meter.rate(t0 + Duration::from_millis(20_000));
        assert!((900_000..=1_100_000).contains(&rate), "{rate}");
        assert_eq!(meter.total(), 200 * 100_000);
        let later = meter.rate(t0 + Duration::from_secs(60));
        assert_eq!(later, 0, "old traffic ages out");
    }
}
