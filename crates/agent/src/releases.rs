//! The releases the agent holds: adding, pausing, resuming and removing
//! them, applying caps, and keeping the state folder in step. One lock
//! serialises these operations; the API calls them one at a time anyway.
//! (Hand-offs from web pages arrive through `offer.rs`.)
//!
//! A release the customer adds is theirs: pinned from the start, never
//! counted by the disk quota nor removed by it. Only hand-off releases,
//! copies the agent keeps for sharing after the browser saved the
//! customer's own, count toward the quota and may be evicted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use engine::storage::StorageError;
use engine::{Engine, EngineError};
use serde::Deserialize;

use crate::handoff::Handoffs;
use crate::quota::{self, QuotaEntry};
pub use crate::release::ReleaseView;
use crate::release::{
    delete_data, find, io_error, new_release, retry_while_stopping, view, Release,
};
pub use crate::runner::Phase;
use crate::runner::{lock, Running};
use crate::source;
use crate::state::{unix_now, write_atomically, ReleaseRecord, RuntimeCaps, StateFile};
use crate::stream::StreamSource;
use crate::AgentError;

/// Who asked for a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddedBy {
    /// The customer, through the API or the UI.
    Customer,
    /// A web page's hand-off, accepted when the browser opened its stream.
    Handoff { public_remotes_only: bool },
}

/// Most releases one agent holds; each costs a task and some memory.
pub const MAX_RELEASES: usize = 1024;

/// A `PUT /v1/settings` body: the fields to change.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    pub max_upload_bps: Option<u64>,
    pub max_download_bps: Option<u64>,
    pub seeding: Option<bool>,
    pub shared_quota_bytes: Option<u64>,
}

/// What a page's hand-off gets: where the browser downloads the file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HandoffAnswer {
    /// The path of the stream URL, `/v1/stream/SECRET`.
    pub stream_path: String,
    pub info_hash: String,
    pub name: String,
    pub size: u64,
}

/// A stream's source (none for a HEAD request), the file's name and
/// its length.
#[derive(Debug)]
pub struct StreamPlan {
    pub source: Option<StreamSource>,
    pub name: String,
    pub length: u64,
}

/// The agent's releases and the engine that runs them.
#[derive(Debug)]
pub struct Releases {
    engine: Engine,
    state_dir: PathBuf,
    pub(crate) download_dir: PathBuf,
    pub(crate) trusted: Vec<[u8; 32]>,
    caps: Mutex<RuntimeCaps>,
    pub(crate) releases: tokio::sync::Mutex<BTreeMap<String, Release>>,
    pub(crate) handoffs: Handoffs,
    /// Lets a runner persist a completion without holding a strong cycle.
    this: std::sync::Weak<Releases>,
}

impl Releases {
    pub fn new(
        engine: Engine,
        state_dir: PathBuf,
        download_dir: PathBuf,
        trusted: Vec<[u8; 32]>,
        caps: RuntimeCaps,
        handoffs_per_origin_per_minute: u32,
    ) -> Arc<Releases> {
        Arc::new_cyclic(|this| Releases {
            engine,
            state_dir,
            download_dir,
            trusted,
            caps: Mutex::new(caps),
            releases: tokio::sync::Mutex::new(BTreeMap::new()),
            handoffs: Handoffs::new(handoffs_per_origin_per_minute),
            this: this.clone(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn caps(&self) -> RuntimeCaps {
        *self.caps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Re-adds the releases in the state file; those not paused start.
    /// A release that cannot start is listed with its error.
    pub async fn restore(&self, state: StateFile) -> Result<(), AgentError> {
        let mut releases = self.releases.lock().await;
        for record in state.releases.into_iter().take(MAX_RELEASES) {
            let torrent = match meta::read_torrent_file(&record.torrent_file) {
                Ok(torrent) => Arc::new(torrent),
                Err(e) => {
                    tracing::warn!("dropping release {}: {e}", record.info_hash);
                    continue;
                }
            };
            let mut release = new_release(record, torrent);
            if !release.record.paused {
                self.launch(&mut release).await;
            }
            releases.insert(release.record.info_hash.clone(), release);
        }
        drop(releases);
        self.persist().await
    }

    /// Adds the release at `source` for the customer (pinned) and starts it.
    pub async fn add(&self, source_text: &str) -> Result<ReleaseView, AgentError> {
        let (torrent, bytes) = source::load(source_text).await?;
        source::check_publisher(source_text, &torrent, &self.trusted)?;
        self.add_checked(Arc::new(torrent), bytes, AddedBy::Customer)
            .await
    }

    /// Adds a release whose publisher was checked; a hand-off's makes room
    /// for itself under the quota first.
    pub(crate) async fn add_checked(
        &self,
        torrent: Arc<meta::Torrent>,
        bytes: Vec<u8>,
        added_by: AddedBy,
    ) -> Result<ReleaseView, AgentError> {
        let id = source::release_id(&torrent);
        if self.releases.lock().await.contains_key(&id) {
            return Err(AgentError::AlreadyAdded { id });
        }
        if added_by != AddedBy::Customer {
            self.enforce_quota(torrent.total_size()).await;
        }
        let mut releases = self.releases.lock().await;
        if releases.contains_key(&id) {
            return Err(AgentError::AlreadyAdded { id });
        }
        if releases.len() >= MAX_RELEASES {
            return Err(AgentError::Invalid(format!(
                "this agent already holds {MAX_RELEASES} releases; remove some first"
            )));
        }
        let torrents = self.state_dir.join("torrents");
        crate::state::create_private_dir(&torrents)?;
        let torrent_file = torrents.join(format!("{id}.torrent"));
        write_atomically(&torrent_file, &bytes)?;
        let now = unix_now();
        let record = ReleaseRecord {
            info_hash: id.clone(),
            name: torrent.name.clone(),
            torrent_file,
            out_dir: self.download_dir.clone(),
            paused: false,
            completed: false,
            pinned: added_by == AddedBy::Customer,
            handed_off: added_by != AddedBy::Customer,
            public_remotes_only: matches!(
                added_by,
                AddedBy::Handoff {
                    public_remotes_only: true
                }
            ),
            added_at: now,
            last_used_at: now,
        };
        let mut release = new_release(record, torrent);
        self.launch(&mut release).await;
        let view = view(&release);
        releases.insert(id, release);
        drop(releases);
        self.persist().await?;
        Ok(view)
    }

    pub async fn list(&self) -> Vec<ReleaseView> {
        self.releases.lock().await.values().map(view).collect()
    }

    /// Pins a release (never evicted by the quota) or unpins it.
    pub async fn pin(&self, id: &str, pinned: bool) -> Result<ReleaseView, AgentError> {
        let mut releases = self.releases.lock().await;
        let release = find(&mut releases, id)?;
        release.record.pinned = pinned;
        let view = view(release);
        drop(releases);
        self.persist().await?;
        if !pinned {
            self.enforce_quota(0).await;
        }
        Ok(view)
    }

    /// Evicts least recently used shared releases until the quota has
    /// room for `incoming` more bytes.
    async fn enforce_quota(&self, incoming: u64) {
        let quota_bytes = self.caps().shared_quota_bytes;
        if quota_bytes == 0 {
            return;
        }
        let evict = {
            let releases = self.releases.lock().await;
            let entries: Vec<QuotaEntry> = releases
                .values()
                .map(|r| QuotaEntry {
                    id: r.record.info_hash.clone(),
                    size: r.torrent.total_size(),
                    completed: lock(&r.status).completed,
                    // The customer's own releases are kept like pinned ones.
                    pinned: r.record.pinned || !r.record.handed_off,
                    last_used_at: r.record.last_used_at,
                })
                .collect();
            quota::evictions(&entries, quota_bytes, incoming)
        };
        for id in evict {
            match self.remove(&id, true).await {
                Ok(()) => {
                    tracing::info!("removed shared release {id} to stay within the disk quota")
                }
                Err(e) => tracing::warn!("cannot remove release {id} for the disk quota: {e}"),
            }
        }
    }

    /// Stops a release and remembers that it is paused.
    pub async fn pause(&self, id: &str) -> Result<ReleaseView, AgentError> {
        let mut releases = self.releases.lock().await;
        let release = find(&mut releases, id)?;
        if let Some(running) = release.running.take() {
            running.stop().await;
        }
        release.record.paused = true;
        let view = view(release);
        drop(releases);
        self.persist().await?;
        Ok(view)
    }

    /// Starts a paused (or failed) release again.
    pub async fn resume(&self, id: &str) -> Result<ReleaseView, AgentError> {
        let mut releases = self.releases.lock().await;
        let release = find(&mut releases, id)?;
        release.record.paused = false;
        release.record.last_used_at = unix_now();
        if release.running.as_ref().is_none_or(Running::is_finished) {
            self.launch(release).await;
        }
        let view = view(release);
        drop(releases);
        self.persist().await?;
        Ok(view)
    }

    /// Forgets a release; deletes its data too with `delete_files`.
    pub async fn remove(&self, id: &str, delete_files: bool) -> Result<(), AgentError> {
        let id = id.to_ascii_lowercase();
        let mut releases = self.releases.lock().await;
        let Some(mut release) = releases.remove(&id) else {
            return Err(AgentError::UnknownRelease { id });
        };
        drop(releases);
        if let Some(running) = release.running.take() {
            running.stop().await;
        }
        let _ = std::fs::remove_file(&release.record.torrent_file);
        if delete_files {
            delete_data(&release.record.out_dir, &release.torrent)?;
        }
        self.persist().await
    }

    /// Applies new caps at once; turning seeding off stops complete
    /// releases, turning it on starts them again.
    pub async fn update_settings(&self, update: SettingsUpdate) -> Result<RuntimeCaps, AgentError> {
        let caps = {
            let mut caps = self.caps.lock().unwrap_or_else(PoisonError::into_inner);
            caps.max_upload_bps = update.max_upload_bps.unwrap_or(caps.max_upload_bps);
            caps.max_download_bps = update.max_download_bps.unwrap_or(caps.max_download_bps);
            caps.seeding = update.seeding.unwrap_or(caps.seeding);
            caps.shared_quota_bytes = update.shared_quota_bytes.unwrap_or(caps.shared_quota_bytes);
            *caps
        };
        self.engine.upload_limit().set_rate(caps.max_upload_bps);
        self.engine.download_limit().set_rate(caps.max_download_bps);
        if update.seeding.is_some() {
            let mut releases = self.releases.lock().await;
            for release in releases.values_mut() {
                let completed = lock(&release.status).completed;
                if !completed || release.record.paused {
                    continue;
                }
                match (caps.seeding, release.running.take()) {
                    (false, Some(running)) => running.stop().await,
                    (true, running) if running.as_ref().is_none_or(Running::is_finished) => {
                        self.launch(release).await
                    }
                    (_, running) => release.running = running,
                }
            }
        }
        self.persist().await?;
        if update.shared_quota_bytes.is_some() {
            self.enforce_quota(0).await;
        }
        Ok(caps)
    }

    /// Stops every release, saving progress, without marking any paused:
    /// the next start resumes them all.
    pub async fn shutdown(&self) {
        let mut releases = self.releases.lock().await;
        for release in releases.values_mut() {
            if let Some(running) = release.running.take() {
                running.stop().await;
            }
        }
    }

    /// Starts `release` in the engine: a download, or a seed once complete.
    /// Failures land in its status, so the API can show them.
    pub(crate) async fn launch(&self, release: &mut Release) {
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
        let mut status = lock(&release.status);
        match started {
            Ok(running) => {
                status.error = None;
                release.running = Some(running);
            }
            Err(e) => {
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
        std::fs::create_dir_all(&release.record.out_dir)
            .map_err(|e| EngineError::Internal(io_error(&release.record.out_dir, e).to_string()))?;
        let handle = retry_while_stopping(|| {
            self.engine.download_with(
                release.torrent.clone(),
                &release.record.out_dir,
                seeding,
                options(release),
            )
        })
        .await?;
        lock(&release.status).phase = Phase::Downloading;
        Ok(self.follow(release, handle))
    }

    async fn start_seed(&self, release: &Release) -> Result<Running, EngineError> {
        let handle = retry_while_stopping(|| {
            self.engine.seed_with(
                release.torrent.clone(),
                &release.record.out_dir,
                |_| {},
                options(release),
            )
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

    /// Writes the release list and caps to the state folder.
    async fn persist(&self) -> Result<(), AgentError> {
        let releases = self.releases.lock().await;
        let state = StateFile {
            releases: releases
                .values()
                .map(|r| ReleaseRecord {
                    completed: lock(&r.status).completed,
                    ..r.record.clone()
                })
                .collect(),
            caps: Some(self.caps()),
        };
        Ok(state.save(&self.state_dir)?)
    }
}

/// How the engine runs `release`: a hand-off from a public origin may
/// reach its trackers and web seeds at public addresses only.
fn options(release: &Release) -> engine::TorrentOptions {
    engine::TorrentOptions {
        remote: if release.record.public_remotes_only {
            engine::AddressPolicy::PublicOnly
        } else {
            engine::AddressPolicy::Any
        },
    }
}

/// The one data file of a single-file release, with its index.
pub(crate) fn single_file(torrent: &meta::Torrent) -> Option<(usize, &meta::FileEntry)> {
    let mut files = torrent.files.iter().enumerate().filter(|(_, f)| !f.pad);
    let first = files.next()?;
    files.next().is_none().then_some(first)
}
