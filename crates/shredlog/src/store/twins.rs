//! Counting, at open, the directory entries that share their address with
//! another visitor's entry (two spellings of one address stored before
//! canonical emails; each is found by its own spelling, see
//! [`crate::keyring::directory::choose`]), without holding the addresses:
//! each is known only by a keyed digest, under a key drawn for the count
//! and dropped with it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::IdMap;
use crate::keyring::directory::placement;
use crate::record::Vid;

/// Digests of the addresses seen so far, and the twins among them.
pub(crate) struct Twins {
    mac: Hmac<Sha256>,
    seen: IdMap<Vid>,
    count: usize,
}

impl Default for Twins {
    fn default() -> Twins {
        // The key only keeps the digests in this process's memory from being
        // checked against guessed emails; should the OS generator fail, a key
        // from std's randomly seeded hasher does the same.
        let key: [u8; 32] = crate::seal::random_array().unwrap_or_else(|_| {
            use std::hash::BuildHasher;
            let s = std::hash::RandomState::new();
            let mut k = [0u8; 32];
            for (i, chunk) in k.chunks_exact_mut(8).enumerate() {
                chunk.copy_from_slice(&s.hash_one(i).to_le_bytes());
            }
            k
        });
        Twins {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&key)
                .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length")),
            seen: IdMap::default(),
            count: 0,
        }
    }
}

impl Twins {
    /// Notes visitor `vid`'s entry for `email`.
    pub(crate) fn add(&mut self, vid: Vid, email: &str) {
        let mut mac = self.mac.clone();
        mac.update(placement(email).as_bytes());
        let full = mac.finalize().into_bytes();
        let mut d = [0u8; 16];
        d.copy_from_slice(&full[..16]);
        match self.seen.get(&d) {
            Some(other) if *other != vid => self.count += 1,
            Some(_) => {}
            None => {
                self.seen.insert(d, vid);
            }
        }
    }

    /// Entries whose address an earlier entry of another visitor has.
    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_address_of_two_visitors_are_twins() {
        let mut t = Twins::default();
        t.add([1; 16], "ann@x.example");
        t.add([1; 16], "ann@x.example");
        assert_eq!(t.count(), 0, "the same visitor's entry twice");
        t.add([2; 16], "ANN@x.example.");
        t.add([3; 16], "bob@x.example");
        t.add([4; 16], " Bob@X.example ");
        assert_eq!(t.count(), 2);
    }
}
