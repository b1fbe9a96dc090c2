//! The browser hand-off (see docs/architecture.md): a publisher's
//! download page asks the agent to fetch a release, and the browser then
//! downloads the file from the agent. A page is a stranger, so a hand-off is accepted only when
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
//!
//! The rules live here, one file per job: `page.rs` checks what a page
//! asks for, `well_known.rs` reads the keys an origin vouches for,
//! `admission.rs` bounds how much work pages can cause, and `offers.rs`
//! keeps pending offers and stream URLs. `offer.rs`, beside this folder,
//! is where they meet the releases.

mod admission;
mod offers;
mod page;
mod well_known;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Semaphore;

pub use admission::Admission;
pub use offers::Offer;
pub use page::{
    check_page_origin, check_remotes, normalize_origin, origin_of_url, publisher_for_origin,
};
pub use well_known::parse_well_known;

use offers::Ticket;
use well_known::PublishedKeys;

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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Handoffs {
    pub fn new(per_origin_per_minute: u32) -> Handoffs {
        Handoffs {
            tickets: Mutex::default(),
            offers: Mutex::default(),
            well_known: Mutex::default(),
            rates: Mutex::default(),
            per_origin_per_minute,
            fetches: Arc::new(Semaphore::new(admission::MAX_FETCHES)),
        }
    }
}
