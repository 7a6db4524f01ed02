//! Caller id → the generation reads and writes of that id see.
//!
//! Keyed by a 128-bit keyed hash of the id ([`CallerHash`]), so that neither
//! this map nor a generation's entry holds the id: the id itself stays in
//! the generation's keyring slot, read with its keys when it is needed. The
//! hash is two SipHash-1-3 digests under independent random keys drawn for
//! each process; two of `n` ids share one with probability about
//! `n² / 2¹²⁹` (below 10⁻²¹ at a billion ids), and nobody who does not know
//! the keys can choose ids that do.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use crate::record::Tid;

/// A caller id's keyed 128-bit hash (see the module documentation), as two
/// halves: a `u128` would be aligned to 16 bytes and pad every entry that
/// holds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CallerHash([u64; 2]);

impl CallerHash {
    /// The hash of caller id `id`, under this process's keys.
    pub(crate) fn of(id: &str) -> CallerHash {
        static KEYS: OnceLock<(RandomState, RandomState)> = OnceLock::new();
        let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
        CallerHash([a.hash_one(id), b.hash_one(id)])
    }
}

/// The generation each caller id leads to, by the id's hash.
#[derive(Debug, Default)]
pub(crate) struct Callers {
    by_hash: HashMap<CallerHash, Tid, std::hash::BuildHasherDefault<KeyedHasher>>,
}

impl Callers {
    /// The generation the id with hash `h` leads to (it may be gone).
    pub(crate) fn get(&self, h: CallerHash) -> Option<Tid> {
        self.by_hash.get(&h).copied()
    }

    /// Makes the id with hash `h` lead to `tid` (whatever it led to before).
    pub(crate) fn insert(&mut self, h: CallerHash, tid: Tid) {
        self.by_hash.insert(h, tid);
    }

    /// Makes the id with hash `h` lead nowhere if it leads to `tid`.
    pub(crate) fn remove(&mut self, h: CallerHash, tid: &Tid) {
        if self.by_hash.get(&h) == Some(tid) {
            self.by_hash.remove(&h);
        }
    }

    /// Every generation some id leads to (some may be gone).
    pub(crate) fn targets(&self) -> impl Iterator<Item = &Tid> {
        self.by_hash.values()
    }
}

/// The keys are keyed hashes already: their second half is used as it is.
#[derive(Default)]
struct KeyedHasher(u64);

impl std::hash::Hasher for KeyedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_lead_to_their_generation_and_only_that_one_is_removed() {
        let mut c = Callers::default();
        let (h1, h2) = (CallerHash::of("t-1"), CallerHash::of("t-2"));
        assert_ne!(h1, h2);
        assert_eq!(h1, CallerHash::of("t-1"), "one id, one hash");
        c.insert(h1, [1; 16]);
        assert_eq!(c.get(h1), Some([1; 16]));
        assert_eq!(c.get(h2), None);
        // A new generation of the same id replaces the old one.
        c.insert(h1, [2; 16]);
        assert_eq!(c.get(h1), Some([2; 16]));
        c.remove(h1, &[1; 16]);
        assert_eq!(c.get(h1), Some([2; 16]), "not the one it leads to");
        c.remove(h1, &[2; 16]);
        assert_eq!(c.get(h1), None);
        assert_eq!(c.targets().count(), 0);
    }

    #[test]
    fn many_ids_have_distinct_hashes_in_both_halves() {
        let mut hi = std::collections::HashSet::new();
        let mut lo = std::collections::HashSet::new();
        for i in 0..100_000 {
            let CallerHash([h, l]) = CallerHash::of(&format!("t-{i}"));
            hi.insert(h);
            lo.insert(l);
        }
        assert_eq!((hi.len(), lo.len()), (100_000, 100_000));
    }
}
