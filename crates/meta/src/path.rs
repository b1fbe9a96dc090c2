//! File paths from a torrent are untrusted: a hostile torrent must not be
//! able to name a file outside the download folder, or one that Windows,
//! macOS or Linux cannot create. Each path component is checked on its own,
//! with the strictest of the platforms' rules, so a release that downloads on
//! one customer's machine downloads on every other's.

use std::fmt;
use std::path::PathBuf;

/// Longest component accepted, in bytes: the usual filesystem limit.
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Deepest path accepted, in components.
pub const MAX_DEPTH: usize = 64;

/// A relative path whose every component passed [`check_component`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SafePath {
    components: Vec<String>,
}

impl SafePath {
    /// Checks every component; the error names the offending one.
    pub fn new(components: Vec<String>) -> Result<Self, UnsafePath> {
        if components.is_empty() {
            return Err(UnsafePath::new("", PathProblem::Empty));
        }
        if components.len() > MAX_DEPTH {
            return Err(UnsafePath::new(&components.join("/"), PathProblem::TooDeep));
        }
        for component in &components {
            check_component(component)?;
        }
        Ok(SafePath { components })
    }

    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The path below `root`, built from checked components only.
    pub fn under(&self, root: &std::path::Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(&self.components);
        path
    }
}

impl fmt::Display for SafePath {
    /// `/`-separated, the form used in listings and JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.components.join("/"))
    }
}

/// Why a path from a torrent was refused, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe file name \"{entry}\" in torrent: {problem}")]
pub struct UnsafePath {
    pub entry: String,
    pub problem: PathProblem,
}

impl UnsafePath {
    fn new(entry: &str, problem: PathProblem) -> Self {
        // Quote hostile names in a bounded, printable form.
        let entry: String = entry
            .chars()
            .take(80)
            .flat_map(char::escape_default)
            .collect();
        UnsafePath { entry, problem }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathProblem {
    #[error("the name is empty")]
    Empty,
    #[error("`.` and `..` would leave the download folder")]
    DotComponent,
    #[error("it contains a path separator (`/` or `\\`)")]
    Separator,
    #[error("it contains a control character or NUL")]
    ControlCharacter,
    #[error("it contains a character Windows forbids in file names (`<>:\"|?*`)")]
    WindowsForbiddenCharacter,
    #[error("it is a device name reserved on Windows")]
    WindowsReservedName,
    #[error("it ends in a dot or a space, which Windows strips")]
    TrailingDotOrSpace,
    #[error("it is longer than {MAX_COMPONENT_BYTES} bytes")]
    TooLong,
    #[error("it is nested deeper than {MAX_DEPTH} folders")]
    TooDeep,
    #[error("it is not valid UTF-8")]
    NotUtf8,
}

/// Checks one path component (a file or folder name) against every
/// platform's rules. Absolute paths, drive letters (`C:`), UNC and `\\?\`
/// prefixes all fail here, as separators or `:`.
pub fn check_component(name: &str) -> Result<(), UnsafePath> {
    let fail = |problem| Err(UnsafePath::new(name, problem));
    if name.is_empty() {
        return fail(PathProblem::Empty);
    }
    if name.len() > MAX_COMPONENT_BYTES {
        return fail(PathProblem::TooLong);
    }
    if name == "." || name == ".." {
        return fail(PathProblem::DotComponent);
    }
    if name.contains(['/', '\\']) {
        return fail(PathProblem::Separator);
    }
    if name.chars().any(char::is_control) {
        return fail(PathProblem::ControlCharacter);
    }
    if name.contains(['<', '>', ':', '"', '|', '?', '*']) {
        return fail(PathProblem::WindowsForbiddenCharacter);
    }
    if name.ends_with(['.', ' ']) {
        return fail(PathProblem::TrailingDotOrSpace);
    }
    if is_windows_reserved(name) {
        return fail(PathProblem::WindowsReservedName);
    }
    Ok(())
}

/// Turns a raw name from a torrent into a string, refusing non-UTF-8 names
/// rather than guessing an encoding.
pub fn component_from_bytes(raw: &[u8]) -> Result<String, UnsafePath> {
    match std::str::from_utf8(raw) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(UnsafePath::new(
            &String::from_utf8_lossy(raw),
            PathProblem::NotUtf8,
        )),
    }
}

/// Windows reserves device names with any extension (`nul.txt` is NUL) and
/// regardless of case; the superscript digits count as digits too.
fn is_windows_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            let mut chars = upper.chars();
            let prefix: String = chars.by_ref().take(3).collect();
            let rest: Vec<char> = chars.collect();
            (prefix == "COM" || prefix == "LPT")
                && rest.len() == 1
                && matches!(rest[0], '0'..='9' | '¹' | '²' | '³')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(name: &str) -> PathProblem {
        check_component(name).unwrap_err().problem
    }

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "setup.exe",
            "a b",
            ".hidden",
            "日本語.txt",
            "con-tract.pdf",
            "COM10",
            "nul_file",
        ] {
            assert!(check_component(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn traversal_in_every_form_is_refused() {
        assert_eq!(problem(".."), PathProblem::DotComponent);
        assert_eq!(problem("."), PathProblem::DotComponent);
        assert_eq!(problem("../etc"), PathProblem::Separator);
        assert_eq!(problem("/etc/passwd"), PathProblem::Separator);
        assert_eq!(problem("..\\windows"), PathProblem::Separator);
        assert_eq!(problem("\\\\?\\C:\\x"), PathProblem::Separator);
        assert_eq!(problem("C:"), PathProblem::WindowsForbiddenCharacter);
        assert_eq!(
            problem("file.txt:stream"),
            PathProblem::WindowsForbiddenCharacter
        );
    }

    #[test]
    fn platform_hazards_are_refused() {
        assert_eq!(problem(""), PathProblem::Empty);
        assert_eq!(problem("a\0b"), PathProblem::ControlCharacter);
        assert_eq!(problem("a\nb"), PathProblem::ControlCharacter);
        assert_eq!(problem("trailing."), PathProblem::TrailingDotOrSpace);
        assert_eq!(problem("trailing "), PathProblem::TrailingDotOrSpace);
        for reserved in [
            "CON",
            "con",
            "Nul.txt",
            "aux.tar.gz",
            "COM1",
            "lpt9.log",
            "COM¹",
            "CONIN$",
        ] {
            assert_eq!(
                problem(reserved),
                PathProblem::WindowsReservedName,
                "{reserved}"
            );
        }
        assert_eq!(problem(&"x".repeat(4000)), PathProblem::TooLong);
    }

    #[test]
    fn errors_name_the_entry_in_printable_bounded_form() {
        let err = check_component("evil\u{1b}[2J").unwrap_err();
        assert!(err.to_string().contains("evil\\u{1b}[2J"), "{err}");
        let long = check_component(&"y".repeat(4000)).unwrap_err();
        assert!(long.entry.len() <= 80);
    }

    #[test]
    fn safe_paths_check_each_component_and_depth() {
        let ok = SafePath::new(vec!["dir".into(), "file.bin".into()]).unwrap();
        assert_eq!(ok.to_string(), "dir/file.bin");
        assert!(ok
            .under(std::path::Path::new("out"))
            .ends_with("dir/file.bin"));
        assert_eq!(
            SafePath::new(vec!["dir".into(), "..".into()])
                .unwrap_err()
                .problem,
            PathProblem::DotComponent
        );
        assert_eq!(
            SafePath::new(vec![]).unwrap_err().problem,
            PathProblem::Empty
        );
        assert_eq!(
            SafePath::new(vec!["d".into(); MAX_DEPTH + 1])
                .unwrap_err()
                .problem,
            PathProblem::TooDeep
        );
        assert_eq!(
            component_from_bytes(b"\xff\xfe").unwrap_err().problem,
            PathProblem::NotUtf8
        );
    }
}
