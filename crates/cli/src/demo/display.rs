//! How the demo's crowd shows itself while it runs: one progress bar per
//! peer on a terminal, a summary line every few seconds elsewhere, or JSON
//! lines (one per event, with the peer's index) for scripts.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use engine::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;

use units::format_bytes;

/// Plain-line period when stderr is not a terminal.
const LINE_PERIOD: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub enum Display {
    Json,
    Bars {
        multi: MultiProgress,
        bars: Vec<ProgressBar>,
    },
    Lines {
        started: Instant,
        last: Instant,
        latest: Vec<Progress>,
    },
}

/// A peer's progress as a JSON event: `shoal get --json`'s, plus the
/// peer's number.
pub fn progress_json(event: &str, peer: usize, p: &Progress) -> serde_json::Value {
    let mut value = crate::report::progress_json(event, p);
    value["peer"] = peer.into();
    value
}

fn sources(p: &Progress) -> String {
    format!(
        "from peers {} / from origin {}",
        format_bytes(p.bytes_from_peers),
        format_bytes(p.bytes_from_origin),
    )
}

impl Display {
    pub fn new(json: bool, peers: usize, total: u64) -> Display {
        if json {
            return Display::Json;
        }
        if !std::io::stderr().is_terminal() {
            let now = Instant::now();
            return Display::Lines {
                started: now,
                last: now,
                latest: vec![Progress::default(); peers],
            };
        }
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template("{prefix:>7} {bar:20} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bars = (0..peers)
            .map(|i| {
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(style.clone());
                bar.set_prefix(format!("peer {i}"));
                bar.enable_steady_tick(Duration::from_millis(250));
                bar
            })
            .collect();
        Display::Bars { multi, bars }
    }

    pub fn progress(&mut self, peer: usize, p: &Progress) {
        match self {
            Display::Json => crate::report::print_json(&progress_json("progress", peer, p)),
            Display::Bars { bars, .. } => {
                bars[peer].set_position(p.verified_bytes);
                bars[peer].set_message(format!(
                    "{:>9}/s  {}",
                    format_bytes(p.download_rate),
                    sources(p)
                ));
            }
            Display::Lines {
                started,
                last,
                latest,
            } => {
                latest[peer] = *p;
                if last.elapsed() < LINE_PERIOD {
                    return;
                }
                *last = Instant::now();
                let total: u64 = latest.iter().map(|p| p.total_bytes).sum();
                let verified: u64 = latest.iter().map(|p| p.verified_bytes).sum();
                let done = latest
                    .iter()
                    .filter(|p| p.total_bytes > 0 && p.verified_bytes == p.total_bytes)
                    .count();
                eprintln!(
                    "{:5.1} s  {:5.1}% of the crowd's bytes, {done}/{} peers done; from peers {}, from origin {}",
                    started.elapsed().as_secs_f64(),
                    100.0 * verified as f64 / total.max(1) as f64,
                    latest.len(),
                    format_bytes(latest.iter().map(|p| p.bytes_from_peers).sum()),
                    format_bytes(latest.iter().map(|p| p.bytes_from_origin).sum()),
                );
            }
        }
    }

    pub fn complete(&mut self, peer: usize, p: &Progress) {
        match self {
            Display::Json => crate::report::print_json(&progress_json("complete", peer, p)),
            Display::Bars { bars, .. } => {
                bars[peer].set_position(p.total_bytes);
                bars[peer].set_message(format!("done in {:.1} s  {}", p.seconds, sources(p)));
            }
            Display::Lines { latest, .. } => {
                latest[peer] = *p;
                eprintln!(
                    "peer {peer} complete in {:.1} s: {} from peers, {} from the origin",
                    p.seconds,
                    format_bytes(p.bytes_from_peers),
                    format_bytes(p.bytes_from_origin),
                );
            }
        }
    }

    pub fn warning(&self, peer: usize, message: &str) {
        match self {
            Display::Json => crate::report::print_json(&json!({
                "event": "warning",
                "peer": peer,
                "message": message,
            })),
            Display::Bars { multi, .. } => {
                let _ = multi.println(format!("peer {peer}: warning: {message}"));
            }
            Display::Lines { .. } => eprintln!("peer {peer}: warning: {message}"),
        }
    }

    /// Leaves the bars as they are (finished) and stops redrawing them.
    pub fn finish(&self) {
        if let Display::Bars { bars, .. } = self {
            for bar in bars {
                bar.disable_steady_tick();
                bar.abandon();
            }
        }
    }
}
