//! Carrying out again what the audit log says was destroyed, where keys are
//! still there (`verify` reports them: docs/FORMAT.md §8.3).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::shred::residue::Destroyed;
use crate::shred::{AuditEntry, Intent};
use crate::store::Store;

impl Store {
    /// Destroys again every key that an erasure, a deletion, a retention run
    /// or a rewrite in the audit log destroyed and that the store still
    /// holds: the residue `verify` reports (a store whose keyring was put
    /// back from an older copy, or one hit by a bug that brought a key back).
    /// For each entry whose keys are left it logs a `reapply` entry carrying
    /// the same intent, then carries it out as the original operation would
    /// (a crash half way is finished at the next open, like any logged
    /// operation). Returns the entries logged: none when nothing is left.
    ///
    /// Reads the whole audit log and every generation: an operator's repair,
    /// not something to run often.
    ///
    /// ```
    /// # use shredlog::{Store, Options};
    /// # let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), Options::default())?;
    /// assert!(store.reapply_audit_log("TICKET-9")?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Invalid`] for a reference that holds
    /// personal data, [`Error::Corrupt`] if the audit log or the index is
    /// damaged, [`Error::Io`].
    pub fn reapply_audit_log(&self, reference: &str) -> Result<Vec<AuditEntry>> {
        self.engine.screen.reference(reference)?;
        let engine = &*self.engine;
        let mut w = engine.writer.lock();
        engine.check_writable()?;
        let log = self.audit_log()?;
        let destroyed = Destroyed::of(&log);
        // Entry → (generations, keys) it left.
        let mut left: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for t in engine.index.read().transcripts() {
            if let Some(r) = destroyed.residue(&*t?) {
                let n = left.entry(r.seq).or_default();
                n.0 += 1;
                n.1 += r.slots.len() as u64;
            }
        }
        let mut out = Vec::with_capacity(left.len());
        for (seq, (transcripts, keys)) in left {
            let logged = destroyed
                .entry(seq)
                .cloned()
                .ok_or_else(|| Error::Internal(format!("audit entry {seq} destroys nothing")))?;
            let (op, intent) = (logged.op, logged.intent);
            let mut e = super::entry("reapply", logged.subject, reference, Some(intent.clone()));
            e.transcripts = transcripts;
            e.keys_destroyed = keys;
            e.detail = Some(format!("entry:{seq},op:{op}"));
            out.push(self.shred_logged(&mut w, e, |s| s.apply(&intent).map(|_| ()))?);
        }
        drop(w);
        for e in &out {
            if let Some(Intent::EraseVisitor { visitor } | Intent::DeleteVisitor { visitor }) =
                &e.intent
            {
                self.forget_restriction(&visitor.0)?;
            }
        }
        Ok(out)
    }
}
