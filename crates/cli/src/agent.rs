//! `shoal agent`: run the background daemon. Settings come from the config
//! file (the platform's usual place, or `--config`), then these flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use agent::{AgentSettings, Daemon};
use anyhow::{Context, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config file (TOML). Default: config.toml in the platform's
    /// config folder for shoal, if it exists.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The agent's state folder (release list, API token).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Where the local API listens (default 127.0.0.1:6880).
    #[arg(long, value_name = "ADDR:PORT")]
    api: Option<SocketAddr>,
    /// Where peers connect (default 0.0.0.0:6881, or a free port if taken).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let settings = settings(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let daemon = Daemon::start(settings).await?;
        // Scripts and tests wait for this line; the token path goes to
        // stderr so that it is not mixed with machine-read output.
        println!("agent listening on http://{}", daemon.api_addr());
        eprintln!(
            "shoal: API token in {}; peers connect on {}",
            daemon.token_path().display(),
            daemon.listen_addr()
        );
        eprintln!("web UI: {}", daemon.ui_url());
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
