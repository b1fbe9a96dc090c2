//! Everything the harness must undo, in one registry: the network namespaces
//! it created, the process groups it started and the CPU cgroups
//! (`--peer-cpu`) it made. Normal exits undo them
//! through `Drop` guards (`Network`, `Proc`); Ctrl-C and SIGTERM go through
//! the signal thread below, which kills the registered groups and deletes the
//! registered namespaces before exiting, because a signal skips `Drop`.
//! Only what this process registered is ever touched.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Debug, Default)]
struct Registry {
    namespaces: BTreeSet<String>,
    process_groups: BTreeSet<u32>,
    /// In creation order: a parent before its children.
    cgroups: Vec<PathBuf>,
    /// Scratch folder to delete on a signal (unless the user keeps it).
    scratch: Option<PathBuf>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    // A panic while holding the lock must not stop the cleanup after it.
    let mut guard = registry().lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

pub fn add_namespace(name: &str) {
    with_registry(|r| r.namespaces.insert(name.to_owned()));
}

pub fn remove_namespace(name: &str) {
    with_registry(|r| r.namespaces.remove(name));
}

pub fn set_scratch(dir: PathBuf) {
    with_registry(|r| r.scratch = Some(dir));
}

pub fn add_cgroup(path: PathBuf) {
    with_registry(|r| r.cgroups.push(path));
}

pub fn forget_cgroup(path: &std::path::Path) {
    with_registry(|r| r.cgroups.retain(|p| p != path));
}

pub fn add_process_group(pgid: u32) {
    with_registry(|r| r.process_groups.insert(pgid));
}

pub fn remove_process_group(pgid: u32) {
    with_registry(|r| r.process_groups.remove(&pgid));
}

/// Sends `signal` (e.g. "TERM", "KILL") to every process of group `pgid`.
/// Through kill(1) because the workspace forbids `unsafe` (libc::kill).
pub fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub fn delete_namespace(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "delete", name])
        .stderr(Stdio::null())
        .status();
}

/// Kills every registered process group and deletes every registered
/// namespace. Safe to call more than once.
pub fn undo_everything() {
    let (groups, namespaces, cgroups) = with_registry(|r| {
        (
            std::mem::take(&mut r.process_groups),
            std::mem::take(&mut r.namespaces),
            std::mem::take(&mut r.cgroups),
        )
    });
    for pgid in groups {
        signal_group(pgid, "KILL");
    }
    // A cgroup can go once the killed processes in it are gone: children
    // first, a few tries while the kernel reaps them.
    for cgroup in cgroups.iter().rev() {
        for _ in 0..50 {
            if std::fs::remove_dir(cgroup).is_ok() || !cgroup.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    for ns in namespaces {
        delete_namespace(&ns);
    }
}

/// Starts the thread that turns Ctrl-C / SIGTERM into a clean teardown.
pub fn install_signal_handler() -> anyhow::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("teardown-on-signal".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                eprintln!("shoal-bench: interrupted; removing namespaces and processes");
                undo_everything();
                if let Some(dir) = with_registry(|r| r.scratch.take()) {
                    let _ = std::fs::remove_dir_all(dir);
                }
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}
