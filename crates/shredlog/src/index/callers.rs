//! Caller id → the generation reads and writes of that id see.
//!
//! A map from strings would hold every caller id a second time (the
//! generation's entry has it) and cost about 100 bytes per transcript; this
//! one is keyed by a 64-bit keyed hash of the id and checks the id against
//! the generation it finds, so it holds no string. Two ids with one hash (as
//! likely as a random 64-bit collision, but possible) are told apart by the
//! spill map, which holds the later one by its id.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use crate::ids::IdMap;
use crate::record::Tid;

use super::TranscriptEntry;

#[derive(Debug, Default)]
pub(crate) struct Callers {
    by_hash: HashMap<u64, Tid, std::hash::BuildHasherDefault<U64Hasher>>,
    spill: HashMap<String, Tid>,
    keys: RandomState,
}

type Transcripts = IdMap<Box<TranscriptEntry>>;

/// The caller id of generation `tid`, if it is in `transcripts`.
fn owner<'a>(transcripts: &'a Transcripts, tid: &Tid) -> Option<&'a str> {
    transcripts.get(tid).map(|t| t.caller_id.as_str())
}

impl Callers {
    fn hash(&self, id: &str) -> u64 {
        self.keys.hash_one(id)
    }

    /// The generation `id` leads to, if it is in `transcripts`.
    pub(crate) fn get(&self, id: &str, transcripts: &Transcripts) -> Option<Tid> {
        let tid = match self.spill.get(id) {
            Some(tid) => *tid,
            None => *self.by_hash.get(&self.hash(id))?,
        };
        (owner(transcripts, &tid) == Some(id)).then_some(tid)
    }

    /// Makes `id` lead to `tid` (whatever it led to before).
    pub(crate) fn insert(&mut self, id: &str, tid: Tid, transcripts: &Transcripts) {
        if let Some(t) = self.spill.get_mut(id) {
            *t = tid;
            return;
        }
        let h = self.hash(id);
        let held_by_another = self
            .by_hash
            .get(&h)
            .and_then(|old| owner(transcripts, old))
            .is_some_and(|other| other != id);
        if held_by_another {
            self.spill.insert(id.to_owned(), tid);
        } else {
            self.by_hash.insert(h, tid);
        }
    }

    /// Makes `id` lead nowhere if it leads to `tid`.
    pub(crate) fn remove(&mut self, id: &str, tid: &Tid) {
        if self.spill.get(id) == Some(tid) {
            self.spill.remove(id);
            return;
        }
        let h = self.hash(id);
        if self.by_hash.get(&h) == Some(tid) {
            self.by_hash.remove(&h);
        }
    }

    /// Every generation some id leads to (some may be gone).
    pub(crate) fn targets(&self) -> impl Iterator<Item = &Tid> {
        self.by_hash.values().chain(self.spill.values())
    }
}

/// The keys are keyed hashes already: used as they are.
#[derive(Default)]
struct U64Hasher(u64);

impl std::hash::Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tid: u8, caller: &str) -> Box<TranscriptEntry> {
        Box::new(TranscriptEntry::new(
            [tid; 16],
            [0; 16],
            caller.into(),
            2,
            None,
            1,
            0,
        ))
    }

    #[test]
    fn ids_lead_to_their_generation_and_a_hash_collision_spills() {
        let mut transcripts = Transcripts::default();
        let mut c = Callers::default();
        transcripts.insert([1; 16], entry(1, "t-1"));
        c.insert("t-1", [1; 16], &transcripts);
        assert_eq!(c.get("t-1", &transcripts), Some([1; 16]));
        assert_eq!(c.get("t-2", &transcripts), None);
        // A new generation of the same id replaces the old one.
        transcripts.insert([2; 16], entry(2, "t-1"));
        c.insert("t-1", [2; 16], &transcripts);
        assert_eq!(c.get("t-1", &transcripts), Some([2; 16]));
        c.remove("t-1", &[1; 16]);
        assert_eq!(c.get("t-1", &transcripts), Some([2; 16]), "not the one");
        c.remove("t-1", &[2; 16]);
        assert_eq!(c.get("t-1", &transcripts), None);

        // Force a collision: "t-3" sits where "t-4" hashes.
        transcripts.insert([3; 16], entry(3, "t-3"));
        transcripts.insert([4; 16], entry(4, "t-4"));
        let h4 = c.hash("t-4");
        c.by_hash.insert(h4, [3; 16]);
        assert_eq!(
            c.get("t-4", &transcripts),
            None,
            "t-3's generation is not t-4's"
        );
        c.insert("t-4", [4; 16], &transcripts);
        assert_eq!(c.spill.len(), 1);
        assert_eq!(c.get("t-4", &transcripts), Some([4; 16]));
        assert_eq!(c.targets().count(), 2);
        c.remove("t-4", &[4; 16]);
        assert_eq!(c.get("t-4", &transcripts), None);
        assert!(c.spill.is_empty());
    }

    #[test]
    fn a_gone_generation_leads_nowhere_and_its_place_is_taken() {
        let mut transcripts = Transcripts::default();
        let mut c = Callers::default();
        transcripts.insert([1; 16], entry(1, "t-1"));
        c.insert("t-1", [1; 16], &transcripts);
        transcripts.remove(&[1; 16]);
        assert_eq!(c.get("t-1", &transcripts), None);
        transcripts.insert([5; 16], entry(5, "t-1"));
        c.insert("t-1", [5; 16], &transcripts);
        assert!(c.spill.is_empty());
        assert_eq!(c.get("t-1", &transcripts), Some([5; 16]));
    }
}
