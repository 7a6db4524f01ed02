//! Bytes that are wiped when dropped: plaintexts, keyring cells, key material.
//!
//! [`zeroize::Zeroizing`]`<Vec<u8>>` wipes a vector a byte at a time (a
//! volatile write per element, through `Vec`'s `Zeroize`), which on a file
//! message of half a megabyte is a sizeable part of reading or writing it.
//! [`SecretVec`] wipes the same bytes, its spare capacity included, through
//! `zeroize`'s slice wipe: a fill followed by an optimisation barrier, so the
//! compiler cannot drop the writes as dead.

use std::ops::{Deref, DerefMut};

use zeroize::Zeroize;

/// A byte vector wiped in place (length and spare capacity) when dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct SecretVec(Vec<u8>);

impl SecretVec {
    /// Takes `bytes`, to be wiped when dropped.
    pub(crate) fn new(bytes: Vec<u8>) -> SecretVec {
        SecretVec(bytes)
    }
}

impl Deref for SecretVec {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for SecretVec {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl SecretVec {
    /// Writes zeros over the bytes and the spare capacity; the length stays.
    fn wipe(&mut self) {
        self.0.spare_capacity_mut().zeroize();
        self.0.as_mut_slice().zeroize();
    }
}

impl Zeroize for SecretVec {
    fn zeroize(&mut self) {
        self.wipe();
        self.0.clear();
    }
}

impl Drop for SecretVec {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl std::fmt::Debug for SecretVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretVec({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wipe_zeroes_every_byte_in_place() {
        let mut s = SecretVec::new((0..3000u32).map(|i| (i % 251 + 1) as u8).collect());
        s.reserve(1000);
        let (ptr, cap) = (s.as_ptr(), s.capacity());
        s.wipe();
        assert_eq!(s.len(), 3000);
        assert!(s.iter().all(|&b| b == 0));
        // In place: no new allocation took the bytes elsewhere.
        assert_eq!((s.as_ptr(), s.capacity()), (ptr, cap));
        s.zeroize();
        assert!(s.is_empty());
        assert_eq!(s.capacity(), cap);
    }

    #[test]
    fn debug_shows_the_length_not_the_bytes() {
        let s = SecretVec::new(b"ann@x.example".to_vec());
        assert_eq!(format!("{s:?}"), "SecretVec(13 bytes)");
    }
}
