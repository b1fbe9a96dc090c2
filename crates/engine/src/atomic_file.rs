//! Replacing a file so that a reader, or the next start after a crash or a
//! power cut, sees the old contents or the new ones, never half of either:
//! write a temporary file beside it, fsync it, rename it over the target,
//! then fsync the folder so the rename itself is on disk (POSIX needs that;
//! see `rename(2)` and `fsync(2)`). The resume state, the agent's state
//! files and `shoal publish --out` all save through [`write_atomically`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::owner_only::Creation;

/// Who may read the file written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    /// As the process's umask allows.
    Default,
    /// Its owner only (mode 0600 on Unix, a one-entry protected ACL on
    /// Windows; see `owner_only`): tokens, state naming releases.
    OwnerOnly,
}

/// A step of an atomic write that failed, and on which path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct AtomicWriteError {
    pub path: PathBuf,
    /// `create`, `write`, `sync`, `replace` or `sync folder`.
    pub action: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// Replaces `path` with `bytes`, durably and atomically.
pub fn write_atomically(
    path: &Path,
    bytes: &[u8],
    access: FileAccess,
) -> Result<(), AtomicWriteError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // Unique per write, so concurrent writes never share one temp file.
    let temp = temp_path(path, NEXT.fetch_add(1, Ordering::Relaxed));
    let failed = |path: &Path, action| {
        let path = path.to_path_buf();
        move |source| AtomicWriteError {
            path,
            action,
            source,
        }
    };
    let result = (|| {
        let mut file = create_new(&temp, access).map_err(failed(&temp, "create"))?;
        file.write_all(bytes).map_err(failed(&temp, "write"))?;
        file.sync_all().map_err(failed(&temp, "sync"))?;
        drop(file);
        std::fs::rename(&temp, path).map_err(failed(path, "replace"))?;
        crate::storage::sync_dir(dir).map_err(failed(dir, "sync folder"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// What follows a file's name in its temporary files' names.
pub(crate) const TEMP_MARKER: &str = ".tmp-";

/// `path` with a temporary suffix (`NAME.tmp-PID-N`), so a temp file a
/// killed process left behind can be recognised and removed.
pub(crate) fn temp_path(path: &Path, n: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!("{TEMP_MARKER}{}-{n}", std::process::id()));
    path.with_file_name(name)
}

/// Refuses a file or symlink planted at the temp path first. The rename
/// keeps the temp file's permissions (or ACL), so the target gets them.
fn create_new(path: &Path, access: FileAccess) -> std::io::Result<std::fs::File> {
    match access {
        FileAccess::Default => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path),
        FileAccess::OwnerOnly => crate::owner_only::create_file(path, Creation::New),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_and_no_temp_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"old").unwrap();
        write_atomically(&path, b"new", FileAccess::Default).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn an_owner_only_file_is_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        write_atomically(&path, b"secret", FileAccess::OwnerOnly).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_failed_write_names_the_step_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("file");
        let error = write_atomically(&path, b"x", FileAccess::Default).unwrap_err();
        assert_eq!(error.action, "create");
        assert!(error.to_string().contains("missing"), "{error}");
    }
}
