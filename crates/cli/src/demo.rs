//! `shoal demo`: the whole publisher side on a sample release, in a
//! temporary folder: make a key, publish a folder, inspect and verify it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{ensure, Context, Result};
use meta::create::{self, CreateSettings};
use meta::{Manifest, SignatureBlock};

use crate::units::format_bytes;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the sample release in bytes (k/M/G suffixes work).
    #[arg(long, default_value = "64M", value_parser = crate::units::parse_bytes)]
    size: u64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let work = tempfile::Builder::new()
        .prefix("shoal-demo-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    let release = work.path().join("sample-release");
    write_sample_release(&release, args.size)?;
    println!(
        "1. Sample release: {} in {}",
        format_bytes(args.size),
        release.display()
    );

    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let public = key.verifying_key().to_bytes();
    println!("2. Publisher key:  {}", hex::encode(public));

    let started = std::time::Instant::now();
    let source = create::scan(&release)?;
    let settings = CreateSettings {
        trackers: vec!["http://127.0.0.1:6969/announce".into()],
        web_seeds: vec!["https://downloads.example.com/".into()],
        ..CreateSettings::default()
    };
    let torrent = create::create(&source, &settings, &|_| {})?;
    let manifest = Manifest {
        info_hash_v2: torrent.info_hash_v2(),
        name: torrent.name.clone(),
        version: "1.0.0".into(),
        created: 0,
        origins: vec!["https://downloads.example.com".into()],
    };
    let bytes = torrent.encode(Some(&SignatureBlock::sign(&manifest, &key)));
    let seconds = started.elapsed().as_secs_f64();
    let parsed = meta::Torrent::from_bytes(&bytes)?;
    println!(
        "3. Published:      hybrid torrent, {} pieces of {}, hashed at {:.0} MiB/s",
        parsed.piece_count(),
        format_bytes(parsed.piece_length),
        args.size as f64 / (1 << 20) as f64 / seconds.max(1e-6)
    );
    println!(
        "   info-hash v1    {}",
        parsed.info_hashes.v1.map(hex::encode).unwrap_or_default()
    );
    println!(
        "   info-hash v2    {}",
        parsed.info_hashes.v2.map(hex::encode).unwrap_or_default()
    );
    ensure!(
        parsed.signature.is_trusted_by(&[public]),
        "the demo's own signature did not verify"
    );
    println!("4. Signature:      valid, made by the key from step 2");

    let mut tampered = bytes.clone();
    // Flip one bit of the first v1 piece hash, inside the signed `info`.
    let at = find(&tampered, b"6:pieces").context("no piece hashes in the demo torrent")?;
    let colon = at + 8 + find(&tampered[at + 8..], b":").context("malformed demo torrent")?;
    tampered[colon + 1] ^= 1;
    let verdict = meta::Torrent::from_bytes(&tampered).map(|t| t.signature.as_str().to_owned());
    println!(
        "5. One byte of `info` changed: {}",
        verdict.unwrap_or_else(|e| format!("refused ({e})"))
    );
    println!("Done. The publisher side works; `shoal publish --help` shows how to make your own.");
    Ok(ExitCode::SUCCESS)
}

fn write_sample_release(root: &Path, size: u64) -> Result<()> {
    let files = [
        ("setup.bin", size / 2),
        ("data/part-1.bin", size / 4),
        ("data/part-2.bin", size - size / 2 - size / 4),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for (name, length) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(root))?;
        let mut data = Vec::with_capacity(length as usize);
        while (data.len() as u64) < length {
            // xorshift: cheap, incompressible-looking sample bytes.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(&state.to_le_bytes());
        }
        data.truncate(length as usize);
        std::fs::write(&path, data).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
