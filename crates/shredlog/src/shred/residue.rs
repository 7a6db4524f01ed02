//! What the whole audit log says was destroyed, held against what is still
//! there: a live generation whose keys an erasure, a deletion, a retention
//! run or a rewrite in the log destroyed, and which has them again (a bug,
//! or a keyring put back from an older copy after the index was rebuilt).
//! `verify` reports each one; [`crate::Store::reapply_audit_log`] carries the
//! entry's intent out again (docs/FORMAT.md §8.3).
//!
//! Open reads only the log's tail ([`super::redo`]); this reads all of it,
//! so it is for `verify` and that repair, never for open.

use std::collections::HashMap;

use super::intent::Intent;
use super::log::AuditEntry;
use crate::index::TranscriptEntry;
use crate::record::{Tid, Vid};

/// What an entry left to a generation it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Left {
    /// Its PII key only (an erasure, a retention run that redacts).
    Content,
    /// Nothing (a deletion, a retention run that deletes, a rewrite's old
    /// generation).
    Nothing,
}

/// The entry that destroyed the most of a visitor's or generation's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cover {
    /// The entry's sequence number.
    pub seq: u64,
    pub left: Left,
}

/// A live generation that still has a key an entry destroyed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Residue {
    pub tid: Tid,
    pub vid: Vid,
    /// The entry that destroyed it.
    pub seq: u64,
    /// Its slots that hold what the entry destroyed: the PII key's, and the
    /// content key's when the entry left nothing.
    pub slots: Vec<u32>,
}

/// A key-destroying entry of the log, as `reapply` carries it out again.
#[derive(Clone, Debug)]
pub(crate) struct Logged {
    pub op: String,
    pub subject: String,
    pub intent: Intent,
}

/// Every visitor and generation whose keys the log's entries destroyed.
#[derive(Debug, Default)]
pub(crate) struct Destroyed {
    visitors: HashMap<Vid, Cover>,
    generations: HashMap<Tid, Cover>,
    /// The key-destroying entries, by sequence number.
    entries: HashMap<u64, Logged>,
}

/// Keeps the cover that leaves less (the earlier of two alike).
fn note<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Cover>, k: K, c: Cover) {
    let e = map.entry(k).or_insert(c);
    if e.left == Left::Content && c.left == Left::Nothing {
        *e = c;
    }
}

impl Destroyed {
    /// What `entries` (a whole log, oldest first) destroyed.
    pub(crate) fn of(entries: &[AuditEntry]) -> Destroyed {
        let mut d = Destroyed::default();
        for e in entries {
            let Some(intent) = e.intent() else { continue };
            let cover = |left| Cover { seq: e.seq, left };
            match &intent {
                Intent::EraseVisitor { visitor } => {
                    note(&mut d.visitors, visitor.0, cover(Left::Content));
                }
                Intent::DeleteVisitor { visitor } => {
                    note(&mut d.visitors, visitor.0, cover(Left::Nothing));
                }
                Intent::DeleteTranscript { tid } => {
                    note(&mut d.generations, tid.0, cover(Left::Nothing));
                }
                Intent::Retention {
                    delete, targets, ..
                } => {
                    let left = if *delete {
                        Left::Nothing
                    } else {
                        Left::Content
                    };
                    for t in targets {
                        note(&mut d.generations, t.0, cover(left));
                    }
                }
                Intent::Rewrite { old, .. } => {
                    note(&mut d.generations, old.0, cover(Left::Nothing));
                }
                Intent::Hold { .. } | Intent::Restriction { .. } => continue,
            }
            d.entries.insert(
                e.seq,
                Logged {
                    op: e.op.clone(),
                    subject: e.subject.clone(),
                    intent,
                },
            );
        }
        d
    }

    /// What `t` still has that an entry destroyed, if anything.
    pub(crate) fn residue(&self, t: &TranscriptEntry) -> Option<Residue> {
        let by_visitor = self.visitors.get(&t.vid);
        let by_generation = self.generations.get(&t.tid);
        let cover = match (by_visitor, by_generation) {
            (Some(a), Some(b)) if b.left == Left::Nothing && a.left == Left::Content => *b,
            (Some(a), _) => *a,
            (None, Some(b)) => *b,
            (None, None) => return None,
        };
        let mut slots: Vec<u32> = t.pii_slot.into_iter().collect();
        if cover.left == Left::Nothing {
            slots.push(t.content_slot);
        }
        (!slots.is_empty()).then_some(Residue {
            tid: t.tid,
            vid: t.vid,
            seq: cover.seq,
            slots,
        })
    }

    /// Key-destroying entry `seq`.
    pub(crate) fn entry(&self, seq: u64) -> Option<&Logged> {
        self.entries.get(&seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::CallerKey;

    fn entry(seq: u64, op: &str, intent: Intent) -> AuditEntry {
        AuditEntry {
            seq,
            at: String::new(),
            op: op.to_owned(),
            subject: String::new(),
            transcripts: 0,
            keys_destroyed: 0,
            reference: String::new(),
            detail: None,
            intent: Some(intent),
        }
    }

    fn generation(tid: u8, vid: u8, pii: bool) -> TranscriptEntry {
        TranscriptEntry::new(
            [tid; 16],
            [vid; 16],
            CallerKey::random().hash("t"),
            10 + u32::from(tid),
            pii.then_some(100 + u32::from(tid)),
            1,
            0,
        )
    }

    #[test]
    fn each_intent_covers_what_it_destroyed() {
        let log = [
            entry(1, "erasure", Intent::erase_visitor(&[1; 16])),
            entry(2, "delete-visitor", Intent::delete_visitor(&[2; 16])),
            entry(3, "delete-transcript", Intent::delete_transcript(&[3; 16])),
            entry(4, "retention", Intent::retention(0, false, &[[4; 16]])),
            entry(5, "retention", Intent::retention(0, true, &[[5; 16]])),
            entry(6, "rewrite", Intent::rewrite(&[6; 16], &[7; 16])),
            entry(
                7,
                "restriction",
                Intent::Restriction {
                    visitor: super::super::intent::HexId([9; 16]),
                    on: true,
                },
            ),
        ];
        let d = Destroyed::of(&log);
        let slots = |t: &TranscriptEntry| d.residue(t).map(|r| (r.seq, r.slots));
        // Erased visitor: a PII key is residue, a content key is not.
        assert_eq!(slots(&generation(20, 1, true)), Some((1, vec![120])));
        assert_eq!(slots(&generation(21, 1, false)), None);
        // Deleted visitor, deleted transcript, retention delete, rewritten
        // old generation: any live generation is residue, both keys.
        assert_eq!(slots(&generation(22, 2, false)), Some((2, vec![32])));
        assert_eq!(slots(&generation(3, 8, true)), Some((3, vec![103, 13])));
        assert_eq!(slots(&generation(5, 8, false)), Some((5, vec![15])));
        assert_eq!(slots(&generation(6, 8, false)), Some((6, vec![16])));
        // Retention redact: only the PII key.
        assert_eq!(slots(&generation(4, 8, true)), Some((4, vec![104])));
        assert_eq!(slots(&generation(4, 8, false)), None);
        // The rewrite's new generation, a restricted visitor's, and anyone
        // else's are not covered.
        assert_eq!(slots(&generation(7, 8, true)), None);
        assert_eq!(slots(&generation(30, 9, true)), None);
        assert_eq!(d.entry(6).map(|e| e.op.as_str()), Some("rewrite"));
        assert!(d.entry(7).is_none(), "a restriction destroys nothing");
    }

    #[test]
    fn a_deletion_outranks_an_erasure_of_the_same_generation() {
        let log = [
            entry(1, "erasure", Intent::erase_visitor(&[1; 16])),
            entry(2, "delete-transcript", Intent::delete_transcript(&[20; 16])),
        ];
        let d = Destroyed::of(&log);
        let r = d.residue(&generation(20, 1, true)).unwrap();
        assert_eq!((r.seq, r.slots), (2, vec![120, 30]));
        let r = d.residue(&generation(21, 1, true)).unwrap();
        assert_eq!((r.seq, r.slots), (1, vec![121]));
    }
}
