//! Finding a generation's summary in a record-location file without holding
//! the summaries: a filter that says which generations the file cannot
//! hold, and the first generation of each summary block (its fences).
//!
//! Built once from the file's summaries (which open reads anyway), it costs
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
#[derive(Debug)]
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

impl Finder {
    /// A finder over `tids` (the summaries' generations, ascending), whose
    /// blocks hold `per_block` summaries each.
    pub(crate) fn new(tids: impl ExactSizeIterator<Item = Tid>, per_block: usize) -> Finder {
        let n = tids.len() as u64;
        let m = (n * BITS_PER_ITEM).max(64).next_multiple_of(64);
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
    fn an_empty_file_holds_nothing() {
        let f = Finder::new(std::iter::empty::<Tid>(), 63);
        assert_eq!(f.block_of(&tid(1)), None);
        assert_eq!(f.block_of(&[0; 16]), None);
    }
}
