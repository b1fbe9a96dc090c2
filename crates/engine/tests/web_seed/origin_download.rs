//! Whole downloads through the engine with nginx as the origin (BEP 19
//! web seed): alone, and with an origin that serves the wrong bytes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::{Engine, EngineSettings, Progress, TorrentEvent, TorrentHandle};
use meta::create::{self, CreateSettings};
use meta::Torrent;
use testkit::data::write_pattern_file;

use crate::nginx::Nginx;

fn torrent_with_origin(release: &Path, origin: &str) -> Arc<Torrent> {
    let settings = CreateSettings {
        piece_length: Some(64 * 1024),
        web_seeds: vec![origin.to_owned()],
        ..CreateSettings::default()
    };
    let new = create::create(&create::scan(release).unwrap(), &settings, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&new.encode(None)).unwrap())
}

fn loopback() -> EngineSettings {
    EngineSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..EngineSettings::default()
    }
}

fn write_release(root: &Path) {
    write_pattern_file(&root.join("setup.bin"), 1_500_000, 1);
    write_pattern_file(&root.join("data/part one.bin"), 700_001, 2);
    write_pattern_file(&root.join("data/empty"), 0, 3);
}

fn assert_same_tree(a: &Path, b: &Path) {
    for file in ["setup.bin", "data/part one.bin", "data/empty"] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file}"
        );
    }
}

/// Follows `handle` until it completes; returns the warnings seen and the
/// final progress.
async fn until_complete(handle: &mut TorrentHandle, mut on_warning: impl FnMut(&str)) -> Progress {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, handle.next_event())
            .await
            .expect("no completion in 60 s")
        {
            Some(TorrentEvent::Completed { progress, .. }) => return progress,
            Some(TorrentEvent::Warning(warning)) => on_warning(&warning),
            Some(TorrentEvent::Stopped { error, .. }) => panic!("stopped: {error:?}"),
            Some(_) => {}
            None => panic!("no more events"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_file_download_from_the_origin_alone_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    let release = www.join("pub/Release 2");
    write_release(&release);
    let nginx = Nginx::start(&www, &tmp.path().join("nginx"));
    let torrent = torrent_with_origin(&release, &nginx.url("/pub/"));

    let engine = Engine::start(loopback()).await.unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut handle = engine.download(torrent.clone(), &out, false).await.unwrap();
    let progress = until_complete(&mut handle, |w| panic!("unexpected warning: {w}")).await;
    assert_same_tree(&release, &out.join("Release 2"));
    assert_eq!(progress.bytes_from_peers, 0);
    // Every data byte came from the origin (a block that ends in padding
    // counts whole, so it may be a little more).
    assert!(
        progress.bytes_from_origin >= torrent.total_size(),
        "{progress:?}"
    );
    assert!(
        progress.bytes_from_origin < torrent.total_size() + 3 * 16384,
        "{progress:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_origin_is_reported_and_peers_finish_the_download() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    write_release(&good.join("Release 3"));
    // The origin serves files of the same sizes with other bytes.
    let www = tmp.path().join("www");
    write_pattern_file(&www.join("pub/Release 3/setup.bin"), 1_500_000, 101);
    write_pattern_file(&www.join("pub/Release 3/data/part one.bin"), 700_001, 102);
    write_pattern_file(&www.join("pub/Release 3/data/empty"), 0, 103);
    let nginx = Nginx::start(&www, &tmp.path().join("nginx"));
    let torrent = torrent_with_origin(&good.join("Release 3"), &nginx.url("/pub/"));

    let seeder = Engine::start(loopback()).await.unwrap();
    let seed = seeder.seed(torrent.clone(), &good, |_| {}).await.unwrap();
    let leecher = Engine::start(loopback()).await.unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut handle = leecher
        .download(torrent.clone(), &out, false)
        .await
        .unwrap();
    // Alone at first, the download asks the origin; its first piece fails
    // the hash check and the origin is dropped, with a warning naming it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let warning = loop {
        match tokio::time::timeout_at(deadline, handle.next_event())
            .await
            .expect("no warning in 30 s")
        {
            Some(TorrentEvent::Warning(warning)) => break warning,
            Some(TorrentEvent::Stopped { error, .. }) => panic!("stopped: {error:?}"),
            Some(_) => {}
            None => panic!("no more events"),
        }
    };
    assert!(warning.contains(&nginx.url("/pub/")), "{warning}");
    assert!(warning.contains("failed verification"), "{warning}");
    // The peer has every piece: the download completes from it.
    handle.add_peers(vec![seeder.listen_addr()]).await;
    let progress = until_complete(&mut handle, |_| {}).await;
    assert_same_tree(&good.join("Release 3"), &out.join("Release 3"));
    assert_eq!(progress.bytes_from_origin, 0, "no bad byte was kept");
    seed.stop().await;
}

/// An origin that answers 503 for a while, then stalls in the middle of a
/// response, still delivers the whole release: the origin is never the
/// reason a download hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_survives_an_origin_that_fails_for_a_while_and_stalls() {
    use crate::fake_origin::{FakeOrigin, Reply};
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("blob.bin");
    write_pattern_file(&source, 600_000, 7);
    let content = Arc::new(std::fs::read(&source).unwrap());
    let script = Arc::new(|n: usize, _: &crate::fake_origin::Seen| match n {
        0..=2 => Reply::Status(503),
        4 => Reply::StallAfter(1_000),
        _ => Reply::Serve,
    });
    let origin = FakeOrigin::start(content, script).await;
    let torrent = torrent_with_origin(&source, &origin.url);

    let settings = EngineSettings {
        web_seed: engine::web_seed::WebSeedSettings {
            stall_timeout: Duration::from_millis(300),
            backoff_start: Duration::from_millis(50),
            ..Default::default()
        },
        ..loopback()
    };
    let engine = Engine::start(settings).await.unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut handle = engine.download(torrent.clone(), &out, false).await.unwrap();
    let progress = until_complete(&mut handle, |_| {}).await;
    assert_eq!(
        std::fs::read(out.join("blob.bin")).unwrap(),
        std::fs::read(&source).unwrap()
    );
    assert_eq!(progress.bytes_from_origin, torrent.total_size());
    let seen = origin.seen();
    // The first three requests were the same range, asked until it came.
    assert_eq!(seen[0].range, seen[3].range, "{seen:?}");
    // Request 4 stalled after 1,000 bytes; a later one asked for the rest.
    let (start, end) = seen[4].range.unwrap();
    assert!(
        seen[5..]
            .iter()
            .any(|s| s.range == Some((start + 1_000, end))),
        "the stalled range was resumed: {seen:?}"
    );
}
