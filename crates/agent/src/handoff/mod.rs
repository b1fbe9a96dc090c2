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
//! file of the one release that was asked for; the page never chooses
//! anything on disk. For a release of several files the page names the
//! file (`data-shoal-file`), and that value only ever selects one of the
//! signed torrent's own file entries.
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
//! asks for, `file_choice.rs` which file of the release it names,
//! `well_known.rs` reads the keys an origin vouches for,
//! `admission.rs` bounds how much work pages can cause, `offers.rs`
//! keeps pending offers and stream URLs, and `memory.rs` holds their state. `offer.rs`, beside this folder,
//! is where they meet the releases.

mod admission;
mod file_choice;
mod memory;
mod offers;
mod page;
mod well_known;

pub use file_choice::{check_file_param, choose_file, MAX_FILE_PARAM_BYTES};
pub use memory::{Admission, Handoffs, Offer, StreamTarget};
pub use page::{
    check_page_origin, check_remotes, normalize_origin, origin_of_url, publisher_for_origin,
};
