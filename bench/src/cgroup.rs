//! A CPU squeeze for the crowd (`--peer-cpu`): each peer runs in its own CPU
//! cgroup limited to a fraction of one core, as on an old PC or a machine
//! busy with other work. A crowd whose peers are all slow is where a
//! download's fallback to the origin could turn into a stampede.
//!
//! cgroup v2 (`cpu.max`) when `/sys/fs/cgroup/cgroup.controllers` exists,
//! else cgroup v1's cpu controller at `/sys/fs/cgroup/cpu`
//! (`cpu.cfs_quota_us` / `cpu.cfs_period_us`). Everything lives under one
//! folder `shoal-bench-<pid>` that this process creates; it is removed by
//! `Drop`, by the signal thread (registered in `cleanup`), and, when a run
//! was SIGKILLed, by the next run.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::cleanup;

/// The scheduler period: 100 ms, the kernel's default.
const PERIOD_US: u64 = 100_000;
const PREFIX: &str = "shoal-bench-";

/// Which cgroup interface the machine offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

fn detect() -> Result<(Version, PathBuf)> {
    let v2 = Path::new("/sys/fs/cgroup");
    if v2.join("cgroup.controllers").is_file() {
        return Ok((Version::V2, v2.to_path_buf()));
    }
    let v1 = Path::new("/sys/fs/cgroup/cpu");
    if v1.join("cpu.cfs_quota_us").is_file() {
        return Ok((Version::V1, v1.to_path_buf()));
    }
    bail!("--peer-cpu needs cgroup v2 (/sys/fs/cgroup/cgroup.controllers) or the cgroup v1 cpu controller (/sys/fs/cgroup/cpu)")
}

/// One cgroup per peer under a folder of this process; removed on drop.
#[derive(Debug)]
pub struct CpuLimits {
    root: PathBuf,
    groups: Vec<PathBuf>,
}

impl CpuLimits {
    /// `peers` cgroups, each limited to `cores` of a core (0.01 to 64).
    pub fn create(peers: usize, cores: f64) -> Result<CpuLimits> {
        if !(0.01..=64.0).contains(&cores) {
            bail!("--peer-cpu {cores}: give a fraction of a core from 0.01 to 64");
        }
        let (version, base) = detect()?;
        let root = base.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir(&root).with_context(|| format!("creating {}", root.display()))?;
        cleanup::add_cgroup(root.clone());
        let mut limits = CpuLimits {
            root,
            groups: Vec::new(),
        };
        if version == Version::V2 {
            write(&limits.root.join("cgroup.subtree_control"), "+cpu")?;
        }
        let quota_us = (cores * PERIOD_US as f64).round() as u64;
        for i in 0..peers {
            let group = limits.root.join(format!("peer{i}"));
            std::fs::create_dir(&group).with_context(|| format!("creating {}", group.display()))?;
            limits.groups.push(group.clone());
            cleanup::add_cgroup(group.clone());
            match version {
                Version::V2 => write(&group.join("cpu.max"), &format!("{quota_us} {PERIOD_US}"))?,
                Version::V1 => {
                    write(&group.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                    write(&group.join("cpu.cfs_quota_us"), &quota_us.to_string())?;
                }
            }
        }
        Ok(limits)
    }

    /// The `cgroup.procs` file of peer `i`'s cgroup.
    pub fn procs_file(&self, i: usize) -> Option<PathBuf> {
        self.groups.get(i).map(|g| g.join("cgroup.procs"))
    }
}

impl Drop for CpuLimits {
    fn drop(&mut self) {
        for group in self.groups.iter().rev() {
            remove(group);
        }
        remove(&self.root);
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

/// Removes one cgroup folder (possible once its processes are gone).
pub fn remove(group: &Path) {
    let _ = std::fs::remove_dir(group);
    cleanup::forget_cgroup(group);
}

/// Removes `shoal-bench-<pid>` cgroups whose `shoal-bench` is gone (a run
/// that was SIGKILLed). Their processes, if any remain, are not ours to
/// kill: such a group stays, with a message.
pub fn remove_stale() {
    let Ok((_, base)) = detect() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|comm| comm.trim() == "shoal-bench")
            .unwrap_or(false);
        if alive {
            continue;
        }
        let root = entry.path();
        if let Ok(groups) = std::fs::read_dir(&root) {
            for group in groups.flatten().filter(|g| g.path().is_dir()) {
                let _ = std::fs::remove_dir(group.path());
            }
        }
        if std::fs::remove_dir(&root).is_err() {
            eprintln!(
                "shoal-bench: stale cgroup {} still has processes; leaving it",
                root.display()
            );
        } else {
            eprintln!("shoal-bench: removed stale cgroup {}", root.display());
        }
    }
}
