//! The version a build reports, stamped into its bytes.
//!
//! A fixed-size `static` holds a marker followed by the version (NUL
//! padded). It is read through `black_box`, so the compiler cannot fold it
//! into the code: the bytes in the file are what the program reports.
//! `shoal stamp` overwrites them in a built binary, so the release step
//! names a build's version without recompiling it (and the project's
//! tests make two builds, N and N+1, of one compiled binary, which is
//! what lets them test an update with real programs). Stamp before any
//! code signing (macOS, Windows Authenticode), which covers these bytes.
//! An unstamped build reports the crate's version.

use std::path::Path;
use std::sync::OnceLock;

use super::version::Version;

/// The marker that opens the stamp; exactly one copy may be in a binary.
const MARKER: &[u8; MARKER_LEN] = b"\0shoal-version-stamp:v1\0";
const MARKER_LEN: usize = 24;
/// The whole stamp: the marker and room for the version text.
pub const STAMP_LEN: usize = 64;
/// Longest version text a stamp holds.
pub const MAX_STAMPED_VERSION: usize = STAMP_LEN - MARKER_LEN;

const fn initial_stamp() -> [u8; STAMP_LEN] {
    let mut stamp = [0u8; STAMP_LEN];
    let mut i = 0;
    while i < MARKER_LEN {
        stamp[i] = MARKER[i];
        i += 1;
    }
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    let mut j = 0;
    while j < version.len() && MARKER_LEN + j < STAMP_LEN {
        stamp[MARKER_LEN + j] = version[j];
        j += 1;
    }
    stamp
}

#[used]
static STAMP: [u8; STAMP_LEN] = initial_stamp();

/// The stamp as it stands in this program's file.
fn stamp_bytes() -> [u8; STAMP_LEN] {
    *std::hint::black_box(&STAMP)
}

/// The version this build reports (`shoal --version`, the API).
pub fn current_version() -> &'static str {
    static CURRENT: OnceLock<String> = OnceLock::new();
    CURRENT.get_or_init(|| {
        let stamp = stamp_bytes();
        let text = &stamp[MARKER_LEN..];
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        String::from_utf8_lossy(&text[..end]).into_owned()
    })
}

/// The target triple this build is for (`x86_64-unknown-linux-gnu`).
pub fn build_target() -> &'static str {
    env!("SHOAL_BUILD_TARGET")
}

/// Why a binary could not be stamped or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StampError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("{path} holds no shoal version stamp; is it a shoal binary of this series?")]
    NoStamp { path: String },
    #[error("{path} holds {count} version stamps; exactly one is expected")]
    Ambiguous { path: String, count: usize },
    #[error("{0}")]
    BadVersion(String),
}

/// Where the stamp is in `bytes`, which must hold exactly one.
fn find(bytes: &[u8], path: &Path) -> Result<usize, StampError> {
    // The marker as this program's own stamp holds it: read at run time,
    // so no second copy of it lands in the binary.
    let stamp = stamp_bytes();
    let marker = &stamp[..MARKER_LEN];
    let mut found = bytes
        .windows(MARKER_LEN)
        .enumerate()
        .filter(|(_, w)| *w == marker)
        .map(|(at, _)| at);
    let first = found.next().ok_or_else(|| StampError::NoStamp {
        path: path.display().to_string(),
    })?;
    let more = found.count();
    if more > 0 {
        return Err(StampError::Ambiguous {
            path: path.display().to_string(),
            count: more + 1,
        });
    }
    if bytes.len() < first + STAMP_LEN {
        return Err(StampError::NoStamp {
            path: path.display().to_string(),
        });
    }
    Ok(first)
}

/// The version stamped in the binary at `path`.
pub fn read_stamp(path: &Path) -> Result<Version, StampError> {
    let bytes = read(path)?;
    let at = find(&bytes, path)?;
    let text = &bytes[at + MARKER_LEN..at + STAMP_LEN];
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let text = std::str::from_utf8(&text[..end]).map_err(|_| {
        StampError::BadVersion(format!("{}: the stamp is not text", path.display()))
    })?;
    text.parse::<Version>().map_err(StampError::BadVersion)
}

/// Stamps `version` into the binary at `path`, in place.
pub fn write_stamp(path: &Path, version: &Version) -> Result<(), StampError> {
    let text = version.to_string();
    if text.len() > MAX_STAMPED_VERSION {
        return Err(StampError::BadVersion(format!(
            "version {text} is longer than {MAX_STAMPED_VERSION} bytes"
        )));
    }
    let mut bytes = read(path)?;
    let at = find(&bytes, path)?;
    let slot = &mut bytes[at + MARKER_LEN..at + STAMP_LEN];
    slot.fill(0);
    slot[..text.len()].copy_from_slice(text.as_bytes());
    // A new file renamed over the old, with its permissions (it is a
    // program, perhaps running: a running binary cannot be written).
    let io = |action: &'static str| {
        move |source| StampError::Io {
            path: path.display().to_string(),
            action,
            source,
        }
    };
    let permissions = std::fs::metadata(path).map_err(io("read"))?.permissions();
    let mut temp = path.as_os_str().to_owned();
    temp.push(".stamping");
    let temp = std::path::PathBuf::from(temp);
    std::fs::write(&temp, &bytes).map_err(io("write"))?;
    let renamed =
        std::fs::set_permissions(&temp, permissions).and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&temp);
        return Err(io("replace")(e));
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, StampError> {
    std::fs::read(path).map_err(|source| StampError::Io {
        path: path.display().to_string(),
        action: "read",
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_unstamped_build_reports_the_crate_version() {
        assert_eq!(current_version(), env!("CARGO_PKG_VERSION"));
        assert!(!build_target().is_empty());
    }

    #[test]
    fn a_stamp_is_found_once_rewritten_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        let mut bytes = b"header".to_vec();
        bytes.extend_from_slice(&initial_stamp());
        bytes.extend_from_slice(b"trailer");
        std::fs::write(&path, &bytes).unwrap();
        let version: Version = "7.8.9".parse().unwrap();
        write_stamp(&path, &version).unwrap();
        assert_eq!(read_stamp(&path).unwrap(), version);
        let written = std::fs::read(&path).unwrap();
        assert_eq!(written.len(), bytes.len());
        assert!(written.ends_with(b"trailer"));
        // Two stamps: which one the program reads is unknowable.
        let mut twice = bytes.clone();
        twice.extend_from_slice(&initial_stamp());
        std::fs::write(&path, &twice).unwrap();
        assert!(matches!(
            read_stamp(&path),
            Err(StampError::Ambiguous { count: 2, .. })
        ));
        std::fs::write(&path, b"no stamp here").unwrap();
        assert!(matches!(read_stamp(&path), Err(StampError::NoStamp { .. })));
    }
}
