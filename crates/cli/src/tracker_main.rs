//! The `shoal-tracker` command: parses arguments into [`TrackerSettings`],
//! sets up logging, and runs the tracker library until Ctrl-C or SIGTERM.
//! Subcommands leave room for `publisher add` and friends.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use tracker::{Tracker, TrackerSettings};

/// shoal's control plane: a BitTorrent HTTP tracker (announce and scrape).
#[derive(Debug, Parser)]
#[command(name = "shoal-tracker", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve announce and scrape over HTTP until interrupted.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address and port to listen on; use 0.0.0.0:6969 or [::]:6969 to
    /// accept peers from other machines.
    #[arg(long, default_value = "127.0.0.1:6969")]
    listen: SocketAddr,
    /// Seconds peers wait between announces; peers silent for two intervals
    /// plus 5 minutes are forgotten.
    #[arg(long, value_name = "SECS", default_value_t = 1800,
          value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
}

impl ServeArgs {
    fn settings(&self) -> TrackerSettings {
        TrackerSettings {
            listen: self.listen,
            ..TrackerSettings::default()
        }
        .with_announce_interval(self.interval)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(args.settings()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shoal-tracker: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: TrackerSettings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let bound = Tracker::new(settings).bind().await?;
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
        let Command::Serve(args) = cli.command;
        let settings = args.settings();
        assert_eq!(settings.listen, "0.0.0.0:7000".parse().expect("address"));
        assert_eq!(settings.announce_interval_secs, 120);
        assert_eq!(settings.peer_expiry_secs, 540);
        assert!(settings.validate().is_ok());
        assert!(Cli::try_parse_from(["shoal-tracker", "serve", "--interval", "0"]).is_err());
    }
}
