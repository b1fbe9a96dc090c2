//! Why a storage operation failed. Almost always the customer's machine
//! (disk full, permissions, files moved or edited), so every message names
//! the file and says what to do about it.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("{path}: cannot {op}: {source}; check the disk and the folder, then try again")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error(
        "{path}: no space left on the disk; free some space, then run the download \
         again (verified pieces are kept)"
    )]
    DiskFull { path: PathBuf },
    #[error("{path}: permission denied; choose a folder you can write to or fix its permissions")]
    PermissionDenied { path: PathBuf },
    #[error(
        "{path} already exists; shoal never overwrites it: seed it instead, \
         or move it away and download again"
    )]
    AlreadyExists { path: PathBuf },
    #[error("{path} is missing; restore it or download the release again")]
    MissingFile { path: PathBuf },
    #[error(
        "{path} is {found} bytes, the release says {expected}; \
         restore the original file or download the release again"
    )]
    WrongSize {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(
        "{file} changed on disk and piece {piece} no longer matches the release; \
         it is no longer shared: restore the file or download the release again"
    )]
    PieceChanged { piece: u32, file: PathBuf },
    #[error(
        "request for {length} bytes at offset {offset} of piece {piece} is outside \
         the piece; the peer or the caller is wrong"
    )]
    BadBlock {
        piece: u32,
        offset: u32,
        length: u32,
    },
    #[error(
        "{path}: {missing} pieces are not verified yet; \
         finish the download before moving it into place"
    )]
    Incomplete { path: PathBuf, missing: u32 },
    #[error("{path}: is seeded from the customer's own files and is never written to")]
    ReadOnly { path: PathBuf },
}

/// Raw OS codes for "no space left", for the odd platform or filesystem
/// whose error does not map to `ErrorKind::StorageFull`.
#[cfg(unix)]
const DISK_FULL_CODES: &[i32] = &[28]; // ENOSPC
#[cfg(windows)]
const DISK_FULL_CODES: &[i32] = &[112, 39]; // ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL
#[cfg(not(any(unix, windows)))]
const DISK_FULL_CODES: &[i32] = &[];

impl StorageError {
    /// Sorts an I/O error by what the customer can do about it.
    pub(crate) fn io(path: &Path, op: &'static str, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                StorageError::DiskFull { path }
            }
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                StorageError::PermissionDenied { path }
            }
            _ if source
                .raw_os_error()
                .is_some_and(|code| DISK_FULL_CODES.contains(&code)) =>
            {
                StorageError::DiskFull { path }
            }
            _ => StorageError::Io { path, op, source },
        }
    }

    /// Like [`StorageError::io`], but "not found" means the file itself is
    /// gone rather than some folder on the way.
    pub(crate) fn io_missing(path: &Path, op: &'static str, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            StorageError::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            StorageError::io(path, op, source)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_sorted_by_cause() {
        let p = Path::new("/x/y.bin");
        let full = StorageError::io(p, "write", io::ErrorKind::StorageFull.into());
        assert!(matches!(full, StorageError::DiskFull { .. }), "{full:?}");
        #[cfg(unix)]
        assert!(matches!(
            StorageError::io(p, "write", io::Error::from_raw_os_error(28)),
            StorageError::DiskFull { .. }
        ));
        assert!(matches!(
            StorageError::io(p, "open", io::ErrorKind::PermissionDenied.into()),
            StorageError::PermissionDenied { .. }
        ));
        assert!(matches!(
            StorageError::io_missing(p, "open", io::ErrorKind::NotFound.into()),
            StorageError::MissingFile { .. }
        ));
        let other = StorageError::io(p, "read", io::ErrorKind::InvalidData.into());
        let message = other.to_string();
        assert!(
            message.contains("y.bin") && message.contains("cannot read"),
            "{message}"
        );
    }
}
