//! An ordered set sized for what a visitor holds: most visitors have a few
//! transcripts, and a `BTreeSet` of a few items still allocates a node of
//! eleven (about 300 bytes per visitor). Up to [`FEW`] items it is a sorted
//! vector of exactly their size; beyond, a `BTreeSet`, so that a visitor with
//! thousands of transcripts costs no more per update than before.

use std::collections::BTreeSet;

/// Items kept in a sorted vector before switching to a `BTreeSet`.
const FEW: usize = 32;

#[derive(Clone, Debug)]
pub(crate) enum SmallSet<T: Ord + Copy> {
    Few(Vec<T>),
    Many(BTreeSet<T>),
}

impl<T: Ord + Copy> Default for SmallSet<T> {
    fn default() -> Self {
        SmallSet::Few(Vec::new())
    }
}

impl<T: Ord + Copy> SmallSet<T> {
    /// Adds `item`; returns whether it was new.
    pub(crate) fn insert(&mut self, item: T) -> bool {
        match self {
            SmallSet::Few(v) => match v.binary_search(&item) {
                Ok(_) => false,
                Err(pos) if v.len() < FEW => {
                    v.reserve_exact(1);
                    v.insert(pos, item);
                    true
                }
                Err(_) => {
                    let mut set: BTreeSet<T> = v.iter().copied().collect();
                    set.insert(item);
                    *self = SmallSet::Many(set);
                    true
                }
            },
            SmallSet::Many(s) => s.insert(item),
        }
    }

    /// Removes `item`; returns whether it was there.
    pub(crate) fn remove(&mut self, item: &T) -> bool {
        match self {
            SmallSet::Few(v) => match v.binary_search(item) {
                Ok(pos) => {
                    v.remove(pos);
                    if v.is_empty() {
                        *v = Vec::new();
                    }
                    true
                }
                Err(_) => false,
            },
            SmallSet::Many(s) => s.remove(item),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            SmallSet::Few(v) => v.is_empty(),
            SmallSet::Many(s) => s.is_empty(),
        }
    }

    /// The items in ascending order (reversible).
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        let (few, many) = match self {
            SmallSet::Few(v) => (Some(v.iter()), None),
            SmallSet::Many(s) => (None, Some(s.iter())),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_behaves_as_an_ordered_set_below_and_above_the_switch() {
        let mut s = SmallSet::default();
        let mut model = BTreeSet::new();
        // A pseudo-random walk of inserts and removes over 0..100, growing
        // past the switch to a tree.
        let mut x = 7u64;
        for step in 0..5_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let item = (x >> 33) % 100;
            if step % 3 == 0 {
                assert_eq!(s.remove(&item), model.remove(&item));
            } else {
                assert_eq!(s.insert(item), model.insert(item));
            }
            assert_eq!(
                s.iter().copied().collect::<Vec<_>>(),
                model.iter().copied().collect::<Vec<_>>()
            );
            assert_eq!(s.iter().next_back(), model.iter().next_back());
            assert_eq!(s.is_empty(), model.is_empty());
        }
        assert!(matches!(s, SmallSet::Many(_)), "the walk grew past {FEW}");
    }

    #[test]
    fn a_few_items_take_exactly_their_room() {
        let mut s = SmallSet::default();
        for i in [5u32, 1, 3] {
            s.insert(i);
        }
        let SmallSet::Few(v) = &s else {
            panic!("three items are few")
        };
        assert_eq!(v.capacity(), 3);
        assert_eq!(v, &[1, 3, 5]);
        for i in [1, 3, 5] {
            s.remove(&i);
        }
        let SmallSet::Few(v) = &s else {
            panic!("still few")
        };
        assert_eq!(v.capacity(), 0, "an emptied set gives its memory back");
    }
}
