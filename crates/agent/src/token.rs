//! The per-install API token: 256 random bits in a file in the state
//! folder that only the owner can read. Whoever can read it may change
//! what the agent does; a web page cannot, which is the point.

use std::io::Write;
use std::path::{Path, PathBuf};

use engine::owner_only::{self, Creation};

use crate::state::StateError;

const TOKEN_FILE: &str = "api-token";
/// 32 bytes as hex.
const TOKEN_HEX_LEN: usize = 64;

/// The token file's path in `state_dir`.
pub fn token_path(state_dir: &Path) -> PathBuf {
    state_dir.join(TOKEN_FILE)
}

/// Reads the existing token (for `shoal agent ui`).
pub fn load(state_dir: &Path) -> Result<String, StateError> {
    let path = token_path(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) if is_token(text.trim()) => Ok(text.trim().to_owned()),
        Ok(_) => Err(StateError::Damaged {
            path,
            reason: "not a 64-hex-digit token".into(),
        }),
        Err(source) => Err(StateError::Io {
            path,
            action: "read",
            source,
        }),
    }
}

/// Reads the token, creating it on first start.
pub fn load_or_create(state_dir: &Path) -> Result<String, StateError> {
    let path = token_path(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) if is_token(text.trim()) => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(StateError::Damaged {
                path,
                reason: "not a 64-hex-digit token".into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(StateError::Io {
                path,
                action: "read",
                source,
            })
        }
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    let io = |action| {
        let path = path.clone();
        move |source| StateError::Io {
            path,
            action,
            source,
        }
    };
    let mut file = create_private(&path).map_err(io("create"))?;
    file.write_all(token.as_bytes()).map_err(io("write"))?;
    file.sync_all().map_err(io("sync"))?;
    Ok(token)
}

fn is_token(text: &str) -> bool {
    text.len() == TOKEN_HEX_LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Creates a new file readable by its owner only, refusing a file (or
/// symlink) planted there first.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    owner_only::create_file(path, Creation::New)
}

/// Compares tokens in time independent of where they differ.
pub fn same_token(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert!(is_token(&first));
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(token_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
    }
}
