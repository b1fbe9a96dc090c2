//! A snapshot of every connection's state, for tracing where a link's
//! capacity goes: whether we upload to a peer (and if not, why: it is not
//! interested, we choke it, or it has no request waiting) and whether we
//! keep enough requests in flight to the peers that upload to us.

use std::time::{Duration, Instant};

use super::Swarm;
use crate::peer_state::PeerState;

impl Swarm {
    /// Every connection's state at `now` (rates over the last seconds).
    pub fn peer_states(&mut self, now: Instant) -> Vec<PeerState> {
        self.peers
            .iter_mut()
            .map(|(key, peer)| PeerState {
                key: *key,
                addr: peer.addr,
                am_choking: peer.am_choking,
                peer_interested: peer.peer_interested,
                upload_queue: peer.upload_queue.len(),
                uploads_in_flight: peer.uploads_in_flight,
                upload_rate: peer.upload.rate(now),
                peer_choking: peer.peer_choking,
                am_interested: peer.am_interested,
                snubbed: peer.snubbed,
                requests: peer.requests.len(),
                oldest_request_age: peer
                    .requests
                    .first()
                    .map_or(Duration::ZERO, |(_, at)| now.saturating_duration_since(*at)),
                base_rtt: peer.base_rtt,
                download_rate: peer.download.rate(now),
            })
            .collect()
    }

    /// Whether every block we lack is already requested (end-game).
    pub fn in_endgame(&self) -> bool {
        !self.completed && self.picker.in_endgame()
    }
}
