//! Fetches from the origin, the publisher's web server (a BEP 19 web
//! seed). When and what to fetch is the swarm's origin planner's choice;
//! this module runs the HTTP range requests and hands each block back.

use wire::BlockRef;

use crate::events::TorrentEvent;
use crate::web_seed::WebSeedError;

use super::origin_fetches::FetchId;
use super::{Internal, Session};

impl Session {
    pub(super) fn fetch_from_origin(
        &mut self,
        piece: u32,
        offset: u32,
        length: u32,
        blocks: Vec<BlockRef>,
    ) {
        let Some(origin) = self.origin.clone() else {
            return;
        };
        let internal = self.internal_tx.clone();
        let fetch = self.origin_fetches.next_id();
        let task = tokio::spawn(async move {
            let result = origin.fetch(piece, offset, length).await;
            let _ = internal
                .send(Internal::OriginFetched {
                    fetch,
                    offset,
                    blocks,
                    result,
                })
                .await;
        });
        self.origin_fetches
            .started(piece, fetch, task.abort_handle());
    }

    /// Drops the piece's HTTP requests: the origin stops sending what
    /// nobody needs.
    pub(super) fn cancel_origin_fetch(&mut self, piece: u32) {
        self.origin_fetches.cancel(piece);
    }

    pub(super) fn origin_fetched(
        &mut self,
        fetch: FetchId,
        offset: u32,
        blocks: Vec<BlockRef>,
        result: Result<Vec<u8>, WebSeedError>,
    ) {
        let now = self.now();
        if let Some(first) = blocks.first() {
            self.origin_fetches.ended(first.piece, fetch);
        }
        match result {
            Ok(data) => {
                for block in blocks {
                    let at = (block.offset - offset) as usize;
                    let Some(bytes) = data.get(at..at + block.length as usize) else {
                        continue;
                    };
                    if self.swarm.handle_origin_block(now, block) {
                        self.buffer(block, bytes);
                    }
                }
            }
            Err(error) => {
                // A permanent failure (gone, no range support) ends the use
                // of the origin; the swarm says so with `OriginUnusable`.
                let permanent = error.is_permanent();
                let reason = error.to_string();
                if !permanent {
                    self.emit(TorrentEvent::Warning(format!(
                        "{reason}; trying peers and again later"
                    )));
                }
                self.swarm
                    .handle_origin_failed(now, &blocks, permanent, &reason);
            }
        }
    }

    pub(super) fn origin_unusable(&self, reason: &str) {
        let url = self.origin.as_ref().map_or("", |o| o.url()).to_owned();
        self.emit(TorrentEvent::Warning(format!(
            "not using the origin {url} any more: {reason}; downloading from peers only"
        )));
    }
}
