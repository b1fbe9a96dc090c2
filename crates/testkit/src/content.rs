//! Comparing a download with its original, file by file, naming the first
//! difference instead of printing bytes.

use std::fs;
use std::path::{Path, PathBuf};

/// Every regular file under `root`, as paths relative to it, sorted; for
/// a file, one empty path (`root` itself).
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).expect("under root").to_owned());
            }
        }
    }
    let mut out = Vec::new();
    if root.is_dir() {
        walk(root, root, &mut out);
    } else {
        out.push(PathBuf::new());
    }
    out.sort();
    out
}

/// Whether every file of `expected` (a file or a folder) exists under
/// `actual` with the same bytes. Extra files in `actual` are allowed:
/// clients keep partial files and state of their own next to the data.
pub fn same_content(expected: &Path, actual: &Path) -> bool {
    files_under(expected).iter().all(|relative| {
        let (want, got) = (joined(expected, relative), joined(actual, relative));
        match (fs::read(&want), fs::read(&got)) {
            (Ok(want), Ok(got)) => want == got,
            _ => false,
        }
    })
}

/// Asserts that `actual` holds every file of `expected` byte for byte,
/// naming the first file that differs.
pub fn assert_same_content(expected: &Path, actual: &Path) {
    for relative in files_under(expected) {
        let (want, got) = (joined(expected, &relative), joined(actual, &relative));
        let want_bytes = fs::read(&want).unwrap_or_else(|e| panic!("read {}: {e}", want.display()));
        let got_bytes = fs::read(&got)
            .unwrap_or_else(|e| panic!("downloaded {} is missing: {e}", got.display()));
        assert_eq!(
            want_bytes.len(),
            got_bytes.len(),
            "size of {}",
            got.display()
        );
        if let Some(offset) = want_bytes.iter().zip(&got_bytes).position(|(a, b)| a != b) {
            panic!(
                "{} differs from {} at byte {offset}",
                got.display(),
                want.display()
            );
        }
    }
}

/// `root/relative`, or `root` itself for an empty `relative` (which
/// `Path::join` would turn into `root/`, a directory path).
fn joined(root: &Path, relative: &Path) -> PathBuf {
    if relative.as_os_str().is_empty() {
        root.to_owned()
    } else {
        root.join(relative)
    }
}
