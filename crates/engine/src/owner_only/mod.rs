//! Files and folders only their owner may open: the publisher's key, the
//! agent's API token, its state folder and the files in it. One function
//! per job, one implementation per platform:
//!
//! - Unix: mode 0600 for files, 0700 for folders.
//! - Windows: a protected DACL (not inherited from the parent folder) with
//!   one entry granting the current user (the process token's user SID)
//!   full access. A file in a shared folder, or in a folder an
//!   administrator opened up, would otherwise inherit that folder's ACL.
//!
//! New files get their protection when they are created, so there is no
//! moment when another account could open them.

use std::fs::File;
use std::io;
use std::path::Path;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as platform;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as platform;
#[cfg(not(any(unix, windows)))]
compile_error!("owner-only files need Unix permissions or Windows ACLs on this platform");

/// What to do when the file already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// Fail (`AlreadyExists`); a file or symlink planted there first is
    /// never opened.
    New,
    /// Empty it and make it owner-only before anything is written.
    Replace,
}

/// Creates the file `path` for writing, owner-only.
pub fn create_file(path: &Path, creation: Creation) -> io::Result<File> {
    match creation {
        Creation::New => platform::create_new(path),
        Creation::Replace => platform::replace(path),
    }
}

/// Makes an existing file or folder owner-only, e.g. one written by an
/// earlier version.
pub fn restrict(path: &Path) -> io::Result<()> {
    platform::restrict(path)
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_restricted_folders_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a").join("state");
        std::fs::create_dir_all(&state).unwrap();
        restrict(&state).unwrap();
        assert_eq!(mode(&state), 0o700);
        let key = state.join("key");
        create_file(&key, Creation::New).unwrap();
        assert_eq!(mode(&key), 0o600);
    }

    #[test]
    fn a_new_file_never_opens_one_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("token");
        std::fs::write(&planted, b"planted").unwrap();
        let error = create_file(&planted, Creation::New).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&planted).unwrap(), b"planted");
    }

    #[test]
    fn a_replaced_file_is_emptied_and_made_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, b"old secret").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut file = create_file(&key, Creation::Replace).unwrap();
        assert_eq!(mode(&key), 0o600);
        file.write_all(b"new").unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), b"new");
    }

    #[test]
    fn restricting_tightens_files_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("old-state");
        std::fs::create_dir(&folder).unwrap();
        let file = folder.join("releases.json");
        std::fs::write(&file, b"{}").unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict(&folder).unwrap();
        restrict(&file).unwrap();
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&file), 0o600);
    }
}
