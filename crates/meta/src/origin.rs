//! Web origins (RFC 6454): `scheme://host[:port]`, the form browsers send
//! in an `Origin` header and compare by. A manifest's `origins` are written
//! by `shoal publish` and compared by the agent with the origin of the page
//! that hands a release off; both reduce what they are given through
//! [`normalize_origin`], so the two sides cannot disagree on, say, case or
//! a default port.

/// The web origin of an http(s) URL: scheme and host lower-case, the host
/// in its ASCII (punycode) form, the port left out when it is the scheme's
/// default. `None` for anything that is not an http(s) URL with a host.
pub fn normalize_origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_origin;

    #[test]
    fn origins_are_scheme_host_and_port_as_browsers_write_them() {
        let norm = |s| normalize_origin(s);
        assert_eq!(
            norm("https://Dl.Example.com/files/x.iso?a#b"),
            Some("https://dl.example.com".into())
        );
        assert_eq!(
            norm("https://example.com:443"),
            Some("https://example.com".into())
        );
        assert_eq!(
            norm("http://127.0.0.1:8080/"),
            Some("http://127.0.0.1:8080".into())
        );
        assert_eq!(norm("ftp://example.com"), None);
        assert_eq!(norm("example.com"), None);
        assert_eq!(norm("file:///etc/passwd"), None);
    }
}
