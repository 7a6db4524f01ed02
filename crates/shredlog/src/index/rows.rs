//! A bounded cache of the answers lookups found in immutable index files:
//! the rows of a run ([`super::disk::Disk`]: a visitor's slot, a visitor's
//! listing, a generation's row, a caller hash's generation, each under the
//! section it came from and the 16-byte id it was looked up by), and the
//! items of record-location files ([`super::Sidecar`]: a generation's
//! summary and its entries, under the file's segment and generation).
//!
//! Neither file changes once written, so an answer never goes stale: a
//! run's cache lives and dies with the run, and a location file's items
//! are keyed by the file's generation (a file written again for a
//! rewritten segment has another). An answer takes tens or hundreds of
//! bytes where the blocks it was read from take 4 KiB each, so the same
//! memory holds the answers of many more lookups than the [`super::blocks`]
//! cache holds blocks: a visitor listed or a transcript read again costs
//! no block lookup, no positioned read and no checksum. Only answers found
//! are kept (an append's lookup of a caller id not yet stored is asked
//! once). It holds random ids, numbers, offsets and times, never a key or
//! personal data.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::ids::IdHasher;

/// A run row's key: (run section, the id looked up).
pub(crate) type RowKey = (u8, [u8; 16]);

/// Bytes an entry is counted as besides its value: the table's slot (key,
/// pointer, control byte, spare room), its place in the queue and the
/// value's allocation header.
const OVERHEAD: usize = 128;

/// At most `capacity` bytes of answers, counted as [`OVERHEAD`] plus the
/// value's length each.
#[derive(Debug)]
pub(crate) struct RowCache<K = RowKey> {
    inner: Mutex<Rows<K>>,
    capacity: usize,
    /// Whether rows are kept (not while open reads rows that queries
    /// mostly will not ask for).
    filling: AtomicBool,
}

#[derive(Debug)]
struct Rows<K> {
    map: HashMap<K, Arc<[u8]>, BuildHasherDefault<IdHasher>>,
    /// The keys in the order they were kept.
    order: VecDeque<K>,
    bytes: usize,
}

fn cost(value: &[u8]) -> usize {
    OVERHEAD + value.len()
}

impl<K: Hash + Eq + Copy> RowCache<K> {
    /// A cache of at most `bytes` (none below one entry's overhead).
    pub(crate) fn new(bytes: usize) -> RowCache<K> {
        RowCache {
            inner: Mutex::new(Rows {
                map: HashMap::default(),
                order: VecDeque::new(),
                bytes: 0,
            }),
            capacity: bytes,
            filling: AtomicBool::new(true),
        }
    }

    /// The value kept under `key`.
    pub(crate) fn get(&self, key: &K) -> Option<Arc<[u8]>> {
        self.inner.lock().map.get(key).cloned()
    }

    /// Keeps `value` under `key` (unless a value is kept for it already),
    /// pushing out the entries kept longest ago until it fits (first in,
    /// first out: no bookkeeping on a hit). A value larger than the whole
    /// cache is not kept.
    pub(crate) fn insert(&self, key: K, value: Arc<[u8]>) {
        let need = cost(&value);
        if need > self.capacity || !self.filling.load(Ordering::Relaxed) {
            return;
        }
        let mut rows = self.inner.lock();
        let rows = &mut *rows;
        // Two lookups that missed at once found the same answer (the files
        // do not change): the one kept first stays.
        if rows.map.contains_key(&key) {
            return;
        }
        while rows.bytes + need > self.capacity {
            let Some(oldest) = rows.order.pop_front() else {
                break;
            };
            if let Some(old) = rows.map.remove(&oldest) {
                rows.bytes -= cost(&old);
            }
        }
        rows.bytes += need;
        rows.map.insert(key, value);
        rows.order.push_back(key);
    }

    /// Keeps the rows given from now on (`true`, the default) or not.
    pub(crate) fn set_filling(&self, on: bool) {
        self.filling.store(on, Ordering::Relaxed);
    }

    /// Bytes counted as held.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_holds_at_most_its_capacity_and_gives_back_what_it_holds() {
        let c: RowCache = RowCache::new(5 * (OVERHEAD + 10));
        for i in 0..50u8 {
            c.insert((i % 2, [i; 16]), Arc::from(vec![i; 10]));
            assert!(c.held_bytes() <= 5 * (OVERHEAD + 10));
        }
        let held: Vec<u8> = (0..50u8)
            .filter(|i| c.get(&(i % 2, [*i; 16])).is_some())
            .collect();
        assert_eq!(held, [45, 46, 47, 48, 49], "the last kept");
        for i in held {
            assert_eq!(&*c.get(&(i % 2, [i; 16])).unwrap(), &[i; 10]);
            assert!(c.get(&(i % 2 + 1, [i; 16])).is_none(), "another section");
        }
        // A key kept again keeps its first value, counted once.
        c.insert((0, [1; 16]), Arc::from(vec![1; 10]));
        c.insert((0, [1; 16]), Arc::from(vec![2; 20]));
        assert_eq!(&*c.get(&(0, [1; 16])).unwrap(), &[1; 10]);
        let rows = c.inner.lock();
        let sum: usize = rows.map.values().map(|v| cost(v)).sum();
        assert_eq!(rows.bytes, sum);
        assert_eq!(rows.order.len(), rows.map.len());
        drop(rows);
        // Too large for the cache, or a cache too small for anything.
        c.insert((0, [9; 16]), Arc::from(vec![0; 6 * (OVERHEAD + 10)]));
        assert!(c.get(&(0, [9; 16])).is_none());
        let none: RowCache = RowCache::new(OVERHEAD - 1);
        none.insert((0, [1; 16]), Arc::from(Vec::new()));
        assert!(none.get(&(0, [1; 16])).is_none());
        // Not filling: nothing new is kept, what is kept stays.
        c.set_filling(false);
        c.insert((0, [7; 16]), Arc::from(vec![7; 10]));
        assert!(c.get(&(0, [7; 16])).is_none());
        assert!(c.get(&(0, [1; 16])).is_some());
        c.set_filling(true);
        c.insert((0, [7; 16]), Arc::from(vec![7; 10]));
        assert!(c.get(&(0, [7; 16])).is_some());
    }
}
