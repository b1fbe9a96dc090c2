//! The agent's local API request bodies, as `serde_json` reads them:
//! `PUT /v1/settings` into the agent's own `SettingsUpdate`, and
//! `POST /v1/releases` into a copy of its private `AddRequest` (same
//! fields, same `deny_unknown_fields`). Never panics; an accepted body
//! round-trips through its JSON fields.
#![no_main]

use agent::SettingsUpdate;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// Mirrors `AddRequest` in crates/agent/src/api.rs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    torrent: String,
}

fuzz_target!(|data: &[u8]| {
    if let Ok(update) = serde_json::from_slice::<SettingsUpdate>(data) {
        let again = serde_json::json!({
            "max_upload_bps": update.max_upload_bps,
            "max_download_bps": update.max_download_bps,
            "seeding": update.seeding,
            "shared_quota_bytes": update.shared_quota_bytes,
        });
        let back: SettingsUpdate = serde_json::from_value(again).expect("own fields parse");
        assert_eq!(back.max_upload_bps, update.max_upload_bps);
        assert_eq!(back.seeding, update.seeding);
    }
    if let Ok(add) = serde_json::from_slice::<AddRequest>(data) {
        // A JSON string can only be as long as the body that carried it.
        assert!(add.torrent.len() <= data.len());
    }
});
