//! Serving blocks to peers. Which block goes to whom, and when, is the
//! swarm's choice (`next_upload`); this module reads whole pieces from the
//! disk and keeps the recent ones, because peers ask for a piece's blocks
//! in a row and one read then serves many requests.

use bytes::Bytes;
use swarm::PeerKey;
use wire::BlockRef;

use crate::connection::{ConnId, WriterCmd};
use crate::events::TorrentEvent;

use super::error::{blocking, DiskError};
use super::{Internal, Session, UploadCache};

/// Memory for whole pieces read to serve uploads.
const UPLOAD_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Buffers of pieces dropped from the cache, kept for the next reads.
const SPARE_BUFFERS: usize = 4;

impl UploadCache {
    fn get(&self, piece: u32) -> Option<Bytes> {
        self.pieces
            .iter()
            .find(|(p, _)| *p == piece)
            .map(|(_, data)| data.clone())
    }

    /// Keeps `data`, dropping the oldest pieces past the memory budget.
    fn insert(&mut self, piece: u32, data: Bytes) {
        let mut cached: usize = self.pieces.iter().map(|(_, d)| d.len()).sum();
        while cached + data.len() > UPLOAD_CACHE_BYTES {
            let Some((_, old)) = self.pieces.pop_front() else {
                break;
            };
            cached -= old.len();
            // Its memory serves the next read unless a block of it is
            // still on its way to a peer.
            if self.spare.len() < SPARE_BUFFERS {
                if let Ok(buffer) = old.try_into_mut() {
                    self.spare.push(buffer.into());
                }
            }
        }
        self.pieces.push_back((piece, data));
    }
}

impl Session {
    /// Queues blocks to `key`'s socket while the swarm has something for
    /// it (the swarm also bounds how many are on their way).
    pub(super) fn serve_uploads(&mut self, key: PeerKey) {
        let Some(&id) = self.keys.get(&key) else {
            return;
        };
        loop {
            if !self.conns.contains_key(&id) {
                return;
            }
            let Some(block) = self.swarm.next_upload(key) else {
                return;
            };
            match self.uploads.get(block.piece) {
                Some(piece) => self.send_block(id, block, &piece),
                None => self.read_piece(id, block),
            }
        }
    }

    /// Queues a block to the connection's writer: a view into the piece
    /// read from the disk, not a copy.
    fn send_block(&mut self, id: ConnId, block: BlockRef, piece: &Bytes) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let start = block.offset as usize;
        let end = start.saturating_add(block.length as usize);
        if end > piece.len() {
            self.swarm.handle_upload_dropped(conn.key);
            return;
        }
        conn.flush_outbox();
        let data = piece.slice(start..end);
        let _ = conn.writer.send(WriterCmd::Block { block, data });
    }

    /// Reads a whole piece for `block`, once however many blocks wait for it.
    fn read_piece(&mut self, id: ConnId, block: BlockRef) {
        let waiting = self.uploads.reading.entry(block.piece).or_default();
        waiting.push((id, block));
        if waiting.len() > 1 {
            return;
        }
        let store = self.store.clone();
        let internal = self.internal_tx.clone();
        let piece = block.piece;
        let buffer = self.uploads.spare.pop().unwrap_or_default();
        tokio::spawn(async move {
            let length = store.layout().piece_len(piece);
            let result = blocking(move || store.read_block_into(piece, 0, length, buffer)).await;
            let _ = internal.send(Internal::PieceRead { piece, result }).await;
        });
    }

    pub(super) fn piece_read(&mut self, piece: u32, result: Result<Vec<u8>, DiskError>) {
        let waiting = self.uploads.reading.remove(&piece).unwrap_or_default();
        match result {
            Ok(data) => {
                let data = Bytes::from(data);
                for (id, block) in waiting {
                    self.send_block(id, block, &data);
                }
                self.uploads.insert(piece, data);
            }
            Err(e) => {
                for (id, _) in waiting {
                    if let Some(conn) = self.conns.get(&id) {
                        self.swarm.handle_upload_dropped(conn.key);
                    }
                }
                self.emit(TorrentEvent::Warning(format!(
                    "not sending piece {piece}: {e}"
                )));
            }
        }
    }
}
