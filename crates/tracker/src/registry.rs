//! The releases this tracker admits, cached in memory for the announce
//! path and reloaded from the store (other instances may register too).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use crate::admission::{Account, Admitted, Refusal, SwarmAdmission};
use crate::store::Release;

#[derive(Debug, Default)]
pub struct Registry {
    /// By swarm key and by alias: both announce keys of a hybrid release.
    admitted: RwLock<HashMap<[u8; 20], Admitted>>,
}

impl Registry {
    /// Replaces the cache with the store's releases; withdrawn ones are
    /// left out, so their announces are refused from now on.
    pub fn load(&self, releases: &[Release]) {
        let mut admitted = HashMap::with_capacity(releases.len() * 2);
        for release in releases.iter().filter(|r| r.withdrawn_unix.is_none()) {
            let entry = Admitted {
                swarm: release.swarm,
                account: Some(Account {
                    publisher: release.publisher,
                    release: release.id,
                }),
            };
            admitted.insert(release.swarm, entry);
            if let Some(alias) = release.alias {
                admitted.insert(alias, entry);
            }
        }
        *self
            .admitted
            .write()
            .unwrap_or_else(PoisonError::into_inner) = admitted;
    }

    /// Releases admitted (a hybrid counts once).
    pub fn len(&self) -> usize {
        let admitted = self.admitted.read().unwrap_or_else(PoisonError::into_inner);
        admitted.iter().filter(|(key, a)| **key == a.swarm).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SwarmAdmission for Registry {
    fn admit(&self, info_hash: &[u8; 20]) -> Result<Admitted, Refusal> {
        self.admitted
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(info_hash)
            .copied()
            .ok_or_else(|| {
                Refusal(
                    "this torrent is not registered with this tracker: only releases signed by a registered publisher are tracked"
                        .to_owned(),
                )
            })
    }
}

impl SwarmAdmission for std::sync::Arc<Registry> {
    fn admit(&self, info_hash: &[u8; 20]) -> Result<Admitted, Refusal> {
        self.as_ref().admit(info_hash)
    }
}
