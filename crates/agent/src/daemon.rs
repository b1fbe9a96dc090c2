//! The daemon as a handle: [`Daemon::start`] prepares the state folder,
//! the token, the engine and the API socket and restores the releases;
//! [`Daemon::serve`] answers the API until asked to stop, then stops every
//! release at once so its progress is saved. The token is never printed or
//! logged: `shoal agent ui` reads it from the state folder (see
//! [`ui_link`]) for the customer who asks.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use engine::{Engine, EngineSettings};
use serde_json::json;
use tokio::net::TcpListener;

use std::time::Duration;

use crate::api::{self, ApiState};
use crate::guard::Guard;
use crate::releases::{blocking, Releases};
use crate::server::{self, ServerLimits};
use crate::state::{self, RuntimeCaps, StateError, StateFile};
use crate::update::SelfUpdate;
use crate::{token, AgentError, AgentSettings};

/// A started agent, not yet serving.
#[derive(Debug)]
pub struct Daemon {
    listener: TcpListener,
    api_addr: SocketAddr,
    token_path: PathBuf,
    releases: Arc<Releases>,
    router: axum::Router,
    limits: ServerLimits,
    update: SelfUpdate,
    /// For the updater's health check of a new build.
    token: HiddenToken,
}

/// The API token, kept out of `Debug` output (and so out of logs).
struct HiddenToken(String);

impl std::fmt::Debug for HiddenToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HiddenToken(..)")
    }
}

/// The file in the state folder naming the address the API answers on.
pub const API_ADDRESS_FILE: &str = "api-address";

impl Daemon {
    pub async fn start(settings: AgentSettings) -> Result<Daemon, AgentError> {
        settings.check()?;
        settings.update.check().map_err(AgentError::Invalid)?;
        crate::update::project_key(&settings.update).map_err(AgentError::Invalid)?;
        let trusted = settings.trusted_keys().map_err(AgentError::Invalid)?;
        state::create_private_dir(&settings.state_dir)?;
        // An update under way is settled first: a new build that must be
        // rolled back is, before it binds or starts anything.
        let settled = SelfUpdate::settle(&settings.state_dir);
        std::fs::create_dir_all(&settings.download_dir).map_err(|source| StateError::Io {
            path: settings.download_dir.clone(),
            action: "create",
            source,
        })?;
        let token = token::load_or_create(&settings.state_dir)?;
        let state = StateFile::load(&settings.state_dir)?;
        // Files an earlier version left readable by others.
        state::restrict_file(&settings.state_dir.join("releases.json"))?;
        // Caps chosen through the API outlive restarts; the file gives the rest.
        let caps = state.caps.unwrap_or(RuntimeCaps {
            max_upload_bps: settings.max_upload_bps,
            max_download_bps: settings.max_download_bps,
            seeding: settings.seeding,
            shared_quota_bytes: settings.shared_quota_bytes,
        });
        let engine = start_engine(&settings, caps).await?;
        let (listener, api_addr) =
            engine::bind(settings.api)
                .await
                .map_err(|source| AgentError::ApiListen {
                    addr: settings.api,
                    source,
                })?;
        // Where `shoal agent ui` finds the API (the port may be chosen
        // at start): an address, no secret.
        let address_file = settings.state_dir.join(API_ADDRESS_FILE);
        blocking(move || {
            Ok(state::write_atomically(
                &address_file,
                api_addr.to_string().as_bytes(),
            )?)
        })
        .await?;
        let fixed = json!({
            "api": api_addr.to_string(),
            "listen": engine.listen_addr().to_string(),
            "state_dir": settings.state_dir,
            "download_dir": settings.download_dir,
            "trusted_publishers": settings.trusted_publishers,
            "update": {
                "enabled": settings.update.enabled,
                "feed_url": settings.update.feed_url,
                "check_interval_secs": settings.update.check_interval_secs,
                "defer_until_unix": settings.update.defer_until_unix,
            },
        });
        let releases = Releases::new(
            engine,
            settings.state_dir.clone(),
            settings.download_dir.clone(),
            trusted,
            caps,
            settings.handoffs_per_origin_per_minute,
        );
        releases.restore(state).await?;
        let update = SelfUpdate::new(
            &settings.update,
            settled,
            &settings.state_dir,
            releases.clone(),
        )
        .map_err(AgentError::Invalid)?;
        let router = api::router(
            ApiState {
                releases: releases.clone(),
                fixed,
                api_addr,
                update: update.status(),
            },
            Guard::new(api_addr.port(), token.clone()),
        );
        Ok(Daemon {
            listener,
            api_addr,
            token_path: token::token_path(&settings.state_dir),
            releases,
            router,
            limits: ServerLimits {
                header_read_timeout: Duration::from_secs(settings.api_header_timeout_secs.max(1)),
                max_connections: settings.api_max_connections,
            },
            update,
            token: HiddenToken(token),
        })
    }

    /// Where the API answers.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where peers connect.
    pub fn listen_addr(&self) -> SocketAddr {
        self.releases.engine().listen_addr()
    }

    /// The file holding the API token.
    pub fn token_path(&self) -> &std::path::Path {
        &self.token_path
    }

    /// Serves the API until `shutdown` resolves, then stops every release.
    /// When the updater has put a new build in place, it stops the same
    /// way and then runs that build in place of this process.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let restart = self.update.restart_signal();
        let (exe, state_dir) = self.update.restart_target();
        let updater = self.update.spawn(self.api_addr, self.token.0);
        let restarting = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = {
            let restarting = restarting.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    () = restart.notified() => {
                        restarting.store(true, std::sync::atomic::Ordering::Release);
                    }
                }
            }
        };
        server::serve(self.listener, self.router, self.limits, stop).await;
        updater.abort();
        self.releases.shutdown().await;
        if restarting.load(std::sync::atomic::Ordering::Acquire) {
            if let Some(exe) = exe {
                crate::update::restart_into_new(&state_dir, &exe);
            }
        }
    }
}

async fn start_engine(settings: &AgentSettings, caps: RuntimeCaps) -> Result<Engine, AgentError> {
    Ok(Engine::start_or_any_port(EngineSettings {
        listen: settings.listen,
        max_upload_bps: caps.max_upload_bps,
        max_download_bps: caps.max_download_bps,
        ..EngineSettings::default()
    })
    .await?)
}

/// The web UI's link for the agent whose state folder is `state_dir`,
/// with the token in the fragment (browsers do not send a fragment, so
/// the token reaches the page and no server). The API's address comes
/// from the file the running agent wrote, else `api`.
pub fn ui_link(state_dir: &std::path::Path, api: SocketAddr) -> Result<String, AgentError> {
    if !token::token_path(state_dir).exists() {
        return Err(AgentError::Invalid(format!(
            "no API token in {}: the agent makes it on its first start; start it, or name \
             the running agent's state folder with --state (or its config with --config)",
            state_dir.display()
        )));
    }
    let token = token::load(state_dir)?;
    let path = state_dir.join(API_ADDRESS_FILE);
    let addr = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<SocketAddr>()
            .map_err(|e| StateError::Damaged {
                path: path.clone(),
                reason: e.to_string(),
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => api,
        Err(source) => {
            return Err(StateError::Io {
                path,
                action: "read",
                source,
            }
            .into())
        }
    };
    Ok(format!("http://{addr}/#token={token}"))
}
