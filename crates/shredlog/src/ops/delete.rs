//! Deletion: a transcript, or everything of a visitor, destroyed outright
//! (both keys), so it no longer reads at all.

use super::Preview;
use crate::error::{Error, Result};
use crate::ids::hex;
use crate::index::TranscriptEntry;
use crate::record::Vid;
use crate::shred::{AuditEntry, Intent};
use crate::store::Store;

/// What a deletion does; each deletion and its preview work from it.
struct DeletionPlan {
    transcripts: u64,
    keys_destroyed: u64,
    held: u64,
}

impl DeletionPlan {
    /// Any hold refuses a deletion, whatever `holds_block_erasure` says.
    fn refused_by_hold(&self) -> bool {
        self.held > 0
    }
}

impl Store {
    /// Deletes everything of a visitor: both keys of every transcript and the
    /// directory entry. Refused with [`Error::LegalHold`] if a hold applies.
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`], [`Error::LegalHold`], [`Error::ReadOnly`],
    /// [`Error::Io`].
    pub fn delete_visitor(&self, email: &str, reference: &str) -> Result<AuditEntry> {
        self.engine.screen.reference(reference)?;
        let engine = &*self.engine;
        let mut w = engine.writer.lock();
        engine.check_writable()?;
        let vid = self.vid_of(email)?;
        let plan = self.visitor_deletion_plan(&vid)?;
        if plan.refused_by_hold() {
            return Err(Error::LegalHold);
        }
        let mut e = super::entry(
            "delete-visitor",
            format!("visitor:{}", hex(&vid)),
            reference,
            Some(Intent::delete_visitor(&vid)),
        );
        e.transcripts = plan.transcripts;
        e.keys_destroyed = plan.keys_destroyed;
        let logged = self.shred_logged(&mut w, e, |s| s.delete_visitor(&vid).map(|_| ()))?;
        drop(w);
        self.forget_restriction(&vid)?;
        Ok(logged)
    }

    /// What [`Store::delete_visitor`] would do now, without doing it. Writes
    /// nothing; works on a store opened read-only.
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`].
    pub fn preview_delete_visitor(&self, email: &str) -> Result<Preview> {
        let vid = self.vid_of(email)?;
        let plan = self.visitor_deletion_plan(&vid)?;
        Ok(Preview {
            op: "delete-visitor".into(),
            subject: format!("visitor:{}", hex(&vid)),
            transcripts: plan.transcripts,
            keys_destroyed: plan.keys_destroyed,
            held: plan.held,
            refused_by_hold: plan.refused_by_hold(),
            restricted: self.is_restricted(&vid),
            detail: None,
        })
    }

    fn visitor_deletion_plan(&self, vid: &Vid) -> Result<DeletionPlan> {
        let index = self.engine.index.read();
        let gens = index.generations_of(vid)?;
        let keys: u64 = gens.iter().map(|t| 1 + u64::from(t.has_pii())).sum();
        let mut held = gens
            .iter()
            .filter(|t| self.held(vid, Some(t.caller)))
            .count() as u64;
        if held == 0 && self.held(vid, None) {
            // A visitor hold refuses the deletion even without transcripts.
            held = 1;
        }
        Ok(DeletionPlan {
            transcripts: gens.len() as u64,
            // Both keys of every transcript, and the directory entry.
            keys_destroyed: keys + 1,
            held,
        })
    }

    /// Deletes one transcript (both keys): it no longer reads at all.
    /// Refused with [`Error::LegalHold`] if a hold applies.
    ///
    /// # Errors
    /// [`Error::TranscriptNotFound`], [`Error::LegalHold`], [`Error::ReadOnly`],
    /// [`Error::Io`].
    pub fn delete_transcript(&self, id: &str, reference: &str) -> Result<AuditEntry> {
        self.engine.screen.reference(reference)?;
        let engine = &*self.engine;
        let mut w = engine.writer.lock();
        engine.check_writable()?;
        let t = self.entry_by_caller(id)?;
        let plan = self.transcript_deletion_plan(&t);
        if plan.refused_by_hold() {
            return Err(Error::LegalHold);
        }
        let mut e = super::entry(
            "delete-transcript",
            format!("transcript:{id}"),
            reference,
            Some(Intent::delete_transcript(&t.tid)),
        );
        e.transcripts = plan.transcripts;
        e.keys_destroyed = plan.keys_destroyed;
        e.detail = Some(format!("tid:{}", hex(&t.tid)));
        self.shred_logged(&mut w, e, |s| s.delete_transcript(&t.tid).map(|_| ()))
    }

    /// What [`Store::delete_transcript`] would do now, without doing it.
    /// Writes nothing; works on a store opened read-only.
    ///
    /// # Errors
    /// [`Error::TranscriptNotFound`].
    pub fn preview_delete_transcript(&self, id: &str) -> Result<Preview> {
        let t = self.entry_by_caller(id)?;
        let plan = self.transcript_deletion_plan(&t);
        Ok(Preview {
            op: "delete-transcript".into(),
            subject: format!("transcript:{id}"),
            transcripts: plan.transcripts,
            keys_destroyed: plan.keys_destroyed,
            held: plan.held,
            refused_by_hold: plan.refused_by_hold(),
            restricted: self.is_restricted(&t.vid),
            detail: Some(format!("tid:{}", hex(&t.tid))),
        })
    }

    fn transcript_deletion_plan(&self, t: &TranscriptEntry) -> DeletionPlan {
        DeletionPlan {
            transcripts: 1,
            keys_destroyed: 1 + u64::from(t.has_pii()),
            held: u64::from(self.held(&t.vid, Some(t.caller))),
        }
    }
}
