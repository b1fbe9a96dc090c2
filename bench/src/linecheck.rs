//! A shoal-free baseline on the same emulated links: every peer sends F
//! bytes of zeros over one TCP connection to the next peer (a ring), all at
//! once, through a few lines of Python doing nothing but socket reads and
//! writes. Port 9000. Each transfer should take F / min(up, down); if the slowest one
//! takes much longer, the machine (bridge, tbf, process scheduling), not
//! the implementation under test, is the bottleneck at this N.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::netns::Network;
use crate::procs::{self, Proc};
use crate::report::Scenario;

const SCRIPT: &str = r#"
import socket, sys, threading, time
ip, target, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
server = socket.create_server((ip, 9000))
def send():
    for _ in range(400):
        try:
            out = socket.create_connection((target, 9000))
            break
        except OSError:
            time.sleep(0.05)
    chunk, left = bytes(1 << 16), size
    while left:
        left -= out.send(chunk[:min(left, len(chunk))])
    out.close()
sender = threading.Thread(target=send)
sender.start()
conn, _ = server.accept()
got = 0
while True:
    data = conn.recv(1 << 16)
    if not data:
        break
    got += len(data)
print(f"received {got}", flush=True)
sender.join()  # exiting earlier would cut the next peer's transfer short
"#;

#[derive(Debug, Serialize)]
pub struct LineCheck {
    pub peers: usize,
    pub size_bytes: u64,
    /// F / min(peer up, peer down): what each transfer takes at line rate.
    pub expected_s: f64,
    pub slowest_s: Option<f64>,
    pub mean_s: Option<f64>,
    pub slowest_over_expected: Option<f64>,
    pub completed: usize,
    pub machine_busy_fraction: f64,
}

pub fn run(net: &Network, scenario: &Scenario, python: &Path, work: &Path) -> Result<LineCheck> {
    let logs = work.join("line-check");
    std::fs::create_dir_all(&logs)?;
    let n = scenario.peers;
    let size = scenario.size_bytes;
    let expected_s = size as f64 / scenario.peer_up_bps.min(scenario.peer_down_bps) as f64;
    let cpu_before = procs::machine_cpu();
    let t0 = Instant::now();
    let mut procs = Vec::with_capacity(n);
    for i in 0..n {
        let host = net.host(&format!("peer{i}"));
        let next = net.host(&format!("peer{}", (i + 1) % n));
        let argv: Vec<OsString> = vec![
            python.into(),
            "-c".into(),
            SCRIPT.into(),
            host.ip.to_string().into(),
            next.ip.to_string().into(),
            size.to_string().into(),
        ];
        procs.push(Proc::spawn(&host.ns, &argv, &logs, &format!("peer{i}"))?);
    }
    let deadline = t0 + Duration::from_secs_f64(expected_s * 4.0 + 30.0);
    let mut times: Vec<Option<f64>> = vec![None; n];
    while times.iter().any(Option::is_none) && Instant::now() < deadline {
        for (proc, time) in procs
            .iter()
            .zip(times.iter_mut())
            .filter(|(_, t)| t.is_none())
        {
            if let Ok(Some((at, line))) = proc.try_line() {
                if line.starts_with(&format!("received {size}")) {
                    *time = Some(at.duration_since(t0).as_secs_f64());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu_after = procs::machine_cpu();
    for proc in &mut procs {
        proc.stop(Duration::from_secs(1));
    }
    let done: Vec<f64> = times.iter().flatten().copied().collect();
    let slowest_s = (done.len() == n).then(|| done.iter().cloned().fold(0.0, f64::max));
    let total = cpu_after.1.saturating_sub(cpu_before.1) as f64;
    Ok(LineCheck {
        peers: n,
        size_bytes: size,
        expected_s,
        slowest_s,
        mean_s: (!done.is_empty()).then(|| done.iter().sum::<f64>() / done.len() as f64),
        slowest_over_expected: slowest_s.map(|s| s / expected_s),
        completed: done.len(),
        machine_busy_fraction: if total > 0.0 {
            cpu_after.0.saturating_sub(cpu_before.0) as f64 / total
        } else {
            0.0
        },
    })
}
