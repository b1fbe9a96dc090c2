//! `shoal agent`: run the background daemon; `shoal agent ui`: print the
//! link that opens its web UI with the API token; `shoal agent install |
//! uninstall | status`: the daemon as a per-user service (`service/`).
//! Settings come from the
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
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    api: Option<SocketAddr>,
    /// Where peers connect (default 0.0.0.0:6881, or a free port if taken).
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    listen: Option<SocketAddr>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print the link that opens the agent's web UI, with the API token
    /// (read from the state folder: keep the link to yourself).
    Ui,
    /// Run the agent as a service of your user account: it starts at
    /// login and restarts if it fails (systemd user unit, launchd agent
    /// or logon task). The --config, --state, --api and --listen given
    /// here are what the service runs with. Installing again updates it.
    Install,
    /// Stop the service and remove what `install` made. Your config,
    /// state and downloads stay.
    Uninstall,
    /// Show whether the service is installed, enabled and running.
    Status {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> Result<ExitCode> {
    // Removing or inspecting the service must work even when the config
    // file is broken, so only the commands that run the agent read it.
    match args.action {
        Some(Action::Uninstall) => return crate::service::command::uninstall(),
        Some(Action::Status { json }) => return crate::service::command::status(json),
        _ => {}
    }
    let settings = settings(&args)?;
    match args.action {
        Some(Action::Ui) => {
            println!("{}", agent::ui_link(&settings.state_dir, settings.api)?);
            return Ok(ExitCode::SUCCESS);
        }
        // The config was read above: a broken one fails here, not at
        // every restart of the service.
        Some(Action::Install) => return crate::service::command::install(args.service_flags()?),
        Some(Action::Uninstall | Action::Status { .. }) | None => {}
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

impl Args {
    /// The flags a service must run the agent with: those given, with
    /// paths made absolute (a service does not start in this folder).
    pub fn service_flags(&self) -> Result<Vec<String>> {
        let mut flags = Vec::new();
        for (flag, path) in [("--config", &self.config), ("--state", &self.state)] {
            if let Some(path) = path {
                let absolute = std::path::absolute(path)
                    .with_context(|| format!("cannot make {} absolute", path.display()))?;
                let text = absolute.to_str().with_context(|| {
                    format!(
                        "{} is not valid Unicode; use another path",
                        absolute.display()
                    )
                })?;
                flags.extend([flag.to_owned(), text.to_owned()]);
            }
        }
        for (flag, addr) in [("--api", self.api), ("--listen", self.listen)] {
            if let Some(addr) = addr {
                flags.extend([flag.to_owned(), addr.to_string()]);
            }
        }
        Ok(flags)
    }
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
