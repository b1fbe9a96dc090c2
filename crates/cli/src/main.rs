//! The `shoal` command: parses arguments, then hands off to one module per
//! subcommand. Library crates do the work; this crate talks to the user.

mod agent;
#[cfg(feature = "tracker")]
mod demo;
mod get;
mod inspect;
mod keyfile;
mod keygen;
mod logging;
mod publish;
mod register;
mod report;
mod seed;
mod service;
mod source;
mod transfer;
mod update_release;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Peer-assisted software delivery: publish releases as signed BitTorrent
/// v2/hybrid torrents and download them from the crowd and the origin at once.
#[derive(Debug, Parser)]
#[command(name = "shoal", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make a publisher key pair: writes the secret key, prints the public key.
    Keygen(keygen::Args),
    /// Make a signed torrent of a file or folder.
    Publish(publish::Args),
    /// Show what a torrent holds and check its signature.
    Inspect(inspect::Args),
    /// Download a release from its swarm (and keep sharing with --seed).
    Get(get::Args),
    /// Share a complete release that is already on disk.
    Seed(seed::Args),
    /// Stamp the version a built shoal binary reports (a release step).
    Stamp(update_release::StampArgs),
    /// Sign a stamped shoal build with the project key and list it in the
    /// update feed that agents check.
    PublishUpdate(update_release::PublishArgs),
    /// Watch an update just swapped in, and put the previous build back
    /// if the new one does not come up (started by the agent itself).
    #[command(hide = true)]
    UpdateGuard {
        #[arg(long, value_name = "DIR")]
        state: std::path::PathBuf,
    },
    /// Run the background agent: downloads and seeds releases, driven by a
    /// local HTTP API (`shoal agent ui` prints its web UI's link).
    Agent(agent::Args),
    /// Run a tracker, an origin server and a flash crowd of peers on this
    /// machine, and show what the origin was spared.
    #[cfg(feature = "tracker")]
    Demo(demo::Args),
    /// The customer's build has no tracker, so no demo: say so plainly
    /// rather than "unrecognized subcommand".
    #[cfg(not(feature = "tracker"))]
    #[command(hide = true)]
    Demo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ignored: Vec<String>,
    },
}

fn main() -> ExitCode {
    // The version is the one stamped in this binary (see `shoal stamp`).
    let matches = Cli::command()
        .version(::agent::update::current_version())
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    // Quiet unless RUST_LOG asks for more.
    logging::init(tracing::Level::WARN);
    let result = match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Get(args) => get::run(args),
        Command::Seed(args) => seed::run(args),
        Command::Stamp(args) => update_release::stamp(args),
        Command::PublishUpdate(args) => update_release::publish(args),
        Command::UpdateGuard { state } => {
            ::agent::update::guard(&state);
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(args) => agent::run(args),
        #[cfg(feature = "tracker")]
        Command::Demo(args) => demo::run(args),
        #[cfg(not(feature = "tracker"))]
        Command::Demo { .. } => Err(anyhow::anyhow!(
            "this shoal is the customer build, without the tracker the demo needs; \
             build shoal with its default features to run `shoal demo`"
        )),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("shoal: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn argument_definitions_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
