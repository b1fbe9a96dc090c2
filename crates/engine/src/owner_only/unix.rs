//! Owner-only on Unix: permission bits.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

pub(super) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

pub(super) fn replace(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    // The mode above applies only when the file is created.
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

pub(super) fn restrict(path: &Path) -> io::Result<()> {
    let mode = if std::fs::metadata(path)?.is_dir() {
        DIR_MODE
    } else {
        FILE_MODE
    };
    std::fs::set_permissions(path, Permissions::from_mode(mode))
}
