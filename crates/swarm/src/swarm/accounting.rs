//! What a hash check decides: the bytes of a good piece are counted by
//! source (peers or origin: the tracker bills by this split), senders of
//! bad data are blamed (smart ban), and the last good piece completes the
//! download. Bytes count only once verified and kept, so a liar's or a
//! duplicate's bytes are never billed.

use std::time::Instant;

use super::{Swarm, SwarmStats};
use crate::action::{Action, DisconnectReason};
use crate::peer::ORIGIN;
use crate::picker::BLOCK;
use crate::smart_ban::Sender;
use crate::PeerKey;

/// Bytes of complete pieces waiting for their hash check, at most (or two
/// pieces, if more). Past this the driver stops taking blocks from its
/// connections (see [`Swarm::takes_blocks`]), so a fast peer cannot make
/// it hold more than this in memory when hashing lags. A few pieces keep
/// the hashing threads busy; more only raise the agent's peak memory.
pub(super) const VERIFY_BACKLOG_BYTES: u64 = 8 * 1024 * 1024;

impl Swarm {
    /// Whether the driver should read more blocks from its connections now:
    /// false while the pieces waiting for their hash check reach
    /// [`VERIFY_BACKLOG_BYTES`] (or two pieces). Backpressure then reaches
    /// the peers.
    pub fn takes_blocks(&self) -> bool {
        let two_pieces = 2 * self.picker.layout().piece_length();
        self.verifying_bytes < VERIFY_BACKLOG_BYTES.max(two_pieces)
    }

    /// Every block of `piece` is in: ask the driver to check it.
    pub(super) fn verify(&mut self, piece: u32) {
        self.verifying_bytes += u64::from(self.picker.layout().piece_len(piece));
        self.actions.push_back(Action::Verify(piece));
    }

    fn verify_backlog_done(&mut self, piece: u32) {
        let length = u64::from(self.picker.layout().piece_len(piece));
        self.verifying_bytes = self.verifying_bytes.saturating_sub(length);
    }

    pub fn stats(&mut self, now: Instant) -> SwarmStats {
        let (mut download_rate, mut upload_rate) = (0, 0);
        for peer in self.peers.values_mut() {
            download_rate += peer.download.rate(now);
            upload_rate += peer.upload.rate(now);
        }
        SwarmStats {
            pieces_verified: self.picker.have().count(),
            piece_count: self.picker.have().len(),
            peers: self.peers.len(),
            downloaded: self.downloaded,
            received: self.received,
            uploaded: self.uploaded,
            download_rate,
            upload_rate,
            banned: self.book.banned_count(),
            from_origin: self.origin_bytes(),
        }
    }

    /// Bytes of payload we hold verified.
    pub fn verified_bytes(&self) -> u64 {
        let layout = self.picker.layout();
        self.picker
            .have()
            .ones()
            .map(|p| u64::from(layout.piece_len(p)))
            .sum()
    }

    /// Who `key` is in blame records: the origin, a connected peer, or one
    /// that left recently; `None` for a peer long gone.
    fn sender(&self, key: PeerKey) -> Option<Sender> {
        if key == ORIGIN {
            return Some(Sender::Origin);
        }
        let addr = self.peers.get(&key).map(|p| p.addr).or_else(|| {
            self.departed
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, a)| *a)
        })?;
        Some(Sender::Peer(addr))
    }

    /// The result of a `Verify` action: whether the piece passed, and the
    /// SHA-256 of each of its 16 KiB data blocks (to tell liars apart).
    pub fn handle_piece_checked(
        &mut self,
        now: Instant,
        piece: u32,
        passed: bool,
        block_hashes: &[[u8; 32]],
    ) {
        self.verify_backlog_done(piece);
        if !passed {
            // One entry per block, in block order, also for senders long
            // gone: the pairing with `block_hashes` is by position.
            let blocks: Vec<(Option<Sender>, [u8; 32])> = self
                .picker
                .senders(piece)
                .into_iter()
                .map(|key| self.sender(key))
                .zip(block_hashes.iter().copied())
                .collect();
            self.picker.piece_failed(piece);
            if let Some(culprit) = self.smart_ban.failed(piece, blocks) {
                self.strike(culprit);
            }
            self.refill_all(now);
            return;
        }
        self.count_kept_bytes(piece);
        self.picker.piece_passed(piece);
        for liar in self.smart_ban.passed(piece, block_hashes) {
            self.strike(liar);
        }
        self.announce_have(piece);
        self.actions.push_back(Action::PieceVerified(piece));
        self.complete_if_done();
    }

    /// Adds a verified piece's bytes to the totals of whoever sent each
    /// block; padding blocks (BEP 47) were never sent and count for nobody.
    fn count_kept_bytes(&mut self, piece: u32) {
        let layout = self.picker.layout();
        let piece_len = layout.piece_len(piece);
        let (mut from_peers, mut from_origin) = (0, 0);
        for (index, sender) in self.picker.senders(piece).into_iter().enumerate() {
            let offset = index as u32 * BLOCK;
            if layout.block_is_padding(piece, offset) {
                continue;
            }
            let length = u64::from(BLOCK.min(piece_len - offset));
            if sender == ORIGIN {
                from_origin += length;
            } else {
                from_peers += length;
            }
        }
        self.downloaded += from_peers;
        self.add_origin_bytes(from_origin);
    }

    /// Every piece is ours: say so once, and leave the seeds, which have
    /// nothing more for us and need nothing from us.
    fn complete_if_done(&mut self) {
        if !self.picker.have().is_full() || self.completed {
            return;
        }
        self.completed = true;
        self.actions.push_back(Action::Completed);
        let seeds: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.pieces.is_full())
            .map(|(k, _)| *k)
            .collect();
        for key in seeds {
            self.actions
                .push_back(Action::Disconnect(key, DisconnectReason::NotUseful));
        }
    }

    fn strike(&mut self, sender: Sender) {
        let addr = match sender {
            Sender::Peer(addr) => addr,
            Sender::Origin => {
                // The publisher's own server sent bad data: stop using it at
                // once (peers still can finish the download) and say so.
                self.drop_origin(
                    "its data failed verification: the file on the server does not match the release"
                        .into(),
                );
                return;
            }
        };
        if self.book.strike(addr, self.settings.strikes_to_ban) {
            let banned: Vec<PeerKey> = self
                .peers
                .iter()
                .filter(|(_, p)| p.addr == addr)
                .map(|(k, _)| *k)
                .collect();
            for key in banned {
                self.actions
                    .push_back(Action::Disconnect(key, DisconnectReason::Banned));
            }
        }
    }
}
