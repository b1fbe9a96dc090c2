//! A build's version: 1 to 4 dot-separated decimal numbers
//! (`1.4.2`), compared number by number, so `1.10.0` is newer than
//! `1.9.9`. Nothing else (no suffixes): the updater must be able to say,
//! for any two builds, which one is newer.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Most numbers in a version.
const MAX_PARTS: usize = 4;
/// Longest version text accepted, before it is split.
pub const MAX_VERSION_LEN: usize = 40;

#[derive(Debug, Clone)]
pub struct Version {
    parts: Vec<u32>,
}

impl FromStr for Version {
    type Err = String;

    fn from_str(text: &str) -> Result<Version, String> {
        let bad = || format!("{text:?} is not a version like 1.4.2 (1 to {MAX_PARTS} numbers)");
        if text.is_empty() || text.len() > MAX_VERSION_LEN {
            return Err(bad());
        }
        let mut parts = Vec::with_capacity(MAX_PARTS);
        for part in text.split('.') {
            if parts.len() == MAX_PARTS
                || part.is_empty()
                || !part.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad());
            }
            parts.push(part.parse::<u32>().map_err(|_| bad())?);
        }
        Ok(Version { parts })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self.parts.iter().map(u32::to_string).collect();
        f.write_str(&text.join("."))
    }
}

impl Ord for Version {
    /// Missing numbers count as 0: `1.2` is `1.2.0`.
    fn cmp(&self, other: &Version) -> Ordering {
        let at = |v: &Version, i: usize| v.parts.get(i).copied().unwrap_or(0);
        (0..MAX_PARTS)
            .map(|i| at(self, i).cmp(&at(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn versions_compare_number_by_number() {
        assert!(v("1.10.0") > v("1.9.9"));
        assert!(v("2") > v("1.99.99.99"));
        assert_eq!(v("1.2").cmp(&v("1.2.0")), Ordering::Equal);
        assert_eq!(v("0.1.0").to_string(), "0.1.0");
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "1.",
            ".1",
            "1..2",
            "1.2.3.4.5",
            "v1.2",
            "1.2-rc1",
            "1.+2",
            "99999999999",
            " 1.2",
            &"1".repeat(41),
        ] {
            assert!(text.parse::<Version>().is_err(), "{text:?}");
        }
    }
}
