//! Serving peers: their requests queue up while we unchoke them (BEP 3),
//! the choker picks whom to unchoke, and a choke rejects what was waiting
//! (BEP 6). The driver takes blocks with `next_upload` as its socket
//! drains.

use std::time::Instant;

use wire::BlockRef;

use super::{ProtocolViolation, Swarm};
use crate::action::{Action, Outgoing};
use crate::choker::{self, Candidate};
use crate::PeerKey;

/// Blocks handed to the driver for one peer and not yet sent, at most:
/// enough to keep a fast link busy, few enough that a choke takes effect
/// soon (what is queued still goes out). Our requests to the peer wait
/// behind these on the connection: at 16 (256 KiB) a request to a peer we
/// upload to at 0.4 MB/s (a 2 MB/s uplink shared by five unchoked peers)
/// waited over half a second, and peers serving us ran dry.
pub(super) const UPLOADS_IN_FLIGHT: usize = 4;

impl Swarm {
    pub(super) fn peer_requests(
        &mut self,
        now: Instant,
        key: PeerKey,
        block: BlockRef,
    ) -> Result<(), ProtocolViolation> {
        let layout = self.picker.layout();
        if block.piece >= layout.piece_count()
            || u64::from(block.offset) + u64::from(block.length)
                > u64::from(layout.piece_len(block.piece))
        {
            return Err(self.violation(
                key,
                format!("a request beyond the end of piece {}", block.piece),
            ));
        }
        let have = self.picker.have().get(block.piece);
        let max_queue = self.settings.max_upload_queue;
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        if peer.am_choking || !have || peer.upload_queue.len() >= max_queue {
            // A request crossing our choke in flight, for a piece we do not
            // have, or past the queue limit: refuse politely where the
            // protocol allows.
            if peer.caps.fast {
                self.actions
                    .push_back(Action::Send(key, Outgoing::Reject(block)));
            }
            return Ok(());
        }
        if !peer.upload_queue.contains(&block) {
            if peer.upload_queue.is_empty() {
                self.actions.push_back(Action::UploadReady(key));
            }
            peer.upload_queue.push_back(block);
            self.reveals_after_request(now, key, block);
        }
        Ok(())
    }

    /// The next block to send `peer`, if it is unchoked, asked for one, and
    /// has fewer than [`UPLOADS_IN_FLIGHT`] blocks on their way. The driver
    /// reports each block with `handle_block_sent`, or with
    /// `handle_upload_dropped` if it could not send it.
    pub fn next_upload(&mut self, key: PeerKey) -> Option<BlockRef> {
        let peer = self.peers.get_mut(&key)?;
        if peer.am_choking || peer.uploads_in_flight >= UPLOADS_IN_FLIGHT {
            return None;
        }
        let block = peer.upload_queue.pop_front()?;
        peer.uploads_in_flight += 1;
        self.reveals_after_upload(key, block);
        Some(block)
    }

    /// `blocks` blocks, `bytes` of payload in all, went out to `peer`.
    pub fn handle_block_sent(&mut self, now: Instant, key: PeerKey, blocks: usize, bytes: u64) {
        self.uploaded += bytes;
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.uploads_in_flight = peer.uploads_in_flight.saturating_sub(blocks);
            peer.upload.record(now, bytes);
        }
        self.reveals_after_sent(now, key);
    }

    /// A block from `next_upload` will not be sent (the disk read for it
    /// failed): it no longer counts against the peer's uploads in flight.
    pub fn handle_upload_dropped(&mut self, key: PeerKey) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.uploads_in_flight = peer.uploads_in_flight.saturating_sub(1);
        }
    }

    pub(super) fn unchoke(&mut self, now: Instant, key: PeerKey) {
        if let Some(peer) = self.peers.get_mut(&key) {
            if peer.am_choking {
                peer.am_choking = false;
                peer.unchoked_at = Some(now);
                self.actions.push_back(Action::Send(key, Outgoing::Unchoke));
                self.top_up(now, key);
            }
        }
    }

    pub(super) fn choke(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.am_choking {
            return;
        }
        peer.am_choking = true;
        peer.unchoked_at = None;
        self.actions.push_back(Action::Send(key, Outgoing::Choke));
        // BEP 6: with the fast extension, choking does not drop the queue
        // silently; each waiting request gets a reject.
        let dropped: Vec<BlockRef> = peer.upload_queue.drain(..).collect();
        if peer.caps.fast {
            for block in dropped {
                self.actions
                    .push_back(Action::Send(key, Outgoing::Reject(block)));
            }
        }
    }

    pub(super) fn run_choker(&mut self, now: Instant) {
        let rotate = now >= self.next_optimistic;
        if rotate {
            self.next_optimistic = now + self.settings.optimistic_interval;
        }
        let candidates: Vec<Candidate> = self
            .peers
            .iter_mut()
            .map(|(key, peer)| Candidate {
                peer: *key,
                interested: peer.peer_interested,
                download_rate: peer.download.rate(now),
                upload_rate: peer.upload.rate(now),
                snubbed: peer.snubbed,
                missing: peer.pieces.len() - peer.pieces.count(),
                unchoked_since: peer.unchoked_at,
                optimistic: peer.optimistic,
            })
            .collect();
        let (unchoke, optimistic) = choker::choose(
            &candidates,
            self.completed,
            self.settings.unchoke_slots,
            self.settings.optimistic_slots,
            rotate,
            now,
            &mut self.rng,
        );
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.optimistic = optimistic.contains(&key);
            }
            if unchoke.contains(&key) {
                self.unchoke(now, key);
            } else {
                self.choke(key);
            }
        }
    }
}
