//! Carrying out what an intent destroys: keyring slots wiped, keys dropped
//! from the key cache, the index told. The live operations (`ops`) and the
//! redo at open (`shred::redo`) both go through here, so an operation
//! finished after a crash does exactly what it would have done.
//!
//! Two rules apply whenever a generation is redacted or deleted: a visitor
//! none of whose generations still has a live PII key loses their directory
//! entry, and so does a visitor left without generations (nothing may keep an
//! email that no data needs).

use super::intent::Intent;
use crate::error::Result;
use crate::index::Index;
use crate::keyring::{KeyCache, Keyring, Slot};
use crate::record::{Tid, Vid};

/// Where destroyed keys go: the keyring (wiped in place, not synced), or,
/// for a read-only store applying a logged erasure in memory, nowhere.
pub(crate) trait Wipe {
    /// Wipes keyring slot `slot`, which the index says holds `owner`'s
    /// key or directory entry.
    fn wipe(&mut self, slot: u32, owner: Owner) -> Result<()>;

    /// Whether a wipe since the last call destroyed anything (the index
    /// named slots that were still there).
    fn destroyed(&mut self) -> bool {
        true
    }
}

/// Whose a slot is: a generation's (its keys) or a visitor's (its
/// directory entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    Transcript(Tid),
    Visitor(Vid),
}

impl Owner {
    /// Whether `slot` is one of its own: a key slot of the generation, the
    /// visitor's directory entry.
    pub(crate) fn holds(self, slot: &Slot) -> bool {
        match (slot, self) {
            (Slot::Transcript(t), Owner::Transcript(tid)) => t.tid == tid,
            (Slot::Pii(p), Owner::Transcript(tid)) => p.tid == tid,
            (Slot::Visitor(v), Owner::Visitor(vid)) => v.vid == vid,
            _ => false,
        }
    }
}

impl Wipe for Keyring {
    /// Refuses (an internal error, nothing wiped) a slot that holds
    /// another generation's keys or another visitor's entry: an index
    /// naming one is a bug, stopped here rather than destroying someone
    /// else's data. A free slot is wiped again (harmless), a damaged one
    /// wiped as the index says.
    fn wipe(&mut self, slot: u32, owner: Owner) -> Result<()> {
        let another = matches!(self.read_slot(slot), Ok(Some(s)) if !owner.holds(&s));
        if another {
            return Err(crate::Error::Internal(format!(
                "keyring slot {slot} holds another's keys or entry than the index names; nothing was wiped"
            )));
        }
        Keyring::wipe(self, slot)
    }
}

/// Wipes nothing: only the index and the key cache forget the keys.
pub(crate) struct InMemory;

impl Wipe for InMemory {
    fn wipe(&mut self, _slot: u32, _owner: Owner) -> Result<()> {
        Ok(())
    }
}

/// Wipes only the slots that still hold what the index says they hold, and
/// tells whether it found any: open building on the index's run carries
/// out again the operations logged since the run, whose wipes may all have
/// reached the keyring, and whose wiped directory cells may hold another
/// visitor's entry since (never touched). With `write` false (a read-only
/// open) it writes nothing.
pub(crate) struct WipeUnwiped<'a> {
    keyring: &'a mut Keyring,
    write: bool,
    destroyed: bool,
}

impl<'a> WipeUnwiped<'a> {
    pub(crate) fn new(keyring: &'a mut Keyring, write: bool) -> WipeUnwiped<'a> {
        WipeUnwiped {
            keyring,
            write,
            destroyed: false,
        }
    }

    /// The keyring itself, to wipe whatever the index names.
    pub(crate) fn keyring(&mut self) -> &mut Keyring {
        self.keyring
    }
}

impl Wipe for WipeUnwiped<'_> {
    fn wipe(&mut self, slot: u32, owner: Owner) -> Result<()> {
        // A slot that cannot be read (damaged) is left alone: whose it is
        // cannot be told (`verify` reports it).
        let holds = matches!(self.keyring.read_slot(slot), Ok(Some(s)) if owner.holds(&s));
        if holds {
            if self.write {
                self.keyring.wipe(slot)?;
            }
            self.destroyed = true;
        }
        Ok(())
    }

    fn destroyed(&mut self) -> bool {
        std::mem::take(&mut self.destroyed)
    }
}

/// What an intent acts on.
pub(crate) struct Shredder<'a> {
    pub index: &'a mut Index,
    pub keys: &'a KeyCache,
    pub wipe: &'a mut dyn Wipe,
}

impl Shredder<'_> {
    /// Destroys a generation's PII key, and the visitor's directory entry
    /// once no generation of the visitor has one; returns whether the key
    /// was alive. (The entry is checked even when the key was gone: open,
    /// carrying out again an operation logged after the index's run, may
    /// know the key gone but not yet the entry.)
    pub(crate) fn redact_transcript(&mut self, tid: &Tid) -> Result<bool> {
        let Some(vid) = self.index.transcript(tid)?.map(|t| t.vid) else {
            return Ok(false);
        };
        let alive = match self.index.forget_pii(tid)? {
            Some(slot) => {
                self.wipe.wipe(slot, Owner::Transcript(*tid))?;
                self.keys.forget_pii(tid);
                true
            }
            None => false,
        };
        if !self.index.generations_of(&vid)?.iter().any(|t| t.has_pii()) {
            self.clear_directory(&vid)?;
        }
        Ok(alive)
    }

    /// Destroys both keys of a generation; returns whether it existed.
    pub(crate) fn delete_transcript(&mut self, tid: &Tid) -> Result<bool> {
        self.redact_transcript(tid)?;
        let Some(t) = self.index.remove_transcript(tid)? else {
            return Ok(false);
        };
        self.wipe.wipe(t.content_slot, Owner::Transcript(*tid))?;
        self.keys.forget(tid);
        if self.index.generations_of(&t.vid)?.is_empty() {
            self.clear_directory(&t.vid)?;
            self.index.drop_visitor_if_unused(&t.vid)?;
        }
        Ok(true)
    }

    /// Wipes a visitor's directory entry.
    pub(crate) fn clear_directory(&mut self, vid: &Vid) -> Result<()> {
        if let Some(slot) = self.index.clear_directory(vid)? {
            self.wipe.wipe(slot, Owner::Visitor(*vid))?;
        }
        Ok(())
    }

    /// Erasure: every PII key of the visitor, and their directory entry.
    /// Returns whether anything was left to destroy.
    pub(crate) fn erase_visitor(&mut self, vid: &Vid) -> Result<bool> {
        let pending = self.index.visitor(vid)?.is_some_and(|v| v.slot != 0)
            || self.index.generations_of(vid)?.iter().any(|t| t.has_pii());
        if !pending {
            return Ok(false);
        }
        let tids: Vec<Tid> = self
            .index
            .generations_of(vid)?
            .iter()
            .map(|t| t.tid)
            .collect();
        for tid in &tids {
            self.redact_transcript(tid)?;
        }
        self.clear_directory(vid)?;
        Ok(true)
    }

    /// Deletion of a visitor: both keys of every generation, and the
    /// directory entry. Returns whether anything was left to destroy.
    pub(crate) fn delete_visitor(&mut self, vid: &Vid) -> Result<bool> {
        if !self.index.knows_visitor(vid)? {
            return Ok(false);
        }
        let tids: Vec<Tid> = self
            .index
            .generations_of(vid)?
            .iter()
            .map(|t| t.tid)
            .collect();
        for tid in &tids {
            self.delete_transcript(tid)?;
        }
        self.clear_directory(vid)?;
        self.index.drop_visitor_if_unused(vid)?;
        Ok(true)
    }

    /// Carries out a key-destroying intent (not synced). Returns whether it
    /// destroyed anything (false: it had been carried out already). Holds and
    /// restrictions destroy nothing: `shred::redo` applies them to the policy.
    pub(crate) fn apply(&mut self, intent: &Intent) -> Result<bool> {
        Ok(match intent {
            Intent::EraseVisitor { visitor } => self.erase_visitor(&visitor.0)?,
            Intent::DeleteVisitor { visitor } => self.delete_visitor(&visitor.0)?,
            Intent::DeleteTranscript { tid } => self.delete_transcript(&tid.0)?,
            Intent::Retention {
                delete, targets, ..
            } => {
                let mut any = false;
                for t in targets {
                    any |= if *delete {
                        self.delete_transcript(&t.0)?
                    } else {
                        self.redact_transcript(&t.0)?
                    };
                }
                any
            }
            Intent::Rewrite { old, new } => {
                let done = self.delete_transcript(&old.0)?;
                if done {
                    self.index.make_visible(&new.0)?;
                }
                done
            }
            Intent::Hold { .. } | Intent::Restriction { .. } => false,
        })
    }
}
