//! The data keys of live transcripts, held apart from the index: the index
//! says where a transcript's records and key slots are, the key cache holds
//! what opens them.
//!
//! Keys are read from the keyring when a transcript is read or written and
//! kept for at most `capacity` generations; one pushed out is zeroised
//! ([`Key`] wipes itself on drop) and read again when next needed. A key
//! leaves the cache as soon as its slot is wiped. Loading goes by the index
//! entry the caller holds under the index's lock, so the slots it names are
//! the ones on disk (keyring compaction moves slots under the index's write
//! lock).

use std::sync::Arc;

use parking_lot::RwLock;

use super::{Slot, SlotReader};
use crate::error::{Error, Result};
use crate::ids::IdMap;
use crate::index::TranscriptEntry;
use crate::record::Tid;
use crate::seal::Key;

/// A transcript generation's keys, and its caller id (read from the same
/// slot: the index holds only the id's hash).
#[derive(Clone)]
pub(crate) struct TranscriptKeys {
    pub content: Key,
    /// `None` once the PII key is destroyed (or for a generation written
    /// without one).
    pub pii: Option<Key>,
    pub caller_id: Arc<str>,
}

/// The index named slots of `t` that hold another generation's (a bug).
fn wrong_slots(tid: &Tid) -> Error {
    Error::Internal(format!(
        "the index names keyring slots that hold another transcript's keys (generation {})",
        crate::ids::hex(tid)
    ))
}

/// Keys by transcript generation, at most `capacity` of them.
pub(crate) struct KeyCache {
    keys: RwLock<IdMap<TranscriptKeys>>,
    /// Caller ids read without the keys (a listing), at most `capacity`.
    ids: RwLock<IdMap<Arc<str>>>,
    capacity: usize,
    /// Where keys not held are read from (`None`: nowhere, in unit tests).
    source: Option<SlotReader>,
}

impl KeyCache {
    /// A cache of at most `capacity` generations' keys (at least one),
    /// loading from `source`.
    pub(crate) fn new(source: Option<SlotReader>, capacity: usize) -> KeyCache {
        KeyCache {
            keys: RwLock::new(IdMap::default()),
            ids: RwLock::new(IdMap::default()),
            capacity: capacity.max(1),
            source,
        }
    }

    /// Holds `keys` for `tid` (replacing any earlier ones).
    pub(crate) fn insert(&self, tid: Tid, keys: TranscriptKeys) {
        crate::ids::insert_bounded(&mut self.keys.write(), self.capacity, tid, keys);
    }

    /// A copy of the keys of generation `t`, read from the keyring if not
    /// held. `t` must come from the index under its lock (held by the
    /// caller until this returns).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Corrupt`] if a slot cannot be read;
    /// [`Error::Internal`] if a slot holds another generation's keys.
    pub(crate) fn get(&self, t: &TranscriptEntry) -> Result<TranscriptKeys> {
        if let Some(k) = self.keys.read().get(&t.tid) {
            return Ok(k.clone());
        }
        let keys = self.load(t)?;
        self.insert(t.tid, keys.clone());
        Ok(keys)
    }

    /// Generation `t`'s caller id: from its keys if held, else read from
    /// its slot without keeping the keys (for questions about many
    /// generations, which would push out the keys in use); the id is kept,
    /// among at most `capacity` ids. `t` as for [`KeyCache::get`].
    ///
    /// # Errors
    /// As [`KeyCache::get`].
    pub(crate) fn caller_id(&self, t: &TranscriptEntry) -> Result<Arc<str>> {
        self.caller_id_at(&t.tid, t.content_slot)
    }

    /// The caller id of generation `tid`, whose transcript slot is
    /// `content_slot` (a listing's: it has no whole entry).
    pub(crate) fn caller_id_at(&self, tid: &Tid, content_slot: u32) -> Result<Arc<str>> {
        self.caller_ids_at(&[(*tid, content_slot)])?
            .pop()
            .ok_or_else(|| Error::Internal("no caller id for a generation asked for".into()))
    }

    /// [`KeyCache::caller_id_at`] of several generations (a visitor's
    /// list), in order, each of the cache's locks taken once.
    pub(crate) fn caller_ids_at(&self, wanted: &[(Tid, u32)]) -> Result<Vec<Arc<str>>> {
        let mut found: Vec<Option<Arc<str>>> = {
            let keys = self.keys.read();
            wanted
                .iter()
                .map(|(tid, _)| keys.get(tid).map(|k| Arc::clone(&k.caller_id)))
                .collect()
        };
        if found.iter().any(Option::is_none) {
            let ids = self.ids.read();
            for (f, (tid, _)) in found.iter_mut().zip(wanted) {
                if f.is_none() {
                    *f = ids.get(tid).cloned();
                }
            }
        }
        let mut read = Vec::new();
        for (f, (tid, slot)) in found.iter_mut().zip(wanted) {
            if f.is_some() {
                continue;
            }
            // Only the transcript slot (its key is wiped as it is dropped).
            let id: Arc<str> = match self.source()?.read(*slot)? {
                Some(Slot::Transcript(s)) if s.tid == *tid => Arc::from(s.caller_id),
                _ => return Err(wrong_slots(tid)),
            };
            *f = Some(Arc::clone(&id));
            read.push((*tid, id));
        }
        if !read.is_empty() {
            let mut ids = self.ids.write();
            for (tid, id) in read {
                crate::ids::insert_bounded(&mut ids, self.capacity, tid, id);
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Reads slot `index` from the keyring (for `verify`), holding nothing.
    pub(crate) fn read_slot(&self, index: u32) -> Result<Option<Slot>> {
        self.source()?.read(index)
    }

    fn source(&self) -> Result<&SlotReader> {
        self.source
            .as_ref()
            .ok_or_else(|| Error::Internal("a transcript's keys are not in the key cache".into()))
    }

    fn load(&self, t: &TranscriptEntry) -> Result<TranscriptKeys> {
        let source = self.source()?;
        let wrong = || wrong_slots(&t.tid);
        let (content, caller_id) = match source.read(t.content_slot)? {
            Some(Slot::Transcript(s)) if s.tid == t.tid => (s.content_key, Arc::from(s.caller_id)),
            _ => return Err(wrong()),
        };
        let pii = match t.pii_slot {
            None => None,
            Some(slot) => match source.read(slot)? {
                Some(Slot::Pii(p)) if p.tid == t.tid => Some(p.pii_key),
                _ => return Err(wrong()),
            },
        };
        Ok(TranscriptKeys {
            content,
            pii,
            caller_id,
        })
    }

    /// Whether the generation's PII key is held.
    #[cfg(test)]
    pub(crate) fn has_pii(&self, tid: &Tid) -> bool {
        self.keys.read().get(tid).is_some_and(|k| k.pii.is_some())
    }

    /// Number of generations whose keys are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.read().len()
    }

    /// Forgets the PII key (its slot was wiped).
    pub(crate) fn forget_pii(&self, tid: &Tid) {
        if let Some(k) = self.keys.write().get_mut(tid) {
            k.pii = None;
        }
    }

    /// Forgets both keys (the transcript was deleted).
    pub(crate) fn forget(&self, tid: &Tid) {
        self.keys.write().remove(tid);
        self.ids.write().remove(tid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TranscriptKeys {
        TranscriptKeys {
            content: Key::random().unwrap(),
            pii: Some(Key::random().unwrap()),
            caller_id: Arc::from("t-1"),
        }
    }

    #[test]
    fn keys_go_with_their_slots() {
        let cache = KeyCache::new(None, 8);
        let tid = [1; 16];
        cache.insert(tid, keys());
        assert!(cache.has_pii(&tid));
        cache.forget_pii(&tid);
        assert!(!cache.has_pii(&tid));
        assert_eq!(cache.len(), 1);
        cache.forget(&tid);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity() {
        let cache = KeyCache::new(None, 3);
        for i in 0..10u8 {
            cache.insert([i; 16], keys());
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.len(), 3);
    }
}
