//! `shoal keygen`: a new publisher key pair.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use ed25519_dalek::SigningKey;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the secret key (created with owner-only permissions).
    #[arg(long, value_name = "KEYFILE")]
    out: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    crate::keyfile::write_new(&args.out, &key, args.force)?;
    let public = hex::encode(key.verifying_key().to_bytes());
    if args.json {
        crate::report::print_json(&serde_json::json!({
            "public_key": public,
            "key_file": args.out.display().to_string(),
        }));
    } else {
        println!("{public}");
        eprintln!(
            "Secret key written to {}. The line above is your public key: give it to customers and the tracker operator.",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
