//! AEAD sealing with AES-256-GCM, random keys and nonces from the OS RNG.
//!
//! Every key in shredlog seals at most a few thousand payloads (one transcript's
//! messages, or one keyring's slots), each under a fresh random 96-bit nonce, so
//! the chance of a nonce repeating under one key stays below 2^-60 and does not
//! depend on counters that a crash could roll back.

use crate::secret::SecretVec;
use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

/// Length of a data key in bytes.
pub(crate) const KEY_LEN: usize = 32;
/// Length of a nonce in bytes.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of the authentication tag appended to every ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// A 256-bit secret key, wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub(crate) struct Key([u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A fresh random key from the OS RNG (tests; the store draws keys
    /// through [`Nonces::key`]).
    #[cfg(test)]
    pub(crate) fn random() -> Result<Key> {
        Ok(Key(random_array()?))
    }

    pub(crate) fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A keyed digest of a caller's message id under this (content) key:
    /// HMAC-SHA-256 over a domain label and the id, first 16 bytes. Without the
    /// key it is indistinguishable from random bytes, and once the key is
    /// destroyed it links to nothing.
    pub(crate) fn msg_id_digest(&self, id: &str) -> [u8; 16] {
        use hmac::Mac;
        let mut out = [0u8; 16];
        if let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0) {
            mac.update(b"shredlog message id\0");
            mac.update(id.as_bytes());
            let tag = mac.finalize().into_bytes();
            out.copy_from_slice(tag.get(..16).unwrap_or(&[0; 16]));
        }
        out
    }

    /// Encrypts `plaintext` bound to `aad` under a fresh random nonce.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<([u8; NONCE_LEN], Vec<u8>)> {
        self.seal_with(random_nonce()?, aad, plaintext)
    }

    /// Encrypts under `nonce`, which must be fresh random bytes (from
    /// [`Nonces`] or the OS RNG): never a counter, never reused.
    pub(crate) fn seal_with(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<([u8; NONCE_LEN], Vec<u8>)> {
        Ok((nonce, self.cipher().seal_with(&nonce, aad, plaintext)?))
    }

    /// Decrypts and authenticates; `None` when the tag does not match (wrong key,
    /// wrong context, or altered bytes).
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Option<Vec<u8>> {
        self.cipher().open(nonce, aad, ciphertext)
    }

    /// The key made ready to seal and open many payloads in a row (its
    /// AES round keys and GHASH key worked out once).
    pub(crate) fn cipher(&self) -> Cipher {
        Cipher(Aes256Gcm::new((&self.0).into()))
    }
}

/// A [`Key`] made ready for AES-256-GCM: the expanded round keys and the
/// GHASH key, which the `zeroize` features of `aes` and `ghash` wipe when it
/// is dropped. Made once for the records of one transcript that are opened
/// together, instead of once a record.
pub(crate) struct Cipher(Aes256Gcm);

impl Cipher {
    /// As [`Key::seal_with`]: the ciphertext with its tag.
    pub(crate) fn seal_with(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        self.0
            .encrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| Error::Limit("payload too large to seal".into()))
    }

    /// Encrypts `buf` in place and returns the tag that follows it (the same
    /// bytes as [`Key::seal_with`] returns, without a second buffer).
    pub(crate) fn seal_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        let tag = self
            .0
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, buf)
            .map_err(|_| Error::Limit("payload too large to seal".into()))?;
        Ok(tag.into())
    }

    /// As [`Key::open`].
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Option<Vec<u8>> {
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .ok()
    }
}

/// A fresh random nonce straight from the OS RNG. (A buffer of random bytes
/// kept between calls would save system calls, but a `fork` or a resumed VM
/// snapshot would replay it under the same keys: see [`Nonces`].)
fn random_nonce() -> Result<[u8; NONCE_LEN]> {
    random_array()
}

/// Random bytes for one call (the nonces of its seals, the ids and keys of
/// the transcripts it makes), drawn from the OS RNG with one system call.
/// Owned by the call that made it, wiped as each piece is taken and dropped
/// (zeroised) when the call returns, so no random bytes outlive the call to
/// be replayed by a `fork` (the child gets no copy of another thread's call
/// in progress) or by a later call.
pub(crate) struct Nonces {
    bytes: SecretVec,
    used: usize,
}

impl Nonces {
    /// Room for `count` nonces (more are drawn one by one if needed).
    pub(crate) fn new(count: usize) -> Result<Nonces> {
        let mut bytes = SecretVec::new(vec![0u8; count * NONCE_LEN]);
        getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Nonces { bytes, used: 0 })
    }

    /// Room for `bytes` random bytes (more are drawn as needed).
    pub(crate) fn with_bytes(bytes: usize) -> Result<Nonces> {
        let mut bytes = SecretVec::new(vec![0u8; bytes]);
        getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Nonces { bytes, used: 0 })
    }

    /// The next unused nonce.
    pub(crate) fn next(&mut self) -> Result<[u8; NONCE_LEN]> {
        self.take()
    }

    /// The next `N` unused bytes (straight from the OS RNG once the buffer
    /// is used up).
    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let Some(chunk) = self.bytes.get_mut(self.used..self.used + N) else {
            return random_array();
        };
        let mut out = [0u8; N];
        out.copy_from_slice(chunk);
        // Each piece is handed out once: wipe it from the buffer.
        chunk.fill(0);
        self.used += N;
        Ok(out)
    }

    /// A fresh key (see [`Nonces::take`]).
    pub(crate) fn key(&mut self) -> Result<Key> {
        Ok(Key(self.take()?))
    }
}

/// Fills an array from the OS RNG.
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| Error::Random(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// Each seal and open expands the key into a cipher on the stack; the
    /// `zeroize` feature of `aes` (with those of `ghash` and `polyval` for
    /// the GHASH key, which have no marker trait to check) wipes it when the
    /// cipher is dropped. Without the feature this does not compile.
    #[test]
    fn the_expanded_key_is_wiped_when_the_cipher_is_dropped() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<aes::Aes256>();
    }

    use super::*;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let key = Key::random().unwrap();
        let (nonce, ct) = key.seal(b"ctx-a", b"hello").unwrap();
        assert_eq!(ct.len(), 5 + TAG_LEN);
        assert_eq!(key.open(&nonce, b"ctx-a", &ct).unwrap(), b"hello");
        assert!(
            key.open(&nonce, b"ctx-b", &ct).is_none(),
            "other context must fail"
        );
        let other = Key::random().unwrap();
        assert!(
            other.open(&nonce, b"ctx-a", &ct).is_none(),
            "other key must fail"
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(
            key.open(&nonce, b"ctx-a", &bad).is_none(),
            "altered bytes must fail"
        );
    }

    #[test]
    fn batch_nonces_are_distinct_and_fall_back_to_the_rng() {
        let mut nonces = Nonces::new(3).unwrap();
        let drawn: Vec<_> = (0..5).map(|_| nonces.next().unwrap()).collect();
        let distinct: std::collections::HashSet<_> = drawn.iter().collect();
        assert_eq!(distinct.len(), 5, "no nonce handed out twice");
        assert!(drawn.iter().all(|n| n != &[0u8; NONCE_LEN]));
        assert!(nonces.bytes.iter().all(|b| *b == 0), "used nonces wiped");
        let key = Key::random().unwrap();
        let (n, ct) = key.seal_with(drawn[0], b"a", b"x").unwrap();
        assert_eq!(n, drawn[0]);
        assert_eq!(key.open(&n, b"a", &ct).unwrap(), b"x");
    }

    #[test]
    fn ids_and_keys_from_one_draw_are_distinct_wiped_and_fall_back_to_the_rng() {
        // Room for two ids and a key; then a third id and a key beyond it.
        let mut random = Nonces::with_bytes(2 * 16 + 32).unwrap();
        let mut ids: Vec<[u8; 16]> = (0..2).map(|_| random.take().unwrap()).collect();
        let mut keys = vec![random.key().unwrap()];
        ids.push(random.take().unwrap());
        keys.push(random.key().unwrap());
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
        assert_ne!(keys[0], keys[1]);
        assert!(ids.iter().all(|i| i != &[0u8; 16]));
        assert!(
            random.bytes.iter().all(|b| *b == 0),
            "what was handed out is wiped"
        );
        // The keys seal and open.
        let (n, ct) = keys[1].seal(b"a", b"x").unwrap();
        assert_eq!(keys[1].open(&n, b"a", &ct).unwrap(), b"x");
    }

    #[test]
    fn nonces_and_keys_differ() {
        let key = Key::random().unwrap();
        let (n1, c1) = key.seal(b"", b"same").unwrap();
        let (n2, c2) = key.seal(b"", b"same").unwrap();
        assert_ne!(n1, n2);
        assert_ne!(c1, c2);
        assert_ne!(Key::random().unwrap(), Key::random().unwrap());
    }
}
