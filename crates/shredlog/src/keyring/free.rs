//! The keyring's free cells, held as ranges: a keyring grows by up to 4 MiB
//! of zero cells at a time (65,536 of them), and a set of single cells would
//! hold (and open would insert) every one.

use std::collections::BTreeMap;
use std::ops::{Bound, Range, RangeBounds};

use super::cells::SECTOR_CELLS;

/// A set of cell numbers, as disjoint, non-adjacent ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct FreeCells {
    /// start → end (exclusive).
    ranges: BTreeMap<u32, u32>,
    len: u64,
}

impl FreeCells {
    /// Cells in the set.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    pub(super) fn contains(&self, cell: u32) -> bool {
        self.ranges
            .range(..=cell)
            .next_back()
            .is_some_and(|(_, &end)| cell < end)
    }

    pub(super) fn insert(&mut self, cell: u32) {
        self.insert_range(cell..cell.saturating_add(1));
    }

    /// Adds every cell of `r` (some may be in the set already).
    pub(super) fn insert_range(&mut self, r: Range<u32>) {
        if r.is_empty() {
            return;
        }
        // The common case: cells found or added after the last range.
        if let Some(mut last) = self.ranges.last_entry()
            && *last.get() <= r.start
        {
            if *last.get() == r.start {
                *last.get_mut() = r.end;
            } else {
                self.ranges.insert(r.start, r.end);
            }
            self.len += u64::from(r.end - r.start);
            return;
        }
        let (mut start, mut end) = (r.start, r.end);
        // Ranges that overlap or touch `start..end` are merged into it.
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
        }
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            self.ranges.remove(&s);
            self.len -= u64::from(e - s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
        self.len += u64::from(end - start);
    }

    /// Takes every cell of `r` out of the set.
    pub(super) fn remove_range(&mut self, r: Range<u32>) {
        if r.is_empty() {
            return;
        }
        let first = self
            .ranges
            .range(..=r.start)
            .next_back()
            .map_or(r.start, |(&s, _)| s);
        let hit: Vec<(u32, u32)> = self
            .ranges
            .range(first..r.end)
            .filter(|(_, e)| **e > r.start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in hit {
            self.ranges.remove(&s);
            self.len -= u64::from(e - s);
            if s < r.start {
                self.ranges.insert(s, r.start);
                self.len += u64::from(r.start - s);
            }
            if e > r.end {
                self.ranges.insert(r.end, e);
                self.len += u64::from(e - r.end);
            }
        }
    }

    /// Keeps the cells below `cell` and returns the others.
    pub(super) fn split_off(&mut self, cell: u32) -> FreeCells {
        let mut above = FreeCells::default();
        let end = self.ranges.keys().next_back().map(|&s| self.ranges[&s]);
        if let Some(end) = end
            && end > cell
        {
            let moved: Vec<(u32, u32)> = self
                .ranges
                .range(..end)
                .filter(|(_, e)| **e > cell)
                .map(|(&s, &e)| (s.max(cell), e))
                .collect();
            self.remove_range(cell..end);
            for (s, e) in moved {
                above.insert_range(s..e);
            }
        }
        above
    }

    /// Cells below `cell`.
    pub(super) fn count_below(&self, cell: u32) -> u64 {
        self.ranges
            .range(..cell)
            .map(|(&s, &e)| u64::from(e.min(cell) - s))
            .sum()
    }

    /// The lowest run of `n` cells of the set inside `range` that lies
    /// within one sector (a slot never crosses one).
    pub(super) fn find_run(&self, range: impl RangeBounds<u32>, n: u32) -> Option<u32> {
        if n == 0 || n > SECTOR_CELLS {
            return None;
        }
        let lo = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Bound::Included(&e) => u64::from(e) + 1,
            Bound::Excluded(&e) => u64::from(e),
            Bound::Unbounded => u64::from(u32::MAX) + 1,
        };
        let from = self.ranges.range(..=lo).next_back().map_or(lo, |(&s, _)| s);
        for (&s, &e) in self.ranges.range(from..) {
            let start = u64::from(s.max(lo));
            let end = u64::from(e).min(hi);
            if start >= hi {
                break;
            }
            let sector = u64::from(SECTOR_CELLS);
            let mut p = start;
            while p + u64::from(n) <= end {
                let room = sector - p % sector;
                if room >= u64::from(n) {
                    return u32::try_from(p).ok();
                }
                p += room;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// What `BTreeSet<u32>` (what the keyring used to hold) answers.
    fn model_find_run(set: &BTreeSet<u32>, range: Range<u32>, n: u32) -> Option<u32> {
        let mut start = 0;
        let mut len = 0;
        for &c in set.range(range) {
            if len > 0 && c == start + len && c % SECTOR_CELLS != 0 {
                len += 1;
            } else {
                start = c;
                len = 1;
            }
            if len == n {
                return Some(start);
            }
        }
        None
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(Range<u32>),
        Remove(Range<u32>),
        Split(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..200, 0u32..40).prop_map(|(s, l)| Op::Insert(s..s + l)),
            (0u32..200, 0u32..40).prop_map(|(s, l)| Op::Remove(s..s + l)),
            (0u32..240).prop_map(Op::Split),
        ]
    }

    proptest! {
        #[test]
        fn answers_as_a_set_of_single_cells_does(ops in proptest::collection::vec(op(), 0..40)) {
            let mut got = FreeCells::default();
            let mut want = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(r) => {
                        got.insert_range(r.clone());
                        want.extend(r);
                    }
                    Op::Remove(r) => {
                        got.remove_range(r.clone());
                        for c in r {
                            want.remove(&c);
                        }
                    }
                    Op::Split(at) => {
                        let above = got.split_off(at);
                        let want_above = want.split_off(&at);
                        prop_assert_eq!(above.len(), want_above.len() as u64);
                        for c in 0..260 {
                            prop_assert_eq!(above.contains(c), want_above.contains(&c));
                        }
                    }
                }
                prop_assert_eq!(got.len(), want.len() as u64);
                // Ranges stay disjoint and apart.
                let mut last_end = None;
                for (&s, &e) in &got.ranges {
                    prop_assert!(s < e);
                    prop_assert!(last_end.is_none_or(|l| l < s));
                    last_end = Some(e);
                }
            }
            for c in 0..260 {
                prop_assert_eq!(got.contains(c), want.contains(&c), "cell {}", c);
                prop_assert_eq!(got.count_below(c), want.range(..c).count() as u64);
            }
            for n in 1..=SECTOR_CELLS {
                for lo in (0..250).step_by(7) {
                    for hi in [lo, lo + 5, lo + 30, 260] {
                        prop_assert_eq!(
                            got.find_run(lo..hi, n),
                            model_find_run(&want, lo..hi, n),
                            "run of {} in {}..{}", n, lo, hi
                        );
                    }
                }
                prop_assert_eq!(got.find_run(.., n), model_find_run(&want, 0..u32::MAX, n));
            }
        }
    }

    #[test]
    fn a_grown_keyring_is_one_range() {
        let mut f = FreeCells::default();
        for c in 100..65_636 {
            f.insert(c);
        }
        assert_eq!((f.len(), f.ranges.len()), (65_536, 1));
        assert_eq!(f.find_run(.., 3), Some(100));
        f.remove_range(100..103);
        assert_eq!(f.find_run(.., 7), Some(104));
        assert_eq!(f.find_run(.., 9), None, "no slot crosses a sector");
    }
}
