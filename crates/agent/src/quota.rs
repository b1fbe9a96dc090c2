//! The disk quota for releases kept only for sharing. A complete release
//! that came from a browser hand-off (the browser saved the customer's own
//! copy) and is not pinned is on disk for the next customers' sake; when
//! such releases together need more than the quota, the least recently
//! used go first. A release still downloading, one the customer pinned,
//! and one the customer added (the caller passes those as pinned) is
//! never evicted and does not count against the quota.

/// What the quota needs to know of one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaEntry {
    pub id: String,
    pub size: u64,
    pub completed: bool,
    pub pinned: bool,
    /// Unix seconds; older is evicted first.
    pub last_used_at: u64,
}

impl QuotaEntry {
    fn shared_only(&self) -> bool {
        self.completed && !self.pinned
    }
}

/// The releases to evict so that the shared-only ones, plus `incoming`
/// bytes about to join them, fit in `quota_bytes` (0 = no quota). Least
/// recently used first; ties go to the id, so the choice is stable. When
/// even evicting every shared-only release cannot make room, all of them
/// go: the incoming release is what the customer asked for now.
pub fn evictions(entries: &[QuotaEntry], quota_bytes: u64, incoming: u64) -> Vec<String> {
    if quota_bytes == 0 {
        return Vec::new();
    }
    let mut shared: Vec<&QuotaEntry> = entries.iter().filter(|e| e.shared_only()).collect();
    let mut used = shared
        .iter()
        .fold(incoming, |sum, entry| sum.saturating_add(entry.size));
    shared.sort_by(|a, b| {
        a.last_used_at
            .cmp(&b.last_used_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut evicted = Vec::new();
    for entry in shared {
        if used <= quota_bytes {
            break;
        }
        used = used.saturating_sub(entry.size);
        evicted.push(entry.id.clone());
    }
    evicted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, size: u64, completed: bool, pinned: bool, used: u64) -> QuotaEntry {
        QuotaEntry {
            id: id.into(),
            size,
            completed,
            pinned,
            last_used_at: used,
        }
    }

    #[test]
    fn no_quota_evicts_nothing() {
        let entries = [entry("a", 100, true, false, 1)];
        assert!(evictions(&entries, 0, 1_000).is_empty());
    }

    #[test]
    fn least_recently_used_shared_releases_go_first_until_the_newcomer_fits() {
        let entries = [
            entry("newer", 100, true, false, 30),
            entry("oldest", 100, true, false, 10),
            entry("older", 100, true, false, 20),
        ];
        assert_eq!(evictions(&entries, 300, 0), Vec::<String>::new());
        assert_eq!(evictions(&entries, 300, 50), vec!["oldest"]);
        assert_eq!(evictions(&entries, 300, 150), vec!["oldest", "older"]);
    }

    #[test]
    fn pinned_and_unfinished_releases_are_never_evicted_nor_counted() {
        let entries = [
            entry("pinned", 1_000, true, true, 1),
            entry("downloading", 1_000, false, false, 2),
            entry("shared", 100, true, false, 3),
        ];
        assert!(evictions(&entries, 150, 0).is_empty());
        assert_eq!(evictions(&entries, 150, 100), vec!["shared"]);
        // Nothing else can go, however far over the quota.
        assert_eq!(evictions(&entries, 10, 5_000), vec!["shared"]);
    }

    #[test]
    fn equal_ages_are_broken_by_id() {
        let entries = [
            entry("b", 10, true, false, 5),
            entry("a", 10, true, false, 5),
        ];
        assert_eq!(evictions(&entries, 10, 0), vec!["a"]);
    }
}
