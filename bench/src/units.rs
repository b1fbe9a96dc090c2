//! Byte counts and rates on the command line: the same binary suffixes as
//! shoal's own flags (`64M` = 64 MiB, `2M` = 2 MiB/s), so a figure typed for
//! shoal-bench means what it means for `shoal get --max-up`.

use anyhow::{bail, Context, Result};

/// Parses `1234`, `16k`, `64M`, `1G` (binary multiples; a trailing `B`,
/// `iB` or `/s` is accepted and ignored).
pub fn parse_bytes(text: &str) -> Result<u64> {
    let trimmed = text.trim().trim_end_matches("/s");
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, suffix) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("{text:?}: not a byte count (try 64M or 2M)"))?;
    let unit = suffix.trim().to_ascii_lowercase();
    let multiplier = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1u64,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => bail!("{text:?}: unknown unit {suffix:?} (use k, M or G)"),
    };
    let bytes = value * multiplier as f64;
    if !(1.0..=(u64::MAX as f64)).contains(&bytes) {
        bail!("{text:?}: must be at least one byte");
    }
    Ok(bytes as u64)
}

/// `67108864` -> `64 MiB`, for tables.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_suffixes() {
        assert_eq!(parse_bytes("64M").ok(), Some(64 << 20));
        assert_eq!(parse_bytes("2MiB/s").ok(), Some(2 << 20));
        assert_eq!(parse_bytes("16k").ok(), Some(16 << 10));
        assert_eq!(parse_bytes("1.5k").ok(), Some(1536));
        assert_eq!(parse_bytes("4096").ok(), Some(4096));
        assert!(parse_bytes("3x").is_err());
        assert!(parse_bytes("0").is_err());
        assert_eq!(human_bytes(64.0 * 1024.0 * 1024.0), "64 MiB");
    }
}
