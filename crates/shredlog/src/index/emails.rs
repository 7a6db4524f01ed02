//! Email → visitor, without holding the emails.
//!
//! The directory's emails live only in the keyring. The index keys its map
//! by a 128-bit keyed digest of the email (HMAC-SHA256, truncated), under a
//! key drawn from the OS random number generator when the index is built
//! and never written anywhere: the digest cannot be recomputed from a guess
//! without that key, and two emails share a digest only as likely as two
//! random 128-bit ids collide (which the store already relies on never
//! happening for its generation and visitor ids).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::IdMap;
use crate::record::Vid;

/// The keyed digest of a directory key (a normalised email).
pub(crate) type EmailKey = [u8; 16];

/// Digests and the email → visitor map.
pub(crate) struct Emails {
    mac: Hmac<Sha256>,
    by_key: IdMap<Vid>,
}

impl Default for Emails {
    fn default() -> Emails {
        // The key only keeps the digests of this process's memory from
        // being checked against guessed emails; collision resistance does
        // not depend on it. Should the OS generator fail, a key from std's
        // randomly seeded hasher does the same.
        let key: [u8; 32] = crate::seal::random_array().unwrap_or_else(|_| {
            use std::hash::BuildHasher;
            let s = std::hash::RandomState::new();
            let mut k = [0u8; 32];
            for (i, chunk) in k.chunks_exact_mut(8).enumerate() {
                chunk.copy_from_slice(&s.hash_one(i).to_le_bytes());
            }
            k
        });
        Emails {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&key)
                .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length")),
            by_key: IdMap::default(),
        }
    }
}

impl Emails {
    /// The digest of `email`.
    pub(crate) fn key(&self, email: &str) -> EmailKey {
        let mut mac = self.mac.clone();
        mac.update(email.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    pub(crate) fn get(&self, key: &EmailKey) -> Option<Vid> {
        self.by_key.get(key).copied()
    }

    pub(crate) fn insert(&mut self, key: EmailKey, vid: Vid) {
        self.by_key.insert(key, vid);
    }

    /// Removes `key` if it leads to `vid`.
    pub(crate) fn remove_if(&mut self, key: &EmailKey, vid: &Vid) {
        if self.by_key.get(key) == Some(vid) {
            self.by_key.remove(key);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_keyed_and_tell_emails_apart() {
        let a = Emails::default();
        let b = Emails::default();
        assert_eq!(a.key("ann@example.com"), a.key("ann@example.com"));
        assert_ne!(a.key("ann@example.com"), a.key("anne@example.com"));
        assert_ne!(
            a.key("ann@example.com"),
            b.key("ann@example.com"),
            "another index, another key"
        );
        let mut m = Emails::default();
        let k = m.key("ann@example.com");
        m.insert(k, [1; 16]);
        m.remove_if(&k, &[2; 16]);
        assert_eq!(m.get(&k), Some([1; 16]));
        m.remove_if(&k, &[1; 16]);
        assert_eq!((m.get(&k), m.len()), (None, 0));
    }
}
