//! What each peer has, and whether we want any of it: bitfields and haves
//! update the picker's availability and our interest (BEP 3 §interested),
//! and our own new pieces are announced to every peer.

use std::time::Instant;

use super::{ProtocolViolation, Swarm};
use crate::action::{Action, DisconnectReason, Outgoing};
use crate::bitfield::Bitfield;
use crate::PeerKey;

impl Swarm {
    /// The peer's whole piece set, from a bitfield, have-all or have-none.
    /// BEP 3 sends it first, but some clients (aria2) send a fresh bitfield
    /// later instead of several haves; it then replaces the old set.
    pub(super) fn set_peer_pieces(
        &mut self,
        now: Instant,
        key: PeerKey,
        pieces: Bitfield,
    ) -> Result<(), ProtocolViolation> {
        let wanted = pieces
            .ones()
            .filter(|&p| !self.picker.have().get(p))
            .count() as u32;
        let both_complete = self.completed && pieces.is_full();
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        let old = std::mem::replace(&mut peer.pieces, pieces);
        peer.wanted = wanted;
        self.picker.remove_peer_pieces(&old);
        if let Some(peer) = self.peers.get(&key) {
            self.picker.add_peer_pieces(&peer.pieces);
        }
        if both_complete {
            self.actions
                .push_back(Action::Disconnect(key, DisconnectReason::NotUseful));
            return Ok(());
        }
        self.reveals_after_bitfield(now, key);
        self.update_interest(key);
        self.fill_requests(now, key);
        Ok(())
    }

    pub(super) fn peer_has(
        &mut self,
        now: Instant,
        key: PeerKey,
        piece: u32,
    ) -> Result<(), ProtocolViolation> {
        if piece >= self.picker.have().len() {
            return Err(
                self.violation(key, format!("have for piece {piece}, which does not exist"))
            );
        }
        let we_lack = !self.picker.have().get(piece);
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        if peer.pieces.set(piece) {
            self.picker.increment(piece);
            self.reveals_after_have(now, key, piece);
            if we_lack {
                let Some(peer) = self.peers.get_mut(&key) else {
                    return Ok(());
                };
                peer.wanted += 1;
                self.update_interest(key);
                self.fill_requests(now, key);
            }
        }
        Ok(())
    }

    pub(super) fn update_interest(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let interested = peer.wanted > 0;
        if interested != peer.am_interested {
            peer.am_interested = interested;
            let message = if interested {
                Outgoing::Interested
            } else {
                Outgoing::NotInterested
            };
            self.actions.push_back(Action::Send(key, message));
        }
    }

    /// We verified `piece`: every peer hears of it, those that have it too
    /// (a seed counts on it to know what has spread: initial seeding), and
    /// those that had it are worth less to us now.
    pub(super) fn announce_have(&mut self, piece: u32) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if peer.pieces.get(piece) {
                peer.wanted = peer.wanted.saturating_sub(1);
            }
            self.actions
                .push_back(Action::Send(key, Outgoing::Have(piece)));
            self.update_interest(key);
        }
    }
}
