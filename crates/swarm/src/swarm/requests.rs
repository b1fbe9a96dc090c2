//! Downloading from peers: how many requests keep each link busy, which
//! blocks to ask for (the picker chooses them), what an arriving block
//! means, and when a peer that stopped sending is snubbed.

use std::time::Instant;

use wire::BlockRef;

use super::{ProtocolViolation, Swarm};
use crate::action::{Action, Outgoing};
use crate::picker::BLOCK;
use crate::PeerKey;

/// Requests sent to one peer at a time, at least, once some are in flight.
const REQUEST_BATCH: usize = 4;

impl Swarm {
    /// A block arrived from `peer`. Returns whether to store it.
    pub fn handle_block(
        &mut self,
        now: Instant,
        key: PeerKey,
        block: BlockRef,
    ) -> Result<bool, ProtocolViolation> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(false);
        };
        self.received += u64::from(block.length);
        match peer.take_request(block) {
            Some(sent_at) => {
                let rtt = now.saturating_duration_since(sent_at);
                peer.base_rtt = Some(peer.base_rtt.map_or(rtt, |r| r.min(rtt)));
                peer.last_progress = now;
                peer.snubbed = false;
                self.last_peer_block = Some(now);
                peer.download.record(now, u64::from(block.length));
            }
            None if peer.recently_cancelled.contains(&block) => return Ok(false),
            None => {
                return Err(self.violation(
                    key,
                    format!("a block of piece {} we never asked for", block.piece),
                ))
            }
        }
        let arrival = self.picker.on_block(key, block);
        for other in &arrival.also_requested_from {
            if let Some(other_peer) = self.peers.get_mut(other) {
                if other_peer.take_request(block).is_some() {
                    other_peer.remember_cancelled(block);
                    self.actions
                        .push_back(Action::Send(*other, Outgoing::Cancel(block)));
                }
            }
        }
        if arrival.piece_complete {
            self.verify(block.piece);
        }
        self.fill_requests(now, key);
        Ok(arrival.accepted)
    }

    /// Requests in flight that keep `peer`'s link busy: its rate times the
    /// round trip plus some slack, in blocks.
    pub(super) fn queue_depth(&mut self, now: Instant, key: PeerKey) -> usize {
        let settings = &self.settings;
        let Some(peer) = self.peers.get_mut(&key) else {
            return 0;
        };
        if peer.snubbed {
            return 1;
        }
        let rate = peer.download.rate(now);
        if rate == 0 {
            return settings.initial_queue_depth;
        }
        let horizon = peer.base_rtt.unwrap_or_default() + settings.request_queue_time;
        let blocks = (rate as f64 * horizon.as_secs_f64() / f64::from(BLOCK)).ceil() as usize;
        blocks.clamp(settings.min_queue_depth, settings.max_queue_depth)
    }

    pub(super) fn fill_requests(&mut self, now: Instant, key: PeerKey) {
        let depth = self.queue_depth(now, key);
        let endgame_depth = self.settings.endgame_queue_depth;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let in_flight = peer.requests.len();
        if peer.peer_choking || !peer.am_interested || in_flight >= depth {
            return;
        }
        // Requests go out a few at a time rather than one per arriving
        // block: each write to an idle connection is a packet of its own,
        // headers and all, on an uplink that carries our uploads.
        if in_flight > 0 && depth - in_flight < REQUEST_BATCH.min(depth) {
            return;
        }
        let blocks = self.picker.pick(
            key,
            &peer.pieces,
            depth - in_flight,
            endgame_depth.saturating_sub(in_flight),
            &mut self.rng,
        );
        if peer.requests.is_empty() {
            peer.last_progress = now;
        }
        for block in blocks {
            peer.requests.push((block, now));
            self.actions
                .push_back(Action::Send(key, Outgoing::Request(block)));
        }
    }

    pub(super) fn refill_all(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill_requests(now, key);
        }
    }

    pub(super) fn check_snubs(&mut self, now: Instant) {
        let timeout = self.settings.request_timeout;
        let stalled: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                !p.requests.is_empty() && now.saturating_duration_since(p.last_progress) > timeout
            })
            .map(|(k, _)| *k)
            .collect();
        for key in stalled {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            peer.snubbed = true;
            let requests = std::mem::take(&mut peer.requests);
            for (block, _) in requests {
                peer.remember_cancelled(block);
                self.picker.abort_request(key, block);
                self.actions
                    .push_back(Action::Send(key, Outgoing::Cancel(block)));
            }
        }
    }
}
