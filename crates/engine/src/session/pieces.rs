//! Piece assembly and verification. Blocks are assembled in memory and a
//! piece is hashed from there and written once, only if it verifies, so
//! bad data never reaches the disk and nothing is read back. Whether the
//! check passed is the swarm's to act on (counting, blame, completion).

use meta::layout::PieceVerdict;
use wire::BlockRef;

use super::error::{blocking, DiskError};
use super::{Internal, Session};

impl Session {
    /// Keeps a block the swarm accepted (from a peer or the origin).
    pub(super) fn buffer(&mut self, block: BlockRef, data: &[u8]) {
        let layout = self.store.layout();
        let buffer = self
            .assembly
            .buffers
            .entry(block.piece)
            .or_insert_with(|| vec![0; layout.piece_len(block.piece) as usize]);
        let at = block.offset as usize;
        if let Some(slot) = buffer.get_mut(at..at + data.len()) {
            slot.copy_from_slice(data);
        }
    }

    /// Checks an assembled piece off the async threads and, if it passes,
    /// writes it.
    pub(super) fn verify(&mut self, piece: u32) {
        let Some(data) = self.assembly.buffers.remove(&piece) else {
            return;
        };
        let store = self.store.clone();
        let torrent = self.torrent.clone();
        let internal = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = blocking(move || {
                let info = store.layout().piece(&torrent, piece);
                let verdict = meta::layout::check_piece(&info, &data);
                if verdict.ok {
                    store.write_block(piece, 0, &data)?;
                }
                Ok(verdict)
            })
            .await;
            let _ = internal.send(Internal::Checked { piece, result }).await;
        });
    }

    /// A hash check's result. Returns the error that must stop the session.
    pub(super) fn checked(
        &mut self,
        piece: u32,
        result: Result<PieceVerdict, DiskError>,
    ) -> Result<(), DiskError> {
        let verdict = result?;
        if !verdict.ok {
            // Who sent it is the swarm's to judge (smart ban); the log lets
            // an operator see bad data arrive.
            tracing::info!(piece, "piece failed its hash check");
        }
        let now = self.now();
        self.swarm
            .handle_piece_checked(now, piece, verdict.ok, &verdict.block_hashes);
        Ok(())
    }
}
