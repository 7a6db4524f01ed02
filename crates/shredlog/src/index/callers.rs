//! Caller id → the generation reads and writes of that id see.
//!
//! Keyed by a 128-bit keyed hash of the id ([`CallerHash`]), so that neither
//! this map, a generation's entry nor the index's run on disk holds the id:
//! the id itself stays in the generation's keyring slot, read with its keys
//! when it is needed. The hash is two SipHash-2-4 digests (a keyed
//! pseudo-random function, fast on short ids: every append hashes its
//! messages' ids) under four 64-bit keys derived by HMAC-SHA256 from the
//! keyring's directory key ([`CallerKey::derive`]), so that it is the same
//! in every process that opens the store, and nobody without the keyring
//! (and its key-encryption key, when there is one) can tell which ids it
//! stands for. Two of `n` ids share one with probability about
//! `n² / 2¹²⁹` (below 10⁻²¹ at a billion ids).

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::record::Tid;

/// A caller id's keyed 128-bit hash (see the module documentation), as two
/// halves: a `u128` would be aligned to 16 bytes and pad every entry that
/// holds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CallerHash([u64; 2]);

impl CallerHash {
    /// Its 16 bytes, as the index's run stores them.
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.0[0].to_be_bytes());
        b[8..].copy_from_slice(&self.0[1].to_be_bytes());
        b
    }

    pub(crate) fn from_bytes(b: [u8; 16]) -> CallerHash {
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        hi.copy_from_slice(&b[..8]);
        lo.copy_from_slice(&b[8..]);
        CallerHash([u64::from_be_bytes(hi), u64::from_be_bytes(lo)])
    }
}

/// The key of [`CallerHash`]es: two SipHash keys.
#[derive(Clone)]
pub(crate) struct CallerKey {
    keys: zeroize::Zeroizing<[u64; 4]>,
}

impl std::fmt::Debug for CallerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerKey(..)")
    }
}

impl CallerKey {
    /// The key derived from a keyring's directory key: the four
    /// little-endian words of HMAC-SHA256 of `shredlog caller ids v1` under
    /// it.
    pub(crate) fn derive(directory_key: &[u8; 32]) -> CallerKey {
        let mut d = <Hmac<Sha256> as Mac>::new_from_slice(directory_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        d.update(b"shredlog caller ids v1");
        let mut out = zeroize::Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&d.finalize().into_bytes());
        let mut keys = zeroize::Zeroizing::new([0u64; 4]);
        for (k, c) in keys.iter_mut().zip(out.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            *k = u64::from_le_bytes(w);
        }
        CallerKey { keys }
    }

    /// A key drawn for this process (a keyring without a directory key:
    /// nothing it hashes is kept on disk).
    pub(crate) fn random() -> CallerKey {
        let key: zeroize::Zeroizing<[u8; 32]> =
            zeroize::Zeroizing::new(crate::seal::random_array().unwrap_or_else(|_| {
                use std::hash::{BuildHasher, RandomState};
                let s = RandomState::new();
                let mut k = [0u8; 32];
                for (i, c) in k.chunks_mut(8).enumerate() {
                    c.copy_from_slice(&s.hash_one(i).to_le_bytes());
                }
                k
            }));
        CallerKey::derive(&key)
    }

    /// The hash of caller id `id`.
    pub(crate) fn hash(&self, id: &str) -> CallerHash {
        #[expect(
            deprecated,
            reason = "SipHash-2-4 with chosen keys; std keeps no other"
        )]
        let sip = |k0: u64, k1: u64| {
            use std::hash::Hasher;
            let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
            h.write(id.as_bytes());
            h.finish()
        };
        let k = &*self.keys;
        CallerHash([sip(k[0], k[1]), sip(k[2], k[3])])
    }

    /// Eight bytes that tell whether two keys are the same (a run written
    /// under another key is not used).
    pub(crate) fn check(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.hash("\0check").to_bytes()[..8]);
        b
    }
}

impl Default for CallerKey {
    fn default() -> CallerKey {
        CallerKey::random()
    }
}

/// The generation each caller id leads to, by the id's hash.
#[derive(Debug, Default)]
pub(crate) struct Callers {
    /// `None`: leads nowhere (over what the index's run says).
    by_hash: HashMap<CallerHash, Option<Tid>, std::hash::BuildHasherDefault<KeyedHasher>>,
}

impl Callers {
    /// What is known here of the id with hash `h`: `Some(Some(tid))` the
    /// generation it leads to (it may be gone), `Some(None)` that it leads
    /// nowhere, `None` nothing (ask the run).
    pub(crate) fn get(&self, h: CallerHash) -> Option<Option<Tid>> {
        self.by_hash.get(&h).copied()
    }

    /// Makes the id with hash `h` lead to `tid` (whatever it led to before).
    pub(crate) fn insert(&mut self, h: CallerHash, tid: Tid) {
        self.by_hash.insert(h, Some(tid));
    }

    /// Makes the id with hash `h` lead nowhere.
    pub(crate) fn forget(&mut self, h: CallerHash) {
        self.by_hash.insert(h, None);
    }

    /// Every change, for the next run.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (CallerHash, Option<Tid>)> + '_ {
        self.by_hash.iter().map(|(h, t)| (*h, *t))
    }

    /// Keeps only the entries whose target `keep` accepts (the rest are
    /// in the run now).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(Option<Tid>) -> bool) {
        self.by_hash.retain(|_, t| keep(*t));
        self.by_hash.shrink_to_fit();
    }

    /// Number of changes held.
    pub(crate) fn len(&self) -> usize {
        self.by_hash.len()
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
    fn ids_lead_to_their_generation_or_nowhere() {
        let key = CallerKey::random();
        let mut c = Callers::default();
        let (h1, h2) = (key.hash("t-1"), key.hash("t-2"));
        assert_ne!(h1, h2);
        assert_eq!(h1, key.hash("t-1"), "one id, one hash");
        c.insert(h1, [1; 16]);
        assert_eq!(c.get(h1), Some(Some([1; 16])));
        assert_eq!(c.get(h2), None);
        c.insert(h1, [2; 16]);
        assert_eq!(c.get(h1), Some(Some([2; 16])));
        c.forget(h1);
        assert_eq!(c.get(h1), Some(None));
        assert_eq!(c.len(), 1);
        assert_eq!(c.iter().collect::<Vec<_>>(), [(h1, None)]);
        c.insert(h2, [3; 16]);
        c.retain(|t| t == Some([3; 16]));
        assert_eq!((c.len(), c.get(h2)), (1, Some(Some([3; 16]))));
    }

    #[test]
    fn a_key_derived_from_one_directory_key_hashes_alike_in_every_process() {
        let a = CallerKey::derive(&[7; 32]);
        let b = CallerKey::derive(&[7; 32]);
        let c = CallerKey::derive(&[8; 32]);
        assert_eq!(a.hash("t-1"), b.hash("t-1"));
        assert_eq!(a.check(), b.check());
        assert_ne!(a.hash("t-1"), c.hash("t-1"));
        assert_ne!(a.check(), c.check());
        let h = a.hash("t-1");
        assert_eq!(CallerHash::from_bytes(h.to_bytes()), h);
    }

    #[test]
    fn many_ids_have_distinct_hashes_in_both_halves() {
        let key = CallerKey::random();
        let mut hi = std::collections::HashSet::new();
        let mut lo = std::collections::HashSet::new();
        for i in 0..100_000 {
            let CallerHash([h, l]) = key.hash(&format!("t-{i}"));
            hi.insert(h);
            lo.insert(l);
        }
        assert_eq!((hi.len(), lo.len()), (100_000, 100_000));
    }
}
