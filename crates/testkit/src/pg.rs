//! A real, throwaway PostgreSQL server for tests: `initdb` into a fresh
//! temporary folder, `pg_ctl start` listening on a Unix socket in that
//! folder only (no TCP, so no port can clash with anything), one database
//! per test.
//!
//! Needs the server binaries: Debian's `postgresql` package (found under
//! `/usr/lib/postgresql/<version>/bin`, highest version), or `initdb` and
//! `pg_ctl` on PATH. A missing server fails the test, it is never skipped.
//! PostgreSQL refuses to run as root, so under root (CI) the folder is
//! handed to the `postgres` system user that package creates and the
//! server binaries run through `runuser -u postgres --`.
//!
//! [`PgServer::shared`] keeps one server per test binary. Statics are
//! never dropped, so each server also gets a watchdog shell that stops it
//! and deletes its folder once the test process is gone, whether the run
//! passed, panicked or was interrupted. A folder whose server failed to
//! start is kept (a `keep` file in it says so), for its logs.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::os::unix::process::CommandExt;

/// Longest wait for any one step (initdb, start, stop).
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// Only names the socket file inside our private folder.
const PORT: u16 = 5432;

const USER: &str = "shoal";

/// Present in a server's folder when a step failed: keep the logs.
const KEEP: &str = "keep";

const INSTALL_HINT: &str = "install the `postgresql` package (Debian/Ubuntu: apt-get install -y postgresql) so the PostgreSQL store tests can start a server";

/// A running server and the folder holding its data, socket and logs.
#[derive(Debug)]
pub struct PgServer {
    root: PathBuf,
    bin: PathBuf,
    run_as_postgres: bool,
    databases: AtomicUsize,
}

impl PgServer {
    /// The server shared by every test in this binary, started on first use.
    pub fn shared() -> &'static PgServer {
        static SHARED: OnceLock<PgServer> = OnceLock::new();
        SHARED.get_or_init(PgServer::start)
    }

    /// Starts a new server; it stops when dropped.
    pub fn start() -> PgServer {
        let bin = server_binaries();
        let run_as_postgres = running_as_root();
        let root = fresh_folder(run_as_postgres);
        let server = PgServer {
            root,
            bin,
            run_as_postgres,
            databases: AtomicUsize::new(0),
        };
        if run_as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.root)
                .status()
                .unwrap_or_else(|e| panic!("cannot run chown: {e}"));
            assert!(
                status.success(),
                "chown postgres:postgres {} failed; running the tests as root needs the `postgres` system user: {INSTALL_HINT}",
                server.root.display()
            );
        }
        server.spawn_watchdog();

        let mut initdb = server.server_command("initdb");
        initdb
            .arg("-D")
            .arg(server.data_dir())
            .args(["-A", "trust", "-U", USER, "-E", "UTF8"])
            .args(["--no-locale", "--no-sync", "--no-instructions"]);
        run_bounded(&mut initdb, "initdb", &server.root.join("initdb.log"), None);

        // fsync and friends off: the data is thrown away, and a test
        // creating a database per case would otherwise wait on the disk.
        let options = format!(
            "-k {} -p {PORT} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            server.root.display()
        );
        let mut start = server.server_command("pg_ctl");
        start
            .arg("-D")
            .arg(server.data_dir())
            .arg("-l")
            .arg(server.server_log())
            .args(["-w", "-t", &STEP_LIMIT.as_secs().to_string()])
            .args(["-o", &options, "start"])
            // Its own process group: Ctrl-C on the test run leaves the
            // server to the watchdog instead of killing it half-way.
            .process_group(0);
        run_bounded(
            &mut start,
            "pg_ctl start",
            &server.root.join("pg_ctl-start.log"),
            Some(&server.server_log()),
        );
        server
    }

    /// Creates an empty database and returns its connection string.
    pub fn create_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("test_{n}");
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot connect to the test PostgreSQL server: {e}; see {}",
                    self.server_log().display()
                )
            });
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(&name)
    }

    /// A libpq-style connection string for `database` over the socket.
    pub fn url(&self, database: &str) -> String {
        format!(
            "host={} port={PORT} user={USER} dbname={database}",
            self.root.display()
        )
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn server_log(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// `initdb` or `pg_ctl`, run as the `postgres` user when we are root.
    fn server_command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.run_as_postgres {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "postgres", "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        // The server user may not be able to enter our working directory.
        command.current_dir(&self.root);
        command
    }

    /// A shell that outlives this process: once it is gone, stops the
    /// server and deletes the folder. The outer shell puts the loop in the
    /// background and exits, so the loop is nobody's child to wait for.
    fn spawn_watchdog(&self) {
        let stop = self.server_command("pg_ctl");
        let mut words: Vec<String> = vec![stop.get_program().to_string_lossy().into_owned()];
        words.extend(stop.get_args().map(|a| a.to_string_lossy().into_owned()));
        let script = r#"pid=$1; root=$2; shift 2
(
  while kill -0 "$pid" 2>/dev/null; do sleep 1; done
  "$@" >/dev/null 2>&1
  [ -e "$root/keep" ] || rm -rf "$root"
) &"#;
        let started = Command::new("sh")
            .args(["-c", script, "pg-watchdog"])
            .arg(std::process::id().to_string())
            .arg(&self.root)
            .args(&words)
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate"])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .status()
            .unwrap_or_else(|e| panic!("cannot start the PostgreSQL watchdog shell: {e}"));
        assert!(
            started.success(),
            "the PostgreSQL watchdog shell failed: {started}"
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = self.server_command("pg_ctl");
        stop.arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t"])
            .arg(STEP_LIMIT.as_secs().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
        if !self.root.join(KEEP).exists() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// The folder holding `initdb` and `pg_ctl`, or a panic saying what to
/// install.
fn server_binaries() -> PathBuf {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_both(dir))
        .unwrap_or_else(|| {
            panic!("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on PATH: {INSTALL_HINT}")
        })
}

fn running_as_root() -> bool {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `id -u`: {e}"));
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// A new folder for data, socket and logs. Under root it lives in /tmp,
/// which the `postgres` user can always enter (a root TMPDIR may not be).
/// A Unix socket path must stay under ~100 bytes, so the name is short.
fn fresh_folder(run_as_postgres: bool) -> PathBuf {
    let base = if run_as_postgres {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let root = base.join(format!("shoal-pg-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir_all(&root)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
    root
}

/// Runs `command` with its output in `output_log`, waiting at most
/// [`STEP_LIMIT`]; panics naming the logs (and quoting their ends) on
/// failure or timeout. `server_log` is where a server writes on its own.
fn run_bounded(command: &mut Command, what: &str, output_log: &Path, server_log: Option<&Path>) {
    let out = File::create(output_log)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", output_log.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot share {}: {e}", output_log.display()));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {what} ({:?}): {e}; {INSTALL_HINT}",
                command.get_program()
            )
        });
    let logs = || {
        let mut logs = format!("{}:\n{}", output_log.display(), tail(output_log));
        if let Some(server_log) = server_log {
            logs += &format!("\n{}:\n{}", server_log.display(), tail(server_log));
        }
        logs
    };
    let keep_logs = || {
        if let Some(folder) = output_log.parent() {
            let _ = File::create(folder.join(KEEP));
        }
    };
    let deadline = Instant::now() + STEP_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                keep_logs();
                panic!(
                    "{what} did not finish within {} s; see {}",
                    STEP_LIMIT.as_secs(),
                    logs()
                );
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    if !status.success() {
        keep_logs();
        panic!("{what} failed ({status}); see {}", logs());
    }
}

/// The last lines of a log, for panic messages.
fn tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
