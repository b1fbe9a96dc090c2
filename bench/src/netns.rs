//! The emulated network: one namespace per host, each joined to a bridge in
//! a hub namespace by a veth pair, with tc tbf caps on both directions.
//!
//! ```text
//!  sb-<pid>-peer3                      sb-<pid>-hub
//!  [eth0 10.77.1.4] ==== veth ==== [v-peer3]--+
//!   tbf: upload cap                tbf: download cap (egress to the host)
//!                                              br0 -- v-origin, v-tracker, ...
//! ```
//!
//! Addresses come from 10.77.0.0/16, used only inside these namespaces; the
//! machine's own interfaces and routes are never touched.

use std::net::Ipv4Addr;
use std::process::Command;

use crate::procs::run;
use anyhow::{bail, Context, Result};

use crate::cleanup;

/// Interface name of every host's end of its veth pair.
pub const HOST_DEV: &str = "eth0";

/// One emulated machine.
#[derive(Debug, Clone)]
pub struct Host {
    /// Role, e.g. `tracker`, `origin`, `peer7`.
    pub role: String,
    /// Namespace name, `sb-<pid>-<role>`.
    pub ns: String,
    pub ip: Ipv4Addr,
}

/// Link caps of one host, bytes per second.
#[derive(Debug, Clone, Copy)]
pub struct LinkCaps {
    pub up_bps: u64,
    pub down_bps: u64,
}

/// The namespaces of one shoal-bench process; deleted on drop.
#[derive(Debug)]
pub struct Network {
    hub: String,
    hosts: Vec<Host>,
}

/// Namespace prefix for this process: the pid tells a later run whether the
/// owner is still alive.
pub fn prefix() -> String {
    format!("sb-{}-", std::process::id())
}

fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

fn tc(args: &[&str]) -> Result<String> {
    run(Command::new("tc").args(args))
}

/// Deletes namespaces named `sb-<pid>-…` whose owning shoal-bench process is
/// gone (a run that crashed or was SIGKILLed). Live runs are left alone.
pub fn remove_stale_namespaces() -> Result<()> {
    for line in ip(&["netns", "list"])?.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("sb-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let owner_alive = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|comm| comm.trim() == "shoal-bench")
            .unwrap_or(false);
        if owner_alive {
            continue;
        }
        let leftovers = ip(&["netns", "pids", name]).unwrap_or_default();
        let leftovers: Vec<&str> = leftovers.split_whitespace().collect();
        if !leftovers.is_empty() {
            // Not ours to kill: another run started them. Say so instead.
            eprintln!(
                "shoal-bench: stale namespace {name} still has processes {leftovers:?}; deleting the namespace only"
            );
        }
        eprintln!("shoal-bench: removing stale namespace {name}");
        cleanup::delete_namespace(name);
    }
    Ok(())
}

/// tbf parameters for a cap of `rate_bps` bytes/s, as `tc` arguments.
///
/// burst: the bucket must hold at least one whole packet as the kernel hands
/// it over; veth does GSO, so "packets" reach 64 KiB. A smaller bucket makes
/// tbf split every super-packet, costing CPU. 20 ms worth of rate above
/// that keeps fast links from being timer-bound. A burst lets a host exceed
/// its cap for burst/rate seconds at most (≤ 32 ms at 2 MiB/s): nothing
/// over a transfer of tens of seconds.
///
/// latency 50 ms: how long a packet may wait in the queue before tbf drops
/// it, i.e. the buffer, as on a home router. Long enough that many TCP
/// flows sharing one uplink do not lose packets in lockstep, short enough
/// that the queue does not hide the cap from congestion control.
fn tbf_args(rate_bps: u64) -> Vec<String> {
    let burst = (rate_bps / 50).max(64 * 1024 + 1600);
    vec![
        "root".into(),
        "tbf".into(),
        "rate".into(),
        format!("{}bit", rate_bps * 8),
        "burst".into(),
        burst.to_string(),
        "latency".into(),
        "50ms".into(),
    ]
}

/// The kernel's ARP table is one table for all namespaces, and by default
/// it refuses new entries past 1024 (`gc_thresh3`): a crowd of 50 hosts
/// that all talk to each other needs about 50 × 50. Past the limit a host
/// cannot resolve its peers' addresses and every connection it opens times
/// out ("neighbor table overflow" in the kernel log), which at N = 50 cut
/// a third of the crowd off the swarm. The limits are raised as needed and
/// left raised: another run may be going on, and larger limits harm
/// nothing.
fn make_room_for_neighbours(hosts: usize) -> Result<()> {
    let needed = (hosts + 2) * (hosts + 2) * 2;
    for (name, want) in [
        ("gc_thresh1", needed / 4),
        ("gc_thresh2", needed / 2),
        ("gc_thresh3", needed),
    ] {
        let path = format!("/proc/sys/net/ipv4/neigh/default/{name}");
        let current: usize = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {path}"))?
            .trim()
            .parse()
            .with_context(|| format!("{path} is not a number"))?;
        if current < want {
            std::fs::write(&path, want.to_string())
                .with_context(|| format!("raising {path} to {want}"))?;
            eprintln!(
                "shoal-bench: raised {path} from {current} to {want} (ARP table for {hosts} hosts)"
            );
        }
    }
    Ok(())
}

impl Network {
    /// Creates the hub and one namespace per `(role, caps)`, in order; the
    /// first host gets 10.77.0.2, and so on.
    pub fn create(hosts: &[(String, LinkCaps)]) -> Result<Network> {
        make_room_for_neighbours(hosts.len())?;
        let prefix = prefix();
        let hub = format!("{prefix}hub");
        let mut network = Network {
            hub: hub.clone(),
            hosts: Vec::new(),
        };
        cleanup::add_namespace(&hub);
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (index, (role, caps)) in hosts.iter().enumerate() {
            let host = network.add_host(index, role, *caps)?;
            network.hosts.push(host);
        }
        Ok(network)
    }

    fn add_host(&mut self, index: usize, role: &str, caps: LinkCaps) -> Result<Host> {
        let ns = format!("{}{role}", prefix());
        // 10.77.0.2 … 10.77.0.254, 10.77.1.1 …: never .0 or .255.
        let n = index as u32 + 2;
        let ip_addr = Ipv4Addr::new(10, 77, (n / 254) as u8, (n % 254 + 1) as u8);
        let hub_dev = format!("v-{role}");
        if hub_dev.len() > 15 {
            bail!("role name {role:?} too long for an interface name");
        }
        cleanup::add_namespace(&ns);
        ip(&["netns", "add", &ns])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n", &self.hub, "link", "add", &hub_dev, "type", "veth", "peer", "name", HOST_DEV,
            "netns", &ns,
        ])?;
        ip(&[
            "-n", &self.hub, "link", "set", &hub_dev, "master", "br0", "up",
        ])?;
        let cidr = format!("{ip_addr}/16");
        ip(&["-n", &ns, "addr", "add", &cidr, "dev", HOST_DEV])?;
        ip(&["-n", &ns, "link", "set", HOST_DEV, "up"])?;
        let mut upload = vec!["-n", ns.as_str(), "qdisc", "add", "dev", HOST_DEV];
        let up = tbf_args(caps.up_bps);
        upload.extend(up.iter().map(String::as_str));
        tc(&upload)?;
        let mut download = vec!["-n", self.hub.as_str(), "qdisc", "add", "dev", &hub_dev];
        let down = tbf_args(caps.down_bps);
        download.extend(down.iter().map(String::as_str));
        tc(&download)?;
        Ok(Host {
            role: role.to_owned(),
            ns,
            ip: ip_addr,
        })
    }

    pub fn host(&self, role: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.role == role)
            .unwrap_or_else(|| panic!("no host {role} in the emulated network"))
    }

    /// Bytes `role` has sent on its link, headers included (the interface
    /// counter, read inside the host's namespace).
    pub fn tx_bytes(&self, role: &str) -> Result<u64> {
        let host = self.host(role);
        let path = format!("/sys/class/net/{HOST_DEV}/statistics/tx_bytes");
        let text = run(Command::new("ip").args(["netns", "exec", &host.ns, "cat", &path]))?;
        text.trim()
            .parse()
            .with_context(|| format!("{path} in {}: {text:?}", host.ns))
    }

    fn teardown(&mut self) {
        let namespaces = self
            .hosts
            .drain(..)
            .map(|h| h.ns)
            .chain(std::iter::once(std::mem::take(&mut self.hub)));
        for ns in namespaces.filter(|ns| !ns.is_empty()) {
            cleanup::delete_namespace(&ns);
            cleanup::remove_namespace(&ns);
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.teardown();
    }
}
