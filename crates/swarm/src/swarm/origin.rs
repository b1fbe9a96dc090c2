//! The origin planner: when to fetch from the publisher's web server (a
//! BEP 19 web seed), and what.
//!
//! The origin is what the publisher pays for, so it is a source of last
//! resort. A peer fetches from it only
//! - pieces no connected peer has, one piece at a time, and of those only
//!   the ones it *owns*: peers cannot see what others are fetching, so
//!   each unheld piece is given to one of the agents that know each other
//!   by rendezvous hashing (highest `origin_weight(share id, piece)`
//!   among us and our connected shoal peers). In a swarm where the agents
//!   are connected to each other, the origin sends each piece once and the
//!   swarm multiplies it; clients that do not follow this rule own
//!   nothing;
//! - anything it lacks, when no peer has sent it a block for a while (it
//!   has no peers, or they cannot serve it): the origin never lets a
//!   download hang;
//! - everything, several pieces at a time, when it has no peers at all.
//!
//! The origin appears to the picker as one more sender, [`ORIGIN`], that
//! has every piece but is not counted in availability; its data is checked
//! like anyone's, and an origin whose pieces fail is struck and dropped.

use std::time::{Duration, Instant};

use super::origin_state::Origin;
use super::Swarm;
use crate::action::Action;
use crate::origin_share::{origin_share_id, origin_weight};
use crate::peer::ORIGIN;
use crate::rate::RateMeter;
use wire::BlockRef;

/// With peers but no block from any of them for this long, the origin
/// may supply anything.
const STARVING_AFTER: Duration = Duration::from_secs(5);
/// Pieces in flight from the origin when we have no peers at all.
const ALONE_PIECES: usize = 4;
/// A download just started has no peers yet because the tracker has not
/// answered; until this much time has passed it asks the origin for one
/// piece at a time, not for a full link's worth.
const FIRST_PEERS_GRACE: Duration = Duration::from_secs(2);
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
        });
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
        let peers = self.peers.len();
        let starving = self
            .last_peer_block
            .is_none_or(|t| now.saturating_duration_since(t) >= STARVING_AFTER);
        let Some(origin) = self.origin.as_ref() else {
            return;
        };
        if !origin.usable || self.completed || origin.not_before.is_some_and(|t| now < t) {
            return;
        }
        let settled = now.saturating_duration_since(origin.started) >= FIRST_PEERS_GRACE;
        let target = if peers == 0 && settled {
            ALONE_PIECES
        } else {
            1
        };
        let mut in_flight: Vec<u32> = origin.requests.iter().map(|b| b.piece).collect();
        in_flight.dedup();
        let ours = origin.share_id;
        // Seeds fetch nothing, so they own nothing.
        let sharers: Vec<u64> = self
            .peers
            .values()
            .filter(|p| !p.pieces.is_full())
            .filter_map(|p| p.caps.origin_share_id)
            .collect();
        let mine = |piece: u32| {
            let claim = origin_weight(ours, piece);
            sharers.iter().all(|&s| origin_weight(s, piece) < claim)
        };
        for _ in in_flight.len()..target {
            let any_piece = peers == 0 || starving;
            // A reader's window first (`streaming`), then the rules above.
            let mut blocks = self.stream_piece_for_origin(now);
            if blocks.is_empty() {
                blocks = self
                    .picker
                    .pick_for_origin(ORIGIN, any_piece, mine, &mut self.rng);
            }
            let Some(first) = blocks.first().copied() else {
                return;
            };
            let length = blocks.iter().map(|b| b.length).sum();
            if let Some(origin) = self.origin.as_mut() {
                origin.requests.extend(blocks.iter().copied());
            }
            self.actions.push_back(Action::FetchFromOrigin {
                piece: first.piece,
                offset: first.offset,
                length,
                blocks,
            });
        }
    }
}
