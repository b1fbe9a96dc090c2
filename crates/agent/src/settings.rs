//! The agent's settings: one struct, read from a TOML config file at the
//! platform's usual place and overridden by command-line flags. Caps and
//! seeding can also change at run time through the API; those choices are
//! kept in the state folder (see `state.rs`) and win over the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Longest config file we read: settings are a few lines.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// Most trusted publisher keys we accept in one config.
pub const MAX_TRUSTED_KEYS: usize = 256;

/// Everything the agent needs to run. Rates are bytes/s, 0 = unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// Where the local API listens: a loopback address only (127.0.0.0/8
    /// or ::1); anything else is refused at start, since the API's guard
    /// is meant for this machine's browser and programs.
    pub api: SocketAddr,
    /// Seconds a client has to send a request's head before the API
    /// closes its connection.
    pub api_header_timeout_secs: u64,
    /// Most API connections open at once; more are closed on arrival.
    pub api_max_connections: usize,
    /// Hand-offs one web origin may ask for per minute; more are refused
    /// (429) and the page falls back to its origin.
    pub handoffs_per_origin_per_minute: u32,
    /// Where peers connect to us.
    pub listen: SocketAddr,
    /// The agent's own files: release list, torrents, API token.
    pub state_dir: PathBuf,
    /// Where releases are downloaded to.
    pub download_dir: PathBuf,
    pub max_upload_bps: u64,
    pub max_download_bps: u64,
    /// Keep sharing releases once they are complete.
    pub seeding: bool,
    /// Disk space for complete releases kept only for sharing (not
    /// pinned), in bytes; the least recently used are removed past it.
    /// 0 = no limit.
    pub shared_quota_bytes: u64,
    /// Publisher public keys (64 hex digits) whose releases we accept.
    pub trusted_publishers: Vec<String>,
    /// Updating the agent itself (the `[update]` table).
    pub update: UpdateSettings,
}

/// How the agent updates itself (see `update/`): it checks `feed_url`
/// every `check_interval_secs` while `enabled` and not deferred, fetches
/// a newer build through the swarm, tries it, and swaps it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateSettings {
    /// Check for and install new builds. Off: nothing is ever fetched.
    pub enabled: bool,
    /// The project's feed of builds (http or https). Empty: no checks.
    pub feed_url: String,
    /// Seconds between checks (at least 1).
    pub check_interval_secs: u64,
    /// Unix seconds before which no update is checked for or installed;
    /// 0 = no deferral.
    pub defer_until_unix: u64,
    /// Replaces the project key pinned in the binary, for the project's
    /// own tests and for builds signed by someone else (64 hex digits).
    ///
    /// This grants nothing new: the config file belongs to the account
    /// that owns the agent's binary (the updater replaces that binary, so
    /// it must be that account's to write); whoever can edit this file can
    /// already replace the binary outright. It is read from the file
    /// only, never from the API or the network (`PUT /v1/settings`
    /// refuses it).
    pub project_key: Option<String>,
}

impl Default for UpdateSettings {
    fn default() -> Self {
        UpdateSettings {
            enabled: true,
            feed_url: String::new(),
            check_interval_secs: 6 * 3600,
            defer_until_unix: 0,
            project_key: None,
        }
    }
}

/// The default API port: fixed, so that a download page's script can find
/// the agent (see the browser hand-off in docs/architecture.md).
pub const DEFAULT_API: &str = "127.0.0.1:6880";
pub const DEFAULT_LISTEN: &str = "0.0.0.0:6881";

impl Default for AgentSettings {
    fn default() -> Self {
        let dirs = directories::ProjectDirs::from("", "", "shoal");
        let state_dir = dirs
            .as_ref()
            .map(|d| d.data_local_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".shoal-agent"));
        let download_dir = directories::UserDirs::new()
            .and_then(|u| u.download_dir().map(|d| d.join("shoal")))
            .unwrap_or_else(|| state_dir.join("downloads"));
        AgentSettings {
            api: SocketAddr::from(([127, 0, 0, 1], 6880)),
            api_header_timeout_secs: 10,
            api_max_connections: 128,
            handoffs_per_origin_per_minute: 6,
            listen: SocketAddr::from(([0, 0, 0, 0], 6881)),
            state_dir,
            download_dir,
            max_upload_bps: 0,
            max_download_bps: 0,
            seeding: true,
            shared_quota_bytes: 0,
            trusted_publishers: Vec::new(),
            update: UpdateSettings::default(),
        }
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the config file {path} is larger than {MAX_CONFIG_BYTES} bytes; is it the right file?"
    )]
    TooLarge { path: PathBuf },
    #[error("the config file {path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "the API address {addr} is not a loopback address; the agent's API serves this \
         machine only: set api (or --api) to 127.0.0.1:PORT or [::1]:PORT"
    )]
    ApiNotLoopback { addr: SocketAddr },
}

/// The config file's usual place: `config.toml` in the platform's config
/// folder for "shoal" (e.g. `~/.config/shoal/` on Linux).
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "shoal").map(|d| d.config_dir().join("config.toml"))
}

impl AgentSettings {
    /// Reads `path`; a missing file at the default place means defaults,
    /// but a file the user named (`required`) must exist.
    pub fn load(path: &Path, required: bool) -> Result<AgentSettings, SettingsError> {
        use std::io::Read;
        let file = match std::fs::File::open(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(AgentSettings::default())
            }
            other => other.map_err(|source| SettingsError::Read {
                path: path.to_owned(),
                source,
            })?,
        };
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|source| SettingsError::Read {
                path: path.to_owned(),
                source,
            })?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(SettingsError::TooLarge {
                path: path.to_owned(),
            });
        }
        let settings: AgentSettings =
            toml::from_str(&text).map_err(|e| SettingsError::Invalid {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let invalid = |reason| SettingsError::Invalid {
            path: path.to_owned(),
            reason,
        };
        settings.trusted_keys().map_err(invalid)?;
        settings.update.check().map_err(invalid)?;
        Ok(settings)
    }

    /// Refuses settings the agent must not run with: an API on a
    /// non-loopback address.
    pub fn check(&self) -> Result<(), SettingsError> {
        if !self.api.ip().is_loopback() {
            return Err(SettingsError::ApiNotLoopback { addr: self.api });
        }
        Ok(())
    }

    /// The trusted publisher keys as bytes; says which entry is malformed.
    pub fn trusted_keys(&self) -> Result<Vec<[u8; 32]>, String> {
        if self.trusted_publishers.len() > MAX_TRUSTED_KEYS {
            return Err(format!(
                "at most {MAX_TRUSTED_KEYS} trusted_publishers are allowed"
            ));
        }
        self.trusted_publishers
            .iter()
            .map(|text| parse_key(text))
            .collect()
    }
}

/// Longest feed URL accepted.
const MAX_FEED_URL_LEN: usize = 2048;

impl UpdateSettings {
    /// Refuses a feed URL that is not http(s) or a malformed project key.
    pub fn check(&self) -> Result<(), String> {
        let url = &self.feed_url;
        if url.len() > MAX_FEED_URL_LEN {
            return Err(format!(
                "update.feed_url is longer than {MAX_FEED_URL_LEN} bytes"
            ));
        }
        let web = url.starts_with("http://") || url.starts_with("https://");
        if !url.is_empty() && !web {
            return Err(format!(
                "update.feed_url {url:?} must be an http:// or https:// URL"
            ));
        }
        if let Some(key) = &self.project_key {
            parse_key(key).map_err(|e| format!("update.project_key: {e}"))?;
        }
        Ok(())
    }
}

/// A publisher key: 64 hex digits naming a valid ed25519 key.
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    text.parse::<meta::PublisherKey>()
        .map(meta::PublisherKey::to_bytes)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_default_file_means_defaults_but_a_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        assert_eq!(
            AgentSettings::load(&path, false).unwrap(),
            AgentSettings::default()
        );
        assert!(matches!(
            AgentSettings::load(&path, true),
            Err(SettingsError::Read { .. })
        ));
    }

    #[test]
    fn the_file_overrides_some_fields_and_keeps_the_defaults_of_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let key = "cd".repeat(32);
        std::fs::write(
            &path,
            format!("max_upload_bps = 1000\nseeding = false\ntrusted_publishers = [\"{key}\"]\n"),
        )
        .unwrap();
        let settings = AgentSettings::load(&path, true).unwrap();
        assert_eq!(settings.max_upload_bps, 1000);
        assert!(!settings.seeding);
        assert_eq!(settings.api.to_string(), DEFAULT_API);
        assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.trusted_keys().unwrap(), vec![[0xcd; 32]]);
    }

    #[test]
    fn the_api_must_be_on_loopback() {
        let mut settings = AgentSettings::default();
        assert!(settings.check().is_ok());
        for addr in ["[::1]:6880", "127.0.0.2:1"] {
            settings.api = addr.parse().unwrap();
            assert!(settings.check().is_ok(), "{addr}");
        }
        for addr in ["0.0.0.0:6880", "[::]:6880", "192.168.1.5:6880"] {
            settings.api = addr.parse().unwrap();
            let error = settings.check().unwrap_err().to_string();
            assert!(
                error.contains(addr) && error.contains("127.0.0.1"),
                "{error}"
            );
        }
    }

    #[test]
    fn typos_and_bad_keys_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "max_uplaod_bps = 1\n").unwrap();
        let error = AgentSettings::load(&path, true).unwrap_err().to_string();
        assert!(error.contains("config.toml"), "{error}");
        std::fs::write(&path, "trusted_publishers = [\"xyz\"]\n").unwrap();
        let error = AgentSettings::load(&path, true).unwrap_err().to_string();
        assert!(error.contains("xyz"), "{error}");
    }

    #[test]
    fn update_settings_come_from_their_table_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let key = "e6d4ee889a180568d428d32f22452a3e9e0142bc625283179802dd8c648a15ed";
        std::fs::write(
            &path,
            format!(
                "[update]\nenabled = false\nfeed_url = \"https://example.com/feed.json\"\n\
                 defer_until_unix = 5\nproject_key = \"{key}\"\n"
            ),
        )
        .unwrap();
        let settings = AgentSettings::load(&path, true).unwrap();
        assert!(!settings.update.enabled);
        assert_eq!(settings.update.defer_until_unix, 5);
        assert_eq!(settings.update.check_interval_secs, 6 * 3600);
        for bad in [
            "feed_url = \"file:///etc/passwd\"",
            "project_key = \"abcd\"",
            "feed_ur = \"x\"",
        ] {
            std::fs::write(&path, format!("[update]\n{bad}\n")).unwrap();
            let error = AgentSettings::load(&path, true).unwrap_err().to_string();
            assert!(error.contains("config.toml"), "{bad}: {error}");
        }
    }

    /// Regression: a trusted key was only checked to be 64 hex digits, so
    /// 32 bytes that are no ed25519 point were accepted and no release
    /// could ever verify against them.
    #[test]
    fn a_trusted_key_must_be_an_ed25519_point() {
        let not_a_point = "ab".repeat(32);
        let settings = AgentSettings {
            trusted_publishers: vec![not_a_point.clone()],
            ..AgentSettings::default()
        };
        let error = settings.trusted_keys().unwrap_err();
        assert!(
            error.contains(&not_a_point) && error.contains("ed25519"),
            "{error}"
        );
    }
}
