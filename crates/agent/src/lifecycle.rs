//! What starts and stops releases: pause, resume, a seeding change,
//! shutdown, and starting a release in the engine. Each runs in the
//! release's turn (its lifecycle lock, see `release.rs`) and never under
//! the registry's lock, so a release taking its time to stop (its
//! trackers hear goodbye, bounded by the runner's grace period) holds up
//! no other release and no other call. Several releases stop at once.

use std::sync::Arc;

use engine::storage::StorageError;
use engine::EngineError;
use futures_util::future::join_all;

use crate::release::{io_error, retry_while_stopping, view, Release, ReleaseView};
use crate::releases::{blocking, Releases};
use crate::runner::{lock, Phase, Running};
use crate::state::unix_now;
use crate::AgentError;

impl Releases {
    /// Stops a release and remembers that it is paused. It shows as
    /// paused at once; the call returns once its torrent has stopped.
    pub async fn pause(&self, id: &str) -> Result<ReleaseView, AgentError> {
        let (release, turn) = self.turn(id).await?;
        let running = {
            let mut live = release.live();
            live.record.paused = true;
            live.running.take()
        };
        if let Some(running) = running {
            running.stop().await;
        }
        drop(turn);
        let view = view(&release);
        self.persist().await?;
        Ok(view)
    }

    /// Starts a paused (or failed) release again.
    pub async fn resume(&self, id: &str) -> Result<ReleaseView, AgentError> {
        let (release, turn) = self.turn(id).await?;
        let stopped = {
            let mut live = release.live();
            live.record.paused = false;
            live.record.last_used_at = unix_now();
            live.running.as_ref().is_none_or(Running::is_finished)
        };
        if stopped {
            self.launch(&release).await;
        }
        drop(turn);
        let view = view(&release);
        self.persist().await?;
        Ok(view)
    }

    /// Stops or starts a complete release as `seeding` says. One still
    /// downloading, or paused (perhaps being paused now), is left alone
    /// without waiting for its turn.
    pub(crate) async fn apply_seeding(&self, release: &Arc<Release>, seeding: bool) {
        let settled = |release: &Release| {
            let paused = release.live().record.paused;
            paused || !lock(&release.status).completed
        };
        if settled(release) {
            return;
        }
        let Ok((release, _turn)) = self.turn(&release.id).await else {
            return;
        };
        if settled(&release) {
            return;
        }
        let running = release.live().running.take();
        match (seeding, running) {
            (false, Some(running)) => running.stop().await,
            (true, running) if running.as_ref().is_none_or(Running::is_finished) => {
                self.launch(&release).await
            }
            (_, running) => release.live().running = running,
        }
    }

    /// Stops every release at once, saving progress, without marking any
    /// paused: the next start resumes them all. Each waits for its turn
    /// (a pause under way finishes first), then for its stop, which is
    /// bounded; so shutdown takes about as long as the slowest release.
    pub async fn shutdown(&self) {
        let releases: Vec<Arc<Release>> = self.registry().map.values().cloned().collect();
        join_all(releases.iter().map(|release| async move {
            let _turn = release.lifecycle.lock().await;
            let running = release.live().running.take();
            if let Some(running) = running {
                running.stop().await;
            }
        }))
        .await;
    }

    /// Starts `release` in the engine: a download, or a seed once complete.
    /// Failures land in its status, so the API can show them.
    pub(crate) async fn launch(&self, release: &Release) {
        let seeding = self.caps().seeding;
        let completed = lock(&release.status).completed;
        if completed && !seeding {
            lock(&release.status).phase = Phase::Complete;
            return;
        }
        let started = if completed {
            self.start_seed(release).await
        } else {
            match self.start_download(release, seeding).await {
                // Already in place (done before a crash recorded it): verify and seed.
                Err(EngineError::Storage(StorageError::AlreadyExists { .. })) => {
                    self.start_seed(release).await
                }
                other => other,
            }
        };
        match started {
            Ok(running) => {
                lock(&release.status).error = None;
                release.live().running = Some(running);
            }
            Err(e) => {
                let mut status = lock(&release.status);
                status.phase = Phase::Error;
                status.error = Some(e.to_string());
            }
        }
    }

    async fn start_download(
        &self,
        release: &Release,
        seeding: bool,
    ) -> Result<Running, EngineError> {
        let out_dir = release.live().record.out_dir.clone();
        let create = out_dir.clone();
        blocking(move || std::fs::create_dir_all(&create).map_err(|e| io_error(&create, e)))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let options = options(release, &self.trusted);
        let handle = retry_while_stopping(|| {
            self.engine
                .download_with(release.torrent.clone(), &out_dir, seeding, options)
        })
        .await?;
        lock(&release.status).phase = Phase::Downloading;
        Ok(self.follow(release, handle))
    }

    async fn start_seed(&self, release: &Release) -> Result<Running, EngineError> {
        let out_dir = release.live().record.out_dir.clone();
        let options = options(release, &self.trusted);
        let handle = retry_while_stopping(|| {
            self.engine
                .seed_with(release.torrent.clone(), &out_dir, |_| {}, options)
        })
        .await?;
        let mut status = lock(&release.status);
        status.completed = true;
        status.phase = Phase::Seeding;
        status.progress.verified_bytes = status.progress.total_bytes;
        drop(status);
        Ok(self.follow(release, handle))
    }

    fn follow(&self, release: &Release, handle: engine::TorrentHandle) -> Running {
        let this = self.this.clone();
        Running::spawn(handle, release.status.clone(), move || {
            // Persist in a task of its own: the caller may hold the lock.
            if let Some(this) = this.upgrade() {
                tokio::spawn(async move {
                    if let Err(e) = this.persist().await {
                        tracing::warn!("cannot save the agent's state: {e}");
                    }
                    // One more shared release: it may push others out.
                    this.enforce_quota(0).await;
                });
            }
        })
    }
}

/// How the engine runs `release`: a hand-off from a public origin may
/// reach its trackers and web seeds at public addresses only; a release
/// whose signature one of `trusted` made has its publisher vouched for
/// (checked here again, at every start: the trusted keys may have changed
/// since the release was added).
fn options(release: &Release, trusted: &[[u8; 32]]) -> engine::TorrentOptions {
    let signature = &release.torrent.signature;
    engine::TorrentOptions {
        publisher: match signature.publisher() {
            Some(publisher) if signature.is_trusted_by(trusted) => {
                engine::PublisherTrust::Trusted {
                    publisher: *publisher,
                }
            }
            _ => engine::PublisherTrust::Unestablished,
        },
        remote: if release.live().record.public_remotes_only {
            engine::AddressPolicy::PublicOnly
        } else {
            engine::AddressPolicy::Any
        },
    }
}
