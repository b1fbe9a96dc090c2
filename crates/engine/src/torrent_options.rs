//! How one torrent runs beyond the engine's settings, and the facts its
//! caller established before starting it.
//!
//! Trust in a publisher is the caller's to establish (the CLI's `--trust`,
//! the agent's trusted keys): the engine is told, never guesses from the
//! torrent alone. What it is told decides which hashes each piece is
//! checked against (BEP 52 hybrids carry two: SHA-1 and the v2 merkle tree).

use meta::layout::PieceHashes;
use meta::{SignatureStatus, Torrent};

use crate::address_policy::AddressPolicy;

/// How one torrent runs, beyond the engine's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TorrentOptions {
    /// Which addresses its trackers and web seeds may be reached at.
    pub remote: AddressPolicy,
    /// What the caller checked of the torrent's publisher.
    pub publisher: PublisherTrust,
}

/// What the caller established about who published a torrent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PublisherTrust {
    /// Nothing: the torrent may be unsigned, or signed by a key the
    /// customer never chose to trust. Every hash it carries is checked.
    #[default]
    Unestablished,
    /// The caller verified the torrent's signature and trusts this key.
    Trusted { publisher: [u8; 32] },
}

impl PublisherTrust {
    /// Which hashes pieces of `torrent` are checked against. The v2 merkle
    /// tree alone only when the caller vouched for the publisher *and* the
    /// torrent, as it stands, carries that publisher's valid signature over
    /// this very v2 info-hash (a caller's mix-up costs speed, not safety).
    pub fn piece_hashes(&self, torrent: &Torrent) -> PieceHashes {
        let PublisherTrust::Trusted { publisher } = self else {
            return PieceHashes::All;
        };
        match (&torrent.signature, torrent.info_hashes.v2) {
            (
                SignatureStatus::Valid {
                    publisher: signer,
                    manifest,
                },
                Some(v2),
            ) if signer == publisher && manifest.info_hash_v2 == v2 => PieceHashes::V2Only,
            _ => PieceHashes::All,
        }
    }
}
