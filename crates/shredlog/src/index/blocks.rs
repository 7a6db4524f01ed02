//! A bounded cache of record-location file blocks ([`super::Sidecar`]): the
//! summary and entry blocks that lookups read, kept after their checksum
//! was checked, so that a transcript read again, or listed again, costs no
//! positioned read and no checksum.
//!
//! Blocks are immutable: a location file never changes once written, and
//! one written again for a rewritten segment has another generation, which
//! is part of the key. So nothing is ever invalidated; a block of a file
//! that is gone is only pushed out by newer ones. It holds random ids,
//! offsets, lengths and times, never a key or personal data.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use parking_lot::Mutex;

use super::sidecar::BLOCK;
use crate::ids::IdHasher;

/// (segment, generation of its file, block number).
pub(crate) type BlockKey = (u64, u32, u64);

/// At most `capacity` blocks of 4 KiB.
#[derive(Debug)]
pub(crate) struct BlockCache {
    /// Keyed by numbers the store chose (never a caller): hashed as ids are.
    blocks: Mutex<HashMap<BlockKey, Arc<[u8]>, BuildHasherDefault<IdHasher>>>,
    capacity: usize,
    /// Whether blocks read are kept (not while open reads blocks that
    /// lookups later will mostly not ask for again).
    filling: std::sync::atomic::AtomicBool,
}

impl BlockCache {
    /// A cache of at most `bytes` of blocks (none for less than one block).
    pub(crate) fn new(bytes: usize) -> BlockCache {
        BlockCache {
            blocks: Mutex::new(HashMap::default()),
            capacity: bytes / BLOCK,
            filling: std::sync::atomic::AtomicBool::new(true),
        }
    }

    pub(crate) fn get(&self, key: &BlockKey) -> Option<Arc<[u8]>> {
        self.blocks.lock().get(key).cloned()
    }

    /// Keeps `block` under `key`, pushing out another block when full
    /// ([`crate::ids::insert_bounded`]).
    pub(crate) fn insert(&self, key: BlockKey, block: Arc<[u8]>) {
        if self.capacity == 0 || !self.filling.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        crate::ids::insert_bounded(&mut self.blocks.lock(), self.capacity, key, block);
    }

    /// Keeps the blocks read from now on (`true`, the default) or not.
    pub(crate) fn set_filling(&self, filling: bool) {
        self.filling
            .store(filling, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether blocks read are kept now.
    pub(crate) fn is_filling(&self) -> bool {
        self.filling.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes of blocks held.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.blocks.lock().len() * BLOCK
    }
}

impl Default for BlockCache {
    fn default() -> BlockCache {
        BlockCache::new(crate::config::DEFAULT_CACHE_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_holds_at_most_its_capacity_and_gives_back_what_it_holds() {
        let c = BlockCache::new(3 * BLOCK);
        for b in 0..10u64 {
            c.insert((1, 1, b), Arc::from(vec![b as u8; BLOCK]));
            assert!(c.held_bytes() <= 3 * BLOCK);
        }
        let held: Vec<u64> = (0..10).filter(|b| c.get(&(1, 1, *b)).is_some()).collect();
        assert_eq!(held.len(), 3);
        for b in held {
            assert_eq!(c.get(&(1, 1, b)).unwrap()[0], b as u8);
            assert!(c.get(&(1, 2, b)).is_none(), "another generation");
        }
        let none = BlockCache::new(BLOCK - 1);
        none.insert((1, 1, 0), Arc::from(vec![0u8; BLOCK]));
        assert!(none.get(&(1, 1, 0)).is_none());
    }
}
