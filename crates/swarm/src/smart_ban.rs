//! Finding who sent bad data (libtorrent's "smart ban").
//!
//! When a piece fails its hash check and one peer sent all of it, that
//! peer is to blame. When several peers contributed, we keep each block's
//! hash and sender and wait: once a good copy of the piece passes, every
//! peer whose block differs from the good one lied, and only they are
//! struck. Honest peers that shared a piece with a liar are never blamed.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Failed copies kept per piece, at most; older ones are dropped.
const MAX_RECORDS_PER_PIECE: usize = 4;
/// Pieces with failed copies kept, at most.
const MAX_PIECES: usize = 256;

/// Who sent a block, as blame records name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    Peer(SocketAddr),
    /// The publisher's web server: struck, it is dropped, never banned.
    Origin,
}

/// One failed copy of a piece: each block's sender and hash, in block
/// order. A sender the swarm no longer remembers is `None`: it can no
/// longer be struck, but its place keeps the others' blocks paired with
/// the right hashes.
type FailedCopy = Vec<(Option<Sender>, [u8; 32])>;

#[derive(Debug, Default)]
pub(crate) struct SmartBan {
    failed: HashMap<u32, Vec<FailedCopy>>,
}

impl SmartBan {
    /// A copy of `piece` failed. Returns the sender to strike now if one
    /// peer sent every block.
    pub fn failed(&mut self, piece: u32, blocks: FailedCopy) -> Option<Sender> {
        let first = blocks.first()?.0;
        if first.is_some() && blocks.iter().all(|(sender, _)| *sender == first) {
            return first;
        }
        if self.failed.len() >= MAX_PIECES && !self.failed.contains_key(&piece) {
            return None;
        }
        let records = self.failed.entry(piece).or_default();
        if records.len() == MAX_RECORDS_PER_PIECE {
            records.remove(0);
        }
        records.push(blocks);
        None
    }

    /// `piece` passed with these block hashes: returns, once each, the
    /// senders of earlier failed copies whose blocks differ.
    pub fn passed(&mut self, piece: u32, good: &[[u8; 32]]) -> Vec<Sender> {
        let mut liars = Vec::new();
        for record in self.failed.remove(&piece).unwrap_or_default() {
            for ((sender, hash), good_hash) in record.iter().zip(good) {
                if let Some(sender) = sender {
                    if hash != good_hash && !liars.contains(sender) {
                        liars.push(*sender);
                    }
                }
            }
        }
        liars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Sender {
        Sender::Peer(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn known(port: u16) -> Option<Sender> {
        Some(addr(port))
    }

    #[test]
    fn a_lone_sender_is_blamed_at_once() {
        let mut ban = SmartBan::default();
        assert_eq!(
            ban.failed(1, vec![(known(1), [0; 32]), (known(1), [1; 32])]),
            Some(addr(1))
        );
    }

    #[test]
    fn a_shared_piece_blames_only_the_differing_sender_once_a_good_copy_passes() {
        let mut ban = SmartBan::default();
        let good = [[1; 32], [2; 32], [3; 32]];
        let bad = vec![
            (known(1), [1; 32]),
            (known(2), [9; 32]),
            (known(1), [3; 32]),
        ];
        assert_eq!(ban.failed(7, bad), None);
        assert_eq!(ban.passed(7, &good), vec![addr(2)]);
        assert!(ban.passed(7, &good).is_empty(), "records are used once");
    }

    /// Regression: a sender the swarm had forgotten (more than 1,024 peers
    /// had left) used to be dropped from the list before it was paired
    /// with the block hashes, shifting every later block onto the wrong
    /// hash, so an honest peer could be struck for a liar's block.
    #[test]
    fn a_forgotten_sender_keeps_its_place_and_the_right_peer_is_blamed() {
        let mut ban = SmartBan::default();
        let good = [[1; 32], [2; 32], [3; 32], [4; 32]];
        let bad = vec![
            (known(1), [1; 32]),
            (None, [2; 32]),
            (known(2), [3; 32]),
            (known(3), [9; 32]),
        ];
        assert_eq!(ban.failed(5, bad), None);
        assert_eq!(ban.passed(5, &good), vec![addr(3)]);
    }

    #[test]
    fn a_copy_from_one_peer_and_a_forgotten_one_blames_nobody_at_once() {
        let mut ban = SmartBan::default();
        let bad = vec![(None, [0; 32]), (known(1), [1; 32])];
        assert_eq!(ban.failed(2, bad), None);
        let lone_unknown = vec![(None, [0; 32]), (None, [1; 32])];
        assert_eq!(ban.failed(3, lone_unknown), None);
    }
}
