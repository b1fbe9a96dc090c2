//! `shoal agent install | uninstall | status` on Linux, with real systemd.
//!
//! Every test points HOME, XDG_CONFIG_HOME and XDG_RUNTIME_DIR at a
//! scratch folder and removes DBUS_SESSION_BUS_ADDRESS, so `systemctl
//! --user` can only ever reach the user manager the test itself started,
//! never the account's real one.
//!
//! The first test has no user manager at all: install must still write
//! and enable the unit and say how to start it, and `systemd-analyze
//! verify --user` must accept the unit (its ExecStart included: the
//! program lies in a folder with a space, and the state path holds a
//! space, `%` and `$`, which systemd would otherwise read as a separator,
//! a specifier and a variable).
//!
//! The second runs a real `systemd --user`. This machine's PID 1 is not
//! systemd, and `systemd --user` refuses to start unless the system "has
//! been booted with systemd" (it checks that `/run/systemd/system/`
//! exists). So the test starts it in a private mount namespace with a
//! tmpfs over `/run/systemd` holding that folder (nothing changes for the
//! rest of the machine), and first moves it into a cgroup of its own
//! (`shoal-svc-test-PID`, removed afterwards): a user manager takes the
//! cgroup it starts in as its own to manage, and started in the root one
//! it would move every process of the machine into its `init.scope`.
//! That needs root, as CI has; a user manager runs as any user on a
//! machine booted with systemd, but this test must work where PID 1 is
//! something else. It needs no D-Bus: `systemctl --user` talks to the
//! manager's private socket in XDG_RUNTIME_DIR.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::agent::http;
use testkit::process::{free_port, wait_until};
use testkit::temp::TempDir;
use testkit::{field, run, run_json};

const UNIT: &str = "shoal-agent.service";

/// A scratch account: home, config and runtime folders, and a copy of
/// `shoal` in a folder whose name has a space (the unit must quote it).
struct Account {
    _dir: TempDir,
    root: PathBuf,
    home: PathBuf,
    config: PathBuf,
    runtime: PathBuf,
    program: PathBuf,
}

impl Account {
    fn new() -> Account {
        let dir = TempDir::new();
        let root = dir.path().to_owned();
        let home = root.join("home");
        let config = root.join("xdg config");
        let runtime = root.join("run");
        let bin = root.join("bin dir");
        for folder in [&home, &config, &runtime, &bin] {
            std::fs::create_dir_all(folder).unwrap();
        }
        set_mode(&runtime, 0o700);
        let program = bin.join("shoal");
        std::fs::copy(testkit::bins::cargo_bin("shoal"), &program).unwrap();
        wait_until_executable(&program);
        Account {
            _dir: dir,
            root,
            home,
            config,
            runtime,
            program,
        }
    }

    fn unit_path(&self) -> PathBuf {
        self.config.join("systemd/user").join(UNIT)
    }

    fn wants_link(&self) -> PathBuf {
        self.config
            .join("systemd/user/default.target.wants")
            .join(UNIT)
    }

    /// `program` with this account's environment and nothing that could
    /// lead to the real account's user manager.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.config)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null());
        cmd
    }

    fn shoal(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(&self.program);
        cmd.args(args);
        cmd
    }

    fn systemctl(&self, args: &[&str]) -> Output {
        let mut cmd = self.command("systemctl");
        cmd.arg("--user").args(args);
        cmd.output()
            .expect("systemctl (package systemd) must be installed")
    }

    fn status(&self) -> serde_json::Value {
        run_json(&mut self.shoal(&["agent", "status", "--json"]))
    }

    /// Every file or link left under the account's folders whose name
    /// mentions shoal-agent.
    fn leftovers(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.home.clone(), self.config.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    stack.push(entry.path());
                } else if entry.file_name().to_string_lossy().contains("shoal-agent") {
                    found.push(entry.path());
                }
            }
        }
        found
    }
}

/// A child that another test thread forked while the copy was being
/// written holds the file open until it execs, and exec fails with "text
/// file busy" meanwhile; once one exec succeeds, no one holds it any more.
fn wait_until_executable(program: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Command::new(program).arg("--version").output() {
            Ok(out) if out.status.success() => return,
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {}
            other => panic!("{} --version: {other:?}", program.display()),
        }
        assert!(
            Instant::now() < deadline,
            "{} stays busy",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure: {}",
        stdout(output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn without_a_user_manager_install_writes_a_unit_systemd_verifies_and_uninstall_removes_it() {
    let account = Account::new();
    let state = account.root.join("state 50% $HOME");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("keep-me"), "the customer's").unwrap();
    let state_arg = state.to_str().unwrap();

    let out = run(&mut account.shoal(&["agent", "install", "--state", state_arg]));
    let said = stdout(&out);
    assert!(
        said.contains("no systemd user instance is reachable"),
        "{said}"
    );
    assert!(said.contains("loginctl enable-linger"), "{said}");
    let unit = std::fs::read_to_string(account.unit_path()).unwrap();
    let program = account.program.to_str().unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart=\"{program}\" \"agent\" \"--state\" \"{}\"",
            state_arg.replace('%', "%%").replace('$', "$$")
        )),
        "{unit}"
    );
    assert!(
        !account.home.join(".config").exists(),
        "XDG_CONFIG_HOME was not honoured"
    );
    // Enabled for login even with no manager running.
    assert!(std::fs::symlink_metadata(account.wants_link()).is_ok());

    let mut verify = account.command("systemd-analyze");
    verify.args(["verify", "--user"]).arg(account.unit_path());
    let verified = verify
        .output()
        .expect("systemd-analyze (package systemd) must be installed");
    assert!(
        verified.status.success() && verified.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    // The check is real: a unit naming a missing program fails it.
    let broken = account.root.join("broken.service");
    std::fs::write(&broken, unit.replace("bin dir", "no such dir")).unwrap();
    let mut verify = account.command("systemd-analyze");
    verify.args(["verify", "--user"]).arg(&broken);
    assert!(!verify.output().unwrap().status.success());

    let status = account.status();
    assert_eq!(field(&status, "installed").as_bool(), Some(true));
    assert_eq!(field(&status, "ours").as_bool(), Some(true));
    assert_eq!(field(&status, "enabled").as_bool(), Some(true));
    assert!(field(&status, "active").is_null());
    assert_eq!(
        field(&status, "location").as_str(),
        account.unit_path().to_str()
    );

    // Installing again updates in place: new flags, one unit.
    run(&mut account.shoal(&[
        "agent",
        "install",
        "--state",
        state_arg,
        "--api",
        "127.0.0.1:7001",
    ]));
    let unit = std::fs::read_to_string(account.unit_path()).unwrap();
    assert!(unit.contains("\"--api\" \"127.0.0.1:7001\""), "{unit}");

    let out = run(&mut account.shoal(&["agent", "uninstall"]));
    assert!(stdout(&out).contains("removed"), "{}", stdout(&out));
    assert_eq!(account.leftovers(), Vec::<PathBuf>::new());
    assert_eq!(
        std::fs::read_to_string(state.join("keep-me")).unwrap(),
        "the customer's"
    );
    let out = run(&mut account.shoal(&["agent", "uninstall"]));
    assert!(
        stdout(&out).contains("nothing to remove"),
        "{}",
        stdout(&out)
    );
    let status = account.status();
    assert_eq!(field(&status, "installed").as_bool(), Some(false));
    assert_eq!(field(&status, "enabled").as_bool(), Some(false));
}

#[test]
fn a_broken_config_is_refused_by_install_but_does_not_block_uninstall() {
    let account = Account::new();
    let config = account.root.join("config.toml");
    std::fs::write(&config, "api = \"127.0.0.1:6880\"\n").unwrap();
    run(&mut account.shoal(&["agent", "install", "--config", config.to_str().unwrap()]));
    std::fs::write(&config, "api = [broken\n").unwrap();
    let err = failure(
        &account
            .shoal(&["agent", "install", "--config", config.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert!(err.contains(config.to_str().unwrap()), "{err}");
    let status = account.status();
    assert_eq!(field(&status, "installed").as_bool(), Some(true));
    run(&mut account.shoal(&["agent", "uninstall", "--config", config.to_str().unwrap()]));
    assert_eq!(account.leftovers(), Vec::<PathBuf>::new());
    assert!(config.exists(), "uninstall removed the customer's config");
}

#[test]
fn a_unit_shoal_did_not_write_is_neither_overwritten_nor_removed() {
    let account = Account::new();
    let foreign = "[Service]\nExecStart=/usr/bin/true\n";
    std::fs::create_dir_all(account.unit_path().parent().unwrap()).unwrap();
    std::fs::write(account.unit_path(), foreign).unwrap();
    let path = account.unit_path().display().to_string();

    let err = failure(&account.shoal(&["agent", "install"]).output().unwrap());
    assert!(err.contains(&path) && err.contains("not made by"), "{err}");
    let err = failure(&account.shoal(&["agent", "uninstall"]).output().unwrap());
    assert!(err.contains(&path), "{err}");
    assert_eq!(
        std::fs::read_to_string(account.unit_path()).unwrap(),
        foreign
    );
    let status = account.status();
    assert_eq!(field(&status, "installed").as_bool(), Some(true));
    assert_eq!(field(&status, "ours").as_bool(), Some(false));
}

/// A `systemd --user` of the test's own (see the module comment).
struct UserManager {
    child: Child,
    cgroups: Vec<PathBuf>,
}

/// The cgroup hierarchies systemd tracks processes in on this machine:
/// the named v1 one and the unified one (hybrid), or the one v2 root.
fn systemd_hierarchies() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let hybrid: Vec<PathBuf> = ["systemd", "unified"]
        .iter()
        .map(|h| base.join(h))
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    if !hybrid.is_empty() {
        return hybrid;
    }
    assert!(
        base.join("cgroup.controllers").exists(),
        "no cgroup hierarchy for systemd under /sys/fs/cgroup"
    );
    vec![base.to_owned()]
}

const START_USER_MANAGER: &str = r#"
set -eu
for hierarchy in "$@"; do
  mkdir "$hierarchy/$SHOAL_CGROUP"
  echo $$ > "$hierarchy/$SHOAL_CGROUP/cgroup.procs"
done
exec unshare --mount --propagation private sh -c '
  set -eu
  if [ -d /run/systemd ]; then over=/run/systemd; else over=/run; fi
  mount -t tmpfs shoal-test "$over"
  mkdir -p /run/systemd/system
  exec systemd --user'
"#;

impl UserManager {
    fn start(account: &Account) -> UserManager {
        let name = format!("shoal-svc-test-{}", std::process::id());
        let hierarchies = systemd_hierarchies();
        let init_cgroups = std::fs::read_to_string("/proc/1/cgroup").unwrap();
        let log = std::fs::File::create(account.root.join("systemd.log")).unwrap();
        let child = account
            .command("sh")
            .arg("-c")
            .arg(START_USER_MANAGER)
            .arg("sh")
            .args(&hierarchies)
            .env("SHOAL_CGROUP", &name)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("sh");
        let mut manager = UserManager {
            child,
            cgroups: hierarchies.iter().map(|h| h.join(&name)).collect(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !account
            .systemctl(&["show", "--property=Version"])
            .status
            .success()
        {
            if let Ok(Some(status)) = manager.child.try_wait() {
                panic!(
                    "systemd --user exited ({status}): {}",
                    std::fs::read_to_string(account.root.join("systemd.log")).unwrap()
                );
            }
            assert!(Instant::now() < deadline, "systemd --user did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The manager kept to its own cgroup: the rest of the machine,
        // PID 1 included, is where it was.
        assert_eq!(
            std::fs::read_to_string("/proc/1/cgroup").unwrap(),
            init_cgroups,
            "systemd --user moved processes outside its own cgroup"
        );
        manager
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        // SIGTERM: the manager stops its units (the agent) and exits.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for cgroup in &self.cgroups {
            remove_cgroup(cgroup);
        }
    }
}

/// Kills whatever is left in `cgroup` and removes it, deepest first.
fn remove_cgroup(cgroup: &Path) {
    let Ok(entries) = std::fs::read_dir(cgroup) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&entry.path());
        }
    }
    for _ in 0..50 {
        let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        if std::fs::remove_dir(cgroup).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("could not remove the test's cgroup {}", cgroup.display());
}

fn main_pid(account: &Account) -> u32 {
    let out = account.systemctl(&["show", "--property=MainPID", "--value", UNIT]);
    stdout(&out).trim().parse().unwrap_or(0)
}

/// Whether the agent answers its API with the state folder's token.
fn agent_answers(api: SocketAddr, state: &Path) -> bool {
    let Ok(token) = std::fs::read_to_string(state.join("api-token")) else {
        return false;
    };
    if TcpStream::connect_timeout(&api, Duration::from_secs(1)).is_err() {
        return false;
    }
    let (status, body) = http(
        api,
        "GET",
        "/v1/releases",
        &api.to_string(),
        Some(token.trim()),
        None,
    );
    status == 200 && body.contains("releases")
}

#[test]
fn a_user_systemd_instance_starts_restarts_and_stops_the_installed_agent() {
    if !testkit::root::is_root() {
        testkit::root::not_root(
            "a_user_systemd_instance_starts_restarts_and_stops_the_installed_agent",
            "to give the test's systemd --user a cgroup and a mount namespace",
        );
        return;
    }
    let account = Account::new();
    let manager = UserManager::start(&account);
    let state = account.root.join("agent state");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let api_arg = api.to_string();

    let out = run(&mut account.shoal(&[
        "agent",
        "install",
        "--state",
        state.to_str().unwrap(),
        "--api",
        &api_arg,
        "--listen",
        "127.0.0.1:0",
    ]));
    assert!(stdout(&out).contains("started"), "{}", stdout(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_until(deadline, "the installed agent to answer", || {
        agent_answers(api, &state)
    });

    // systemd split ExecStart into the words install meant.
    let exec = stdout(&account.systemctl(&["show", "--property=ExecStart", UNIT]));
    let argv = format!(
        "argv[]={} agent --state {} --api {api_arg} --listen 127.0.0.1:0 ;",
        account.program.display(),
        state.display()
    );
    assert!(exec.contains(&argv), "{exec}");

    let status = account.status();
    assert_eq!(field(&status, "installed").as_bool(), Some(true));
    assert_eq!(field(&status, "enabled").as_bool(), Some(true));
    assert_eq!(field(&status, "active").as_bool(), Some(true));

    // A crash: systemd starts it again.
    let first = main_pid(&account);
    assert!(first > 0);
    run(Command::new("kill").args(["-KILL", &first.to_string()]));
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_until(deadline, "systemd to restart the killed agent", || {
        let now = main_pid(&account);
        now != 0 && now != first && agent_answers(api, &state)
    });

    // Installing again replaces the running agent with the new unit's.
    let before = main_pid(&account);
    run(&mut account.shoal(&[
        "agent",
        "install",
        "--state",
        state.to_str().unwrap(),
        "--api",
        &api_arg,
        "--listen",
        "127.0.0.1:0",
    ]));
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_until(deadline, "the reinstalled agent to answer", || {
        let now = main_pid(&account);
        now != 0 && now != before && agent_answers(api, &state)
    });

    // Uninstall stops it and leaves nothing of the service behind.
    let out = run(&mut account.shoal(&["agent", "uninstall"]));
    assert!(
        stdout(&out).contains("stopped and removed"),
        "{}",
        stdout(&out)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    wait_until(deadline, "the agent to stop", || {
        TcpStream::connect_timeout(&api, Duration::from_millis(500)).is_err()
    });
    assert_eq!(account.leftovers(), Vec::<PathBuf>::new());
    let loaded = stdout(&account.systemctl(&["show", "--property=LoadState", UNIT]));
    assert_eq!(loaded.trim(), "LoadState=not-found");
    let status = account.status();
    assert_eq!(field(&status, "installed").as_bool(), Some(false));
    assert_eq!(field(&status, "active").as_bool(), Some(false));
    assert!(
        state.join("api-token").exists(),
        "uninstall removed the agent's state"
    );
    drop(manager);
}
