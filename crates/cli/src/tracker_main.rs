//! The `shoal-tracker` command: parses arguments into [`TrackerSettings`],
//! sets up logging, and runs the tracker library until Ctrl-C or SIGTERM;
//! `publisher add|list` manage the registry in the same database.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tracker::{Tracker, TrackerSettings};

mod logging;

/// shoal's control plane: a BitTorrent HTTP tracker (announce and scrape).
#[derive(Debug, Parser)]
#[command(name = "shoal-tracker", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve announce, scrape, the publisher API, the dashboard and
    /// /metrics over HTTP until interrupted.
    Serve(ServeArgs),
    /// Manage the publishers whose signed releases this tracker admits.
    #[command(subcommand)]
    Publisher(PublisherCommand),
}

#[derive(Debug, Subcommand)]
enum PublisherCommand {
    /// Register a publisher and print its API token on stdout (shown once:
    /// only its hash is stored).
    Add {
        /// A unique name, shown on the dashboard.
        name: String,
        /// The publisher's ed25519 public key, 64 hex digits (`shoal keygen`
        /// prints it).
        #[arg(long, value_name = "HEX")]
        key: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List registered publishers.
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, Args)]
struct DbArg {
    /// The database: sqlite://PATH (default: tracker.db in the platform's
    /// data folder) or postgres://USER@HOST/DB to share one among instances.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
}

impl DbArg {
    fn url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.db {
            return Ok(url.clone());
        }
        let dir = default_data_dir()
            .context("no default data folder on this system; pass --db sqlite://PATH")?;
        Ok(format!("sqlite://{}", dir.join("tracker.db").display()))
    }

    fn open(&self) -> anyhow::Result<Box<dyn tracker::store::Store>> {
        let url = self.url()?;
        tracker::store::open(&url).with_context(|| format!("cannot use the database {url}"))
    }
}

/// Where the embedded database lives by default: the platform's per-user
/// data folder.
/// A count, limit or rate that must be at least 1 (zero would refuse
/// everything).
fn positive_u32() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..)
}

/// As [`positive_u32`], for 64-bit values.
fn positive_u64() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..)
}

fn default_data_dir() -> Option<std::path::PathBuf> {
    #[cfg(windows)]
    let base = std::env::var_os("LOCALAPPDATA").map(std::path::PathBuf::from);
    #[cfg(target_os = "macos")]
    let base = std::env::var_os("HOME")
        .map(|h| std::path::PathBuf::from(h).join("Library/Application Support"));
    #[cfg(all(unix, not(target_os = "macos")))]
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/share"))
        });
    #[cfg(not(any(windows, unix)))]
    let base: Option<std::path::PathBuf> = None;
    base.map(|b| b.join("shoal"))
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address and port to listen on; use 0.0.0.0:6969 or [::]:6969 to
    /// accept peers from other machines.
    #[arg(long, default_value = "127.0.0.1:6969")]
    listen: SocketAddr,
    /// Seconds peers wait between announces; peers silent for two intervals
    /// plus 5 minutes are forgotten.
    #[arg(long, value_name = "SECS", default_value_t = 1800, value_parser = positive_u64())]
    interval: u64,
    /// Seconds between accounting writes to the database; a crash loses at
    /// most this window of reports.
    #[arg(long, value_name = "SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    batch_secs: u64,
    #[command(flatten)]
    db: DbArg,
    /// Track every info-hash, without a database: no publishers, no
    /// accounting (a plain BitTorrent tracker, for tests and labs).
    #[arg(long, conflicts_with = "db")]
    open: bool,
    /// A reverse proxy (load balancer) in front of the tracker, by IP;
    /// repeat for several. Only from these is X-Forwarded-For believed
    /// (the client's address) and X-Forwarded-Proto (HTTPS). Default none.
    #[arg(long = "trusted-proxy", value_name = "IP")]
    trusted_proxies: Vec<IpAddr>,
    /// A file holding the operator's token for /metrics (sent as
    /// Authorization: Bearer TOKEN), 16 to 128 printable characters.
    /// Without it /metrics is off (404).
    #[arg(long, value_name = "PATH")]
    metrics_token_file: Option<PathBuf>,
    /// The address clients use, e.g. https://tracker.example.com; an
    /// https:// URL marks the dashboard cookie Secure.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Live peer ids one IP may hold in one swarm; more are refused.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = positive_u32())]
    max_sessions_per_ip: u32,
    /// Completions billed per client IP, release and UTC day.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = positive_u32())]
    completions_per_ip: u32,
    /// Bytes/s one session can move (up + down, default 10 Gbit/s);
    /// faster reported growth is flagged, never billed.
    #[arg(long, value_name = "BYTES_PER_SEC", default_value_t = 1_250_000_000,
          value_parser = positive_u64())]
    max_report_rate: u64,
    /// Days per-session totals and per-day peer lists are kept in the
    /// database after their last report.
    #[arg(long, value_name = "DAYS", default_value_t = 7, value_parser = positive_u32())]
    retention_days: u32,
    /// Include each peer's peer id in compact=0 answers (off by default: a
    /// peer id is what it takes to impersonate a session).
    #[arg(long)]
    share_peer_ids: bool,
}

impl ServeArgs {
    fn settings(&self) -> anyhow::Result<TrackerSettings> {
        let metrics_token = match &self.metrics_token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the metrics token file {}", path.display())
                })?;
                Some(text.trim().to_owned())
            }
            None => None,
        };
        let public_https = match &self.public_url {
            Some(url) if url.starts_with("https://") => true,
            Some(url) if url.starts_with("http://") => false,
            Some(url) => {
                anyhow::bail!("--public-url {url:?} must start with https:// or http://")
            }
            None => false,
        };
        Ok(TrackerSettings {
            listen: self.listen,
            batch_secs: self.batch_secs,
            trusted_proxies: self.trusted_proxies.clone(),
            metrics_token,
            public_https,
            max_sessions_per_ip: self.max_sessions_per_ip,
            max_completions_per_ip_per_day: self.completions_per_ip,
            max_report_rate: self.max_report_rate,
            accounting_retention_days: self.retention_days,
            share_peer_ids: self.share_peer_ids,
            ..TrackerSettings::default()
        }
        .with_announce_interval(self.interval))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(tracing::Level::INFO);
    let result = match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Publisher(PublisherCommand::Add { name, key, db }) => {
            add_publisher(&name, &key, &db)
        }
        Command::Publisher(PublisherCommand::List { db }) => list_publishers(&db),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shoal-tracker: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--key`: the publisher's public key, 64 hex digits naming an ed25519 point.
fn parse_publisher_key(text: &str) -> anyhow::Result<[u8; 32]> {
    Ok(text
        .parse::<meta::PublisherKey>()
        .context("--key must be the publisher's public key as 64 hex digits")?
        .to_bytes())
}

fn add_publisher(name: &str, key: &str, db: &DbArg) -> anyhow::Result<()> {
    let key = parse_publisher_key(key)?;
    if name.trim().is_empty() || name.len() > 200 {
        anyhow::bail!("the publisher name must be 1 to 200 characters");
    }
    let mut store = db.open()?;
    let token = tracker::new_token();
    store
        .add_publisher(name, &key, &tracker::token_hash(&token), unix_now())
        .with_context(|| format!("cannot add publisher {name:?}"))?;
    // The token alone on stdout, for scripts; the advice on stderr.
    println!("{token}");
    eprintln!(
        "publisher {name:?} added; give it this token (it is not stored and cannot be shown again)"
    );
    Ok(())
}

fn list_publishers(db: &DbArg) -> anyhow::Result<()> {
    let mut store = db.open()?;
    let publishers = store.publishers()?;
    if publishers.is_empty() {
        eprintln!("no publishers yet: add one with `shoal-tracker publisher add NAME --key HEX`");
    }
    for publisher in publishers {
        println!(
            "{}\t{}\t{}",
            publisher.id,
            publisher.name,
            hex::encode(publisher.key)
        );
    }
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let store = if args.open {
        None
    } else {
        Some(args.db.open()?)
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut tracker = Tracker::new(settings);
        if let Some(store) = store {
            tracing::info!(
                backend = store.backend(),
                "tracking registered releases only"
            );
            tracker = tracker.with_store(store);
        } else {
            tracing::info!("open tracker: every info-hash is tracked, nothing is accounted");
        }
        let bound = tracker.bind().await?;
        // Printed on stdout so scripts can read the port when `--listen` used port 0.
        println!("listening on http://{}/announce", bound.local_addr());
        tracing::info!(addr = %bound.local_addr(), "tracker started");
        bound.run(shutdown_signal()).await?;
        tracing::info!("tracker stopped");
        Ok::<(), anyhow::Error>(())
    })
}

/// Completes on Ctrl-C, or on SIGTERM where there is such a thing (the
/// signal service managers send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn argument_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn interval_moves_expiry_too() {
        let cli = Cli::try_parse_from([
            "shoal-tracker",
            "serve",
            "--listen",
            "0.0.0.0:7000",
            "--interval",
            "120",
        ])
        .expect("valid arguments");
        let Command::Serve(args) = cli.command else {
            panic!("parsed as serve");
        };
        let settings = args.settings().expect("valid settings");
        assert!(settings.trusted_proxies.is_empty());
        assert_eq!(settings.max_sessions_per_ip, 8);
        assert_eq!(settings.listen, "0.0.0.0:7000".parse().expect("address"));
        assert_eq!(settings.announce_interval_secs, 120);
        assert_eq!(settings.peer_expiry_secs, 540);
        assert!(settings.validate().is_ok());
        assert!(Cli::try_parse_from(["shoal-tracker", "serve", "--interval", "0"]).is_err());
    }

    /// Regression: `publisher add --key` took any 64 hex digits, so a key
    /// no signature could verify against was registered.
    #[test]
    fn a_publisher_key_must_be_an_ed25519_point() {
        let valid = "cd".repeat(32);
        assert_eq!(parse_publisher_key(&valid).expect("a point"), [0xcd; 32]);
        let error = parse_publisher_key(&"ab".repeat(32)).expect_err("no point");
        assert!(format!("{error:#}").contains("ed25519"), "{error:#}");
        assert!(parse_publisher_key("abc").is_err());
    }
}
