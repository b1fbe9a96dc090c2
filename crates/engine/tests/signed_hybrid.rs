//! Which hashes a hybrid torrent's pieces are checked against. A publisher
//! the customer trusts, who signed the torrent's v2 info-hash, vouches for
//! the v2 merkle tree: pieces are checked against it alone, so a v1 piece
//! list the publisher got wrong costs v1 peers, not shoal. Without that
//! trust (unsigned, or signed by a key nobody chose) both are checked, and
//! a piece whose SHA-1 does not match is refused. Bad *data* is caught
//! either way.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use engine::storage::PieceStore;
use engine::{Engine, EngineError, EngineSettings, PublisherTrust, TorrentEvent, TorrentOptions};
use meta::create::{self, CreateSettings};
use meta::layout::PieceHashes;
use meta::{Manifest, SignatureBlock, Torrent};

const PIECE: u64 = 64 * 1024;
const SIZE: usize = 20 * PIECE as usize + 1234;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn publisher(key: &SigningKey) -> [u8; 32] {
    key.verifying_key().to_bytes()
}

fn trusted(key: &SigningKey) -> TorrentOptions {
    TorrentOptions {
        publisher: PublisherTrust::Trusted {
            publisher: publisher(key),
        },
        ..TorrentOptions::default()
    }
}

fn write_release(dir: &Path) -> Vec<u8> {
    let mut state = 0x9e37_79b9u32;
    let data: Vec<u8> = (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("release.bin"), &data).unwrap();
    data
}

/// A hybrid torrent of `data_dir/release.bin`; with `bad_v1_piece`, that
/// piece's SHA-1 in the v1 list is wrong (as a buggy publisher could make
/// it); with `signer`, signed as `shoal publish` signs, over the info-hash
/// of the torrent as it stands (wrong list included).
fn hybrid(
    data_dir: &Path,
    bad_v1_piece: Option<usize>,
    signer: Option<&SigningKey>,
) -> Arc<Torrent> {
    let source = create::scan(&data_dir.join("release.bin")).unwrap();
    let settings = CreateSettings {
        piece_length: Some(PIECE),
        threads: 1,
        ..CreateSettings::default()
    };
    let mut new = create::create(&source, &settings, &|_| {}).unwrap();
    if let Some(piece) = bad_v1_piece {
        let marker = b"6:pieces";
        let at = new
            .info_bytes
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap()
            + marker.len();
        let colon = at
            + new.info_bytes[at..]
                .iter()
                .position(|&b| b == b':')
                .unwrap();
        new.info_bytes[colon + 1 + piece * 20] ^= 0xff;
    }
    let signature = signer.map(|key| {
        let manifest = Manifest {
            info_hash_v2: new.info_hash_v2(),
            name: new.name.clone(),
            version: "1.0".into(),
            created: 1_700_000_000,
            origins: Vec::new(),
            max_origin_millicopies: None,
        };
        SignatureBlock::sign(&manifest, key)
    });
    let torrent = Torrent::from_bytes(&new.encode(signature.as_ref())).unwrap();
    assert_eq!(signer.is_some(), torrent.signature.as_str() == "valid");
    Arc::new(torrent)
}

fn loopback() -> EngineSettings {
    EngineSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..EngineSettings::default()
    }
}

#[test]
fn trust_in_the_signer_alone_selects_the_merkle_tree() {
    let dir = tempfile::tempdir().unwrap();
    write_release(dir.path());
    let signed = hybrid(dir.path(), None, Some(&key(1)));
    let unsigned = hybrid(dir.path(), None, None);
    let by_signer = PublisherTrust::Trusted {
        publisher: publisher(&key(1)),
    };
    let by_someone_else = PublisherTrust::Trusted {
        publisher: publisher(&key(2)),
    };
    assert_eq!(by_signer.piece_hashes(&signed), PieceHashes::V2Only);
    // The caller's word and the torrent must agree; a mix-up costs speed.
    assert_eq!(by_someone_else.piece_hashes(&signed), PieceHashes::All);
    assert_eq!(by_signer.piece_hashes(&unsigned), PieceHashes::All);
    // A valid signature nobody chose to trust proves nothing.
    assert_eq!(
        PublisherTrust::Unestablished.piece_hashes(&signed),
        PieceHashes::All
    );
}

#[test]
fn a_bad_v1_list_fails_pieces_unless_the_publisher_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    write_release(dir.path());
    let torrent = hybrid(dir.path(), Some(3), Some(&key(1)));
    let (_, all) = PieceStore::open_seed(torrent.clone(), dir.path(), &|_| {}).unwrap();
    let failed: Vec<usize> = (0..all.len()).filter(|&i| !all[i]).collect();
    assert_eq!(
        failed,
        vec![3],
        "both hashes: the wrong SHA-1 fails its piece"
    );
    let (_, v2) =
        PieceStore::open_seed_with(torrent, dir.path(), PieceHashes::V2Only, &|_| {}).unwrap();
    assert!(
        v2.iter().all(|ok| *ok),
        "merkle tree alone: every piece holds"
    );
}

#[test]
fn bad_data_fails_the_merkle_tree_of_a_trusted_hybrid() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = write_release(dir.path());
    let torrent = hybrid(dir.path(), None, Some(&key(1)));
    let out = tempfile::tempdir().unwrap();
    let (store, _) =
        PieceStore::open_download_with(torrent.clone(), out.path(), PieceHashes::V2Only).unwrap();
    let piece = 5usize;
    let bytes = &mut data[piece * PIECE as usize..(piece + 1) * PIECE as usize];
    assert!(store.check_data(piece as u32, bytes).ok);
    bytes[777] ^= 1;
    assert!(
        !store.check_data(piece as u32, bytes).ok,
        "one flipped byte"
    );
    // The last, short piece too.
    let last = (SIZE as u64 / PIECE) as usize;
    let tail = &mut data[last * PIECE as usize..];
    assert!(store.check_data(last as u32, tail).ok);
    tail[0] ^= 1;
    assert!(!store.check_data(last as u32, tail).ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_refuses_corrupted_data_even_when_its_publisher_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = write_release(dir.path());
    let torrent = hybrid(dir.path(), None, Some(&key(1)));
    data[9 * PIECE as usize + 5] ^= 1;
    std::fs::write(dir.path().join("release.bin"), &data).unwrap();
    let engine = Engine::start(loopback()).await.unwrap();
    let refused = engine
        .seed_with(torrent, dir.path(), |_| {}, trusted(&key(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, EngineError::DataMismatch { bad: 1, .. }),
        "{refused:?}"
    );
}

/// Seeds `torrent` from `data_dir` with its publisher trusted, then
/// downloads it with `options`; returns the leecher's handle.
async fn download_from_trusted_seed(
    torrent: &Arc<Torrent>,
    data_dir: &Path,
    out: &Path,
    options: TorrentOptions,
) -> (Engine, Engine, engine::TorrentHandle, engine::TorrentHandle) {
    let signer = key(1);
    let seeder = Engine::start(loopback()).await.unwrap();
    let seed = seeder
        .seed_with(torrent.clone(), data_dir, |_| {}, trusted(&signer))
        .await
        .unwrap();
    let leecher = Engine::start(loopback()).await.unwrap();
    let download = leecher
        .download_with(torrent.clone(), out, false, options)
        .await
        .unwrap();
    download.add_peers(vec![seeder.listen_addr()]).await;
    (seeder, leecher, seed, download)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_signed_hybrid_downloads_despite_a_bad_v1_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_release(dir.path());
    let torrent = hybrid(dir.path(), Some(7), Some(&key(1)));
    let out = tempfile::tempdir().unwrap();
    let (_s, _l, _seed, mut download) =
        download_from_trusted_seed(&torrent, dir.path(), out.path(), trusted(&key(1))).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, download.next_event())
            .await
            .expect("download timed out")
        {
            Some(TorrentEvent::Completed { path, .. }) => {
                assert_eq!(std::fs::read(path).unwrap(), data);
                break;
            }
            Some(TorrentEvent::Stopped { error, .. }) => panic!("stopped early: {error:?}"),
            Some(_) => {}
            None => panic!("no more events"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_hybrid_with_a_bad_v1_list_never_completes() {
    let dir = tempfile::tempdir().unwrap();
    write_release(dir.path());
    let torrent = hybrid(dir.path(), Some(7), Some(&key(1)));
    let out = tempfile::tempdir().unwrap();
    let (_s, _l, _seed, mut download) =
        download_from_trusted_seed(&torrent, dir.path(), out.path(), TorrentOptions::default())
            .await;
    let pieces = torrent.piece_count() as u32;
    // Every other piece arrives and verifies; piece 7 never does.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut settled_at = None;
    loop {
        let event = tokio::time::timeout_at(deadline, download.next_event()).await;
        match event {
            Err(_) if settled_at.is_some() => break,
            Err(_) => panic!("the other pieces never arrived"),
            Ok(Some(TorrentEvent::Completed { .. })) => {
                panic!("completed with a piece whose SHA-1 does not match")
            }
            Ok(Some(TorrentEvent::Progress(progress))) => {
                assert!(progress.pieces_verified < pieces);
                if progress.pieces_verified == pieces - 1 && settled_at.is_none() {
                    // Give the bad piece a few more tries, then stop looking.
                    let until = tokio::time::Instant::now() + Duration::from_secs(3);
                    settled_at = Some(until);
                }
            }
            Ok(Some(TorrentEvent::Stopped { .. })) | Ok(None) => break,
            Ok(Some(_)) => {}
        }
        if settled_at.is_some_and(|until| tokio::time::Instant::now() >= until) {
            break;
        }
    }
    assert!(settled_at.is_some(), "the good pieces were verified");
    assert!(!out.path().join("release.bin").exists());
}
