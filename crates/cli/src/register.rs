//! `shoal publish --register`: hand the new torrent to a `shoal-tracker`,
//! which checks its signature against the publisher's registered key and
//! starts tracking it.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The environment variable that carries the publisher's API token, so it
/// never shows in the process list as a command-line argument would.
pub const TOKEN_VARIABLE: &str = "SHOAL_TOKEN";

/// Tokens are 64 hex digits; anything much longer is not a token file.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// The publisher token from `--token-file` if given, else from
/// [`TOKEN_VARIABLE`]; surrounding whitespace (a trailing newline) is
/// dropped.
pub fn publisher_token(token_file: Option<&Path>) -> Result<String> {
    let token = match token_file {
        Some(path) => {
            let file = std::fs::File::open(path).with_context(|| {
                format!("cannot read the publisher token file {}", path.display())
            })?;
            let mut text = String::new();
            file.take(MAX_TOKEN_FILE_BYTES + 1)
                .read_to_string(&mut text)
                .with_context(|| format!("{} is not a text file", path.display()))?;
            if text.len() as u64 > MAX_TOKEN_FILE_BYTES {
                bail!(
                    "{} is over {MAX_TOKEN_FILE_BYTES} bytes: not a publisher token file",
                    path.display()
                );
            }
            text
        }
        None => std::env::var(TOKEN_VARIABLE).unwrap_or_default(),
    };
    let token = token.trim();
    if token.is_empty() {
        bail!(
            "--register needs the publisher's API token (from `shoal-tracker publisher add`): \
             set {TOKEN_VARIABLE} or pass --token-file FILE"
        );
    }
    Ok(token.to_owned())
}

/// The tracker's answer to a registration.
#[derive(Debug)]
pub struct Registered {
    pub release: i64,
    pub info_hash: String,
}

/// POSTs `torrent` to `TRACKER/api/v1/releases` with the publisher token.
/// `tracker` is the tracker's base URL (`http://HOST:PORT`); a trailing
/// `/announce` is tolerated, since that is the URL publishers have at hand.
pub fn register(tracker: &str, token: &str, torrent: &[u8]) -> Result<Registered> {
    let base = tracker
        .trim_end_matches('/')
        .trim_end_matches("/announce")
        .to_owned();
    let url = format!("{base}/api/v1/releases");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let body = torrent.to_vec();
    let (status, text) = runtime
        .block_on(async {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?;
            let response = client
                .post(&url)
                .bearer_auth(token)
                .header("content-type", "application/x-bittorrent")
                .body(body)
                .send()
                .await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
        .with_context(|| format!("cannot reach the tracker at {url}"))?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if !status.is_success() {
        let why = json["error"].as_str().unwrap_or(text.trim());
        bail!("the tracker at {url} refused the release ({status}): {why}");
    }
    Ok(Registered {
        release: json["release"].as_i64().unwrap_or(0),
        info_hash: json["info_hash"].as_str().unwrap_or("").to_owned(),
    })
}
