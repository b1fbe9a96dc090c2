//! What a page can make the agent spend before anything is checked: a
//! few hand-offs per origin per minute, and a few torrent fetches at once.

use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use super::memory::{Admission, Handoffs};
use crate::lock::lock;

/// Origins whose hand-off counts are kept.
const MAX_RATED_ORIGINS: usize = 1024;
const RATE_WINDOW: Duration = Duration::from_secs(60);

impl Handoffs {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
