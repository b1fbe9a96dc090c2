//! Putting a build in place of the running one, and back.
//!
//! Every file here sits beside the agent's binary, in its folder, so each
//! rename is atomic: at any moment the binary's path holds either the old
//! build or the new one, whole. The previous build is kept beside it as
//! `NAME.previous` (replaced by the next update), so a customer can go
//! back by hand too. Only files the updater made are ever removed: the
//! staged copy, and on Windows a failed build moved aside.
//!
//! - Unix: the running binary is renamed to the backup (the process keeps
//!   running from its open image), the new one renamed into place, and
//!   the process `exec`s it with its own arguments: same PID, so the
//!   service manager (systemd, launchd) notices nothing.
//! - Windows: a running `.exe` may be renamed but not replaced, so it is
//!   renamed to the backup first, the new one moved into place, and the
//!   new one started with the same arguments while this process exits.

use std::path::{Path, PathBuf};

use super::error::{disk, UpdateError};

/// `DIR/NAME` → `DIR/NAME.SUFFIX` (before `.exe` on Windows).
fn beside(exe: &Path, suffix: &str) -> PathBuf {
    let stem = exe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "shoal".to_owned());
    let extension = exe
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    exe.with_file_name(format!("{stem}.{suffix}{extension}"))
}

/// Where the previous build is kept.
pub fn backup_path(exe: &Path) -> PathBuf {
    beside(exe, "previous")
}

/// Where a new build waits for its trial and swap.
pub fn staged_path(exe: &Path) -> PathBuf {
    beside(exe, "update")
}

/// Where Windows puts a failed build it could not remove while running.
pub fn failed_path(exe: &Path) -> PathBuf {
    beside(exe, "failed")
}

/// Fails unless the updater may write beside the agent's binary (a
/// binary installed for all accounts is the system's to update): checked
/// before a build is downloaded for nothing.
pub fn check_writable(exe: &Path) -> Result<(), UpdateError> {
    let probe = staged_path(exe);
    std::fs::write(&probe, b"").map_err(disk(&probe, "write beside the agent's binary at"))?;
    discard(&probe);
    Ok(())
}

/// Copies the downloaded build to `staged` (the download keeps being
/// shared from where it is) and makes it executable.
pub fn stage(downloaded: &Path, staged: &Path) -> Result<(), UpdateError> {
    let _ = std::fs::remove_file(staged);
    std::fs::copy(downloaded, staged).map_err(disk(staged, "copy the new build to"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(staged, std::fs::Permissions::from_mode(0o755))
            .map_err(disk(staged, "make executable"))?;
    }
    // Windows flushes only a file opened for writing.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(staged)
        .map_err(disk(staged, "open"))?;
    file.sync_all().map_err(disk(staged, "sync"))?;
    Ok(())
}

/// Removes a staged build (one that failed its trial); missing is fine.
pub fn discard(staged: &Path) {
    if let Err(e) = std::fs::remove_file(staged) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {e}", staged.display());
        }
    }
}

/// Puts `staged` in place of `exe`, keeping the running build as `backup`.
/// On failure `exe` is the old build again.
pub fn swap_in(exe: &Path, staged: &Path, backup: &Path) -> Result<(), UpdateError> {
    std::fs::rename(exe, backup).map_err(disk(exe, "move aside the running binary"))?;
    if let Err(e) = std::fs::rename(staged, exe) {
        if let Err(back) = std::fs::rename(backup, exe) {
            tracing::error!(
                "cannot put the running binary back from {} to {}: {back}",
                backup.display(),
                exe.display()
            );
        }
        return Err(disk(exe, "put the new build in place of")(e));
    }
    sync_folder(exe);
    Ok(())
}

/// Puts the previous build back in place of the (running) new one.
pub fn restore(exe: &Path, backup: &Path) -> Result<(), UpdateError> {
    if !backup.is_file() {
        return Err(UpdateError::Internal(format!(
            "the previous build {} is missing",
            backup.display()
        )));
    }
    // Windows cannot replace a running .exe, only move it aside.
    if cfg!(windows) {
        let failed = failed_path(exe);
        let _ = std::fs::remove_file(&failed);
        std::fs::rename(exe, &failed).map_err(disk(exe, "move aside the failed build"))?;
    }
    std::fs::rename(backup, exe).map_err(disk(exe, "restore the previous build to"))?;
    sync_folder(exe);
    Ok(())
}

/// Makes the renames durable (Unix; Windows has no folder fsync).
fn sync_folder(exe: &Path) {
    #[cfg(unix)]
    if let Some(dir) = exe.parent() {
        if let Ok(folder) = std::fs::File::open(dir) {
            let _ = folder.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = exe;
}

/// Runs the build at `exe` in place of this process, with this process's
/// arguments. Returns only when that failed.
#[cfg(unix)]
pub fn restart(exe: &Path) -> std::io::Error {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // Every socket and file Rust or tokio opened is close-on-exec, so the
    // new build can bind the same API port at once.
    std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .exec()
}

/// Windows: starts the build at `exe` with this process's arguments and
/// exits. Returns only when it could not be started.
#[cfg(windows)]
pub fn restart(exe: &Path) -> std::io::Error {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    match std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .spawn()
    {
        Ok(_) => std::process::exit(0),
        Err(e) => e,
    }
}

#[cfg(not(any(unix, windows)))]
pub fn restart(exe: &Path) -> std::io::Error {
    std::io::Error::other(format!(
        "cannot restart into {} on this platform",
        exe.display()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_keeps_the_old_build_beside_and_a_restore_brings_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("shoal");
        std::fs::write(&exe, b"old build").unwrap();
        let downloaded = dir.path().join("download");
        std::fs::write(&downloaded, b"new build").unwrap();
        let staged = staged_path(&exe);
        let backup = backup_path(&exe);
        assert_eq!(staged.file_name().unwrap(), "shoal.update");
        assert_eq!(backup.file_name().unwrap(), "shoal.previous");
        stage(&downloaded, &staged).unwrap();
        swap_in(&exe, &staged, &backup).unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"new build");
        assert_eq!(std::fs::read(&backup).unwrap(), b"old build");
        assert!(!staged.exists());
        assert!(downloaded.exists());
        restore(&exe, &backup).unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"old build");
        assert!(!backup.exists());
        // A failed second rename leaves the old build in place.
        let error = swap_in(&exe, &staged, &backup).unwrap_err();
        assert!(error.to_string().contains("new build in place"), "{error}");
        assert_eq!(std::fs::read(&exe).unwrap(), b"old build");
    }

    #[test]
    fn windows_names_keep_the_exe_extension() {
        let exe = Path::new("C:/Programs/shoal.exe");
        assert_eq!(
            backup_path(exe),
            Path::new("C:/Programs/shoal.previous.exe")
        );
    }
}
