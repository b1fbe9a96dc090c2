//! The Windows build of the customer agent (`shoal.exe`, made by
//! scripts/windows/build.sh), run under Wine on this Linux host (issue 16):
//! it makes keys and signed torrents the Linux build verifies, it moves
//! releases to and from the Linux build on loopback byte for byte, the
//! agent keeps its config and state in the Windows places (%APPDATA%,
//! %LOCALAPPDATA%), secrets get an owner-only ACL, and file names that
//! Windows refuses are refused before anything is written.
//!
//! Each test boots its own Wine prefix in its scratch folder and stops
//! that prefix's wineserver when it ends.

// Helpers here are not `#[test]` functions, so clippy's
// `allow-unwrap-in-tests` does not reach them; in a test a panic is the
// failure report, so `unwrap` is what we mean.
#![allow(clippy::unwrap_used)]
// Wine runs Windows programs on the Linux host CI uses.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bencode::Bencode;
use testkit::content::assert_same_content;
use testkit::json::file_list;
use testkit::process::free_port;
use testkit::release::Release;
use testkit::{field, run, shoal, Scene, MIB};

const WINE: &str = "/usr/lib/wine/wine64";
const WINESERVER: &str = "/usr/lib/wine/wineserver";
/// An odd size, so the last piece is a short one.
const RELEASE_BYTES: u64 = 3 * MIB + 12_345;
const PIECE_BYTES: u64 = 64 * 1024;
/// A tracker nobody answers at: the transfers here name their peer.
const NO_TRACKER: &str = "http://127.0.0.1:9/announce";

/// Where scripts/windows/build.sh leaves shoal.exe and the test fixtures.
fn windows_build_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/windows/x86_64-pc-windows-gnu/dist")
}

/// A Wine prefix of this test's own, and the Windows build to run in it.
struct Wine {
    prefix: PathBuf,
    build: PathBuf,
    cwd: PathBuf,
}

impl Wine {
    /// Boots a new prefix in `scene` (a few seconds the first time).
    fn boot(scene: &Scene) -> Wine {
        let build = windows_build_dir();
        for file in ["shoal.exe", "bcryptprimitives.dll", "show_acl.exe"] {
            assert!(
                build.join(file).is_file(),
                "{} is missing: run scripts/windows/build.sh first (it builds the \
                 Windows agent and the Wine test fixtures)",
                build.join(file).display()
            );
        }
        assert!(
            Path::new(WINE).is_file(),
            "{WINE} is missing: install Debian's wine64 (scripts/test.sh does)"
        );
        let wine = Wine {
            prefix: scene.dir("wine-prefix"),
            build,
            cwd: scene.dir("."),
        };
        let version = wine.output(wine.shoal().arg("--version"));
        let stdout = String::from_utf8_lossy(&version.stdout);
        assert!(
            version.status.success() && stdout.starts_with("shoal "),
            "shoal.exe --version under Wine: {}\n{stdout}\n{}",
            version.status,
            String::from_utf8_lossy(&version.stderr)
        );
        wine
    }

    /// `program` (beside shoal.exe) under Wine in this prefix.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(WINE);
        cmd.arg(self.build.join(program))
            .current_dir(&self.cwd)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            // No Mono or Gecko install prompts while the prefix boots.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
        cmd
    }

    fn shoal(&self) -> Command {
        self.command("shoal.exe")
    }

    fn output(&self, cmd: &mut Command) -> Output {
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
    }

    /// The Windows user's profile folder in the prefix
    /// (`C:\users\NAME`), as a Linux path.
    fn profile(&self) -> PathBuf {
        let users = self.prefix.join("drive_c/users");
        let mut found: Vec<PathBuf> = std::fs::read_dir(&users)
            .unwrap_or_else(|e| panic!("{}: {e}", users.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().is_some_and(|n| n != "Public"))
            .collect();
        assert_eq!(found.len(), 1, "one user profile expected: {found:?}");
        found.remove(0)
    }

    /// The current user's SID and `path`'s owner and DACL in SDDL, as
    /// tests/wine/show_acl.c reads them through the Win32 API.
    fn acl(&self, path: &Path) -> (String, String) {
        let output = self.output(self.command("show_acl.exe").arg(windows_path(path)));
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "show_acl {}: {text}",
            path.display()
        );
        let line = |label: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(label))
                .unwrap_or_else(|| panic!("no {label:?} in {text}"))
                .to_owned()
        };
        (line("user "), line("sddl "))
    }

    /// Asserts that `path` is readable by the user alone.
    ///
    /// On Windows, and under a Wine that stores security descriptors
    /// (wine-staging's `server-Stored_ACLs`, in the `user.wine.sd`
    /// extended attribute), that is a protected DACL (nothing inherited)
    /// with exactly one entry: the user, full access, inherited by what a
    /// folder holds. Upstream Wine, Debian's included, stores none: it
    /// turns the DACL it is given into Unix permission bits and rebuilds a
    /// DACL from them when asked. There the DACL we set must have left the
    /// file no bits for others, so no entry for Everyone or any other SID
    /// comes back.
    fn assert_owner_only(&self, path: &Path) {
        let (user, sddl) = self.acl(path);
        let dacl = sddl
            .split_once("D:")
            .unwrap_or_else(|| panic!("{}: no DACL in {sddl}", path.display()))
            .1;
        let (flags, aces) = dacl.split_once('(').unwrap_or((dacl, ""));
        let aces: Vec<Vec<&str>> = aces
            .trim_end_matches(')')
            .split(")(")
            .map(|ace| ace.split(';').collect())
            .collect();
        assert!(
            aces.iter().all(|ace| ace.len() == 6),
            "{}: unexpected SDDL {sddl}",
            path.display()
        );
        if stores_security_descriptors(path) {
            assert!(
                flags.contains('P'),
                "{}: the DACL is not protected, so the parent's entries are inherited: {sddl}",
                path.display()
            );
            let inherit = if path.is_dir() { "OICI" } else { "" };
            let ace = &aces[0];
            assert!(
                aces.len() == 1 && (ace[0], ace[1], ace[2], ace[5]) == ("A", inherit, "FA", &user),
                "{}: one entry allowing the user ({user}) full access expected: {sddl}",
                path.display()
            );
        } else {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o007,
                0,
                "{}: others may open it (mode {mode:o}; Wine's DACL {sddl})",
                path.display()
            );
            let others: Vec<&Vec<&str>> = aces
                .iter()
                .filter(|ace| ace[5] != user && ace[5] != "SY")
                .collect();
            assert!(
                others.is_empty(),
                "{}: entries for others: {others:?} in {sddl}",
                path.display()
            );
        }
    }
}

/// Whether Wine stored `path`'s security descriptor (wine-staging keeps
/// it in the `user.wine.sd` extended attribute; upstream Wine keeps none).
fn stores_security_descriptors(path: &Path) -> bool {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import os, sys; print('user.wine.sd' in os.listxattr(sys.argv[1]))",
        ])
        .arg(path)
        .output()
        .expect("run python3");
    assert!(probe.status.success(), "python3: {probe:?}");
    String::from_utf8_lossy(&probe.stdout).trim() == "True"
}

impl Drop for Wine {
    /// Stops the prefix's wineserver and whatever still runs in it.
    fn drop(&mut self) {
        let _ = Command::new(WINESERVER)
            .arg("-k")
            .env("WINEPREFIX", &self.prefix)
            .status();
    }
}

/// `path` as shoal.exe sees it: Wine maps drive Z: to the Linux root.
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn ok(cmd: &mut Command, wine: &Wine) -> Output {
    let output = wine.output(cmd);
    assert!(
        output.status.success(),
        "{cmd:?}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn keygen_publish_and_inspect_under_wine_make_what_linux_verifies() {
    let scene = Scene::new();
    let wine = Wine::boot(&scene);
    let data = scene.dir("data");
    testkit::write_tree(
        &data.join("app-2.0"),
        &[("bin/app.exe", 200_000), ("README", 999)],
        3,
    );

    let key = scene.path("publisher.key");
    let keygen = ok(
        wine.shoal().args(["keygen", "--out", &windows_path(&key)]),
        &wine,
    );
    let public = stdout(&keygen);
    assert_eq!(public.len(), 64, "keygen printed {public:?}");
    wine.assert_owner_only(&key);

    // --force replaces a key file that anyone could read with an
    // owner-only one.
    let loose = scene.path("loose.key");
    std::fs::write(&loose, b"an old key anyone could read\n").unwrap();
    let (_, before) = wine.acl(&loose);
    assert!(
        before.contains(";WD)"),
        "Everyone may read the loose file first: {before}"
    );
    ok(
        wine.shoal()
            .args(["keygen", "--force", "--out", &windows_path(&loose)]),
        &wine,
    );
    wine.assert_owner_only(&loose);

    let torrent = scene.path("app.torrent");
    ok(
        wine.shoal()
            .arg("publish")
            .arg(windows_path(&data.join("app-2.0")))
            .args([
                "--key",
                &windows_path(&key),
                "--out",
                &windows_path(&torrent),
            ])
            .args(["--tracker", NO_TRACKER, "--version", "2.0"]),
        &wine,
    );
    // Both builds verify it against the key; neither accepts another key.
    ok(
        wine.shoal()
            .args(["inspect", "--verify", "--trust", &public])
            .arg(windows_path(&torrent)),
        &wine,
    );
    run(shoal()
        .args(["inspect", "--verify", "--trust", &public])
        .arg(&torrent));
    let other = "11".repeat(32);
    let refused = wine.output(
        wine.shoal()
            .args(["inspect", "--verify", "--trust", &other])
            .arg(windows_path(&torrent)),
    );
    assert!(
        !refused.status.success(),
        "shoal.exe accepted another key's torrent"
    );
    let listing = run(shoal().args(["inspect", "--json"]).arg(&torrent));
    let listing: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    assert_eq!(listing["name"], "app-2.0", "{listing:#}");
    let files: BTreeSet<(String, u64)> = file_list(field(&listing, "files")).into_iter().collect();
    assert_eq!(
        files,
        BTreeSet::from([
            ("README".to_owned(), 999),
            ("bin/app.exe".to_owned(), 200_000)
        ]),
        "Windows paths must travel as torrent paths: {listing:#}"
    );
}

#[test]
fn releases_travel_between_the_windows_and_linux_builds_byte_for_byte() {
    let scene = Scene::new();
    let wine = Wine::boot(&scene);
    let release = Release::publish("tool-1.0.bin", RELEASE_BYTES, PIECE_BYTES, NO_TRACKER, 16);
    let deadline = Instant::now() + Duration::from_secs(120);
    let trust = ["--trust", release.public_key.as_str()];

    // shoal.exe seeds, the Linux build downloads.
    let (windows_seed, seed_addr) = scene.spawn_listening(
        "windows-seed",
        wine.shoal()
            .arg("seed")
            .arg(windows_path(&release.torrent))
            .args(["--data", &windows_path(&release.seed_dir)])
            .args(["--listen", "127.0.0.1:0", "--json"])
            .args(trust),
    );
    let linux_out = release.out_dir("linux-get");
    let mut linux_get = scene.spawn(
        "linux-get",
        &mut release.get(&linux_out, &["--peer", &seed_addr.to_string()]),
    );
    let status = linux_get.wait_exit(deadline);
    assert!(status.success(), "the Linux get from shoal.exe: {status}");
    assert_same_content(&release.original(), &linux_out.join(&release.name));
    drop(windows_seed);

    // The Linux build seeds, shoal.exe downloads.
    let (_linux_seed, seed_addr) = scene.spawn_listening("linux-seed", &mut release.seed(&[]));
    let windows_out = release.out_dir("windows-get");
    let mut windows_get = scene.spawn(
        "windows-get",
        wine.shoal()
            .arg("get")
            .arg(windows_path(&release.torrent))
            .args(["--out", &windows_path(&windows_out)])
            .args([
                "--peer",
                &seed_addr.to_string(),
                "--listen",
                "127.0.0.1:0",
                "--json",
            ])
            .args(trust),
    );
    let status = windows_get.wait_exit(deadline);
    assert!(
        status.success(),
        "shoal.exe get from the Linux seed: {status}"
    );
    assert_same_content(&release.original(), &windows_out.join(&release.name));
}

#[test]
fn the_agent_keeps_its_config_in_appdata_and_its_state_in_localappdata() {
    let scene = Scene::new();
    let wine = Wine::boot(&scene);
    let profile = wine.profile();
    // %APPDATA%\shoal\config\config.toml: the agent reads it unasked, as
    // the API address it listens on shows.
    let config_dir = profile.join("AppData/Roaming/shoal/config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let api_port = free_port();
    let downloads = scene.dir("downloads");
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "api = \"127.0.0.1:{api_port}\"\nlisten = \"127.0.0.1:0\"\n\
             download_dir = '{}'\n",
            windows_path(&downloads)
        ),
    )
    .unwrap();

    let mut agent = scene.spawn("windows-agent", wine.shoal().arg("agent"));
    let listening = agent.next_line(Instant::now() + Duration::from_secs(60), |line| {
        line.strip_prefix("agent listening on http://")
            .map(str::to_owned)
    });
    assert_eq!(
        listening,
        format!("127.0.0.1:{api_port}"),
        "the config was not read"
    );

    // %LOCALAPPDATA%\shoal\data holds the state and the API token, each
    // readable by the user alone.
    let state = profile.join("AppData/Local/shoal/data");
    let token_file = state.join("api-token");
    assert!(token_file.is_file(), "no API token in {}", state.display());
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(token.trim().len(), 64, "token {token:?}");
    wine.assert_owner_only(&state);
    wine.assert_owner_only(&token_file);

    // `shoal.exe agent ui` finds the same folder and token by itself.
    let ui = ok(wine.shoal().args(["agent", "ui"]), &wine);
    let link = stdout(&ui);
    assert!(
        link.contains(&format!("127.0.0.1:{api_port}")) && link.contains(token.trim()),
        "agent ui printed {link:?}"
    );
    let (status, body) = testkit::agent::http(
        listening.parse().unwrap(),
        "GET",
        "/v1/releases",
        &listening,
        Some(token.trim()),
        None,
    );
    assert_eq!(status, 200, "the agent's API under Wine: {body}");
}

/// A v2 torrent (fake hashes: it is refused before any hash matters)
/// whose file tree holds one file, `name`, in folder `folder`.
fn v2_torrent_with_file(folder: &str, name: &str) -> Vec<u8> {
    let leaf = Bencode::dict([(
        "",
        Bencode::dict([
            ("length", Bencode::int(5)),
            ("pieces root", Bencode::bytes(vec![3u8; 32])),
        ]),
    )]);
    let info = Bencode::dict([
        ("name", Bencode::string("release")),
        ("meta version", Bencode::int(2)),
        ("piece length", Bencode::int(16 * 1024)),
        (
            "file tree",
            Bencode::dict([(folder, Bencode::dict([(name, leaf)]))]),
        ),
    ]);
    Bencode::dict([("announce", Bencode::string(NO_TRACKER)), ("info", info)]).encode()
}

#[test]
fn names_windows_refuses_are_refused_before_anything_is_written() {
    let scene = Scene::new();
    let wine = Wine::boot(&scene);
    for name in ["CON", "aux.txt", "name.", "lpt1.log", "trailing "] {
        let case = scene.dir(&format!("case-{}", name.trim().replace('.', "_")));
        let out = case.join("out");
        std::fs::create_dir(&out).unwrap();
        let torrent = case.join("hostile.torrent");
        std::fs::write(&torrent, v2_torrent_with_file("docs", name)).unwrap();

        let output = wine.output(
            wine.shoal()
                .arg("get")
                .arg(windows_path(&torrent))
                .args(["--out", &windows_path(&out), "--allow-unsigned"])
                .args(["--listen", "127.0.0.1:0"]),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{name:?}: shoal.exe get succeeded"
        );
        assert!(
            stderr.contains("unsafe file name") && stderr.contains(&format!("\"{name}\"")),
            "{name:?}: the error does not name the entry:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name:?}: {stderr}");
        let created: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert!(created.is_empty(), "{name:?}: shoal.exe wrote {created:?}");
        let beside: Vec<_> = std::fs::read_dir(&case)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            beside.len(),
            2,
            "{name:?}: files appeared beside the output: {beside:?}"
        );
    }
}
