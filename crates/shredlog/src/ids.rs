//! Random 128-bit ids (transcript generations, visitors): maps keyed by them
//! and their hex form. They carry no meaning and are never chosen by a caller.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Hasher for maps keyed by transcript and visitor ids. The ids are 16 random
/// bytes drawn by the store (never chosen by a caller), so a multiply-rotate
/// mix of them spreads as well as SipHash does, at a fraction of the cost:
/// open builds these maps for every transcript.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (w, b) in word.iter_mut().zip(chunk) {
                *w = *b;
            }
            self.0 = (self.0.rotate_left(26) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
}

/// A map keyed by an id (or by a number, such as a slot index).
pub(crate) type IdMap<V> = HashMap<[u8; 16], V, BuildHasherDefault<IdHasher>>;
/// A set of ids.
pub(crate) type IdSet = HashSet<[u8; 16], BuildHasherDefault<IdHasher>>;
/// A map keyed by a slot index.
pub(crate) type SlotMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// Inserts `key → value` into a cache of at most `capacity` entries, pushing
/// out another entry first when it is full and `key` is new. Any entry will
/// do (the caches read it again when next needed), and under a cycle through
/// more entries than fit, least-recently-used would miss every time.
pub(crate) fn insert_bounded<K, V, S>(map: &mut HashMap<K, V, S>, capacity: usize, key: K, value: V)
where
    K: std::hash::Hash + Eq + Copy,
    S: std::hash::BuildHasher,
{
    if !map.contains_key(&key)
        && map.len() >= capacity
        && let Some(victim) = map.keys().next().copied()
    {
        map.remove(&victim);
    }
    map.insert(key, value);
}

/// Lower-case hex of an id (or of any bytes).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// A 16-byte id from its 32 hex digits.
pub(crate) fn parse_hex(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip() {
        let id = [0xab; 16];
        assert_eq!(parse_hex(&hex(&id)), Some(id));
        assert_eq!(parse_hex("ab"), None);
        assert_eq!(parse_hex(&"zz".repeat(16)), None);
    }
}
