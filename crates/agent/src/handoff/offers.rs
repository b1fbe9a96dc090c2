//! Pending offers, waiting for the browser to open their stream, and the
//! stream URLs' secrets, each bound to the one release it was issued for.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::memory::{Handoffs, Offer, StreamTarget, Ticket};
use crate::lock::lock;

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

fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl Handoffs {
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

    /// A new stream secret for `target`: 128 random bits, in hex.
    pub fn issue(&self, target: StreamTarget) -> String {
        let secret = new_secret();
        self.bind(&secret, target);
        secret
    }

    /// Binds `secret` (an offer's, once accepted) to `target`.
    pub fn bind(&self, secret: &str, target: StreamTarget) {
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
                target,
                created: now,
            },
        );
    }

    /// The file a stream secret was issued for, while it is valid.
    pub fn redeem(&self, secret: &str) -> Option<StreamTarget> {
        let tickets = lock(&self.tickets);
        let ticket = tickets.get(secret)?;
        (ticket.created.elapsed() < TICKET_LIFETIME).then(|| ticket.target.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stream_secrets_are_long_random_and_bound_to_their_file() {
        let handoffs = Handoffs::new(6);
        let target = |file| StreamTarget {
            release: "release-a".to_owned(),
            file,
        };
        let a = handoffs.issue(target(0));
        let b = handoffs.issue(target(2));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(handoffs.redeem(&a), Some(target(0)));
        assert_eq!(handoffs.redeem(&b), Some(target(2)));
        assert_eq!(handoffs.redeem("0".repeat(32).as_str()), None);
        assert_eq!(handoffs.redeem(""), None);
    }

    #[test]
    fn pending_offers_are_few_and_taken_once() {
        let handoffs = Handoffs::new(6);
        let torrent = || {
            let bytes = b"d4:infod6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee".to_vec();
            let torrent = meta::Torrent::from_bytes(&bytes).unwrap();
            Offer::new(torrent, bytes, true, 0)
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
