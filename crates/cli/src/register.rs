//! `shoal publish --register`: hand the new torrent to a `shoal-tracker`,
//! which checks its signature against the publisher's registered key and
//! starts tracking it.

use std::time::Duration;

use anyhow::{bail, Context, Result};

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
