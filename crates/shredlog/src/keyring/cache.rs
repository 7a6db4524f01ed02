//! The data keys of live transcripts, held apart from the index: the index
//! says where a transcript's records and slots are, the key cache holds what
//! opens them. Filled at open from the keyring's slots; a key leaves it (and
//! is zeroised, [`Key`] wipes itself on drop) when its slot is wiped.

use parking_lot::RwLock;

use crate::ids::IdMap;
use crate::record::Tid;
use crate::seal::Key;

/// A transcript generation's keys.
#[derive(Clone)]
pub(crate) struct TranscriptKeys {
    pub content: Key,
    /// `None` once the PII key is destroyed (or for a generation written
    /// without one).
    pub pii: Option<Key>,
}

/// Keys by transcript generation.
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: RwLock<IdMap<TranscriptKeys>>,
}

impl KeyCache {
    /// Holds `keys` for `tid` (replacing any earlier ones).
    pub(crate) fn insert(&self, tid: Tid, keys: TranscriptKeys) {
        self.keys.write().insert(tid, keys);
    }

    /// Holds the keys of many generations (at open).
    pub(crate) fn extend(&self, keys: impl IntoIterator<Item = (Tid, TranscriptKeys)>) {
        self.keys.write().extend(keys);
    }

    /// A copy of a generation's keys; `None` if it has none (deleted).
    pub(crate) fn get(&self, tid: &Tid) -> Option<TranscriptKeys> {
        self.keys.read().get(tid).cloned()
    }

    /// Whether the generation's PII key is held.
    #[cfg(test)]
    pub(crate) fn has_pii(&self, tid: &Tid) -> bool {
        self.keys.read().get(tid).is_some_and(|k| k.pii.is_some())
    }

    /// Forgets the PII key (its slot was wiped).
    pub(crate) fn forget_pii(&self, tid: &Tid) {
        if let Some(k) = self.keys.write().get_mut(tid) {
            k.pii = None;
        }
    }

    /// Forgets both keys (the transcript was deleted).
    pub(crate) fn forget(&self, tid: &Tid) {
        self.keys.write().remove(tid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_with_their_slots() {
        let cache = KeyCache::default();
        let tid = [1; 16];
        cache.insert(
            tid,
            TranscriptKeys {
                content: Key::random().unwrap(),
                pii: Some(Key::random().unwrap()),
            },
        );
        assert!(cache.has_pii(&tid));
        cache.forget_pii(&tid);
        assert!(!cache.has_pii(&tid));
        assert!(cache.get(&tid).is_some());
        cache.forget(&tid);
        assert!(cache.get(&tid).is_none());
    }
}
