//! Deletion: a transcript, or everything of a visitor, destroyed outright
//! (both keys), so it no longer reads at all.

use crate::error::{Error, Result};
use crate::ids::hex;
use crate::shred::{AuditEntry, Intent};
use crate::store::Store;

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
        let (transcripts, keys, callers) = {
            let index = engine.index.read();
            let gens = index.generations_of(&vid);
            let callers: Vec<String> = gens.iter().map(|t| t.caller_id.clone()).collect();
            let keys: usize = gens.iter().map(|t| 1 + usize::from(t.has_pii())).sum();
            (gens.len(), keys, callers)
        };
        if callers.iter().any(|id| self.held(&vid, id)) || self.held(&vid, "") {
            return Err(Error::LegalHold);
        }
        let mut e = super::entry(
            "delete-visitor",
            format!("visitor:{}", hex(&vid)),
            reference,
            Some(Intent::delete_visitor(&vid)),
        );
        e.transcripts = transcripts as u64;
        e.keys_destroyed = keys as u64 + 1;
        let logged = self.shred_logged(&mut w, e, |s| s.delete_visitor(&vid).map(|_| ()))?;
        drop(w);
        self.forget_restriction(&vid)?;
        Ok(logged)
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
        if self.held(&t.vid, id) {
            return Err(Error::LegalHold);
        }
        let mut e = super::entry(
            "delete-transcript",
            format!("transcript:{id}"),
            reference,
            Some(Intent::delete_transcript(&t.tid)),
        );
        e.transcripts = 1;
        e.keys_destroyed = 1 + u64::from(t.has_pii());
        e.detail = Some(format!("tid:{}", hex(&t.tid)));
        self.shred_logged(&mut w, e, |s| s.delete_transcript(&t.tid).map(|_| ()))
    }
}
