//! Announcing to a torrent's trackers: `started` first, again on the
//! tracker's interval, `completed` once, `stopped` on the way out. Peers
//! learned go to the session; failures are retried with back-off and never
//! stop the download.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::tracker_client::{self, AnnounceEvent, AnnounceRequest};

/// What the announcer reports at each announce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    /// Of `downloaded`, the bytes that came from the origin web server.
    pub from_origin: u64,
    pub completed: bool,
    pub stopping: bool,
}

/// What a tracker's answer tells the session.
#[derive(Debug)]
pub(crate) struct TrackerAnswer {
    pub peers: Vec<SocketAddr>,
    /// Seeds and downloaders in the swarm, if the tracker counted them.
    pub agents: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct AnnounceSetup {
    pub urls: Vec<String>,
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub port: u16,
    pub key: u32,
    pub timeout: Duration,
    /// Which addresses the trackers may be reached at.
    pub remote: crate::AddressPolicy,
    /// The engine's client for `remote`, shared by every torrent.
    pub client: reqwest::Client,
}

/// Runs until `totals` says `stopping` (after a `stopped` announce) or the
/// session is gone.
pub(crate) async fn run(
    setup: AnnounceSetup,
    mut totals: watch::Receiver<Totals>,
    answers: mpsc::Sender<TrackerAnswer>,
    warnings: mpsc::Sender<String>,
) {
    if setup.urls.is_empty() {
        return;
    }
    let client = setup.client.clone();
    let mut urls = Vec::with_capacity(setup.urls.len());
    for url in &setup.urls {
        let allowed = reqwest::Url::parse(url)
            .map_err(|e| e.to_string())
            .and_then(|parsed| setup.remote.check_url(&parsed));
        match allowed {
            Ok(()) => urls.push(url.clone()),
            Err(reason) => {
                let _ = warnings
                    .send(format!("tracker {url} not used: {reason}"))
                    .await;
            }
        }
    }
    let mut event = Some(AnnounceEvent::Started);
    let mut completed_sent = totals.borrow().completed;
    let mut failures = 0u32;
    loop {
        let now = *totals.borrow();
        if now.completed && !completed_sent {
            event = Some(AnnounceEvent::Completed);
            completed_sent = true;
        }
        let mut wait = Duration::from_secs(1800);
        let mut any_ok = false;
        for url in &urls {
            match tracker_client::announce(
                &client,
                url,
                &request(&setup, &now, event),
                setup.timeout,
            )
            .await
            {
                Ok(response) => {
                    any_ok = true;
                    wait = wait.min(response.interval);
                    if let Some(warning) = response.warning {
                        let _ = warnings.send(format!("tracker {url}: {warning}")).await;
                    }
                    let agents = match (response.complete, response.incomplete) {
                        (None, None) => None,
                        (seeds, downloaders) => Some(
                            u64::from(seeds.unwrap_or(0)) + u64::from(downloaders.unwrap_or(0)),
                        ),
                    };
                    let answer = TrackerAnswer {
                        peers: response.peers,
                        agents,
                    };
                    if answers.send(answer).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if failures == 0 {
                        let _ = warnings.send(format!("tracker {url}: {e}")).await;
                    }
                }
            }
        }
        if any_ok {
            failures = 0;
            event = None;
        } else {
            failures += 1;
            // Back off 5 s, 10 s, 20 s … up to 5 minutes.
            wait = Duration::from_secs(5u64 << failures.min(6).saturating_sub(1))
                .min(Duration::from_secs(300));
        }
        // Sleep until the interval ends, waking early only to report
        // completion or to say goodbye.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                changed = totals.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = *totals.borrow();
                    if now.stopping || (now.completed && !completed_sent) {
                        break;
                    }
                }
            }
        }
        let now = *totals.borrow();
        if now.stopping {
            // The final totals, not those of the last regular announce:
            // trackers account from them. A download that completed and
            // stops at once still reports its completion first.
            let mut goodbye = vec![Some(AnnounceEvent::Stopped)];
            if now.completed && !completed_sent {
                goodbye.insert(0, Some(AnnounceEvent::Completed));
            }
            for event in goodbye {
                for url in &urls {
                    let request = request(&setup, &now, event);
                    let _ =
                        tracker_client::announce(&client, url, &request, Duration::from_secs(5))
                            .await;
                }
            }
            return;
        }
    }
}

/// An announce of `totals` with `event`.
fn request(
    setup: &AnnounceSetup,
    totals: &Totals,
    event: Option<AnnounceEvent>,
) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: setup.info_hash,
        peer_id: setup.peer_id,
        port: setup.port,
        uploaded: totals.uploaded,
        downloaded: totals.downloaded,
        left: totals.left,
        event,
        numwant: Some(200),
        key: setup.key,
        compact: true,
        origin_bytes: Some(totals.from_origin),
    }
}
