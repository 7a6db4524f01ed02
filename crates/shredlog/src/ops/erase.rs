//! Erasure request (GDPR Art. 17): the visitor's personal data becomes
//! unreadable at once, by destroying keys; the conversations stay readable
//! with `<redacted>` where it was.

use crate::error::{Error, Result};
use crate::ids::hex;
use crate::shred::{AuditEntry, Intent};
use crate::store::Store;

impl Store {
    /// Erasure request (GDPR Art. 17): destroys the PII key of every transcript
    /// of the visitor and wipes their directory entry, in place and durably,
    /// before returning. Their transcripts still read, with `<redacted>` where
    /// personal data was; a lookup by the email finds nothing.
    ///
    /// Costs two syncs and work proportional to the visitor's transcripts.
    /// Legal holds do not stop an erasure unless the operator set
    /// `holds_block_erasure`, in which case it is refused with
    /// [`Error::LegalHold`].
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`], [`Error::LegalHold`], [`Error::ReadOnly`],
    /// [`Error::Io`].
    pub fn redact_visitor(&self, email: &str, reference: &str) -> Result<AuditEntry> {
        self.engine.screen.reference(reference)?;
        let engine = &*self.engine;
        let mut w = engine.writer.lock();
        engine.check_writable()?;
        let vid = self.vid_of(email)?;
        let (transcripts, live_keys, callers) = {
            let index = engine.index.read();
            let gens = index.generations_of(&vid);
            let callers: Vec<String> = gens.iter().map(|t| t.caller_id.clone()).collect();
            let live = gens.iter().filter(|t| t.has_pii()).count();
            (gens.len(), live, callers)
        };
        if engine.policy.read().holds_block_erasure
            && (self.held(&vid, "") || callers.iter().any(|id| self.held(&vid, id)))
        {
            return Err(Error::LegalHold);
        }
        let mut e = super::entry(
            "erasure",
            format!("visitor:{}", hex(&vid)),
            reference,
            Some(Intent::erase_visitor(&vid)),
        );
        e.transcripts = transcripts as u64;
        e.keys_destroyed = live_keys as u64 + 1;
        let logged = self.shred_logged(&mut w, e, |s| s.erase_visitor(&vid).map(|_| ()))?;
        drop(w);
        self.forget_restriction(&vid)?;
        Ok(logged)
    }
}
