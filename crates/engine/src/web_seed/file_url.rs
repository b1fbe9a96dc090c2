//! Where each file of a release lives on a web seed (BEP 19).
//!
//! A single-file torrent's URL names the file itself, unless it ends in `/`,
//! in which case the torrent name is appended. A multi-file torrent's URL
//! names the folder holding the release: `url/NAME/dir/file`. Names are
//! percent-encoded byte by byte (RFC 3986 §2.3: unreserved characters are
//! kept, everything else, spaces and non-ASCII UTF-8 bytes included, is
//! encoded), with `/` only between path components.

use meta::Torrent;
use reqwest::Url;

use super::WebSeedError;

/// Checks a `url-list` entry: an absolute `http` or `https` URL with a host.
/// When a path will be appended to it, it must carry no query or fragment.
pub(super) fn check_base(url: &str, torrent: &Torrent) -> Result<(), WebSeedError> {
    let bad = |detail: &str| WebSeedError::BadUrl {
        url: url.to_owned(),
        detail: detail.to_owned(),
    };
    let parsed = Url::parse(url).map_err(|e| bad(&format!("not a valid URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http and https web seeds are supported"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    let appends = torrent.multi_file || url.ends_with('/');
    if appends && (parsed.query().is_some() || parsed.fragment().is_some()) {
        return Err(bad(
            "a web seed URL that file paths are appended to cannot have a query or fragment",
        ));
    }
    Ok(())
}

/// The URL of file `file` (an index into `torrent.files`) on the web seed
/// at `base`, which [`check_base`] accepted.
pub(super) fn file_url(base: &str, torrent: &Torrent, file: usize) -> Result<Url, WebSeedError> {
    let mut url = base.to_owned();
    if torrent.multi_file {
        if !url.ends_with('/') {
            url.push('/');
        }
        push_encoded(&mut url, &torrent.name);
        for component in torrent.files[file].path.components() {
            url.push('/');
            push_encoded(&mut url, component);
        }
    } else if url.ends_with('/') {
        push_encoded(&mut url, &torrent.name);
    }
    Url::parse(&url).map_err(|e| WebSeedError::BadUrl {
        url,
        detail: format!("not a valid URL ({e})"),
    })
}

/// Appends `name` percent-encoded: RFC 3986 unreserved bytes as they are,
/// every other byte as `%XX`.
fn push_encoded(out: &mut String, name: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in name.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meta::path::SafePath;
    use meta::FileEntry;

    fn torrent(name: &str, multi_file: bool, paths: &[&[&str]]) -> Torrent {
        let files = paths
            .iter()
            .map(|path| FileEntry {
                path: SafePath::new(path.iter().map(|c| (*c).to_owned()).collect())
                    .expect("safe test path"),
                length: 1,
                offset: 0,
                pad: false,
                pieces_root: None,
            })
            .collect();
        Torrent {
            info_hashes: meta::InfoHashes { v1: None, v2: None },
            name: name.to_owned(),
            multi_file,
            piece_length: 16384,
            files,
            v1_piece_hashes: Vec::new(),
            piece_layers: Default::default(),
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            creation_date: None,
            created_by: None,
            comment: None,
            signature: meta::SignatureStatus::Absent,
            info_bytes: Vec::new(),
        }
    }

    fn url_of(base: &str, t: &Torrent, file: usize) -> String {
        check_base(base, t).expect("base accepted");
        file_url(base, t, file).expect("valid").to_string()
    }

    #[test]
    fn single_file_url_names_the_file_unless_it_ends_in_a_slash() {
        let t = torrent("My App ü.iso", false, &[&["My App ü.iso"]]);
        assert_eq!(
            url_of("https://cdn.example/x.iso", &t, 0),
            "https://cdn.example/x.iso"
        );
        assert_eq!(
            url_of("https://cdn.example/pub/", &t, 0),
            "https://cdn.example/pub/My%20App%20%C3%BC.iso"
        );
    }

    #[test]
    fn multi_file_url_appends_name_and_encoded_components() {
        let t = torrent("rel 1", true, &[&["a b", "c+d&e~f.bin"], &["z"]]);
        let want = "http://h:8080/pub/rel%201/a%20b/c%2Bd%26e~f.bin";
        assert_eq!(url_of("http://h:8080/pub", &t, 0), want);
        assert_eq!(url_of("http://h:8080/pub/", &t, 0), want);
        assert_eq!(url_of("http://h:8080", &t, 1), "http://h:8080/rel%201/z");
    }

    #[test]
    fn percent_signs_and_reserved_characters_are_encoded() {
        let mut out = String::new();
        push_encoded(&mut out, "100%?#[]:@!$'()*,;=");
        assert_eq!(out, "100%25%3F%23%5B%5D%3A%40%21%24%27%28%29%2A%2C%3B%3D");
    }

    #[test]
    fn bad_base_urls_are_refused() {
        let multi = torrent("r", true, &[&["f"]]);
        let single = torrent("r", false, &[&["r"]]);
        for url in [
            "ftp://h/r",
            "not a url",
            "/relative",
            "http://",
            "http://h/p?x=1",
        ] {
            assert!(
                matches!(check_base(url, &multi), Err(WebSeedError::BadUrl { .. })),
                "{url}"
            );
        }
        // A query is fine on a URL that names the file itself.
        assert!(check_base("http://h/r.iso?token=1", &single).is_ok());
    }
}
