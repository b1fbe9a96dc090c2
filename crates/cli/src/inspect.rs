//! `shoal inspect`: what a torrent holds, and whether its signature holds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use meta::{SignatureStatus, Torrent};
use serde_json::json;

use units::format_bytes;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The torrent file.
    torrent: PathBuf,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Exit non-zero unless the signature is valid (and, with --trust, made
    /// by one of those keys).
    #[arg(long)]
    verify: bool,
    /// A publisher public key (64 hex digits) to accept; repeat for more.
    #[arg(long, value_name = "HEX", value_parser = crate::keyfile::parse_public_key)]
    trust: Vec<[u8; 32]>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let torrent = meta::read_torrent_file(&args.torrent)?;
    if args.json {
        let mut report = report_json(&torrent);
        if !args.trust.is_empty() {
            report["trusted"] = torrent.signature.is_trusted_by(&args.trust).into();
        }
        crate::report::print_json(&report);
    } else {
        print_text(&torrent, &args.trust);
    }
    if args.verify {
        let verdict = match &torrent.signature {
            SignatureStatus::Absent => Some("the torrent is not signed".to_owned()),
            SignatureStatus::Invalid { reason, .. } => {
                Some(format!("the signature is invalid: {reason}"))
            }
            SignatureStatus::Valid { publisher, .. }
                if !args.trust.is_empty() && !args.trust.contains(publisher) =>
            {
                Some(format!(
                    "signed by {}, which is not among the --trust keys",
                    hex::encode(publisher)
                ))
            }
            SignatureStatus::Valid { .. } => None,
        };
        if let Some(problem) = verdict {
            eprintln!(
                "shoal: {}: verification failed: {problem}",
                args.torrent.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON form of a torrent, shared with `publish --json`.
pub fn report_json(torrent: &Torrent) -> serde_json::Value {
    let files: Vec<_> = torrent
        .data_files()
        .map(|f| json!({"path": f.path.to_string(), "size": f.length}))
        .collect();
    let manifest = torrent.signature.manifest();
    json!({
        "name": torrent.name,
        "meta_version": torrent.version().as_str(),
        "info_hash_v1": torrent.info_hashes.v1.map(hex::encode),
        "info_hash_v2": torrent.info_hashes.v2.map(hex::encode),
        "total_size": torrent.total_size(),
        "piece_size": torrent.piece_length,
        "piece_count": torrent.piece_count(),
        "files": files,
        "trackers": torrent.tracker_urls(),
        "web_seeds": torrent.web_seeds,
        "creation_date": torrent.creation_date,
        "created_by": torrent.created_by,
        "comment": torrent.comment,
        "publisher": torrent.signature.publisher().map(hex::encode),
        "signature": torrent.signature.as_str(),
        "signature_problem": match &torrent.signature {
            SignatureStatus::Invalid { reason, .. } => Some(reason.as_str()),
            _ => None,
        },
        "version": manifest.map(|m| m.version.as_str()),
        "origins": manifest.map(|m| m.origins.clone()),
        "max_origin_copies": manifest
            .and_then(|m| m.max_origin_millicopies)
            .map(|milli| f64::from(milli) / 1000.0),
    })
}

fn print_text(torrent: &Torrent, trust: &[[u8; 32]]) {
    println!("name          {}", torrent.name);
    println!("format        {}", torrent.version().as_str());
    if let Some(v1) = torrent.info_hashes.v1 {
        println!("info-hash v1  {}", hex::encode(v1));
    }
    if let Some(v2) = torrent.info_hashes.v2 {
        println!("info-hash v2  {}", hex::encode(v2));
    }
    println!(
        "size          {} ({} bytes) in {} pieces of {}",
        format_bytes(torrent.total_size()),
        torrent.total_size(),
        torrent.piece_count(),
        format_bytes(torrent.piece_length)
    );
    for url in torrent.tracker_urls() {
        println!("tracker       {url}");
    }
    for url in &torrent.web_seeds {
        println!("web seed      {url}");
    }
    let signature = match &torrent.signature {
        SignatureStatus::Absent => "absent (unsigned)".to_owned(),
        SignatureStatus::Valid {
            publisher,
            manifest,
        } => {
            let trusted = match trust {
                [] => "",
                keys if keys.contains(publisher) => ", trusted",
                _ => ", NOT among the trusted keys",
            };
            format!(
                "valid{trusted}: publisher {}, version {:?}, origins [{}]",
                hex::encode(publisher),
                manifest.version,
                manifest.origins.join(", ")
            )
        }
        SignatureStatus::Invalid { reason, .. } => format!("INVALID: {reason}"),
    };
    println!("signature     {signature}");
    let count = torrent.data_files().count();
    println!("files         {count}");
    for file in torrent.data_files().take(50) {
        println!("  {:>12}  {}", file.length, file.path);
    }
    if count > 50 {
        println!("  … and {} more (see --json)", count - 50);
    }
}
