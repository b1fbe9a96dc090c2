//! The releases the agent holds: adding, pausing, resuming and removing
//! them, applying caps, and keeping the state folder in step. Hand-offs
//! from web pages arrive through `offer.rs`; starting a release in the
//! engine is `launch.rs`.
//!
//! The registry (every release by id) sits behind a std mutex that is
//! held only to look up, insert, remove or snapshot, never across an
//! await. Stopping a release (up to 15 s while it says goodbye to its
//! trackers) happens outside it, under that release's own lifecycle lock
//! (see `release.rs`): pausing one release never holds up the API or any
//! other release, and shutdown stops them all at once. Disk writes (the
//! state file, torrent copies, deleted data) run on blocking threads.
//!
//! A release the customer adds is theirs: pinned from the start, never
//! counted by the disk quota nor removed by it. Only hand-off releases,
//! copies the agent keeps for sharing after the browser saved the
//! customer's own, count toward the quota and may be evicted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::join_all;
use serde::Deserialize;
use tokio::sync::OwnedMutexGuard;

use crate::handoff::Handoffs;
use crate::quota::{self, QuotaEntry};
pub use crate::release::ReleaseView;
use crate::release::{delete_data, new_release, view, Release};
use crate::runner::lock;
pub use crate::runner::Phase;
use crate::source;
use crate::state::{
    create_private_dir, unix_now, write_atomically, ReleaseRecord, RuntimeCaps, StateFile,
};
use crate::AgentError;

/// Who asked for a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddedBy {
    /// The customer, through the API or the UI.
    Customer,
    /// A web page's hand-off, accepted when the browser opened its stream.
    Handoff { public_remotes_only: bool },
    /// The updater: a build of the agent itself, kept and shared.
    Update,
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

/// The agent's releases and the engine that runs them.
#[derive(Debug)]
pub struct Releases {
    pub(crate) engine: engine::Engine,
    state_dir: PathBuf,
    pub(crate) download_dir: PathBuf,
    pub(crate) trusted: Vec<[u8; 32]>,
    caps: Mutex<RuntimeCaps>,
    registry: Mutex<Registry>,
    /// The number of the newest state snapshot on disk: a save that
    /// finishes after a newer one does not write its older list.
    saved: Arc<Mutex<u64>>,
    pub(crate) handoffs: Handoffs,
    /// Lets a runner persist a completion without holding a strong cycle.
    pub(crate) this: std::sync::Weak<Releases>,
}

/// Every release by id, and what is on its way in.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) map: BTreeMap<String, Arc<Release>>,
    /// Ids being added: their torrent is saved and started before they
    /// join `map`, and no second add of them may begin meanwhile.
    adding: BTreeSet<String>,
    /// State snapshots taken so far; numbers each save.
    snapshots: u64,
}

impl Registry {
    fn holds(&self, id: &str) -> bool {
        self.map.contains_key(id) || self.adding.contains(id)
    }
}

/// Takes an id out of [`Registry::adding`] however its add ends
/// (an error, or the request dropped half-way).
struct Adding<'a> {
    releases: &'a Releases,
    id: String,
}

impl Drop for Adding<'_> {
    fn drop(&mut self) {
        self.releases.registry().adding.remove(&self.id);
    }
}

impl Releases {
    pub fn new(
        engine: engine::Engine,
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
            registry: Mutex::default(),
            saved: Arc::default(),
            handoffs: Handoffs::new(handoffs_per_origin_per_minute),
            this: this.clone(),
        })
    }

    pub fn engine(&self) -> &engine::Engine {
        &self.engine
    }

    pub fn caps(&self) -> RuntimeCaps {
        *self.caps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The registry, locked: never hold it across an await.
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The release `id` (an exact, lower-case id).
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Release>> {
        self.registry().map.get(id).cloned()
    }

    /// The release `id` and its turn: every earlier start or stop of it
    /// is done, and no other begins until the guard is dropped.
    pub(crate) async fn turn(
        &self,
        id: &str,
    ) -> Result<(Arc<Release>, OwnedMutexGuard<()>), AgentError> {
        let unknown = || AgentError::UnknownRelease { id: id.to_owned() };
        let release = self.get(&id.to_ascii_lowercase()).ok_or_else(unknown)?;
        let turn = release.lifecycle.clone().lock_owned().await;
        // Removed while we waited.
        let current = self
            .get(&release.id)
            .is_some_and(|r| Arc::ptr_eq(&r, &release));
        if !current {
            return Err(unknown());
        }
        Ok((release, turn))
    }

    /// Re-adds the releases in the state file; those not paused start.
    /// A release that cannot start is listed with its error.
    pub async fn restore(&self, state: StateFile) -> Result<(), AgentError> {
        for record in state.releases.into_iter().take(MAX_RELEASES) {
            let path = record.torrent_file.clone();
            let read = tokio::task::spawn_blocking(move || meta::read_torrent_file(&path)).await;
            let torrent = match read {
                Ok(Ok(torrent)) => Arc::new(torrent),
                Ok(Err(e)) => {
                    tracing::warn!("dropping release {}: {e}", record.info_hash);
                    continue;
                }
                Err(e) => {
                    tracing::warn!("dropping release {}: {e}", record.info_hash);
                    continue;
                }
            };
            let paused = record.paused;
            let release = Arc::new(new_release(record, torrent));
            if !paused {
                let _turn = release.lifecycle.lock().await;
                self.launch(&release).await;
            }
            self.registry()
                .map
                .insert(release.id.clone(), release.clone());
        }
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
        let out_dir = self.download_dir.clone();
        self.add_into(torrent, bytes, added_by, out_dir).await
    }

    /// Adds a build of the agent that the updater checked against the
    /// project key, downloaded into `out_dir` (the updater's own folder).
    pub(crate) async fn add_update(
        &self,
        torrent: Arc<meta::Torrent>,
        bytes: Vec<u8>,
        out_dir: PathBuf,
    ) -> Result<ReleaseView, AgentError> {
        self.add_into(torrent, bytes, AddedBy::Update, out_dir)
            .await
    }

    /// Whether release `id` is complete, or why it failed; `None` when
    /// the agent does not hold it.
    pub(crate) fn completion(&self, id: &str) -> Option<Result<bool, String>> {
        let release = self.get(id)?;
        let status = lock(&release.status);
        Some(match (&status.phase, &status.error) {
            (Phase::Error, Some(error)) => Err(error.clone()),
            _ => Ok(status.completed),
        })
    }

    /// The releases downloaded into `dir` (the updater's folder), but `keep`.
    pub(crate) fn ids_in_folder(&self, dir: &std::path::Path, keep: &str) -> Vec<String> {
        let registry = self.registry();
        registry
            .map
            .values()
            .filter(|r| r.id != keep && r.live().record.out_dir == dir)
            .map(|r| r.id.clone())
            .collect()
    }

    async fn add_into(
        &self,
        torrent: Arc<meta::Torrent>,
        bytes: Vec<u8>,
        added_by: AddedBy,
        out_dir: PathBuf,
    ) -> Result<ReleaseView, AgentError> {
        let id = source::release_id(&torrent);
        if self.registry().holds(&id) {
            return Err(AgentError::AlreadyAdded { id });
        }
        let handed_off = matches!(added_by, AddedBy::Handoff { .. });
        if handed_off {
            self.enforce_quota(torrent.total_size()).await;
        }
        let _adding = {
            let mut registry = self.registry();
            if registry.holds(&id) {
                return Err(AgentError::AlreadyAdded { id });
            }
            if registry.map.len() + registry.adding.len() >= MAX_RELEASES {
                return Err(AgentError::Invalid(format!(
                    "this agent already holds {MAX_RELEASES} releases; remove some first"
                )));
            }
            registry.adding.insert(id.clone());
            Adding {
                releases: self,
                id: id.clone(),
            }
        };
        let torrents = self.state_dir.join("torrents");
        let torrent_file = torrents.join(format!("{id}.torrent"));
        blocking({
            let torrent_file = torrent_file.clone();
            move || {
                create_private_dir(&torrents)?;
                Ok(write_atomically(&torrent_file, &bytes)?)
            }
        })
        .await?;
        let now = unix_now();
        let record = ReleaseRecord {
            info_hash: id.clone(),
            name: torrent.name.clone(),
            torrent_file,
            out_dir,
            paused: false,
            completed: false,
            // The customer's own and the agent's builds are never evicted.
            pinned: !handed_off,
            handed_off,
            public_remotes_only: matches!(
                added_by,
                AddedBy::Handoff {
                    public_remotes_only: true
                }
            ),
            added_at: now,
            last_used_at: now,
        };
        let release = Arc::new(new_release(record, torrent));
        {
            let _turn = release.lifecycle.lock().await;
            self.launch(&release).await;
        }
        let view = view(&release);
        self.registry().map.insert(id, release);
        self.persist().await?;
        Ok(view)
    }

    pub async fn list(&self) -> Vec<ReleaseView> {
        let releases: Vec<Arc<Release>> = self.registry().map.values().cloned().collect();
        releases.iter().map(|r| view(r)).collect()
    }

    /// Pins a release (never evicted by the quota) or unpins it.
    pub async fn pin(&self, id: &str, pinned: bool) -> Result<ReleaseView, AgentError> {
        let release = self
            .get(&id.to_ascii_lowercase())
            .ok_or_else(|| AgentError::UnknownRelease { id: id.to_owned() })?;
        release.live().record.pinned = pinned;
        let view = view(&release);
        self.persist().await?;
        if !pinned {
            self.enforce_quota(0).await;
        }
        Ok(view)
    }

    /// Evicts least recently used shared releases until the quota has
    /// room for `incoming` more bytes.
    pub(crate) async fn enforce_quota(&self, incoming: u64) {
        let quota_bytes = self.caps().shared_quota_bytes;
        if quota_bytes == 0 {
            return;
        }
        let evict = {
            let registry = self.registry();
            let entries: Vec<QuotaEntry> = registry
                .map
                .values()
                .map(|r| {
                    let live = r.live();
                    QuotaEntry {
                        id: r.id.clone(),
                        size: r.torrent.total_size(),
                        completed: lock(&r.status).completed,
                        // The customer's own releases are kept like pinned ones.
                        pinned: live.record.pinned || !live.record.handed_off,
                        last_used_at: live.record.last_used_at,
                    }
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

    /// Forgets a release; deletes its data too with `delete_files`.
    pub async fn remove(&self, id: &str, delete_files: bool) -> Result<(), AgentError> {
        let id = id.to_ascii_lowercase();
        let (release, _turn) = self.turn(&id).await?;
        self.registry().map.remove(&id);
        let (running, record) = {
            let mut live = release.live();
            (live.running.take(), live.record.clone())
        };
        if let Some(running) = running {
            running.stop().await;
        }
        let torrent = release.torrent.clone();
        blocking(move || {
            let _ = std::fs::remove_file(&record.torrent_file);
            if delete_files {
                delete_data(&record.out_dir, &torrent)?;
            }
            Ok(())
        })
        .await?;
        self.persist().await
    }

    /// Applies new caps at once; turning seeding off stops complete
    /// releases, turning it on starts them again, all at once.
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
            let releases: Vec<Arc<Release>> = self.registry().map.values().cloned().collect();
            join_all(releases.iter().map(|r| self.apply_seeding(r, caps.seeding))).await;
        }
        self.persist().await?;
        if update.shared_quota_bytes.is_some() {
            self.enforce_quota(0).await;
        }
        Ok(caps)
    }

    /// Writes the release list and caps to the state folder, on a
    /// blocking thread.
    pub(crate) async fn persist(&self) -> Result<(), AgentError> {
        let (number, state) = {
            let mut registry = self.registry();
            registry.snapshots += 1;
            let releases = registry
                .map
                .values()
                .map(|r| {
                    // Lock order: the record, then the status.
                    let record = r.live().record.clone();
                    ReleaseRecord {
                        completed: lock(&r.status).completed,
                        ..record
                    }
                })
                .collect();
            let state = StateFile {
                releases,
                caps: Some(self.caps()),
            };
            (registry.snapshots, state)
        };
        let dir = self.state_dir.clone();
        let saved = self.saved.clone();
        blocking(move || {
            let mut saved = saved.lock().unwrap_or_else(PoisonError::into_inner);
            // A newer snapshot, which holds this one's change, is on disk.
            if number < *saved {
                return Ok(());
            }
            state.save(&dir)?;
            *saved = number;
            Ok(())
        })
        .await
    }
}

/// Runs disk work on a blocking thread, off the async ones.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AgentError> + Send + 'static,
) -> Result<T, AgentError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AgentError::Internal(format!("disk work failed: {e}")))?
}
