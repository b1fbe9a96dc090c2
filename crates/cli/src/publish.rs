//! `shoal publish`: hash a release, sign its manifest, write the torrent.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use engine::atomic_file::FileAccess;
use indicatif::{ProgressBar, ProgressStyle};
use meta::create::{self, CreateSettings};
use meta::publish::{create_signed, ReleaseInfo};

use units::{format_bytes, parse_bytes};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file or folder to publish.
    path: PathBuf,
    /// The publisher's secret key (from `shoal keygen`).
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Where to write the torrent.
    #[arg(long, value_name = "FILE.torrent")]
    out: PathBuf,
    /// Tracker announce URL; repeat for more (each becomes its own tier).
    #[arg(long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Web seed URL (BEP 19): the origin web server holding the release.
    #[arg(long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// Web origin allowed to hand this release to an agent, like
    /// https://downloads.example.com. Defaults to the web seeds' origins.
    #[arg(long = "origin", value_name = "https://SITE")]
    origins: Vec<String>,
    /// Release version, signed with the manifest.
    #[arg(long, default_value = "")]
    version: String,
    /// Piece size in bytes (power of two, 16k to 256M; k/M suffixes work).
    /// Default: chosen from the release size.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    piece_size: Option<u64>,
    /// The most the origin should send to one swarm, in copies of the
    /// release (a decimal, like 1.5), signed into the manifest. Peers keep
    /// to it while other peers can supply them; a peer that cannot get
    /// data any other way still finishes from the origin, after a wait.
    #[arg(long, value_name = "COPIES", value_parser = meta::signature::parse_origin_copies)]
    max_origin_copies: Option<u32>,
    /// Make a pure v2 torrent (no v1 part; v1-only clients cannot join).
    #[arg(long)]
    v2_only: bool,
    /// A comment stored in the torrent.
    #[arg(long)]
    comment: Option<String>,
    /// Register the release with this shoal-tracker (its base URL, like
    /// http://tracker.example.com:6969), so it tracks and accounts it.
    /// The publisher's API token (printed by `shoal-tracker publisher add`)
    /// comes from the environment variable SHOAL_TOKEN or this file.
    #[arg(long, value_name = "URL")]
    register: Option<String>,
    /// A file holding the publisher's API token, for --register.
    #[arg(long, value_name = "FILE", requires = "register")]
    token_file: Option<PathBuf>,
    /// Refused: a token on the command line is visible to every account
    /// on the machine (`ps`). Kept only to say so clearly.
    #[arg(long, hide = true)]
    token: Option<String>,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(size) = args.piece_size {
        if !size.is_power_of_two()
            || !(meta::MIN_V2_PIECE_LENGTH..=meta::MAX_PIECE_LENGTH).contains(&size)
        {
            bail!("--piece-size {size}: must be a power of two from 16k to 256M");
        }
    }
    if args.token.is_some() {
        bail!(
            "--token would show the publisher token to every account on this machine; \
             put it in the environment variable {} or in a file named by --token-file",
            crate::register::TOKEN_VARIABLE
        );
    }
    // Before hashing: a missing token should not cost the publisher a
    // whole pass over a multi-gigabyte release.
    let token = match &args.register {
        Some(_) => Some(crate::register::publisher_token(
            args.token_file.as_deref(),
        )?),
        None => None,
    };
    let key = crate::keyfile::read(&args.key)?;
    for url in &args.trackers {
        check_url(url, &["http", "https", "udp"], "--tracker")?;
    }
    for url in &args.web_seeds {
        check_url(url, &["http", "https"], "--web-seed")?;
    }
    let origins = if args.origins.is_empty() {
        args.web_seeds
            .iter()
            .filter_map(|url| web_origin(url).ok())
            .collect()
    } else {
        args.origins
            .iter()
            .map(|o| web_origin(o))
            .collect::<Result<Vec<_>>>()?
    };

    let started = Instant::now();
    let source = create::scan(&args.path)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let settings = CreateSettings {
        piece_length: args.piece_size,
        v2_only: args.v2_only,
        trackers: args.trackers.clone(),
        web_seeds: args.web_seeds.clone(),
        comment: args.comment.clone(),
        creation_date: Some(now),
        threads: 0,
    };
    let bar = progress_bar(source.total_size(), !args.json);
    let release = ReleaseInfo {
        version: args.version.clone(),
        created_unix: now,
        origins: origins.clone(),
        max_origin_millicopies: args.max_origin_copies,
    };
    let bytes = create_signed(&source, &settings, &|n| bar.inc(n), &release, &key)?;
    bar.finish_and_clear();
    write_atomically(&args.out, &bytes)?;
    let seconds = started.elapsed().as_secs_f64();

    // Read back what was written, so what we report is what the file says.
    let written = meta::Torrent::from_bytes(&bytes)
        .context("internal error: the new torrent does not parse")?;
    let registered = match (&args.register, &token) {
        (Some(tracker), Some(token)) => Some(crate::register::register(tracker, token, &bytes)?),
        _ => None,
    };
    if args.json {
        let mut report = crate::inspect::report_json(&written);
        report["torrent"] = args.out.display().to_string().into();
        report["seconds"] = seconds.into();
        if let Some(registered) = &registered {
            report["registered"] = serde_json::json!({
                "release": registered.release,
                "info_hash": registered.info_hash,
            });
        }
        crate::report::print_json(&report);
    } else {
        println!(
            "Published {} ({}, {} files, {} pieces of {}) in {seconds:.1} s",
            written.name,
            format_bytes(written.total_size()),
            written.data_files().count(),
            written.piece_count(),
            format_bytes(written.piece_length),
        );
        if let Some(v1) = written.info_hashes.v1 {
            println!("  info-hash v1  {}", hex::encode(v1));
        }
        if let Some(v2) = written.info_hashes.v2 {
            println!("  info-hash v2  {}", hex::encode(v2));
        }
        println!("  publisher     {}", meta::PublisherKey::from(&key));
        if !origins.is_empty() {
            println!("  origins       {}", origins.join(", "));
        }
        if let Some(milli) = args.max_origin_copies {
            println!(
                "  origin ceiling {} copies per swarm",
                f64::from(milli) / 1000.0
            );
        }
        println!("  torrent       {}", args.out.display());
        if let (Some(tracker), Some(registered)) = (&args.register, &registered) {
            println!(
                "  registered    with {tracker} as release {}",
                registered.release
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(total: u64, visible: bool) -> ProgressBar {
    if !visible || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "hashing {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn check_url(url: &str, schemes: &[&str], flag: &str) -> Result<()> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme {
        Some(s) if schemes.contains(&s.as_str()) => Ok(()),
        _ => bail!(
            "{flag} {url:?}: expected a URL starting with {}://",
            schemes.join("://, ")
        ),
    }
}

/// Reduces a URL to its web origin, `scheme://host[:port]`, as the agent
/// will compare it ([`meta::normalize_origin`]). Plain http is accepted
/// only for loopback hosts, where a publisher tests its page.
fn web_origin(url: &str) -> Result<String> {
    let expected = || anyhow::anyhow!("--origin {url:?}: expected https://SITE");
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| expected())?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(expected());
    }
    let origin = meta::normalize_origin(url).ok_or_else(expected)?;
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(origin),
        "http" if loopback => Ok(origin),
        _ => bail!("--origin {url:?}: origins must be https:// (plain http only for localhost)"),
    }
}

/// Writes the torrent atomically and durably (file and folder fsynced), so
/// a reader never sees half a torrent.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    path.file_name().context("--out needs a file name")?;
    engine::atomic_file::write_atomically(path, bytes, FileAccess::Default)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_reduced_to_scheme_and_authority() {
        assert_eq!(
            web_origin("https://Dl.Example.com/files/x.iso").unwrap(),
            "https://dl.example.com"
        );
        assert_eq!(
            web_origin("https://example.com:8443").unwrap(),
            "https://example.com:8443"
        );
        assert_eq!(
            web_origin("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(web_origin("http://example.com").is_err());
        assert!(web_origin("ftp://example.com").is_err());
        assert!(web_origin("https://user@example.com").is_err());
        assert!(web_origin("example.com").is_err());
    }
}
