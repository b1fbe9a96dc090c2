//! The publisher's API token never goes on the command line, where every
//! account on the machine reads it with `ps`: `shoal publish --register`
//! takes it from `SHOAL_TOKEN` or `--token-file`, and refuses `--token`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testkit::shoal;

fn publish(dir: &Path, out: &Path) -> Command {
    let data = dir.join("release.bin");
    if !data.exists() {
        testkit::write_random_file(&data, 256 * 1024, 7);
    }
    let key = dir.join("publisher.key");
    if !key.exists() {
        testkit::run(shoal().arg("keygen").arg("--out").arg(&key));
    }
    let mut cmd = shoal();
    cmd.arg("publish")
        .arg(&data)
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(out)
        .env_remove("SHOAL_TOKEN");
    cmd
}

fn fails(cmd: &mut Command) -> String {
    let output = cmd.output().expect("run shoal publish");
    assert!(!output.status.success(), "expected a failure: {cmd:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_token_on_the_command_line_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("r.torrent");
    let stderr = fails(publish(dir.path(), &out).args([
        "--register",
        "http://127.0.0.1:9",
        "--token",
        "abc",
    ]));
    assert!(stderr.contains("SHOAL_TOKEN"), "{stderr}");
    assert!(stderr.contains("--token-file"), "{stderr}");
    assert!(!out.exists(), "no torrent may be written");
}

#[test]
fn register_without_a_token_fails_before_hashing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("r.torrent");
    let stderr = fails(publish(dir.path(), &out).args(["--register", "http://127.0.0.1:9"]));
    assert!(stderr.contains("SHOAL_TOKEN"), "{stderr}");
    assert!(!out.exists(), "no torrent may be written");

    // An empty token file, and a file far too big to be a token.
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").expect("write");
    let stderr = fails(
        publish(dir.path(), &out)
            .args(["--register", "http://127.0.0.1:9", "--token-file"])
            .arg(&empty),
    );
    assert!(stderr.contains("SHOAL_TOKEN"), "{stderr}");
    let huge = dir.path().join("huge-token");
    std::fs::write(&huge, vec![b'a'; 1 << 20]).expect("write");
    let stderr = fails(
        publish(dir.path(), &out)
            .args(["--register", "http://127.0.0.1:9", "--token-file"])
            .arg(&huge),
    );
    assert!(stderr.contains("huge-token"), "names the file: {stderr}");
    assert!(!out.exists(), "no torrent may be written");
}

/// A stand-in tracker API that records the `Authorization` header of one
/// registration and answers as `shoal-tracker` does.
fn one_registration_server() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut reader = BufReader::new(stream);
        let mut authorization = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("authorization:") {
                authorization = line["authorization:".len()..].trim().to_owned();
            }
            if let Some(n) = lower.strip_prefix("content-length:") {
                length = n.trim().parse().expect("content length");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let answer = r#"{"release":1,"info_hash":"00"}"#;
        let mut stream = reader.into_inner();
        write!(
            stream,
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .expect("answer");
        authorization
    });
    (base, handle)
}

#[test]
fn the_token_comes_from_a_file_or_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "file-token-0123\n").expect("write");
    let (base, server) = one_registration_server();
    let out = dir.path().join("a.torrent");
    testkit::run(
        publish(dir.path(), &out)
            .args(["--register", &base, "--json", "--token-file"])
            .arg(&token_file),
    );
    assert_eq!(server.join().expect("server"), "Bearer file-token-0123");

    let (base, server) = one_registration_server();
    let out = dir.path().join("b.torrent");
    testkit::run(
        publish(dir.path(), &out)
            .args(["--register", &base, "--json"])
            .env("SHOAL_TOKEN", "env-token-4567"),
    );
    assert_eq!(server.join().expect("server"), "Bearer env-token-4567");
}
