//! Piece assembly and verification. Blocks are assembled in memory and a
//! piece is hashed from there and written once, only if it verifies, so
//! bad data never reaches the disk and nothing is read back. Whether the
//! check passed is the swarm's to act on (counting, blame, completion).
//!
//! At most one check per core runs at once; pieces complete beyond that
//! wait their turn here (the swarm bounds how many, `takes_blocks`). More
//! threads would not hash faster, and each one that allocates costs the
//! process another allocator arena. Buffers of checked pieces are kept for
//! the next pieces instead of going back to the allocator.

use meta::layout::PieceVerdict;
use wire::BlockRef;

use super::error::{blocking, DiskError};
use super::{Assembly, Internal, Session};

/// Checked pieces' buffers kept for reuse beyond those being checked.
const SPARE_BUFFERS: usize = 2;

impl Assembly {
    pub(super) fn new() -> Assembly {
        Assembly {
            max_checks: std::thread::available_parallelism().map_or(2, |n| n.get()),
            ..Assembly::default()
        }
    }

    /// A zeroed buffer of `length` bytes, reusing a spare one if any (pad
    /// bytes are never requested and must read as zeros).
    fn take_buffer(&mut self, length: usize) -> Vec<u8> {
        match self.spare.pop() {
            Some(mut buffer) => {
                buffer.clear();
                buffer.resize(length, 0);
                buffer
            }
            None => vec![0; length],
        }
    }

    fn give_back(&mut self, buffer: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS + self.max_checks {
            self.spare.push(buffer);
        }
    }
}

impl Session {
    /// Keeps a block the swarm accepted (from a peer or the origin).
    pub(super) fn buffer(&mut self, block: BlockRef, data: &[u8]) {
        if !self.assembly.buffers.contains_key(&block.piece) {
            let length = self.store.layout().piece_len(block.piece) as usize;
            let fresh = self.assembly.take_buffer(length);
            self.assembly.buffers.insert(block.piece, fresh);
        }
        let Some(buffer) = self.assembly.buffers.get_mut(&block.piece) else {
            return;
        };
        let at = block.offset as usize;
        if let Some(slot) = buffer.get_mut(at..at + data.len()) {
            slot.copy_from_slice(data);
        }
    }

    /// Queues an assembled piece for its check.
    pub(super) fn verify(&mut self, piece: u32) {
        let Some(data) = self.assembly.buffers.remove(&piece) else {
            return;
        };
        self.assembly.waiting.push_back((piece, data));
        self.start_checks();
    }

    /// Starts waiting checks while fewer than one per core run: each off
    /// the async threads, writing the piece if it passes.
    fn start_checks(&mut self) {
        while self.assembly.checking < self.assembly.max_checks {
            let Some((piece, data)) = self.assembly.waiting.pop_front() else {
                return;
            };
            self.assembly.checking += 1;
            let store = self.store.clone();
            let internal = self.internal_tx.clone();
            tokio::spawn(async move {
                let result = blocking(move || {
                    let verdict = store.check_data(piece, &data);
                    if verdict.ok {
                        store.write_block(piece, 0, &data)?;
                    }
                    Ok((verdict, data))
                })
                .await;
                let (result, buffer) = match result {
                    Ok((verdict, data)) => (Ok(verdict), Some(data)),
                    Err(e) => (Err(e), None),
                };
                let checked = Internal::Checked {
                    piece,
                    result,
                    buffer,
                };
                let _ = internal.send(checked).await;
            });
        }
    }

    /// A hash check's result. Returns the error that must stop the session.
    pub(super) fn checked(
        &mut self,
        piece: u32,
        result: Result<PieceVerdict, DiskError>,
        buffer: Option<Vec<u8>>,
    ) -> Result<(), DiskError> {
        self.assembly.checking = self.assembly.checking.saturating_sub(1);
        if let Some(buffer) = buffer {
            self.assembly.give_back(buffer);
        }
        self.start_checks();
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
