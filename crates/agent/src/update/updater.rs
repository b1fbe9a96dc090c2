//! The update loop: every `check_interval_secs`, while updates are on and
//! not deferred, read the feed, check the build it offers (`feed.rs`),
//! download it through the agent's own engine like any release (so the
//! agent then shares it with the next agents, within the customer's
//! caps), try it (`trial.rs`), and swap it in (`swap.rs`). After the
//! swap it asks the daemon to stop and restart into the new build.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::torrent_source::{self, LoadError};
use tokio::sync::Notify;

use super::error::UpdateError;
use super::feed::{self, Verdict, MAX_FEED_BYTES};
use super::marker::{self, FailedBuild, PendingUpdate};
use super::stamp::{build_target, current_version};
use super::status::{lock, record_error, SharedStatus, UpdateState};
use super::swap;
use super::trial::run_trial;
use super::version::Version;
use crate::releases::Releases;
use crate::settings::UpdateSettings;
use crate::state::unix_now;
use crate::AgentError;

/// How long a feed fetch may take.
const FEED_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a build may take to download before the check gives up (it
/// keeps downloading; the next check finds it further on).
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug)]
pub struct Updater {
    pub settings: UpdateSettings,
    pub key: [u8; 32],
    pub state_dir: PathBuf,
    /// The agent's binary, found at start, before any rename.
    pub exe: Option<PathBuf>,
    pub releases: Arc<Releases>,
    pub status: SharedStatus,
    /// Told once a new build is in place.
    pub restart: Arc<Notify>,
}

impl Updater {
    /// Checks until the task is dropped, or a new build is in place.
    pub async fn run(self) {
        loop {
            let now = unix_now();
            let interval = Duration::from_secs(self.settings.check_interval_secs.max(1));
            let wait = if !self.settings.enabled || self.settings.feed_url.is_empty() {
                lock(&self.status).state = UpdateState::Off;
                return;
            } else if now < self.settings.defer_until_unix {
                lock(&self.status).state = UpdateState::Deferred;
                interval.min(Duration::from_secs(self.settings.defer_until_unix - now))
            } else {
                match self.check().await {
                    Ok(true) => {
                        lock(&self.status).state = UpdateState::Restarting;
                        self.restart.notify_one();
                        return;
                    }
                    Ok(false) => {}
                    Err(e) => record_error(&self.status, &e),
                }
                lock(&self.status).state = UpdateState::Idle;
                interval
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One check; true when a new build is in place.
    async fn check(&self) -> Result<bool, UpdateError> {
        {
            let mut status = lock(&self.status);
            status.state = UpdateState::Checking;
            status.last_check_unix = Some(unix_now());
        }
        let client =
            torrent_source::fetch_client().map_err(|e| UpdateError::Internal(e.to_string()))?;
        let url = &self.settings.feed_url;
        let feed = self.fetch_feed(&client).await?;
        let torrent_url = feed::entry_for(&feed, url, build_target()).map_err(|reason| {
            UpdateError::FeedInvalid {
                url: url.clone(),
                reason,
            }
        })?;
        let Some(torrent_url) = torrent_url else {
            self.up_to_date();
            return Ok(false);
        };
        let loaded = torrent_source::fetch(&client, &torrent_url, meta::MAX_TORRENT_BYTES)
            .await
            .map_err(|e| torrent_error(&torrent_url, e))?;
        let current: Version = current_version()
            .parse()
            .map_err(|e| UpdateError::Internal(format!("this build's version: {e}")))?;
        let refused = |reason| UpdateError::Refused {
            location: torrent_url.clone(),
            reason,
        };
        let offer = match feed::check_offer(&loaded.torrent, &self.key, build_target(), &current)
            .map_err(refused)?
        {
            Verdict::UpToDate => {
                self.up_to_date();
                return Ok(false);
            }
            Verdict::Newer(offer) => offer,
        };
        lock(&self.status).offered_version = Some(offer.version.to_string());
        let failed = marker::load_failed(&self.state_dir);
        if failed.iter().any(|f| f.release_id == offer.id) {
            // Its error stays shown; nothing more until the feed changes.
            return Ok(false);
        }
        let exe = self
            .exe
            .clone()
            .ok_or_else(|| UpdateError::Internal("cannot find the agent's own binary".into()))?;
        swap::check_writable(&exe)?;
        lock(&self.status).state = UpdateState::Downloading;
        let downloaded = self.download(&offer, loaded.torrent, loaded.bytes).await?;
        lock(&self.status).state = UpdateState::Trying;
        let staged = swap::staged_path(&exe);
        blocking({
            let staged = staged.clone();
            move || swap::stage(&downloaded, &staged)
        })
        .await?;
        let work_dir = marker::update_dir(&self.state_dir).join("trial");
        if let Err(reason) = run_trial(&staged, &work_dir, &offer.version).await {
            swap::discard(&staged);
            let failed = FailedBuild {
                release_id: offer.id.clone(),
                version: offer.version.to_string(),
                reason: reason.clone(),
            };
            marker::remember_failed(&self.state_dir, failed)?;
            return Err(UpdateError::TrialFailed {
                version: offer.version.to_string(),
                reason,
            });
        }
        let backup = swap::backup_path(&exe);
        let pending = PendingUpdate {
            from_version: current.to_string(),
            to_version: offer.version.to_string(),
            release_id: offer.id.clone(),
            exe: exe.clone(),
            backup: backup.clone(),
            starts: 0,
            failure: None,
        };
        marker::save_pending(&self.state_dir, &pending)?;
        // No await from here to the restart request: a shutdown cannot
        // cut the swap in half.
        if let Err(e) = swap::swap_in(&exe, &staged, &backup) {
            swap::discard(&staged);
            let _ = marker::clear_pending(&self.state_dir);
            return Err(e);
        }
        tracing::info!("update: {} is in place; restarting into it", offer.version);
        lock(&self.status).last_error = None;
        Ok(true)
    }

    fn up_to_date(&self) {
        let mut status = lock(&self.status);
        status.offered_version = None;
        status.last_error = None;
    }

    async fn fetch_feed(&self, client: &reqwest::Client) -> Result<Vec<u8>, UpdateError> {
        let url = &self.settings.feed_url;
        let unreachable = |reason: String| UpdateError::FeedUnreachable {
            url: url.clone(),
            reason,
        };
        let response = tokio::time::timeout(FEED_TIMEOUT, client.get(url).send())
            .await
            .map_err(|_| unreachable("no answer in time".into()))?
            .map_err(|e| unreachable(torrent_source::describe(&e)))?;
        if !response.status().is_success() {
            return Err(unreachable(format!("it answered {}", response.status())));
        }
        tokio::time::timeout(
            FEED_TIMEOUT,
            engine::http_body::read_capped(response, MAX_FEED_BYTES),
        )
        .await
        .map_err(|_| unreachable("no answer in time".into()))?
        .map_err(|e| match e {
            engine::http_body::BodyError::TooLarge { .. } => UpdateError::FeedInvalid {
                url: url.clone(),
                reason: e.to_string(),
            },
            other => unreachable(other.to_string()),
        })
    }

    /// Downloads the offered build as a release of the agent's (kept and
    /// shared, never evicted by the quota); returns where its file is.
    async fn download(
        &self,
        offer: &feed::Offer,
        torrent: meta::Torrent,
        bytes: Vec<u8>,
    ) -> Result<PathBuf, UpdateError> {
        let out_dir = marker::downloads_dir(&self.state_dir);
        let failed = |reason: String| UpdateError::Download {
            name: offer.file_name.clone(),
            reason,
        };
        match self
            .releases
            .add_update(Arc::new(torrent), bytes, out_dir.clone())
            .await
        {
            Ok(_) | Err(AgentError::AlreadyAdded { .. }) => {}
            Err(e) => return Err(failed(e.to_string())),
        }
        let deadline = Instant::now() + DOWNLOAD_LIMIT;
        loop {
            match self.releases.completion(&offer.id) {
                Some(Ok(true)) => return Ok(out_dir.join(&offer.file_name)),
                Some(Ok(false)) => {}
                Some(Err(reason)) => return Err(failed(reason)),
                None => return Err(failed("it was removed from the agent".into())),
            }
            if Instant::now() >= deadline {
                return Err(failed(
                    "not complete in time; it goes on downloading".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The new build's commit: once its own API answers (with the token,
    /// through the guard like any client), the update is done.
    pub async fn commit(
        &self,
        pending: PendingUpdate,
        committed: Arc<AtomicBool>,
        api: String,
        token: String,
    ) {
        let deadline = Instant::now() + marker::HEALTH_LIMIT;
        let client = match reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
        {
            Ok(client) => client,
            Err(e) => return tracing::warn!("update: {e}"),
        };
        while Instant::now() < deadline {
            let answer = client
                .get(format!("http://{api}/v1/update"))
                .header(crate::guard::TOKEN_HEADER, &token)
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                committed.store(true, Ordering::Release);
                if let Err(e) = marker::clear_pending(&self.state_dir) {
                    tracing::warn!("update: {e}");
                }
                lock(&self.status).last_update = Some(format!(
                    "{} to {}",
                    pending.from_version, pending.to_version
                ));
                self.forget_older_builds(&pending.release_id).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Updater {
    /// Removes the builds before `current` and their files: only what the
    /// updater downloaded into its own folder, once the new build is in.
    async fn forget_older_builds(&self, current: &str) {
        let dir = marker::downloads_dir(&self.state_dir);
        for id in self.releases.ids_in_folder(&dir, current) {
            if let Err(e) = self.releases.remove(&id, true).await {
                tracing::warn!("update: cannot remove the older build {id}: {e}");
            }
        }
    }
}

fn torrent_error(location: &str, error: LoadError) -> UpdateError {
    match error {
        LoadError::Invalid { source, .. } => UpdateError::Refused {
            location: location.to_owned(),
            reason: format!("it is not a usable torrent: {source}"),
        },
        LoadError::TooLarge { limit, .. } => UpdateError::Refused {
            location: location.to_owned(),
            reason: format!("its torrent is larger than {limit} bytes"),
        },
        other => UpdateError::TorrentUnreachable {
            location: location.to_owned(),
            reason: other.to_string(),
        },
    }
}

async fn blocking(
    work: impl FnOnce() -> Result<(), UpdateError> + Send + 'static,
) -> Result<(), UpdateError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| UpdateError::Internal(format!("disk work failed: {e}")))?
}
