//! Reading a release's verified bytes while it is still downloading: what
//! the agent streams to a browser. A [`PieceReader`] watches which pieces
//! the session has verified and written, and reads a file's bytes in order
//! as soon as the piece holding them is there.
//!
//! Every byte returned is the release's: the reader reads each piece whole
//! and checks it against the torrent's hashes itself before handing out
//! any of it, whatever the store or the disk did meanwhile (the final
//! rename racing the read, a file missing or short, which the store reads
//! as zeros). A mismatch is retried a while (the rename completes) and is
//! an error after, never bytes.
//!
//! Each reader also tells the session where it reads next (its slot in
//! `read_cursors`, the latest offset only), and the session fetches the
//! pieces ahead of it first (`swarm::Swarm::set_stream_cursor`); a clone
//! is a reader of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use meta::Torrent;
use swarm::Bitfield;
use tokio::sync::watch;

use crate::read_cursors::ReadCursors;
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
    /// The bytes on disk no longer match the release (the file was changed
    /// or removed behind the download).
    #[error("piece {piece} on disk does not match the release; download it again")]
    Changed { piece: u32 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal error reading the release: {0}")]
    Internal(String),
}

/// How long a read waits, at most, for a completed download's files to be
/// renamed into place (`MOVE_RETRIES` × `MOVE_RETRY_WAIT`): a read between
/// the store pointing at the final place and the rename finds no file.
const MOVE_RETRIES: u32 = 250;
const MOVE_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Identifies readers within the process.
static NEXT_READER: AtomicU64 = AtomicU64::new(1);

/// One reader's slot on its session's board of read positions.
#[derive(Debug)]
struct Cursor {
    id: u64,
    board: Arc<ReadCursors>,
    /// The last offset reported.
    reported: Option<u64>,
}

impl Cursor {
    fn new(board: Arc<ReadCursors>) -> Cursor {
        Cursor {
            id: NEXT_READER.fetch_add(1, Ordering::Relaxed),
            board,
            reported: None,
        }
    }

    fn report(&mut self, offset: u64) {
        if self.reported != Some(offset) {
            self.reported = Some(offset);
            // A stopped session hears nothing; the read goes on regardless.
            self.board.set(self.id, offset);
        }
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        if self.reported.is_some() {
            self.board.remove(self.id);
        }
    }
}

/// Reads verified bytes of one running torrent. A clone is a new reader
/// (with its own position), sharing the store.
#[derive(Debug)]
pub struct PieceReader {
    store: Arc<PieceStore>,
    verified: watch::Receiver<Bitfield>,
    cursor: Cursor,
    /// The last piece read, checked against its hash.
    checked: Option<(u32, Arc<Vec<u8>>)>,
}

impl Clone for PieceReader {
    fn clone(&self) -> PieceReader {
        PieceReader {
            store: self.store.clone(),
            verified: self.verified.clone(),
            cursor: Cursor::new(self.cursor.board.clone()),
            checked: None,
        }
    }
}

impl PieceReader {
    pub(crate) fn new(
        store: Arc<PieceStore>,
        verified: watch::Receiver<Bitfield>,
        board: Arc<ReadCursors>,
    ) -> PieceReader {
        PieceReader {
            store,
            verified,
            cursor: Cursor::new(board),
            checked: None,
        }
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
    /// end of the file, and only that.
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
        let stream_offset = entry
            .offset
            .checked_add(offset)
            .ok_or(ReadError::OutOfRange { file, offset })?;
        let piece_length = layout.piece_length();
        let piece = u32::try_from(stream_offset / piece_length)
            .map_err(|_| ReadError::OutOfRange { file, offset })?;
        let in_piece = (stream_offset % piece_length) as usize;
        let to_file_end = usize::try_from(entry.length - offset).unwrap_or(usize::MAX);
        self.cursor.report(stream_offset);
        let data = self.checked_piece(piece).await?;
        let end = data
            .len()
            .min(in_piece.saturating_add(max as usize))
            .min(in_piece.saturating_add(to_file_end));
        match data.get(in_piece..end) {
            Some(bytes) if !bytes.is_empty() => Ok(bytes.to_vec()),
            _ => Err(ReadError::OutOfRange { file, offset }),
        }
    }

    /// Piece `piece`, read whole once it is verified and checked against
    /// the torrent's hashes again here (see the module doc).
    async fn checked_piece(&mut self, piece: u32) -> Result<Arc<Vec<u8>>, ReadError> {
        if let Some((at, data)) = &self.checked {
            if *at == piece {
                return Ok(data.clone());
            }
        }
        self.wait_for(piece).await?;
        let mut retries = 0;
        loop {
            let store = self.store.clone();
            let read = tokio::task::spawn_blocking(move || {
                let layout = store.layout();
                let data = store.read_block(piece, 0, layout.piece_len(piece))?;
                let info = layout.piece(store.torrent(), piece);
                let ok = meta::layout::check_piece(&info, &data).ok;
                Ok::<_, StorageError>((data, ok))
            })
            .await
            .map_err(|e| ReadError::Internal(e.to_string()))?;
            match read {
                Ok((data, true)) => {
                    let data = Arc::new(data);
                    self.checked = Some((piece, data.clone()));
                    return Ok(data);
                }
                // The download just completed and its files are being
                // renamed into place: reads point at the final place a
                // moment before the files are there (missing, or zeros).
                // Wait for the rename rather than end a browser's download
                // early or send it wrong bytes.
                Err(StorageError::MissingFile { .. }) | Ok((_, false))
                    if retries < MOVE_RETRIES =>
                {
                    retries += 1;
                    tokio::time::sleep(MOVE_RETRY_WAIT).await;
                }
                Ok((_, false)) => return Err(ReadError::Changed { piece }),
                Err(e) => return Err(e.into()),
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
