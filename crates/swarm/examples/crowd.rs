//! A flash crowd of any size in the deterministic swarm simulation, with a
//! table of outcomes against the Kumar–Ross bound:
//!
//! ```sh
//! cargo run --release -p shoal-swarm --example crowd -- --peers 1000,10000 --seed 1
//! cargo run --release -p shoal-swarm --example crowd -- --peers 1000 --links mixed --origin seed
//! ```
//!
//! Flags: `--peers N[,N…]` (default 1000), `--seed S[,S…]` (default 1),
//! `--links uniform|mixed|both` (default uniform), `--origin web|seed`
//! (default web), `--tracker N|everyone`: addresses a tracker answer
//! holds (default 50; `everyone` is the full mesh of the small tests),
//! `--limit X`: stop after X bounds (default 4).

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::process::ExitCode;

use sim::crowd::{Crowd, CrowdReport, Links, Origin, TRACKER_PEERS};
use sim::Tracker;

struct Args {
    peers: Vec<usize>,
    seeds: Vec<u64>,
    links: Vec<Links>,
    origin: Origin,
    tracker: Tracker,
    limit: f64,
}

fn list<T: std::str::FromStr>(value: &str, flag: &str) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(|v| {
            v.parse()
                .map_err(|_| format!("{flag}: not a number: {v:?}"))
        })
        .collect()
}

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        peers: vec![1000],
        seeds: vec![1],
        links: vec![Links::Uniform],
        origin: Origin::Web,
        tracker: Tracker::Random(TRACKER_PEERS),
        limit: 4.0,
    };
    while let Some(flag) = raw.next() {
        let value = raw.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--peers" => args.peers = list(&value, "--peers")?,
            "--seed" => args.seeds = list(&value, "--seed")?,
            "--limit" => {
                args.limit = value
                    .parse()
                    .ok()
                    .filter(|l: &f64| l.is_finite() && *l > 0.0)
                    .ok_or("--limit: a positive number of bounds")?;
            }
            "--links" => {
                args.links = match value.as_str() {
                    "uniform" => vec![Links::Uniform],
                    "mixed" => vec![Links::Mixed],
                    "both" => vec![Links::Uniform, Links::Mixed],
                    _ => return Err("--links: uniform, mixed or both".into()),
                }
            }
            "--tracker" => {
                args.tracker = match value.as_str() {
                    "everyone" => Tracker::Everyone,
                    n => Tracker::Random(
                        n.parse()
                            .ok()
                            .filter(|&n| n > 0)
                            .ok_or("--tracker: a positive number of peers, or everyone")?,
                    ),
                }
            }
            "--origin" => {
                args.origin = match value.as_str() {
                    "web" => Origin::Web,
                    "seed" => Origin::Seed,
                    _ => return Err("--origin: web or seed".into()),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.peers.iter().any(|&p| p == 0 || p > 60_000) {
        return Err("--peers: between 1 and 60000 (the simulation's address plan)".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("crowd: {problem}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", CrowdReport::HEADER);
    for &links in &args.links {
        for &peers in &args.peers {
            for &seed in &args.seeds {
                let crowd = Crowd {
                    peers,
                    links,
                    origin: args.origin,
                    tracker: args.tracker,
                    seed,
                };
                println!("{}", crowd.run(args.limit).row());
            }
        }
    }
    ExitCode::SUCCESS
}
