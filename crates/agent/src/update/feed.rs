//! The project's update feed and the checks on what it offers.
//!
//! The feed is a small JSON document (at most [`MAX_FEED_BYTES`]):
//! `{"shoal_update_feed": 1, "builds": [{"target": TRIPLE, "torrent": URL}]}`,
//! one entry per target, the URL absolute or relative to the feed's. The
//! feed itself is not trusted: it only says where to look. Everything the
//! agent acts on comes from the torrent's publisher signature (see the
//! trust chain in docs/architecture.md), which must be the project key's:
//! the signed manifest's version, and its name, which must be
//! `shoal-VERSION-TARGET` (see [`build_file_name`]). So a hostile mirror
//! or a network attacker can withhold updates, but cannot offer an older
//! signed build as new (it must be newer than the running one) nor
//! another target's build (the signed name names the target).

use meta::{SignatureStatus, Torrent};
use serde::Deserialize;

use super::version::Version;

/// Largest feed read: a few lines per target.
pub const MAX_FEED_BYTES: u64 = 64 * 1024;
/// Most entries in a feed.
const MAX_BUILDS: usize = 64;
/// Longest target triple.
const MAX_TARGET_LEN: usize = 64;
/// Longest torrent URL.
const MAX_URL_LEN: usize = 2048;
/// The feed format this agent reads.
const FEED_FORMAT: u32 = 1;

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct FeedDocument {
    shoal_update_feed: u32,
    builds: Vec<FeedEntry>,
}

/// One target's build, as the feed lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedEntry {
    pub target: String,
    /// Only a hint for people reading the feed: the agent takes the
    /// version from the signed torrent.
    #[serde(default)]
    pub version: String,
    pub torrent: String,
}

/// The entry for `target` in the feed `bytes` fetched from `feed_url`,
/// with its torrent URL made absolute; `None` when the feed lists no
/// build for this target.
pub fn entry_for(bytes: &[u8], feed_url: &str, target: &str) -> Result<Option<String>, String> {
    if bytes.len() as u64 > MAX_FEED_BYTES {
        return Err(format!("it is larger than {MAX_FEED_BYTES} bytes"));
    }
    let document: FeedDocument =
        serde_json::from_slice(bytes).map_err(|e| format!("not a shoal update feed: {e}"))?;
    if document.shoal_update_feed != FEED_FORMAT {
        return Err(format!(
            "feed format {} is not one this agent reads ({FEED_FORMAT}); a newer agent may",
            document.shoal_update_feed
        ));
    }
    if document.builds.len() > MAX_BUILDS {
        return Err(format!("it lists more than {MAX_BUILDS} builds"));
    }
    let mut found = None;
    for entry in &document.builds {
        check_target(&entry.target)?;
        if entry.torrent.is_empty() || entry.torrent.len() > MAX_URL_LEN {
            return Err(format!("a torrent URL must be 1 to {MAX_URL_LEN} bytes"));
        }
        if entry.target == target {
            if found.is_some() {
                return Err(format!("it lists {target} twice"));
            }
            found = Some(resolve(feed_url, &entry.torrent)?);
        }
    }
    Ok(found)
}

/// The feed `existing` (none: a new feed) with `entry` in place of any
/// entry for its target: what `shoal publish-update` writes.
pub fn with_entry(existing: Option<&[u8]>, entry: FeedEntry) -> Result<Vec<u8>, String> {
    check_target(&entry.target)?;
    let mut document = match existing {
        Some(bytes) => {
            let any = "https://feed.invalid/";
            entry_for(bytes, any, &entry.target)?;
            serde_json::from_slice(bytes).map_err(|e| format!("not a shoal update feed: {e}"))?
        }
        None => FeedDocument {
            shoal_update_feed: FEED_FORMAT,
            builds: Vec::new(),
        },
    };
    document.builds.retain(|b| b.target != entry.target);
    document.builds.push(entry);
    document.builds.sort_by(|a, b| a.target.cmp(&b.target));
    let mut bytes = serde_json::to_vec_pretty(&document).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    if bytes.len() as u64 > MAX_FEED_BYTES {
        return Err(format!(
            "the feed would be larger than {MAX_FEED_BYTES} bytes"
        ));
    }
    Ok(bytes)
}

/// A target triple: lower-case letters, digits, `_`, `.` and `-`.
pub fn check_target(target: &str) -> Result<(), String> {
    let fine = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b);
    if target.is_empty() || target.len() > MAX_TARGET_LEN || !target.bytes().all(fine) {
        return Err(format!("{target:?} is not a target triple"));
    }
    Ok(())
}

fn resolve(feed_url: &str, torrent: &str) -> Result<String, String> {
    let base = reqwest::Url::parse(feed_url).map_err(|e| format!("feed URL: {e}"))?;
    let url = base
        .join(torrent)
        .map_err(|e| format!("torrent URL {torrent:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("torrent URL {url} is not http or https"));
    }
    Ok(url.to_string())
}

/// The file a build of `version` for `target` is published as, and the
/// signed name of its torrent: `shoal-1.4.2-x86_64-unknown-linux-gnu`,
/// with `.exe` for Windows targets.
pub fn build_file_name(version: &Version, target: &str) -> String {
    let suffix = if target.contains("-windows") {
        ".exe"
    } else {
        ""
    };
    format!("shoal-{version}-{target}{suffix}")
}

/// A newer build, checked: signed by the project key, for our target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub version: Version,
    /// Its release id in the agent (the v2 info-hash in hex).
    pub id: String,
    /// Its one file's name.
    pub file_name: String,
}

/// What a torrent the feed points at amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The running build is this one.
    UpToDate,
    Newer(Offer),
}

/// Checks the torrent the feed offers against the project `key`, this
/// build's `target` and `current` version; the error says why it is
/// refused.
pub fn check_offer(
    torrent: &Torrent,
    key: &[u8; 32],
    target: &str,
    current: &Version,
) -> Result<Verdict, String> {
    let manifest = match &torrent.signature {
        SignatureStatus::Valid {
            publisher,
            manifest,
            ..
        } if publisher == key => manifest,
        SignatureStatus::Valid { publisher, .. } => {
            return Err(format!(
                "it is signed by {}, not by the project key {}",
                hex::encode(publisher),
                hex::encode(key)
            ))
        }
        SignatureStatus::Invalid { reason, .. } => {
            return Err(format!("its signature is invalid ({reason})"))
        }
        SignatureStatus::Absent => return Err("it is not signed".to_owned()),
    };
    let version: Version = manifest
        .version
        .parse()
        .map_err(|e| format!("its signed version: {e}"))?;
    let expected = build_file_name(&version, target);
    let files: Vec<_> = torrent.data_files().collect();
    let not_one_file = torrent.multi_file || files.len() != 1;
    if manifest.name != expected || torrent.name != expected || not_one_file {
        return Err(format!(
            "it is {:?}, not the single file {expected:?} a build for this target is",
            manifest.name
        ));
    }
    let id = match torrent.info_hashes.v2 {
        Some(v2) => hex::encode(v2),
        None => return Err("it has no v2 info-hash".to_owned()),
    };
    match version.cmp(current) {
        std::cmp::Ordering::Equal => Ok(Verdict::UpToDate),
        std::cmp::Ordering::Less => Err(format!(
            "it is version {version}, older than the running {current}; an old build is \
             never installed over a newer one"
        )),
        std::cmp::Ordering::Greater => Ok(Verdict::Newer(Offer {
            version,
            id,
            file_name: expected,
        })),
    }
}
