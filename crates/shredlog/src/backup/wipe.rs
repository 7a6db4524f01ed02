//! Applying erasure journal records to a keyring copy, in memory: the slots
//! of the keys an operation destroyed are zeroed, by the rules the store
//! itself follows (`shred::apply`): redacting a generation zeroes its PII
//! key; deleting one, its PII and content keys; erasing or deleting a
//! visitor, also their directory entry; and a visitor none of whose
//! generations keeps a live PII key (or who has none left) loses the
//! directory entry too.
//!
//! Slot indices differ between copies (keyring compaction moves slots), so
//! records name random ids (generation and visitor ids), which every slot
//! carries, and each copy is searched for them.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::journal::Record;
use crate::error::Result;
use crate::keyring::Slot;
use crate::keyring::rekey::Image;
use crate::record::{Tid, Vid};
use crate::shred::Intent;

struct Model {
    /// Transcript slots: (index, tid, vid).
    transcripts: Vec<(u32, Tid, Vid)>,
    /// PII slots: index → tid.
    pii: HashMap<u32, Tid>,
    /// Visitor slots: (index, vid).
    visitors: Vec<(u32, Vid)>,
    wiped: BTreeSet<u32>,
}

impl Model {
    fn live(&self, i: u32) -> bool {
        !self.wiped.contains(&i)
    }

    fn has_pii(&self, tid: &Tid) -> bool {
        self.pii.iter().any(|(i, t)| t == tid && self.live(*i))
    }

    fn vid_of(&self, tid: &Tid) -> Option<Vid> {
        self.transcripts
            .iter()
            .find(|(i, t, _)| t == tid && self.live(*i))
            .map(|(_, _, v)| *v)
    }

    fn tids_of(&self, vid: &Vid) -> Vec<Tid> {
        self.transcripts
            .iter()
            .filter(|(i, _, v)| v == vid && self.live(*i))
            .map(|(_, t, _)| *t)
            .collect()
    }

    fn redact(&mut self, tid: &Tid) {
        let slots: Vec<u32> = self
            .pii
            .iter()
            .filter(|(_, t)| *t == tid)
            .map(|(i, _)| *i)
            .collect();
        self.wiped.extend(slots);
    }

    fn delete(&mut self, tid: &Tid) {
        self.redact(tid);
        let slots: Vec<u32> = self
            .transcripts
            .iter()
            .filter(|(_, t, _)| t == tid)
            .map(|(i, _, _)| *i)
            .collect();
        self.wiped.extend(slots);
    }

    fn clear_directory(&mut self, vid: &Vid) {
        let slots: Vec<u32> = self
            .visitors
            .iter()
            .filter(|(_, v)| v == vid)
            .map(|(i, _)| *i)
            .collect();
        self.wiped.extend(slots);
    }

    /// The directory rule after a generation of `vid` lost keys.
    fn directory_rule(&mut self, vid: &Vid) {
        let tids = self.tids_of(vid);
        if tids.is_empty() || !tids.iter().any(|t| self.has_pii(t)) {
            self.clear_directory(vid);
        }
    }

    fn apply(&mut self, intent: &Intent) {
        match intent {
            Intent::EraseVisitor { visitor } => {
                for t in self.tids_of(&visitor.0) {
                    self.redact(&t);
                }
                self.clear_directory(&visitor.0);
            }
            Intent::DeleteVisitor { visitor } => {
                for t in self.tids_of(&visitor.0) {
                    self.delete(&t);
                }
                self.clear_directory(&visitor.0);
            }
            Intent::DeleteTranscript { tid } => self.generation(&tid.0, true),
            Intent::Retention {
                delete, targets, ..
            } => {
                for t in targets {
                    self.generation(&t.0, *delete);
                }
            }
            Intent::Rewrite { old, .. } => self.generation(&old.0, true),
            Intent::Hold { .. } | Intent::Restriction { .. } => {}
        }
    }

    fn generation(&mut self, tid: &Tid, delete: bool) {
        let vid = self.vid_of(tid);
        if delete {
            self.delete(tid);
        } else {
            self.redact(tid);
        }
        if let Some(v) = vid {
            self.directory_rule(&v);
        }
    }
}

/// Zeroes in `image` every slot the records destroyed. Returns how many
/// slots were zeroed.
pub(crate) fn apply(image: &mut Image, what: &Path, records: &[Record]) -> Result<usize> {
    if records.is_empty() {
        return Ok(0);
    }
    let mut m = Model {
        transcripts: Vec::new(),
        pii: HashMap::new(),
        visitors: Vec::new(),
        wiped: BTreeSet::new(),
    };
    for (i, slot) in image.slots(what)? {
        match slot {
            Slot::Transcript(t) => m.transcripts.push((i, t.tid, t.vid)),
            Slot::Pii(p) => {
                m.pii.insert(i, p.tid);
            }
            Slot::Visitor(v) => m.visitors.push((i, v.vid)),
            // Where an entry is: nothing to wipe for an erasure.
            Slot::Link(_) => {}
        }
    }
    for r in records {
        m.apply(&r.intent);
    }
    for i in &m.wiped {
        image.wipe(*i);
    }
    Ok(m.wiped.len())
}
