//! Network namespaces a test creates, removed when dropped.
//!
//! [`Namespace::create`] makes one reached from the test through a veth
//! pair at a TEST-NET-3 address (RFC 5737). For clients that refuse
//! loopback peers: Transmission 3.00 drops every 127.x or ::1 peer a
//! tracker lists (`isMartianAddr`), so a Transmission downloader only
//! finds a seed that listens on another address. Processes run inside with
//! [`Namespace::wrap`] and talk to each other at `inner_addr`, which the
//! kernel routes through the namespace's own loopback; the test reaches
//! them there over the pair.
//!
//! [`Namespace::create_behind`] makes a second one joined only to the
//! first, by a veth pair capped in both directions (a TEST-NET-2 address):
//! a machine on a rate-limited link, so that what is measured across it is
//! the link and the far end, not two processes racing on one loopback.
//! Linux only, as root.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::command::run;

static CREATED: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
pub struct Namespace {
    name: String,
    /// The namespace's address: reachable from the test for one made by
    /// [`Namespace::create`], from its upstream for one made by
    /// [`Namespace::create_behind`].
    pub inner_addr: String,
}

/// Names and addresses for one new namespace and the veth pair that joins
/// it to its neighbour (the host or an upstream namespace).
struct Plan {
    name: String,
    /// The pair's end outside the new namespace, and its address.
    outer_dev: String,
    outer_addr: String,
    /// The pair's end inside, and its address.
    inner_dev: String,
    inner_addr: String,
}

impl Plan {
    /// A fresh name and a /30 of `net` (a /24 given as "a.b.c"): 63 of
    /// them, chosen by process and serial so concurrent tests rarely meet.
    fn new(tag: &str, net: &str) -> Plan {
        let id = std::process::id();
        let serial = CREATED.fetch_add(1, Ordering::Relaxed);
        let short = (id % 100_000) * 10 + serial % 10;
        let base = 4 * ((id.wrapping_mul(7).wrapping_add(serial)) % 63) + 4;
        Plan {
            name: format!("shoal-{tag}-{id}-{serial}"),
            outer_dev: format!("sho{short}"),
            outer_addr: format!("{net}.{}", base + 1),
            inner_dev: format!("shi{short}"),
            inner_addr: format!("{net}.{}", base + 2),
        }
    }
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// `ip` run inside namespace `ns` (`None`: the test's own).
fn ip_in(ns: Option<&str>, args: &[&str]) {
    match ns {
        Some(ns) => ip(&[&["-n", ns], args].concat()),
        None => ip(args),
    }
}

/// Caps what leaves `dev` (in namespace `ns`) at `rate_bps` bytes/s with
/// tbf, as `shoal-bench` shapes its links (bench/src/netns.rs): the bucket
/// holds a whole 64 KiB GSO super-packet or 20 ms at the rate, whichever
/// is more, and a packet waits at most 50 ms in the queue, as behind a
/// home router.
fn cap(ns: &str, dev: &str, rate_bps: u64) {
    let burst = (rate_bps / 50).max(64 * 1024 + 1600).to_string();
    let rate = format!("{}bit", rate_bps.saturating_mul(8));
    run(Command::new("tc").args([
        "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", &rate, "burst", &burst,
        "latency", "50ms",
    ]));
}

impl Namespace {
    /// A fresh namespace with loopback up and the pair to the test
    /// configured; `tag` names it after its test, for anyone listing
    /// namespaces meanwhile.
    pub fn create(tag: &str) -> Namespace {
        let plan = Plan::new(tag, "203.0.113");
        let namespace = Namespace::join(&plan, None);
        ip(&["link", "set", &plan.outer_dev, "up"]);
        namespace
    }

    /// A fresh namespace whose only link goes to `upstream`: a veth pair
    /// capped at `rate_bps` bytes/s in each direction (`None`: not capped,
    /// for measuring what the ends can do), and a default route
    /// over it, so processes inside reach everything `upstream` listens on
    /// (its `inner_addr` included) through the cap, and `upstream` reaches
    /// them at this namespace's `inner_addr`.
    pub fn create_behind(tag: &str, upstream: &Namespace, rate_bps: Option<u64>) -> Namespace {
        let plan = Plan::new(tag, "198.51.100");
        let namespace = Namespace::join(&plan, Some(&upstream.name));
        ip_in(
            Some(&upstream.name),
            &["link", "set", &plan.outer_dev, "up"],
        );
        if let Some(rate_bps) = rate_bps {
            cap(&upstream.name, &plan.outer_dev, rate_bps);
            cap(&namespace.name, &plan.inner_dev, rate_bps);
        }
        ip(&[
            "-n",
            &namespace.name,
            "route",
            "add",
            "default",
            "via",
            &plan.outer_addr,
        ]);
        namespace
    }

    /// Creates `plan`'s namespace, with loopback up and the pair from
    /// `neighbour` (`None`: the test's own namespace) addressed, the outer
    /// end still down.
    fn join(plan: &Plan, neighbour: Option<&str>) -> Namespace {
        ip(&["netns", "add", &plan.name]);
        // From here on, dropping it deletes the namespace and the pair.
        let namespace = Namespace {
            name: plan.name.clone(),
            inner_addr: plan.inner_addr.clone(),
        };
        ip_in(
            neighbour,
            &[
                "link",
                "add",
                &plan.outer_dev,
                "type",
                "veth",
                "peer",
                "name",
                &plan.inner_dev,
                "netns",
                &plan.name,
            ],
        );
        let outer_cidr = format!("{}/30", plan.outer_addr);
        ip_in(
            neighbour,
            &["addr", "add", &outer_cidr, "dev", &plan.outer_dev],
        );
        let inner_cidr = format!("{}/30", plan.inner_addr);
        let inside = Some(plan.name.as_str());
        ip_in(
            inside,
            &["addr", "add", &inner_cidr, "dev", &plan.inner_dev],
        );
        ip_in(inside, &["link", "set", &plan.inner_dev, "up"]);
        ip_in(inside, &["link", "set", "lo", "up"]);
        namespace
    }

    /// `cmd` run inside the namespace: same program, arguments,
    /// environment and folder.
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", &self.name])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes its pairs with it.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}
