//! The origin fetches under way, so that the swarm's word can abandon
//! them (the HTTP request is dropped and the origin stops sending).

use std::collections::HashMap;

use tokio::task::AbortHandle;

/// Which fetch a result answers: a piece may have several ranges in flight,
/// and a late result must not forget a newer fetch of the same piece.
pub type FetchId = u64;

/// Fetches from the origin under way, by piece, to abandon on the swarm's
/// word.
#[derive(Debug, Default)]
pub struct OriginFetches {
    last_id: FetchId,
    by_piece: HashMap<u32, Vec<(FetchId, AbortHandle)>>,
}

impl OriginFetches {
    pub(super) fn next_id(&mut self) -> FetchId {
        self.last_id = self.last_id.wrapping_add(1);
        self.last_id
    }

    pub(super) fn started(&mut self, piece: u32, fetch: FetchId, task: AbortHandle) {
        self.by_piece.entry(piece).or_default().push((fetch, task));
    }

    pub(super) fn ended(&mut self, piece: u32, fetch: FetchId) {
        if let Some(fetches) = self.by_piece.get_mut(&piece) {
            fetches.retain(|(id, _)| *id != fetch);
            if fetches.is_empty() {
                self.by_piece.remove(&piece);
            }
        }
    }

    pub(super) fn cancel(&mut self, piece: u32) {
        for (_, task) in self.by_piece.remove(&piece).unwrap_or_default() {
            task.abort();
        }
    }

    #[cfg(test)]
    fn in_flight(&self, piece: u32) -> usize {
        self.by_piece.get(&piece).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_late_result_keeps_the_newer_fetch_cancellable() {
        let mut fetches = OriginFetches::default();
        let slow = tokio::spawn(std::future::pending::<()>());
        let newer = tokio::spawn(std::future::pending::<()>());
        let first = fetches.next_id();
        fetches.started(7, first, slow.abort_handle());
        let second = fetches.next_id();
        fetches.started(7, second, newer.abort_handle());
        assert_ne!(first, second);
        // The first fetch's result arrives after the second one started.
        fetches.ended(7, first);
        assert_eq!(fetches.in_flight(7), 1);
        fetches.cancel(7);
        assert_eq!(fetches.in_flight(7), 0);
        assert!(newer.await.is_err_and(|e| e.is_cancelled()));
        slow.abort();
    }
}
