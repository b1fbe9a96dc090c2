//! `shoal agent`: run the background daemon; `shoal agent ui`: print the
//! link that opens its web UI with the API token. Settings come from the
//! config file (the platform's usual place, or `--config`), then these
//! flags. The token is never printed by the daemon itself (it would end
//! up in service logs); only `agent ui`, asked by the customer, shows it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use agent::{AgentSettings, Daemon};
use anyhow::{Context, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// The config file (TOML). Default: config.toml in the platform's
    /// config folder for shoal, if it exists.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The agent's state folder (release list, API token).
    #[arg(long, value_name = "DIR", global = true)]
    state: Option<PathBuf>,
    /// Where the local API listens (default 127.0.0.1:6880).
    #[arg(long, value_name = "ADDR:PORT")]
    api: Option<SocketAddr>,
    /// Where peers connect (default 0.0.0.0:6881, or a free port if taken).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print the link that opens the agent's web UI, with the API token
    /// (read from the state folder: keep the link to yourself).
    Ui,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let settings = settings(&args)?;
    if let Some(Action::Ui) = args.action {
        println!("{}", agent::ui_link(&settings.state_dir, settings.api)?);
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let daemon = Daemon::start(settings).await?;
        // Scripts and tests wait for this line. The token itself is never
        // printed: this output often lands in a service's journal.
        println!("agent listening on http://{}", daemon.api_addr());
        eprintln!(
            "shoal: API token in {}; peers connect on {}; \
             `shoal agent ui` prints the web UI's link",
            daemon.token_path().display(),
            daemon.listen_addr()
        );
        daemon.serve(crate::transfer::stop_requested()).await;
        Ok(ExitCode::SUCCESS)
    })
}

fn settings(args: &Args) -> Result<AgentSettings> {
    let mut settings = match (&args.config, agent::default_config_path()) {
        (Some(path), _) => AgentSettings::load(path, true)?,
        (None, Some(path)) => AgentSettings::load(&path, false)?,
        (None, None) => AgentSettings::default(),
    };
    if let Some(state) = &args.state {
        settings.state_dir = state.clone();
    }
    if let Some(api) = args.api {
        settings.api = api;
    }
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    Ok(settings)
}
