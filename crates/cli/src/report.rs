//! How a running download or seed shows itself: a progress bar on a
//! terminal, a line every few seconds elsewhere, or JSON lines for scripts.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use engine::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use meta::Torrent;
use serde_json::json;

use units::format_bytes;

#[derive(Debug)]
pub enum Reporter {
    Json,
    Bar(ProgressBar),
    /// Not a terminal: a plain line now and then on stderr.
    Lines {
        last: Option<Instant>,
    },
}

/// Plain-line reporting period when stderr is not a terminal.
const LINE_PERIOD: Duration = Duration::from_secs(5);

pub(crate) fn progress_json(event: &str, p: &Progress) -> serde_json::Value {
    json!({
        "event": event,
        "verified_bytes": p.verified_bytes,
        "total_bytes": p.total_bytes,
        "bytes_from_peers": p.bytes_from_peers,
        "bytes_from_origin": p.bytes_from_origin,
        "uploaded": p.uploaded,
        "download_rate": p.download_rate,
        "upload_rate": p.upload_rate,
        "peers": p.peers,
        "pieces_verified": p.pieces_verified,
        "piece_count": p.piece_count,
        "seconds": p.seconds,
    })
}

impl Reporter {
    pub fn new(json: bool, total: u64) -> Reporter {
        if json {
            Reporter::Json
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{spinner} {bar:30} {bytes}/{total_bytes} {msg} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            Reporter::Bar(bar)
        } else {
            Reporter::Lines { last: None }
        }
    }

    pub fn started(&self, role: &str, listen: SocketAddr, torrent: &Torrent) {
        match self {
            Reporter::Json => print_json(&json!({
                "event": "started",
                "role": role,
                "listen": listen.to_string(),
                "name": torrent.name,
                "info_hash_v1": torrent.info_hashes.v1.map(hex::encode),
                "info_hash_v2": torrent.info_hashes.v2.map(hex::encode),
                "total_size": torrent.total_size(),
                "piece_count": torrent.piece_count(),
            })),
            _ => eprintln!(
                "{role} {} ({}), listening on {listen}",
                torrent.name,
                format_bytes(torrent.total_size())
            ),
        }
    }

    pub fn checking(&self, checked: u64) {
        if let Reporter::Bar(bar) = self {
            bar.set_message("checking");
            bar.set_position(checked);
        }
    }

    /// A callback for checking existing data, which runs on other threads:
    /// it moves the bar by the bytes checked.
    pub fn checker(&self) -> impl Fn(u64) + Send + Sync + 'static {
        let bar = match self {
            Reporter::Bar(bar) => Some(bar.clone()),
            _ => None,
        };
        if let Some(bar) = &bar {
            bar.set_message("checking");
        }
        move |bytes| {
            if let Some(bar) = &bar {
                bar.inc(bytes);
            }
        }
    }

    pub fn progress(&mut self, p: &Progress) {
        let summary = format!(
            "↓ {}/s ↑ {}/s, {} peers, {} from peers, {} uploaded",
            format_bytes(p.download_rate),
            format_bytes(p.upload_rate),
            p.peers,
            format_bytes(p.bytes_from_peers),
            format_bytes(p.uploaded),
        );
        match self {
            Reporter::Json => print_json(&progress_json("progress", p)),
            Reporter::Bar(bar) => {
                bar.set_position(p.verified_bytes);
                bar.set_message(summary);
            }
            Reporter::Lines { last } => {
                if last.is_none_or(|t| t.elapsed() >= LINE_PERIOD) {
                    *last = Some(Instant::now());
                    let percent = 100.0 * p.verified_bytes as f64 / p.total_bytes.max(1) as f64;
                    eprintln!("{percent:5.1}% {summary}");
                }
            }
        }
    }

    pub fn complete(&self, path: &Path, p: &Progress) {
        match self {
            Reporter::Json => {
                let mut value = progress_json("complete", p);
                value["path"] = path.display().to_string().into();
                print_json(&value);
            }
            _ => {
                if let Reporter::Bar(bar) = self {
                    bar.finish_and_clear();
                }
                let rate = p.total_bytes as f64 / p.seconds.max(1e-3);
                eprintln!(
                    "Complete: {} ({} in {:.1} s, {}/s; {} from peers, {} from the origin)",
                    path.display(),
                    format_bytes(p.total_bytes),
                    p.seconds,
                    format_bytes(rate as u64),
                    format_bytes(p.bytes_from_peers),
                    format_bytes(p.bytes_from_origin),
                );
            }
        }
    }

    pub fn warning(&self, message: &str) {
        match self {
            Reporter::Json => print_json(&json!({"event": "warning", "message": message})),
            Reporter::Bar(bar) => bar.suspend(|| eprintln!("shoal: warning: {message}")),
            Reporter::Lines { .. } => eprintln!("shoal: warning: {message}"),
        }
    }

    pub fn stopped(&self, p: &Progress) {
        match self {
            Reporter::Json => print_json(&progress_json("stopped", p)),
            Reporter::Bar(bar) => bar.finish_and_clear(),
            Reporter::Lines { .. } => {}
        }
    }
}

/// Writes one JSON value as a line on stdout.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!("{value}");
}
