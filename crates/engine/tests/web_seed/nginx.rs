//! nginx as the origin: every piece of multi-file, cross-file and
//! single-file releases, fetched and checked against the torrent's hashes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use engine::web_seed::{WebSeed, WebSeedError};
use meta::layout::Layout;
use meta::Torrent;
use testkit::data::write_pattern_file;

use crate::{fetch_all_verified, make_torrent, quick, PIECE};

/// nginx serving `root` on a loopback port; killed on drop.
pub(crate) struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    pub(crate) fn start(root: &Path, dir: &Path) -> Nginx {
        std::fs::create_dir_all(dir).unwrap();
        // As root, workers would drop to `nobody`, who cannot read a 0700
        // temp dir; as anyone else, `user` is ignored with a warning.
        let user = {
            use std::os::unix::fs::MetadataExt;
            let root_owned = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
            if root_owned {
                "user root;"
            } else {
                ""
            }
        };
        // A free port can be taken between our probe and nginx's bind.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let d = dir.display();
            let conf = format!(
                "{user}\nworker_processes 1;\npid \"{d}/nginx.pid\";\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log \"{d}/access.log\";\n\
                 client_body_temp_path \"{d}/body\"; proxy_temp_path \"{d}/proxy\";\n\
                 fastcgi_temp_path \"{d}/fastcgi\"; uwsgi_temp_path \"{d}/uwsgi\";\n\
                 scgi_temp_path \"{d}/scgi\";\n  default_type application/octet-stream;\n\
                 server {{ listen 127.0.0.1:{port}; root \"{}\"; }}\n}}\n",
                root.display()
            );
            std::fs::write(dir.join("nginx.conf"), conf).unwrap();
            let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
            let child = Command::new("nginx")
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .args(["-e", "stderr", "-g", "daemon off; error_log stderr;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("nginx not found: install nginx-light");
            let mut nginx = Nginx {
                child,
                port,
                dir: dir.to_path_buf(),
            };
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return nginx;
                }
                if nginx.child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(nginx);
        }
        let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        panic!("nginx did not start:\n{log}");
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn access_log(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        log.lines().map(str::to_owned).collect()
    }

    /// The access log once it holds `lines` lines, or as it is after 5 s:
    /// nginx writes a request's line after sending the answer, so the
    /// last line may lag the response the test already has.
    fn access_log_with(&self, lines: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let log = self.access_log();
            if log.len() >= lines || std::time::Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    /// SIGTERM first: the master then stops its worker, which a SIGKILL
    /// to the master alone would leave running. SIGKILL if it lingers.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..40 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn nginx_serves_every_piece_of_a_multi_file_release() {
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("www/pub/Release ü 1");
    write_pattern_file(&release.join("a/deep/one.bin"), 100_000, 1);
    write_pattern_file(&release.join("a/two.bin"), 49_152, 2);
    write_pattern_file(&release.join("c/empty"), 0, 3);
    write_pattern_file(&release.join("d.bin"), 5, 4);
    write_pattern_file(&release.join("docs/Ünï code.txt"), 30_001, 5);
    let torrent = make_torrent(&release);
    assert!(
        torrent.files.iter().any(|f| f.pad),
        "hybrid: pad files expected"
    );
    let nginx = Nginx::start(&tmp.path().join("www"), &tmp.path().join("nginx"));
    // No trailing slash: the folder URL gets one before the name.
    let seed = WebSeed::new(&nginx.url("/pub"), torrent.clone(), quick()).unwrap();
    fetch_all_verified(&seed, &torrent).await;

    let layout = Layout::new(&torrent);
    let pieces = layout.piece_count() as usize;
    // A middle stretch of a piece is the same bytes as in the whole piece.
    let whole = seed.fetch(3, 0, layout.piece_len(3)).await.unwrap();
    let middle = seed.fetch(3, 1000, 5000).await.unwrap();
    assert_eq!(middle, whole[1000..6000]);
    // d.bin's piece is 5 bytes of data, then padding: a range inside the
    // padding is zeros and asks nothing of the origin.
    let d = torrent
        .files
        .iter()
        .position(|f| f.path.to_string() == "d.bin");
    let d_piece = (torrent.files[d.unwrap()].offset / PIECE) as u32;
    // One request per piece (each lies in one file here), two more above.
    let log = nginx.access_log_with(pieces + 2);
    assert_eq!(log.len(), pieces + 2, "{log:#?}");
    assert_eq!(seed.fetch(d_piece, 100, 200).await.unwrap(), vec![0; 200]);
    // Time for a stray request's line to appear, were there one.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = nginx.access_log();
    assert_eq!(
        log.len(),
        pieces + 2,
        "padding must not be fetched: {log:#?}"
    );
    assert!(log
        .iter()
        .all(|l| l.contains(" 206 ") && !l.contains(".pad")));
    assert!(log
        .iter()
        .any(|l| l.contains("/pub/Release%20%C3%BC%201/docs/%C3%9Cn%C3%AF%20code.txt")));
}

/// A v1 torrent made by hand, since `meta::create` pads every file to a
/// piece boundary: pieces here cross files, a pad and an empty file.
fn v1_torrent(release: &Path) -> Arc<Torrent> {
    use bencode::Bencode;
    use sha1::{Digest, Sha1};
    let files: [(&[&str], usize, bool); 5] = [
        (&["a.bin"], 10_000, false),
        (&[".pad", "2000"], 2_000, true),
        (&["sub dir", "b ü.bin"], 30_000, false),
        (&["empty.bin"], 0, false),
        (&["c.bin"], 5, false),
    ];
    let mut stream = Vec::new();
    let mut list = Vec::new();
    for (n, (path, len, pad)) in files.iter().enumerate() {
        let path_on_disk = path.iter().fold(release.to_path_buf(), |p, c| p.join(c));
        if *pad {
            stream.resize(stream.len() + len, 0);
        } else {
            write_pattern_file(&path_on_disk, *len, n as u8);
            stream.extend(std::fs::read(&path_on_disk).unwrap());
        }
        let mut entry = vec![
            ("length", Bencode::int(*len as i64)),
            (
                "path",
                Bencode::List(path.iter().map(|c| Bencode::string(c)).collect()),
            ),
        ];
        if *pad {
            entry.push(("attr", Bencode::string("p")));
        }
        list.push(Bencode::dict(entry));
    }
    let pieces: Vec<u8> = stream
        .chunks(PIECE as usize)
        .flat_map(|chunk| Sha1::digest(chunk).to_vec())
        .collect();
    let info = Bencode::dict([
        ("files", Bencode::List(list)),
        ("name", Bencode::string("v1 set")),
        ("piece length", Bencode::int(PIECE as i64)),
        ("pieces", Bencode::bytes(pieces)),
    ]);
    let file = Bencode::dict([("info", info)]).encode();
    Arc::new(Torrent::from_bytes(&file).unwrap())
}

#[tokio::test]
async fn nginx_serves_ranges_that_cross_files_pads_and_empty_files() {
    let tmp = tempfile::tempdir().unwrap();
    let torrent = v1_torrent(&tmp.path().join("www/v1 set"));
    let nginx = Nginx::start(&tmp.path().join("www"), &tmp.path().join("nginx"));
    let seed = WebSeed::new(&nginx.url("/"), torrent.clone(), quick()).unwrap();
    fetch_all_verified(&seed, &torrent).await;
    // Piece 0: a.bin, pad, b; piece 1: b; piece 2: b, c. Five requests.
    let log = nginx.access_log_with(5);
    assert_eq!(log.len(), 5, "{log:#?}");
    // a.bin's tail, the pad, b's head: 2 requests, zeros in between.
    let whole = seed.fetch(0, 0, PIECE as u32).await.unwrap();
    let across = seed.fetch(0, 9_000, 4_000).await.unwrap();
    assert_eq!(across, whole[9_000..13_000]);
    assert_eq!(across[1_000..3_000], [0; 2_000]);
    let log = nginx.access_log_with(5 + 2 + 2);
    assert_eq!(log.len(), 5 + 2 + 2, "{log:#?}");
    assert!(log
        .iter()
        .all(|l| !l.contains(".pad") && !l.contains("empty.bin")));
}

#[tokio::test]
async fn nginx_serves_a_single_file_by_its_url_or_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("www/pub/single file ü.bin");
    write_pattern_file(&file, 70_001, 9);
    let torrent = make_torrent(&file);
    let nginx = Nginx::start(&tmp.path().join("www"), &tmp.path().join("nginx"));
    for url in ["/pub/single%20file%20%C3%BC.bin", "/pub/"] {
        let seed = WebSeed::new(&nginx.url(url), torrent.clone(), quick()).unwrap();
        fetch_all_verified(&seed, &torrent).await;
    }
    let missing = WebSeed::new(&nginx.url("/pub/gone.bin"), torrent.clone(), quick()).unwrap();
    let err = missing.fetch(0, 0, 100).await.unwrap_err();
    assert!(matches!(err, WebSeedError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("/pub/gone.bin"), "{err}");
}
