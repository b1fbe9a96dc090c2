//! Two engines on loopback: one seeds a release, the other downloads it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::{Engine, EngineSettings, TorrentEvent};
use meta::create::{self, CreateSettings};
use meta::Torrent;

fn write(path: &Path, len: usize, seed: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let data: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    std::fs::write(path, data).unwrap();
}

fn make_torrent(root: &Path, piece_length: u64) -> Arc<Torrent> {
    let source = create::scan(root).unwrap();
    let settings = CreateSettings {
        piece_length: Some(piece_length),
        ..CreateSettings::default()
    };
    let new = create::create(&source, &settings, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&new.encode(None)).unwrap())
}

fn loopback_settings() -> EngineSettings {
    EngineSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..EngineSettings::default()
    }
}

async fn wait_complete(handle: &mut engine::TorrentHandle) -> engine::Progress {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let event = tokio::time::timeout_at(deadline, handle.next_event())
            .await
            .expect("download timed out");
        match event {
            Some(TorrentEvent::Completed { progress, .. }) => return progress,
            Some(TorrentEvent::Stopped { error, .. }) => panic!("stopped early: {error:?}"),
            Some(_) => {}
            None => panic!("no more events"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_moves_from_one_engine_to_another() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("seed");
    let root = data.join("release");
    write(&root.join("a/one.bin"), 3_000_000, 1);
    write(&root.join("b.bin"), 100_001, 2);
    write(&root.join("empty"), 0, 3);
    let torrent = make_torrent(&root, 64 * 1024);

    let seeder = Engine::start(loopback_settings()).await.unwrap();
    let seed = seeder.seed(torrent.clone(), &data, |_| {}).await.unwrap();
    let leecher = Engine::start(loopback_settings()).await.unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut download = leecher
        .download(torrent.clone(), &out, false)
        .await
        .unwrap();
    download.add_peers(vec![seeder.listen_addr()]).await;
    let progress = wait_complete(&mut download).await;
    assert_eq!(progress.verified_bytes, torrent.total_size());
    for file in ["a/one.bin", "b.bin", "empty"] {
        assert_eq!(
            std::fs::read(out.join("release").join(file)).unwrap(),
            std::fs::read(root.join(file)).unwrap(),
            "{file}"
        );
    }
    seed.stop().await;
}

/// Downloads a fresh `bytes`-byte release from a seed, with the given caps,
/// and returns the achieved payload rate over the whole transfer.
async fn capped_transfer_rate(bytes: usize, seed_up: u64, leech_down: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("seed");
    write(&data.join("capped.bin"), bytes, 9);
    let torrent = make_torrent(&data.join("capped.bin"), 256 * 1024);
    let seeder = Engine::start(EngineSettings {
        max_upload_bps: seed_up,
        ..loopback_settings()
    })
    .await
    .unwrap();
    let seed = seeder.seed(torrent.clone(), &data, |_| {}).await.unwrap();
    let leecher = Engine::start(EngineSettings {
        max_download_bps: leech_down,
        ..loopback_settings()
    })
    .await
    .unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let started = tokio::time::Instant::now();
    let mut download = leecher
        .download(torrent.clone(), &out, false)
        .await
        .unwrap();
    download.add_peers(vec![seeder.listen_addr()]).await;
    wait_complete(&mut download).await;
    let seconds = started.elapsed().as_secs_f64();
    seed.stop().await;
    assert_eq!(
        std::fs::read(out.join("capped.bin")).unwrap(),
        std::fs::read(data.join("capped.bin")).unwrap()
    );
    bytes as f64 / seconds
}

/// `--max-down`: a 2 MB/s cap over a transfer of about eleven seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cap_holds_over_ten_seconds() {
    let cap = 2_000_000.0;
    let rate = capped_transfer_rate(22_000_000, 0, cap as u64).await;
    eprintln!(
        "download cap {cap:.0} B/s: achieved {rate:.0} B/s ({:.3} of the cap)",
        rate / cap
    );
    assert!(rate <= cap * 1.05, "{rate:.0} B/s is over the cap");
    assert!(rate >= cap * 0.85, "{rate:.0} B/s is far under the cap");
}

/// `--max-up`: a 2 MB/s cap on the seed over about eleven seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cap_holds_over_ten_seconds() {
    let cap = 2_000_000.0;
    let rate = capped_transfer_rate(22_000_000, cap as u64, 0).await;
    eprintln!(
        "upload cap {cap:.0} B/s: achieved {rate:.0} B/s ({:.3} of the cap)",
        rate / cap
    );
    assert!(rate <= cap * 1.05, "{rate:.0} B/s is over the cap");
    assert!(rate >= cap * 0.85, "{rate:.0} B/s is far under the cap");
}
