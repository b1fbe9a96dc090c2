//! The origin planner: when to fetch from the publisher's web server (a
//! BEP 19 web seed), and what.
//!
//! The origin is what the publisher pays for, so it is a source of last
//! resort. With peers connected, a peer fetches one piece at a time from
//! it, and only
//! - pieces no connected peer has, and of those only the ones it *owns*:
//!   peers cannot see what others are fetching, so each unheld piece is
//!   given to one of the agents that know each other by rendezvous hashing
//!   (highest `origin_weight(share id, piece)` among us and our connected
//!   shoal peers). In a swarm where the agents are connected to each
//!   other, the origin sends each piece once and the swarm multiplies it;
//!   clients that do not follow this rule own nothing. In a swarm much
//!   larger than the peers an agent knows (the tracker counts it), each
//!   neighbourhood would elect its own owner; there a claim must also
//!   clear a floor that leaves about one owner per piece in the whole
//!   swarm. Pieces that nobody around us gets for a while may have no
//!   owner at all, so the claim widens (doubling the owners) every
//!   [`WIDEN_WAIT`] while some piece stays unheld around us;
//! - a piece it lacks when it *stalls*: its download link is idle (no
//!   request in flight to a peer that is not snubbed) and no peer has sent
//!   it a block for a while. It prefers a piece it owns, then the rarest.
//!   "My peers cannot supply" and "everybody is slow" look alike from one
//!   peer; what tells them apart is whether connected peers have pieces we
//!   lack. If none has, waiting cannot help, and stall fetches follow each
//!   other. If some have, the crowd is slow (or chokes us): each such
//!   fetch doubles the wait before the next, so a crowd-wide slowdown
//!   costs the origin a few pieces per peer, not a copy per peer. In a
//!   swarm much larger than our view, a stalled agent takes only pieces
//!   it owns (widening its claim when it owns none), since at the start
//!   of a flash crowd every agent stalls at once. The origin never lets a
//!   download hang: a stalled peer only waits longer.
//!
//! The publisher may set a ceiling on the swarm's origin bytes (in copies
//! of the release, in its signed manifest). The planner estimates the
//! swarm's spend as the larger of the tracker's count and its own bytes
//! times the agents in its view (each owns about as many pieces as we do).
//! Once the estimate reaches the ceiling, stall fetches wait at least
//! [`SPENT_STALL_WAIT`]. Owned pieces no connected peer has are fetched
//! still: someone must, and their owner fetches each once.
//!
//! With no peers at all it fetches anything, several pieces at a time,
//! once the tracker answered and the dials it named failed (or
//! [`FIRST_PEERS_GRACE`] passed): every agent of a flash crowd starts
//! alone.
//!
//! The origin appears to the picker as one more sender, [`ORIGIN`], that
//! has every piece but is not counted in availability; its data is checked
//! like anyone's, and an origin whose pieces fail is struck and dropped.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::origin_state::{Origin, MAX_AGENTS_SEEN};
use super::Swarm;
use crate::action::Action;
use crate::origin_share::{claim_floor, origin_share_id, origin_weight};
use crate::peer::ORIGIN;
use crate::picker::OriginPick;
use crate::rate::RateMeter;
use wire::BlockRef;

/// With the link idle and no block from a peer for this long, the origin
/// may supply a piece peers have.
const STALL_WAIT: Duration = Duration::from_secs(5);
/// The stall wait doubles at most this many times while peers have data
/// (to 80 s).
const MAX_DOUBLINGS: u32 = 4;
/// Once the publisher's ceiling is spent, a stalled peer waits this long.
const SPENT_STALL_WAIT: Duration = Duration::from_secs(20);
/// Pieces in flight from the origin when we have no peers at all.
const ALONE_PIECES: usize = 4;
/// A download just started has no peers yet because the tracker has not
/// answered; until this much time has passed it asks the origin for one
/// piece at a time, not for a full link's worth.
const FIRST_PEERS_GRACE: Duration = Duration::from_secs(2);
/// Owners per unheld piece across the whole swarm we aim for at first.
const CLAIMERS: f64 = 1.0;
/// How long after the start, or after the last widening, our claim on
/// unheld pieces may widen again. Long enough for the pieces the first
/// owners fetched to reach most neighbourhoods (so that a widened claim
/// mostly finds pieces nobody owned), short enough that those find an
/// owner well before the crowd could finish. Chosen in the 200- and
/// 1,000-peer simulations: 10 s cost 2.6 origin copies at 1,000 peers,
/// 15 s let the last peer finish 1.43 x the bound.
const WIDEN_WAIT: Duration = Duration::from_secs(12);
/// The tracker's swarm count is believed up to this.
const MAX_SWARM_SIZE: u64 = 1_000_000;
/// After a fetch failed even with retries, leave the origin alone this long.
const COOL_DOWN: Duration = Duration::from_secs(10);

impl Swarm {
    /// The torrent has a web seed: the origin may be used. `our_peer_id`
    /// is the one we give in handshakes (see [`origin_share_id`]).
    pub fn set_origin(&mut self, now: Instant, our_peer_id: &[u8; 20]) {
        // Starving is counted from the start: peers get a few seconds to
        // deliver before the origin may serve what they have.
        self.last_peer_block.get_or_insert(now);
        self.origin = Some(Origin {
            requests: Vec::new(),
            usable: true,
            not_before: None,
            download: RateMeter::new(now),
            bytes: 0,
            started: now,
            share_id: origin_share_id(our_peer_id),
            last_stall_fetch: None,
            slow_crowd_streak: 0,
            ceiling_bytes: None,
            swarm_bytes_reported: 0,
            swarm_size: 0,
            tracker_heard: false,
            owned_fetch: None,
            agents_seen: BTreeSet::new(),
            widenings: 0,
            last_widening: None,
        });
    }

    /// The publisher's ceiling on the whole swarm's origin bytes (from its
    /// signed manifest: copies times the release size), or none.
    pub fn set_origin_ceiling(&mut self, max_bytes: Option<u64>) {
        if let Some(origin) = self.origin.as_mut() {
            origin.ceiling_bytes = max_bytes;
        }
    }

    /// The tracker's count of the swarm's origin bytes so far. A server's
    /// word: it can only make the planner more careful (a count too high
    /// delays origin fetches, it never prevents them), and the highest
    /// count heard stands.
    pub fn handle_swarm_origin_bytes(&mut self, bytes: u64) {
        if let Some(origin) = self.origin.as_mut() {
            origin.swarm_bytes_reported = origin.swarm_bytes_reported.max(bytes);
        }
    }

    /// A tracker answered: peers to dial, and how many agents it counts in
    /// the swarm (seeds and downloaders), if it said. In a swarm much
    /// larger than the peers we know, the count narrows our claim on
    /// unheld pieces (see [`claim_floor`]). A server's word: a count too
    /// high only delays origin fetches until the claim widens, and it is
    /// capped. With no tracker to ask, the driver says so with no peers and
    /// no count.
    pub fn handle_tracker_answer(
        &mut self,
        now: Instant,
        peers: impl IntoIterator<Item = SocketAddr>,
        agents: Option<u64>,
    ) {
        if let Some(origin) = self.origin.as_mut() {
            origin.tracker_heard = true;
            if let Some(agents) = agents {
                origin.swarm_size = agents.min(MAX_SWARM_SIZE);
            }
        }
        self.add_addresses(now, peers);
        self.plan_origin(now);
    }

    /// A shoal agent connected to us or answered our dial, kept or not: the
    /// swarm holds at least the agents we have seen.
    pub(super) fn note_agent(&mut self, share_id: u64) {
        if let Some(origin) = self.origin.as_mut() {
            if origin.agents_seen.len() < MAX_AGENTS_SEEN {
                origin.agents_seen.insert(share_id);
            }
        }
    }

    /// Bytes the origin sent that passed verification and were kept.
    pub fn origin_bytes(&self) -> u64 {
        self.origin.as_ref().map_or(0, |o| o.bytes)
    }

    pub(super) fn add_origin_bytes(&mut self, bytes: u64) {
        if let Some(origin) = self.origin.as_mut() {
            origin.bytes += bytes;
        }
    }

    /// A block arrived from the origin. Returns whether to store it.
    pub fn handle_origin_block(&mut self, now: Instant, block: BlockRef) -> bool {
        let Some(origin) = self.origin.as_mut() else {
            return false;
        };
        let Some(at) = origin.requests.iter().position(|b| *b == block) else {
            return false;
        };
        origin.requests.remove(at);
        origin.download.record(now, u64::from(block.length));
        let arrival = self.picker.on_block(ORIGIN, block);
        if arrival.piece_complete {
            self.verify(block.piece);
        }
        self.plan_origin(now);
        arrival.accepted
    }

    /// A fetch from the origin failed after the driver's retries. A
    /// permanent failure (the file is gone, no range support) ends the use
    /// of the origin; otherwise it rests a while.
    pub fn handle_origin_failed(
        &mut self,
        now: Instant,
        blocks: &[BlockRef],
        permanent: bool,
        reason: &str,
    ) {
        let Some(origin) = self.origin.as_mut() else {
            return;
        };
        origin.requests.retain(|b| !blocks.contains(b));
        for block in blocks {
            self.picker.abort_request(ORIGIN, *block);
        }
        if permanent {
            self.drop_origin(reason.to_owned());
        } else if let Some(origin) = self.origin.as_mut() {
            origin.not_before = Some(now + COOL_DOWN);
        }
        self.refill_all(now);
    }

    pub(super) fn drop_origin(&mut self, reason: String) {
        let Some(origin) = self.origin.as_mut() else {
            return;
        };
        if !origin.usable {
            return;
        }
        origin.usable = false;
        let requests = std::mem::take(&mut origin.requests);
        for block in requests {
            self.picker.abort_request(ORIGIN, block);
        }
        self.actions.push_back(Action::OriginUnusable(reason));
    }

    /// Starts origin fetches as the policy above allows.
    pub(super) fn plan_origin(&mut self, now: Instant) {
        let Some(origin) = self.origin.as_ref() else {
            return;
        };
        if !origin.usable || self.completed || origin.not_before.is_some_and(|t| now < t) {
            return;
        }
        if self.peers.is_empty() {
            let settled = now.saturating_duration_since(origin.started) >= FIRST_PEERS_GRACE;
            // Every agent of a flash crowd starts alone: were each to take
            // a piece before its peers connect, a crowd of 1,000 would cost
            // the origin four copies of a 64 MiB release in its first
            // second. So a starting agent waits for the tracker's word and
            // for the dials it started, up to the grace.
            let peers_coming = !origin.tracker_heard || self.book.has_dials_ahead();
            if !settled && peers_coming {
                return;
            }
            let target = if settled { ALONE_PIECES } else { 1 };
            let in_flight = pieces_in_flight(&origin.requests);
            for _ in in_flight..target {
                if !self.fetch_from_origin(now, OriginPick::Anything) {
                    return;
                }
            }
            return;
        }
        if !origin.requests.is_empty() {
            self.drop_unowned_origin_fetch();
            return; // one piece at a time
        }
        // Pieces no connected peer has go to their owner even once the
        // ceiling is spent: held back, they would end up fetched by
        // whoever stalls first, and more than once.
        if self.fetch_from_origin(now, OriginPick::Unheld) {
            return;
        }
        if self.picker.any_piece_unheld() && self.claim_floor() > 0 && self.widen_claim(now) {
            // Pieces nobody around us has for a while may have no owner
            // anywhere: own more of them.
            if self.fetch_from_origin(now, OriginPick::Unheld) {
                return;
            }
        }
        if self.link_idle() && self.stall_due(now, self.origin_budget_spent()) {
            let slow_crowd = self.peers.values().any(|p| p.wanted > 0);
            // In a swarm much bigger than our view, every agent stalls at
            // once at the start, and "anything" would be a copy per agent:
            // there a stalled agent takes only a piece it owns, and owns
            // more each time it comes up empty.
            let scope = if self.claim_floor() > 0 {
                OriginPick::Owned
            } else {
                OriginPick::Anything
            };
            let mut fetched = self.fetch_from_origin(now, scope);
            if !fetched && scope == OriginPick::Owned && self.widen_claim(now) {
                fetched = self.fetch_from_origin(now, OriginPick::Owned);
            }
            if fetched {
                if let Some(origin) = self.origin.as_mut() {
                    origin.last_stall_fetch = Some(now);
                    if slow_crowd {
                        origin.slow_crowd_streak = origin.slow_crowd_streak.saturating_add(1);
                    }
                }
            }
        }
    }

    /// The least claim on a piece that makes it ours, besides being the
    /// highest among the agents we know.
    fn claim_floor(&self) -> u64 {
        self.claim_floor_knowing(self.sharers().len())
    }

    /// The same, knowing `known` agents that may fetch (see `sharers`).
    fn claim_floor_knowing(&self, known: usize) -> u64 {
        let Some(origin) = self.origin.as_ref() else {
            return 0;
        };
        let claimers = CLAIMERS * f64::from(1u32 << origin.widenings.min(30));
        let seen = origin.agents_seen.len() as u64 + 1;
        claim_floor(claimers, known, origin.swarm_size.max(seen))
    }

    /// Doubles the owners per piece, at most once per wait. Returns whether
    /// it did.
    fn widen_claim(&mut self, now: Instant) -> bool {
        let Some(origin) = self.origin.as_mut() else {
            return false;
        };
        let since = origin.last_widening.unwrap_or(origin.started);
        if now.saturating_duration_since(since) < WIDEN_WAIT {
            return false;
        }
        origin.widenings = origin.widenings.saturating_add(1);
        origin.last_widening = Some(now);
        true
    }

    /// No request in flight to a peer that is sending: nothing is coming.
    fn link_idle(&self) -> bool {
        !self
            .peers
            .values()
            .any(|p| !p.requests.is_empty() && !p.snubbed)
    }

    /// Whether the publisher's ceiling is reached, by our best estimate.
    fn origin_budget_spent(&self) -> bool {
        let Some(origin) = self.origin.as_ref() else {
            return false;
        };
        let Some(ceiling) = origin.ceiling_bytes else {
            return false;
        };
        let view = self.sharers().len() as u64 + 1;
        let estimate = origin
            .bytes
            .saturating_mul(view)
            .max(origin.swarm_bytes_reported);
        estimate >= ceiling
    }

    /// Whether a stalled peer has waited long enough to use the origin.
    fn stall_due(&self, now: Instant, spent: bool) -> bool {
        let Some(origin) = self.origin.as_ref() else {
            return false;
        };
        let peers_have_data = self.peers.values().any(|p| p.wanted > 0);
        // With data among peers, the wait counts from our last stall
        // fetch too, and doubles with each; without, fetches may follow
        // each other.
        let mut quiet_since = self.last_peer_block;
        let mut wait = STALL_WAIT;
        if peers_have_data {
            quiet_since = quiet_since.max(origin.last_stall_fetch);
            wait = STALL_WAIT * (1 << origin.slow_crowd_streak.min(MAX_DOUBLINGS));
        }
        if spent {
            wait = wait.max(SPENT_STALL_WAIT);
        }
        quiet_since.is_none_or(|t| now.saturating_duration_since(t) >= wait)
    }

    fn claim(&self) -> Option<Claim> {
        let ours = self.origin.as_ref()?.share_id;
        let sharers = self.sharers();
        let floor = self.claim_floor_knowing(sharers.len());
        Some(Claim {
            ours,
            sharers,
            floor,
        })
    }

    /// Abandons the piece we fetch as its owner once a connected peer has
    /// it or it is no longer ours (an agent with a higher claim connected,
    /// or the swarm turned out larger): in a flash crowd whose agents
    /// arrive together, the first hear a small count and claim widely.
    fn drop_unowned_origin_fetch(&mut self) {
        let Some(piece) = self.origin.as_ref().and_then(|o| o.owned_fetch) else {
            return;
        };
        let held = self.peers.values().any(|p| p.pieces.get(piece));
        if !held && self.claim().is_some_and(|c| c.owns(piece)) {
            return;
        }
        let Some(origin) = self.origin.as_mut() else {
            return;
        };
        origin.owned_fetch = None;
        let (dropped, kept) = origin.requests.drain(..).partition(|b| b.piece == piece);
        origin.requests = kept;
        let dropped: Vec<BlockRef> = dropped;
        for block in dropped {
            self.picker.abort_request(ORIGIN, block);
        }
        self.actions.push_back(Action::CancelOriginFetch { piece });
    }

    /// Share ids of the connected agents that may fetch from the origin
    /// (seeds fetch nothing, so they own nothing).
    fn sharers(&self) -> Vec<u64> {
        self.peers
            .values()
            .filter(|p| !p.pieces.is_full())
            .filter_map(|p| p.caps.origin_share_id)
            .collect()
    }

    /// Asks the origin for one piece: the piece a stream reader waits for
    /// when peers cannot supply it (`streaming`), else one we own that no
    /// connected peer has, or with `any_piece`, one we own, else the
    /// rarest. Returns whether a fetch started.
    fn fetch_from_origin(&mut self, now: Instant, scope: OriginPick) -> bool {
        let Some(claim) = self.claim() else {
            return false;
        };
        let mut blocks = self.stream_piece_for_origin(now);
        let streamed = !blocks.is_empty();
        if !streamed {
            blocks = self.picker.pick_for_origin(
                ORIGIN,
                scope,
                |piece| claim.owns(piece),
                &mut self.rng,
            );
        }
        let Some(first) = blocks.first().copied() else {
            return false;
        };
        let length = blocks.iter().map(|b| b.length).sum();
        if let Some(origin) = self.origin.as_mut() {
            origin.requests.extend(blocks.iter().copied());
            origin.owned_fetch = (!streamed && scope == OriginPick::Unheld).then_some(first.piece);
        }
        self.actions.push_back(Action::FetchFromOrigin {
            piece: first.piece,
            offset: first.offset,
            length,
            blocks,
        });
        true
    }
}

/// Which unheld pieces are ours, as we see the swarm now.
struct Claim {
    ours: u64,
    /// The share ids of the agents we know that may fetch.
    sharers: Vec<u64>,
    floor: u64,
}

impl Claim {
    fn owns(&self, piece: u32) -> bool {
        let claim = origin_weight(self.ours, piece);
        claim >= self.floor
            && self
                .sharers
                .iter()
                .all(|&s| origin_weight(s, piece) < claim)
    }
}

/// Distinct pieces among blocks in flight (a piece's blocks are together).
fn pieces_in_flight(requests: &[BlockRef]) -> usize {
    let mut pieces: Vec<u32> = requests.iter().map(|b| b.piece).collect();
    pieces.dedup();
    pieces.len()
}
