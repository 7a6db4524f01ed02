//! Finding a generation's summary in a record-location file without holding
//! the summaries: a filter that says which generations the file cannot
//! hold, and the first generation of each summary block (its fences).
//!
//! Written into the file after its summaries (version 2), and read from
//! there the first time the file is asked for a generation; for a file of
//! version 1, built from its summaries (all of them read then). It costs
//! about 1.5 bytes per summary: 10 bits of filter and 16 bytes per block of
//! 63. A lookup of a generation the file does not hold is answered from
//! memory in all but about 1 % of cases; one it holds reads one block.
//!
//! Generation ids are random (the OS RNG), so their bytes serve as the
//! filter's hashes: no hash function is computed, and nobody outside can
//! choose ids that collide.

use crate::record::Tid;

/// Bits of filter per summary.
const BITS_PER_ITEM: u64 = 10;
/// Bits set (and tested) per generation.
const PROBES: u64 = 7;

/// Which summary block of a location file may hold a generation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Finder {
    /// The first generation of each summary block, ascending.
    fences: Vec<Tid>,
    /// The filter's bits.
    bits: Vec<u64>,
}

/// The filter's bit positions of `tid`, for a filter of `m` bits (double
/// hashing over the id's two halves, each hash mapped onto `0..m` by a
/// multiply and shift rather than a division: a lookup probes every
/// location file's filter).
fn positions(tid: &Tid, m: u64) -> impl Iterator<Item = u64> {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&tid[..8]);
    hi.copy_from_slice(&tid[8..]);
    let h1 = u64::from_le_bytes(lo);
    let h2 = u64::from_le_bytes(hi) | 1;
    (0..PROBES).map(move |i| {
        let h = h1.wrapping_add(i.wrapping_mul(h2));
        ((u128::from(h) * u128::from(m)) >> 64) as u64
    })
}

/// Bits of filter for `n` generations: a multiple of 64, at least 64.
fn filter_bits(n: u64) -> u64 {
    n.saturating_mul(BITS_PER_ITEM).max(64).next_multiple_of(64)
}

impl Finder {
    /// Bytes of [`Finder::encode`] for a finder over `n` generations whose
    /// blocks hold `per_block` summaries each.
    pub(crate) fn encoded_len(n: u64, per_block: usize) -> u64 {
        n.div_ceil(per_block.max(1) as u64) * 16 + filter_bits(n) / 8
    }

    /// Appends it as a location file holds it (docs/FORMAT.md §7a.1): the
    /// fences, 16 bytes each, then the filter's bits as u64 LE words.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for f in &self.fences {
            out.extend_from_slice(f);
        }
        for w in &self.bits {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// Reads what [`Finder::encode`] wrote for `n` generations; `None` when
    /// the bytes are not such a finder (length, fences out of order).
    pub(crate) fn decode(bytes: &[u8], n: u64, per_block: usize) -> Option<Finder> {
        if bytes.len() as u64 != Finder::encoded_len(n, per_block) {
            return None;
        }
        let (fences, bits) = bytes.split_at(n.div_ceil(per_block.max(1) as u64) as usize * 16);
        let fences: Vec<Tid> = fences
            .chunks_exact(16)
            .map(|c| c.try_into().ok())
            .collect::<Option<_>>()?;
        if fences.windows(2).any(|w| w[0] >= w[1]) {
            return None;
        }
        let bits = bits
            .chunks_exact(8)
            .map(|c| c.try_into().ok().map(u64::from_le_bytes))
            .collect::<Option<_>>()?;
        Some(Finder { fences, bits })
    }

    /// A finder over `tids` (the summaries' generations, ascending), whose
    /// blocks hold `per_block` summaries each.
    pub(crate) fn new(tids: impl ExactSizeIterator<Item = Tid>, per_block: usize) -> Finder {
        let n = tids.len() as u64;
        let m = filter_bits(n);
        let mut f = Finder {
            fences: Vec::with_capacity(tids.len().div_ceil(per_block.max(1))),
            bits: vec![0u64; (m / 64) as usize],
        };
        for (i, tid) in tids.enumerate() {
            if i % per_block.max(1) == 0 {
                f.fences.push(tid);
            }
            for p in positions(&tid, m) {
                f.bits[(p / 64) as usize] |= 1 << (p % 64);
            }
        }
        f.fences.shrink_to_fit();
        f
    }

    fn bit_count(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    /// The summary block that holds `tid` if the file holds it; `None` when
    /// it certainly does not.
    pub(crate) fn block_of(&self, tid: &Tid) -> Option<usize> {
        let m = self.bit_count();
        let maybe = positions(tid, m).all(|p| self.bits[(p / 64) as usize] & (1 << (p % 64)) != 0);
        if !maybe {
            return None;
        }
        // The last block whose first generation is not after `tid`.
        self.fences.partition_point(|f| f <= tid).checked_sub(1)
    }

    /// Bytes it holds.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.fences.capacity() * std::mem::size_of::<Tid>() + self.bits.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(i: u64) -> Tid {
        // Spread like random ids: a multiplicative hash of the counter.
        let a = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let b = a.rotate_left(29) ^ 0xD1B5_4A32_D192_ED03;
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&a.to_be_bytes());
        t[8..].copy_from_slice(&b.to_le_bytes());
        t
    }

    #[test]
    fn every_member_is_found_in_its_block_and_most_others_are_ruled_out() {
        let mut tids: Vec<Tid> = (0..5000).map(tid).collect();
        tids.sort_unstable();
        let f = Finder::new(tids.iter().copied(), 63);
        for (i, t) in tids.iter().enumerate() {
            assert_eq!(f.block_of(t), Some(i / 63), "member {i}");
        }
        let others = (10_000..30_000).map(tid);
        let passed = others.filter(|t| f.block_of(t).is_some()).count();
        // About 1 % pass the filter at 10 bits and 7 probes; 3 % is a bug.
        assert!(passed < 600, "{passed} of 20000 non-members passed");
        assert!(f.heap_bytes() < 5000 * 2);
    }

    #[test]
    fn a_finder_reads_back_as_encoded_and_odd_bytes_are_refused() {
        for n in [0u64, 1, 62, 63, 64, 5000] {
            let mut tids: Vec<Tid> = (0..n).map(tid).collect();
            tids.sort_unstable();
            let f = Finder::new(tids.iter().copied(), 63);
            let mut bytes = Vec::new();
            f.encode(&mut bytes);
            assert_eq!(bytes.len() as u64, Finder::encoded_len(n, 63), "n {n}");
            assert_eq!(Finder::decode(&bytes, n, 63).as_ref(), Some(&f), "n {n}");
            // Another count, a byte short, fences out of order: refused.
            assert!(Finder::decode(&bytes, n + 63, 63).is_none());
            assert!(Finder::decode(&bytes[1..], n, 63).is_none());
            if n > 63 {
                let mut swapped = bytes.clone();
                let (a, b) = swapped.split_at_mut(16);
                a.swap_with_slice(&mut b[..16]);
                assert!(Finder::decode(&swapped, n, 63).is_none());
            }
        }
    }

    #[test]
    fn an_empty_file_holds_nothing() {
        let f = Finder::new(std::iter::empty::<Tid>(), 63);
        assert_eq!(f.block_of(&tid(1)), None);
        assert_eq!(f.block_of(&[0; 16]), None);
    }
}
