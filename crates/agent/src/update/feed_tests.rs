//! The feed decoder and the offer checks against hostile input: sizes,
//! signatures by other keys, older builds, other targets' builds.

#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use meta::create::{self, CreateSettings};
use meta::publish::{create_signed, ReleaseInfo};
use meta::Torrent;

use super::feed::{build_file_name, check_offer, entry_for, Verdict, MAX_FEED_BYTES};
use super::version::Version;

const TARGET: &str = "x86_64-unknown-linux-gnu";
const FEED: &str = "https://updates.example.com/shoal/feed.json";

fn v(text: &str) -> Version {
    text.parse().unwrap()
}

/// A signed torrent of a one-file release named `name`, version `version`.
fn build(key: &SigningKey, name: &str, version: &str) -> Torrent {
    Torrent::from_bytes(&build_bytes(key, name, version)).unwrap()
}

/// [`build`]'s torrent file.
fn build_bytes(key: &SigningKey, name: &str, version: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, vec![7u8; 40_000]).unwrap();
    let source = create::scan(&path).unwrap();
    let release = ReleaseInfo {
        version: version.to_owned(),
        created_unix: 1,
        origins: Vec::new(),
        max_origin_millicopies: None,
    };
    create_signed(&source, &CreateSettings::default(), &|_| {}, &release, key).unwrap()
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

#[test]
fn the_feed_names_one_torrent_per_target_resolved_against_its_url() {
    let feed = br#"{"shoal_update_feed":1,"builds":[
        {"target":"x86_64-unknown-linux-gnu","version":"1.1.0","torrent":"linux.torrent"},
        {"target":"x86_64-pc-windows-gnu","torrent":"https://mirror.example.net/w.torrent"}]}"#;
    assert_eq!(
        entry_for(feed, FEED, TARGET).unwrap().as_deref(),
        Some("https://updates.example.com/shoal/linux.torrent")
    );
    assert_eq!(
        entry_for(feed, FEED, "x86_64-pc-windows-gnu")
            .unwrap()
            .as_deref(),
        Some("https://mirror.example.net/w.torrent")
    );
    assert_eq!(entry_for(feed, FEED, "aarch64-apple-darwin").unwrap(), None);
}

#[test]
fn hostile_feeds_are_refused_with_a_reason() {
    let oversized = format!(
        r#"{{"shoal_update_feed":1,"builds":[],"pad":"{}"}}"#,
        "x".repeat(MAX_FEED_BYTES as usize)
    );
    let many: Vec<String> = (0..65)
        .map(|i| format!(r#"{{"target":"t{i}","torrent":"a"}}"#))
        .collect();
    let many = format!(r#"{{"shoal_update_feed":1,"builds":[{}]}}"#, many.join(","));
    let long_url = format!(
        r#"{{"shoal_update_feed":1,"builds":[{{"target":"{TARGET}","torrent":"{}"}}]}}"#,
        "a".repeat(3000)
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("larger than", oversized.into_bytes()),
        ("more than 64", many.into_bytes()),
        ("1 to 2048", long_url.into_bytes()),
        ("not a shoal update feed", b"<html>".to_vec()),
        ("not a shoal update feed", br#"{"builds":[]}"#.to_vec()),
        ("format 2", br#"{"shoal_update_feed":2,"builds":[]}"#.to_vec()),
        (
            "twice",
            format!(
                r#"{{"shoal_update_feed":1,"builds":[{{"target":"{TARGET}","torrent":"a"}},{{"target":"{TARGET}","torrent":"b"}}]}}"#
            )
            .into_bytes(),
        ),
        (
            "not a target triple",
            br#"{"shoal_update_feed":1,"builds":[{"target":"../x","torrent":"a"}]}"#.to_vec(),
        ),
        (
            "not http or https",
            format!(
                r#"{{"shoal_update_feed":1,"builds":[{{"target":"{TARGET}","torrent":"file:///etc/passwd"}}]}}"#
            )
            .into_bytes(),
        ),
    ];
    for (expected, feed) in cases {
        let error = entry_for(&feed, FEED, TARGET).unwrap_err();
        assert!(error.contains(expected), "{expected}: {error}");
    }
}

#[test]
fn a_newer_build_for_this_target_signed_by_the_project_key_is_offered() {
    let project = key(1);
    let pinned = project.verifying_key().to_bytes();
    let name = build_file_name(&v("1.2.0"), TARGET);
    assert_eq!(name, "shoal-1.2.0-x86_64-unknown-linux-gnu");
    let torrent = build(&project, &name, "1.2.0");
    match check_offer(&torrent, &pinned, TARGET, &v("1.1.9")).unwrap() {
        Verdict::Newer(offer) => {
            assert_eq!(offer.version, v("1.2.0"));
            assert_eq!(offer.file_name, name);
            assert_eq!(offer.id, hex::encode(torrent.info_hashes.v2.unwrap()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        check_offer(&torrent, &pinned, TARGET, &v("1.2.0")).unwrap(),
        Verdict::UpToDate
    );
}

#[test]
fn other_keys_older_builds_and_other_targets_are_refused() {
    let project = key(1);
    let pinned = project.verifying_key().to_bytes();
    let name = build_file_name(&v("1.2.0"), TARGET);
    let stranger = build(&key(2), &name, "1.2.0");
    let error = check_offer(&stranger, &pinned, TARGET, &v("1.0.0")).unwrap_err();
    assert!(error.contains("not by the project key"), "{error}");

    // A genuine old build replayed as new: never a downgrade.
    let old = build(&project, &build_file_name(&v("1.2.0"), TARGET), "1.2.0");
    let error = check_offer(&old, &pinned, TARGET, &v("1.3.0")).unwrap_err();
    assert!(error.contains("older than the running 1.3.0"), "{error}");

    // Another target's genuine build.
    let windows = build(
        &project,
        &build_file_name(&v("1.2.0"), "x86_64-pc-windows-gnu"),
        "1.2.0",
    );
    let error = check_offer(&windows, &pinned, TARGET, &v("1.0.0")).unwrap_err();
    assert!(error.contains("not the single file"), "{error}");

    // The name must carry the signed version: no 1.2.0 build sold as 9.0.0.
    let relabelled = build(&project, &name, "9.0.0");
    let error = check_offer(&relabelled, &pinned, TARGET, &v("1.0.0")).unwrap_err();
    assert!(error.contains("not the single file"), "{error}");

    // A signature that does not match its manifest: tampered with.
    let mut bytes = build_bytes(&project, &name, "1.2.0");
    let at = bytes.windows(8).position(|w| w == b"3:sig64:").unwrap() + 8;
    bytes[at] ^= 1;
    let tampered = Torrent::from_bytes(&bytes).unwrap();
    let error = check_offer(&tampered, &pinned, TARGET, &v("1.0.0")).unwrap_err();
    assert!(error.contains("invalid"), "{error}");

    let unversioned = build(&project, &name, "");
    let error = check_offer(&unversioned, &pinned, TARGET, &v("1.0.0")).unwrap_err();
    assert!(error.contains("signed version"), "{error}");
}
