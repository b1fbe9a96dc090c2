//! Serving blocks to peers. Which block goes to whom, and when, is the
//! swarm's choice (`next_upload`); this module reads whole pieces from the
//! disk and keeps the recent ones, because peers ask for a piece's blocks
//! in a row and one read then serves many requests.

use std::sync::Arc;

use swarm::PeerKey;
use wire::BlockRef;

use crate::connection::{ConnId, WriterCmd};
use crate::events::TorrentEvent;

use super::error::{blocking, DiskError};
use super::{Internal, Session, UploadCache};

/// Memory for whole pieces read to serve uploads.
const UPLOAD_CACHE_BYTES: usize = 32 * 1024 * 1024;

impl UploadCache {
    fn get(&self, piece: u32) -> Option<Arc<Vec<u8>>> {
        self.pieces
            .iter()
            .find(|(p, _)| *p == piece)
            .map(|(_, data)| data.clone())
    }

    /// Keeps `data`, dropping the oldest pieces past the memory budget.
    fn insert(&mut self, piece: u32, data: Arc<Vec<u8>>) {
        let mut cached: usize = self.pieces.iter().map(|(_, d)| d.len()).sum();
        while cached + data.len() > UPLOAD_CACHE_BYTES {
            let Some((_, old)) = self.pieces.pop_front() else {
                break;
            };
            cached -= old.len();
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
                Some(data) => self.send_block(id, block, &data),
                None => self.read_piece(id, block),
            }
        }
    }

    fn send_block(&mut self, id: ConnId, block: BlockRef, piece: &[u8]) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let range = block.offset as usize..(block.offset + block.length) as usize;
        match piece.get(range) {
            Some(data) => {
                let _ = conn.writer.send(WriterCmd::Block {
                    block,
                    data: data.to_vec(),
                });
            }
            None => self.swarm.handle_upload_dropped(conn.key),
        }
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
        tokio::spawn(async move {
            let length = store.layout().piece_len(piece);
            let result = blocking(move || store.read_block(piece, 0, length)).await;
            let _ = internal.send(Internal::PieceRead { piece, result }).await;
        });
    }

    pub(super) fn piece_read(&mut self, piece: u32, result: Result<Vec<u8>, DiskError>) {
        let waiting = self.uploads.reading.remove(&piece).unwrap_or_default();
        match result {
            Ok(data) => {
                let data = Arc::new(data);
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
