//! A caller id as a generation's entry knows it: a 128-bit keyed hash of
//! the id ([`CallerHash`]), so that the entry does not hold the id (it
//! stays in the generation's keyring slot, read with its keys when it is
//! needed). Open groups generations by it to find two of one id, and legal
//! holds by caller id are matched by it. The hash is two SipHash-1-3
//! digests under independent random keys drawn for each process; two of
//! `n` ids share one with probability about `n² / 2¹²⁹` (below 10⁻²¹ at a
//! billion ids), and nobody who does not know the keys can choose ids that
//! do.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_id_one_hash() {
        let (h1, h2) = (CallerHash::of("t-1"), CallerHash::of("t-2"));
        assert_ne!(h1, h2);
        assert_eq!(h1, CallerHash::of("t-1"));
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
