//! A network namespace a test creates, reached from the test through a
//! veth pair at a TEST-NET-3 address (RFC 5737), and removed when dropped.
//!
//! For clients that refuse loopback peers: Transmission 3.00 drops every
//! 127.x or ::1 peer a tracker lists (`isMartianAddr`), so a Transmission
//! downloader only finds a seed that listens on another address. Processes
//! run inside with [`Namespace::wrap`] and talk to each other at
//! `inner_addr`, which the kernel routes through the namespace's own
//! loopback; the test reaches them there over the pair. Linux only, as
//! root.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::command::run;

static CREATED: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
pub struct Namespace {
    name: String,
    /// The namespace's address, reachable from the test.
    pub inner_addr: String,
}

impl Namespace {
    /// A fresh namespace with loopback up and the pair configured; `tag`
    /// names it after its test, for anyone listing namespaces meanwhile.
    pub fn create(tag: &str) -> Namespace {
        let id = std::process::id();
        let serial = CREATED.fetch_add(1, Ordering::Relaxed);
        let name = format!("shoal-{tag}-{id}-{serial}");
        let short = (id % 100_000) * 10 + serial % 10;
        let (outer, inner) = (format!("sho{short}"), format!("shi{short}"));
        // A /30 of TEST-NET-3 per namespace: 63 of them.
        let base = 4 * ((id.wrapping_mul(7).wrapping_add(serial)) % 63) + 4;
        let (host_addr, inner_addr) = (
            format!("203.0.113.{}", base + 1),
            format!("203.0.113.{}", base + 2),
        );
        let ip = |args: &[&str]| {
            run(Command::new("ip").args(args));
        };
        ip(&["netns", "add", &name]);
        let namespace = Namespace {
            name: name.clone(),
            inner_addr: inner_addr.clone(),
        };
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &inner, "netns", &name]);
        ip(&["addr", "add", &format!("{host_addr}/30"), "dev", &outer]);
        ip(&["link", "set", &outer, "up"]);
        let inner_cidr = format!("{inner_addr}/30");
        ip(&["-n", &name, "addr", "add", &inner_cidr, "dev", &inner]);
        ip(&["-n", &name, "link", "set", &inner, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
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
        // Deleting the namespace deletes the pair with it.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}
