//! Logging for both binaries: to stderr, filtered by `RUST_LOG` when set.
//!
//! `RUST_LOG` takes `target=level` pairs and a bare default level, comma
//! separated (`engine=debug,warn`). That is `tracing_subscriber`'s
//! `Targets` syntax; its full `EnvFilter` (span fields, regexes) would
//! pull a regex engine into a binary customers download.

use std::io::IsTerminal;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Starts logging at `default_level` unless `RUST_LOG` says otherwise. A
/// `RUST_LOG` that does not parse is reported once and ignored.
pub fn init(default_level: tracing::Level) {
    let mut unreadable = None;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec.parse::<Targets>().unwrap_or_else(|e| {
            unreadable = Some((spec, e));
            Targets::new().with_default(default_level)
        }),
        _ => Targets::new().with_default(default_level),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
    if let Some((spec, error)) = unreadable {
        tracing::warn!(
            "RUST_LOG={spec:?} is not `target=level,...` ({error}); using {default_level}"
        );
    }
}
