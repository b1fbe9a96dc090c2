//! Reading a release's verified bytes while it is still downloading: what
//! the agent streams to a browser. A [`PieceReader`] watches which pieces
//! the session has verified and written, and reads a file's bytes in order
//! as soon as the piece holding them is there. Nothing unverified is ever
//! returned.

use std::sync::Arc;

use meta::Torrent;
use swarm::Bitfield;
use tokio::sync::watch;

use crate::storage::{PieceStore, StorageError};

/// Why a read of verified bytes failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The torrent stopped (paused, removed or failed) before the piece
    /// holding these bytes was verified.
    #[error("the release stopped before piece {piece} was downloaded; resume it and try again")]
    Stopped { piece: u32 },
    #[error("no byte {offset} in file {file} of this release")]
    OutOfRange { file: usize, offset: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal error reading the release: {0}")]
    Internal(String),
}

/// How long a read waits, at most, for a completed download's files to be
/// renamed into place (`MOVE_RETRIES` × `MOVE_RETRY_WAIT`).
const MOVE_RETRIES: u32 = 100;
const MOVE_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Reads verified bytes of one running torrent. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PieceReader {
    store: Arc<PieceStore>,
    verified: watch::Receiver<Bitfield>,
}

impl PieceReader {
    pub(crate) fn new(store: Arc<PieceStore>, verified: watch::Receiver<Bitfield>) -> PieceReader {
        PieceReader { store, verified }
    }

    pub fn torrent(&self) -> &Arc<Torrent> {
        self.store.torrent()
    }

    /// Whether every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.verified.borrow().is_full()
    }

    /// Reads up to `max` bytes of file `file` from `offset`, waiting until
    /// the piece that holds `offset` is verified. Stops at the end of that
    /// piece, so a caller loops to read further; an empty result means the
    /// end of the file.
    pub async fn read_file(
        &mut self,
        file: usize,
        offset: u64,
        max: u32,
    ) -> Result<Vec<u8>, ReadError> {
        let torrent = self.store.torrent().clone();
        let entry = torrent
            .files
            .get(file)
            .filter(|entry| !entry.pad && offset <= entry.length)
            .ok_or(ReadError::OutOfRange { file, offset })?;
        if offset == entry.length || max == 0 {
            return Ok(Vec::new());
        }
        let layout = self.store.layout();
        let stream_offset = entry.offset + offset;
        let piece_length = layout.piece_length();
        let piece = u32::try_from(stream_offset / piece_length)
            .map_err(|_| ReadError::OutOfRange { file, offset })?;
        let in_piece = (stream_offset % piece_length) as u32;
        let to_piece_end = layout.piece_len(piece).saturating_sub(in_piece);
        let to_file_end = u32::try_from(entry.length - offset).unwrap_or(u32::MAX);
        let length = max.min(to_piece_end).min(to_file_end);
        if length == 0 {
            return Err(ReadError::OutOfRange { file, offset });
        }
        self.wait_for(piece).await?;
        let mut retries = 0;
        loop {
            let store = self.store.clone();
            let read =
                tokio::task::spawn_blocking(move || store.read_block(piece, in_piece, length))
                    .await
                    .map_err(|e| ReadError::Internal(e.to_string()))?;
            match read {
                // The download just completed and its files are being
                // renamed into place: reads point at the final place a
                // moment before the files are there. Wait for the rename
                // rather than end a browser's download early.
                Err(StorageError::MissingFile { .. }) if retries < MOVE_RETRIES => {
                    retries += 1;
                    tokio::time::sleep(MOVE_RETRY_WAIT).await;
                }
                other => return other.map_err(ReadError::from),
            }
        }
    }

    async fn wait_for(&mut self, piece: u32) -> Result<(), ReadError> {
        loop {
            if self.verified.borrow_and_update().get(piece) {
                return Ok(());
            }
            // The sender goes with the session: no more pieces will come.
            if self.verified.changed().await.is_err() {
                return if self.verified.borrow().get(piece) {
                    Ok(())
                } else {
                    Err(ReadError::Stopped { piece })
                };
            }
        }
    }
}
