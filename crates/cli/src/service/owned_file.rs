//! The service files shoal writes, and the rule that keeps it from
//! clobbering anyone else's: a file is shoal's only if it is a plain file
//! (not a link) that carries [`MARKER`]; anything else at that path is
//! left alone and named in the error.

use std::io::{Read, Write};
use std::path::Path;

use super::{ServiceError, MARKER};

/// Service files are a few hundred bytes; reading more than this to look
/// for the marker would be reading something else.
const MAX_SERVICE_FILE_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Absent,
    Ours,
    Foreign,
}

pub fn inspect(path: &Path) -> Result<Existing, ServiceError> {
    let disk = |source| ServiceError::Disk {
        action: "read",
        path: path.to_owned(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(disk(e)),
        Ok(meta) if !meta.file_type().is_file() => return Ok(Existing::Foreign),
        Ok(_) => {}
    }
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_SERVICE_FILE_BYTES).read_to_end(&mut text))
        .map_err(disk)?;
    let marked = String::from_utf8_lossy(&text).contains(MARKER);
    Ok(if marked {
        Existing::Ours
    } else {
        Existing::Foreign
    })
}

/// Writes `text` at `path` (creating its folder), replacing a file only
/// if it is ours. The new file appears whole or not at all.
pub fn write(path: &Path, text: &str) -> Result<(), ServiceError> {
    if inspect(path)? == Existing::Foreign {
        return Err(not_ours(path));
    }
    let folder = path.parent().ok_or_else(|| {
        ServiceError::Bug(format!(
            "the service file path {} has no folder",
            path.display()
        ))
    })?;
    let disk = |action, source| ServiceError::Disk {
        action,
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(folder).map_err(|e| ServiceError::Disk {
        action: "create the folder of",
        path: path.to_owned(),
        source: e,
    })?;
    let mut temp = tempfile::NamedTempFile::new_in(folder).map_err(|e| disk("write", e))?;
    temp.write_all(text.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| disk("write", e))?;
    // Service managers read these files as the same user; 0644 as usual.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| disk("write", e))?;
    }
    temp.persist(path).map_err(|e| disk("write", e.error))?;
    // Checking what landed catches a logic slip here, not the customer's.
    if inspect(path)? != Existing::Ours {
        return Err(ServiceError::Bug(format!(
            "the service file {} lacks shoal's marker after writing it",
            path.display()
        )));
    }
    Ok(())
}

/// Removes the file at `path` if it is ours; `false` if there was none.
pub fn remove(path: &Path) -> Result<bool, ServiceError> {
    match inspect(path)? {
        Existing::Absent => Ok(false),
        Existing::Foreign => Err(not_ours(path)),
        Existing::Ours => match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(ServiceError::Disk {
                action: "remove",
                path: path.to_owned(),
                source,
            }),
        },
    }
}

pub fn not_ours(path: &Path) -> ServiceError {
    ServiceError::NotOurs {
        what: path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_the_marker_is_neither_overwritten_nor_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("shoal-agent.service");
        std::fs::write(&path, "[Service]\nExecStart=/bin/true\n").expect("write");
        assert!(matches!(
            write(&path, &format!("# {MARKER}\n")),
            Err(ServiceError::NotOurs { .. })
        ));
        assert!(matches!(remove(&path), Err(ServiceError::NotOurs { .. })));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "[Service]\nExecStart=/bin/true\n"
        );
    }

    #[test]
    fn ours_is_replaced_in_place_and_removed_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("shoal-agent.service");
        assert!(!remove(&path).expect("nothing to remove"));
        write(&path, &format!("# {MARKER}\nfirst\n")).expect("first write");
        write(&path, &format!("# {MARKER}\nsecond\n")).expect("second write");
        assert!(std::fs::read_to_string(&path)
            .expect("read")
            .ends_with("second\n"));
        assert!(remove(&path).expect("remove"));
        assert!(!path.exists());
        assert!(!remove(&path).expect("nothing left"));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_at_the_path_is_foreign_even_if_it_points_at_our_text() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, format!("# {MARKER}\n")).expect("write");
        let path = dir.path().join("shoal-agent.service");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        assert_eq!(inspect(&path).expect("inspect"), Existing::Foreign);
        assert!(matches!(remove(&path), Err(ServiceError::NotOurs { .. })));
        assert!(target.exists());
    }
}
