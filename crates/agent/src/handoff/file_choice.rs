//! Which file of a release a hand-off streams. A page names it with
//! `data-shoal-file="path/inside/the/release"` on its link; that value
//! comes from a web page, perhaps a hostile one, so it is only ever
//! compared, component by component, with the file paths of the signed
//! torrent, and never joined to a path on disk. What it selects is the
//! file's index in the torrent; the disk path is built from the torrent's
//! own checked entry (`engine::storage::file_path`). The answer depends
//! on the torrent alone, so a page learns nothing about the customer's
//! disk. BEP 47 pad files are never offered.

use meta::Torrent;

use crate::AgentError;

/// Longest `data-shoal-file` value read (Linux's `PATH_MAX`); a longer
/// one is refused before it is looked at.
pub const MAX_FILE_PARAM_BYTES: usize = 4096;

/// Refuses an empty or over-long `data-shoal-file` value before any work.
pub fn check_file_param(asked: Option<&str>) -> Result<(), AgentError> {
    match asked {
        Some(path) if path.is_empty() || path.len() > MAX_FILE_PARAM_BYTES => {
            Err(AgentError::Invalid(format!(
                "data-shoal-file must be a file's path inside the release, 1 to \
                 {MAX_FILE_PARAM_BYTES} bytes"
            )))
        }
        _ => Ok(()),
    }
}

/// The index in `torrent.files` of the file a page asked for: the one
/// whose path inside the release is exactly `asked` (`/`-separated), or,
/// when the page named none, the release's only file. A release of
/// several files with no file named is refused rather than guessed.
pub fn choose_file(
    torrent: &Torrent,
    torrent_url: &str,
    asked: Option<&str>,
) -> Result<usize, AgentError> {
    check_file_param(asked)?;
    let mut offered = torrent.files.iter().enumerate().filter(|(_, f)| !f.pad);
    let Some(asked) = asked else {
        let first = offered.next().map(|(index, _)| index);
        let count = 1 + offered.count();
        return match first {
            Some(index) if count == 1 => Ok(index),
            _ => Err(AgentError::Invalid(format!(
                "{torrent_url} holds {count} files; the link must name the one to download \
                 with data-shoal-file=\"path/inside/the/release\""
            ))),
        };
    };
    offered
        .find(|(_, f)| {
            f.path
                .components()
                .iter()
                .map(String::as_str)
                .eq(asked.split('/'))
        })
        .map(|(index, _)| index)
        .ok_or_else(|| {
            AgentError::Invalid(format!(
                "{torrent_url} has no file {asked:?}; data-shoal-file must be the path of one \
                 of the release's files, `/`-separated, inside its folder"
            ))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const URL: &str = "https://dl.example/r.torrent";

    /// A v1 release `r` of `doc/readme.txt` (3 bytes), a pad file (BEP 47)
    /// and `app.bin` (16 KiB).
    fn release() -> Torrent {
        let pieces = "a".repeat(40);
        let bytes = format!(
            "d4:infod5:filesl\
             d6:lengthi3e4:pathl3:doc10:readme.txtee\
             d4:attr1:p6:lengthi16381e4:pathl4:.pad5:16381ee\
             d6:lengthi16384e4:pathl7:app.binee\
             e4:name1:r12:piece lengthi16384e6:pieces40:{pieces}ee"
        );
        Torrent::from_bytes(bytes.as_bytes()).unwrap()
    }

    fn refused(asked: Option<&str>) -> String {
        match choose_file(&release(), URL, asked) {
            Err(AgentError::Invalid(message)) => message,
            other => panic!("{asked:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn a_page_names_a_file_by_its_exact_path_inside_the_release() {
        let torrent = release();
        assert_eq!(
            choose_file(&torrent, URL, Some("doc/readme.txt")).unwrap(),
            0
        );
        assert_eq!(choose_file(&torrent, URL, Some("app.bin")).unwrap(), 2);
        assert!(
            refused(None).contains("data-shoal-file"),
            "{}",
            refused(None)
        );
        assert!(refused(None).contains("holds 2 files"), "{}", refused(None));
    }

    #[test]
    fn hostile_file_names_match_nothing() {
        let long = "a/".repeat(MAX_FILE_PARAM_BYTES);
        let hostile = [
            "",
            "../r/app.bin",
            "doc/../app.bin",
            "./app.bin",
            "/app.bin",
            "/etc/passwd",
            "r/app.bin",
            "doc//readme.txt",
            "doc/readme.txt/",
            "doc\\readme.txt",
            "DOC/README.TXT",
            "doc%2Freadme.txt",
            "%2e%2e/app.bin",
            "app.bin\0",
            "missing.bin",
            ".pad/16381",
            ".pad",
            long.as_str(),
        ];
        for asked in hostile {
            let message = refused(Some(asked));
            assert!(message.len() < 600, "{message}");
        }
    }

    #[test]
    fn a_single_file_release_needs_no_name() {
        let bytes = b"d4:infod6:lengthi1e4:name5:a.bin12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
        let torrent = Torrent::from_bytes(bytes).unwrap();
        assert_eq!(choose_file(&torrent, URL, None).unwrap(), 0);
        assert_eq!(choose_file(&torrent, URL, Some("a.bin")).unwrap(), 0);
        assert!(choose_file(&torrent, URL, Some("b.bin")).is_err());
    }
}
