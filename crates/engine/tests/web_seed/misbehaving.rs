//! Origins that fail: errors, ignored ranges, stalls, long bodies,
//! redirects, refused connections. Each counts the requests it saw.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::web_seed::{WebSeed, WebSeedError, WebSeedSettings};
use meta::Torrent;
use testkit::data::write_pattern_file;

use crate::fake_origin::{FakeOrigin, Reply, Seen};
use crate::{make_torrent, quick};

/// A single-file torrent of 40,000 bytes (3 pieces) and its content.
fn blob() -> (Arc<Torrent>, Arc<Vec<u8>>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("blob.bin");
    write_pattern_file(&path, 40_000, 7);
    let content = Arc::new(std::fs::read(&path).unwrap());
    (make_torrent(&path), content, tmp)
}

async fn fake(
    script: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
) -> (WebSeed, FakeOrigin, Arc<Vec<u8>>) {
    let (torrent, content, _tmp) = blob();
    let origin = FakeOrigin::start(content.clone(), Arc::new(script)).await;
    let seed = WebSeed::new(&origin.url, torrent, quick()).unwrap();
    (seed, origin, content)
}

#[tokio::test]
async fn server_errors_are_retried_until_the_origin_recovers() {
    let (seed, origin, content) = fake(|n, _| {
        if n < 2 {
            Reply::Status(503)
        } else {
            Reply::Serve
        }
    })
    .await;
    assert_eq!(
        seed.fetch(1, 0, 16_384).await.unwrap(),
        content[16_384..32_768]
    );
    assert_eq!(origin.seen().len(), 3);

    let (seed, origin, _) = fake(|_, _| Reply::Status(503)).await;
    let err = seed.fetch(0, 0, 100).await.unwrap_err();
    assert_eq!(
        err,
        WebSeedError::HttpStatus {
            url: origin.url.clone(),
            status: 503
        }
    );
    assert!(!err.is_permanent());
    assert_eq!(origin.seen().len(), 4, "one request per allowed attempt");
}

#[tokio::test]
async fn permanent_answers_are_not_retried() {
    for (code, want_not_found) in [(404, true), (410, true), (416, false), (403, false)] {
        let (seed, origin, _) = fake(move |_, _| Reply::Status(code)).await;
        let err = seed.fetch(0, 0, 100).await.unwrap_err();
        assert!(err.is_permanent(), "{code}: {err}");
        assert_eq!(
            matches!(err, WebSeedError::NotFound { .. }),
            want_not_found,
            "{err}"
        );
        if code == 416 {
            assert!(
                matches!(err, WebSeedError::RangeNotSatisfiable { .. }),
                "{err}"
            );
        }
        assert_eq!(origin.seen().len(), 1, "{code} must not be retried");
    }
}

#[tokio::test]
async fn an_origin_ignoring_ranges_is_refused_without_reading_the_file() {
    for reply in [Reply::Whole, Reply::WrongRange] {
        let (torrent, content, _tmp) = blob();
        let script = reply.clone();
        let origin = FakeOrigin::start(content, Arc::new(move |_, _| script.clone())).await;
        // A long stall timeout: reading the endless body would show.
        let settings = WebSeedSettings {
            stall_timeout: Duration::from_secs(10),
            ..quick()
        };
        let seed = WebSeed::new(&origin.url, torrent, settings).unwrap();
        let started = Instant::now();
        let err = seed.fetch(0, 0, 16_384).await.unwrap_err();
        assert!(
            matches!(err, WebSeedError::NoRangeSupport { .. }),
            "{reply:?}: {err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{reply:?}");
        assert_eq!(origin.seen().len(), 1);
    }
}

#[tokio::test]
async fn a_stall_mid_body_is_resumed_from_the_missing_byte() {
    let (seed, origin, content) = fake(|n, _| {
        if n == 0 {
            Reply::StallAfter(5_000)
        } else {
            Reply::Serve
        }
    })
    .await;
    assert_eq!(seed.fetch(0, 0, 16_384).await.unwrap(), content[..16_384]);
    let ranges: Vec<_> = origin.seen().into_iter().map(|s| s.range).collect();
    assert_eq!(ranges, [Some((0, 16_383)), Some((5_000, 16_383))]);
}

#[tokio::test]
async fn an_origin_that_always_stalls_gives_up_after_the_retries() {
    let (seed, origin, _) = fake(|_, _| Reply::StallAfter(100)).await;
    let started = Instant::now();
    let err = seed.fetch(0, 0, 16_384).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, WebSeedError::Stalled { .. }), "{err}");
    assert_eq!(origin.seen().len(), 4);
    // 4 stalls of 300 ms plus 10 + 20 + 40 ms of back-off.
    assert!(elapsed >= Duration::from_millis(1_200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn a_body_longer_than_asked_is_an_error() {
    for content_length in [true, false] {
        let (seed, origin, _) = fake(move |_, _| Reply::Long { content_length }).await;
        let err = seed.fetch(0, 0, 1_000).await.unwrap_err();
        assert!(
            matches!(
                err,
                WebSeedError::LongBody {
                    expected: 1_000,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(origin.seen().len(), 1);
    }
}

#[tokio::test]
async fn redirects_are_followed_with_the_range_but_not_forever() {
    let (seed, origin, content) = fake(|_, seen| {
        if seen.path == "/blob.bin" {
            Reply::Redirect("/moved/blob.bin".into())
        } else {
            Reply::Serve
        }
    })
    .await;
    assert_eq!(
        seed.fetch(2, 100, 200).await.unwrap(),
        content[32_868..33_068]
    );
    let seen = origin.seen();
    assert_eq!(
        seen[1],
        Seen {
            path: "/moved/blob.bin".into(),
            range: Some((32_868, 33_067))
        }
    );

    let (seed, origin, _) = fake(|n, _| Reply::Redirect(format!("/loop{}", n % 2))).await;
    let err = seed.fetch(0, 0, 100).await.unwrap_err();
    assert!(
        matches!(err, WebSeedError::TooManyRedirects { limit: 3, .. }),
        "{err}"
    );
    let requests = origin.seen().len();
    assert!((3..=5).contains(&requests), "{requests} requests");
}

#[tokio::test]
async fn bad_urls_refused_connections_and_bad_ranges() {
    let (torrent, _, _tmp) = blob();
    for url in ["ftp://127.0.0.1/blob.bin", "blob.bin", "http://"] {
        let err = WebSeed::new(url, torrent.clone(), quick()).unwrap_err();
        assert!(matches!(err, WebSeedError::BadUrl { .. }), "{url}: {err}");
    }
    // A port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/blob.bin");
    let seed = WebSeed::new(&url, torrent, quick()).unwrap();
    let err = seed.fetch(0, 0, 100).await.unwrap_err();
    assert!(
        matches!(err, WebSeedError::Unreachable { .. }) && !err.is_permanent(),
        "{err}"
    );
    assert!(err.to_string().contains(&url), "{err}");
    // The last piece is 7,232 bytes; piece 3 does not exist.
    for (piece, offset, length) in [(3, 0, 1), (2, 0, 16_384), (2, 7_000, 300)] {
        let err = seed.fetch(piece, offset, length).await.unwrap_err();
        assert!(matches!(err, WebSeedError::OutsidePiece { .. }), "{err}");
    }
}
