//! The session's numbers for its owner (`Progress`, about once a second)
//! and for its trackers (`Totals`, which trackers bill by). Both come from
//! the swarm's counters, converted in one place.

use crate::announcer::Totals;
use crate::events::{Progress, TorrentEvent};

use super::Session;

impl Session {
    pub(super) fn progress(&mut self) -> Progress {
        let stats = self.swarm.stats(self.now());
        Progress {
            verified_bytes: self.swarm.verified_bytes().min(self.torrent.total_size()),
            total_bytes: self.torrent.total_size(),
            bytes_from_peers: stats.downloaded,
            bytes_from_origin: stats.from_origin,
            uploaded: stats.uploaded,
            download_rate: stats.download_rate,
            upload_rate: stats.upload_rate,
            peers: stats.peers,
            pieces_verified: stats.pieces_verified,
            piece_count: stats.piece_count,
            seconds: self.started.elapsed().as_secs_f64(),
        }
    }

    /// Hands the trackers the bytes moved so far, by source, and whatever
    /// else `also` changes (what is left, completion, stopping).
    pub(super) fn publish_totals(&self, progress: &Progress, also: impl FnOnce(&mut Totals)) {
        self.totals.send_modify(|t| {
            t.uploaded = progress.uploaded;
            t.downloaded = progress.bytes_from_peers + progress.bytes_from_origin;
            t.from_origin = progress.bytes_from_origin;
            also(t);
        });
    }

    pub(super) fn report_progress(&mut self) {
        let progress = self.progress();
        self.publish_totals(&progress, |t| {
            t.left = progress.total_bytes - progress.verified_bytes;
        });
        self.emit(TorrentEvent::Progress(progress));
        self.trace_timeline();
    }

    /// With `RUST_LOG=shoal::timeline=debug`, once a second: the swarm's
    /// byte counts and every connection's state, to see where a link's
    /// capacity goes (`shoal-bench` runs keep these logs).
    fn trace_timeline(&mut self) {
        if !tracing::enabled!(target: "shoal::timeline", tracing::Level::DEBUG) {
            return;
        }
        let now = self.now();
        let t = self.started.elapsed().as_secs_f64();
        let stats = self.swarm.stats(now);
        let endgame = self.swarm.in_endgame();
        tracing::debug!(target: "shoal::timeline", t, received = stats.received,
            downloaded = stats.downloaded, uploaded = stats.uploaded,
            from_origin = stats.from_origin, endgame, "swarm");
        for p in self.swarm.peer_states(now) {
            tracing::debug!(target: "shoal::timeline", t, peer = %p.addr,
                choking = p.am_choking, interested = p.peer_interested,
                upload_queue = p.upload_queue, uploads_in_flight = p.uploads_in_flight,
                up = p.upload_rate, choked = p.peer_choking, want = p.am_interested,
                snubbed = p.snubbed, requests = p.requests,
                oldest_ms = p.oldest_request_age.as_millis() as u64,
                rtt_ms = p.base_rtt.map_or(0, |r| r.as_millis() as u64),
                down = p.download_rate, "peer");
        }
    }
}
