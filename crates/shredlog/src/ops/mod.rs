//! The privacy operations, one file per operation, each built on the
//! engine's verbs: it writes its audit entry (the intent, `shred`), carries it
//! out through a [`Shredder`] (keyring wipes, key cache, index), and syncs.
//!
//! | file | operation |
//! | --- | --- |
//! | `erase.rs` | erasure request (Art. 17) |
//! | `delete.rs` | deleting a transcript or a visitor |
//! | `retention.rs` | retention runs and the stored policy |
//! | `export.rs` | export (Art. 15, 20) |
//! | `consent.rs` | consent state and history |
//! | `holds.rs` | legal holds and restriction of processing (Art. 18) |
//! | `rewrite.rs` | re-redaction by rewrite, rectification (Art. 16) |
//! | `preview.rs` | dry runs of erasure, deletion and retention |
//! | `reapply.rs` | destroying again what the audit log destroyed and is still there |

use crate::error::{Error, Result};
use crate::ids::hex;
use crate::index::CallerHash;
use crate::keyring::directory::Sectors;
use crate::message::Timestamp;
use crate::policy::Policy;
use crate::record::Vid;
use crate::shred::{AuditEntry, AuditLog, AuditMarks, Intent, Shredder};
use crate::store::{Store, Writer};

mod consent;
mod delete;
mod erase;
mod export;
mod holds;
mod preview;
mod reapply;
mod retention;
mod rewrite;

pub use consent::{ConsentEvent, ConsentState};
pub use export::{ExportedMessage, VisitorExport};
pub use holds::HoldTarget;
pub use preview::Preview;
pub use rewrite::Rectification;

/// A new audit entry (its `seq` is filled in when logged).
fn entry(op: &str, subject: String, reference: &str, intent: Option<Intent>) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at: Timestamp::now().as_str().to_owned(),
        op: op.to_owned(),
        subject,
        transcripts: 0,
        keys_destroyed: 0,
        reference: reference.to_owned(),
        detail: None,
        intent,
    }
}

impl Store {
    /// The visitor an email belongs to.
    fn vid_of(&self, email: &str) -> Result<Vid> {
        self.engine
            .vid_by_address(&self.engine.index.read(), email, Sectors::Mapped)?
            .ok_or(Error::VisitorNotFound)
    }

    /// Whether a legal hold covers the visitor or the transcript.
    fn held(&self, vid: &Vid, caller: Option<CallerHash>) -> bool {
        let p = self.engine.policy.read();
        p.visitor_holds.contains_key(&hex(vid))
            || caller.is_some_and(|c| {
                p.transcript_holds
                    .keys()
                    .any(|id| self.engine.caller_key.hash(id) == c)
            })
    }

    /// Whether the visitor's processing is restricted now.
    fn is_restricted(&self, vid: &Vid) -> bool {
        matches!(self.check_not_restricted(vid), Err(Error::Restricted))
    }

    /// A restriction ends with the visitor's personal data: once erased, it
    /// could never be lifted (lifting needs the email) and nothing personal is
    /// left to protect.
    fn forget_restriction(&self, vid: &Vid) -> Result<()> {
        let key = hex(vid);
        if self.engine.policy.read().restricted.contains_key(&key) {
            self.update_policy(None, |p| {
                p.restricted.remove(&key);
            })?;
        }
        Ok(())
    }

    /// Appends an audit entry durably and notes it in the keyring's state,
    /// with every earlier entry as done (their effects were synced before
    /// this operation began); the keyring sync that follows every entry
    /// writes both.
    fn log(&self, w: &mut Writer, e: AuditEntry) -> Result<AuditEntry> {
        self.engine.check_writable()?;
        // Checked by every operation before it began; checked again here so
        // that no path can log a reference unchecked.
        self.engine.screen.reference(&e.reference)?;
        let mut audit = self.engine.audit.lock();
        let before = audit.marks();
        let r = audit.append(e);
        match &r {
            Ok(_) => {
                let (entries, bytes) = audit.marks();
                w.keyring.note_audit(entries, bytes, Some(before));
            }
            Err(err) => self.engine.commit.poison(err),
        }
        r
    }

    /// The common shape of a key-destroying operation: the entry is logged
    /// (the intent), then carried out on the keyring, the key cache and the
    /// index, and the keyring synced, under the writer's lock. A failure half
    /// way poisons the store; the next open finishes it from the log.
    fn shred_logged(
        &self,
        w: &mut Writer,
        e: AuditEntry,
        carry_out: impl FnOnce(&mut Shredder<'_>) -> Result<()>,
    ) -> Result<AuditEntry> {
        let logged = self.log(w, e)?;
        let engine = &*self.engine;
        self.guard(|| {
            let mut index = engine.index.write();
            let mut shredder = Shredder {
                index: &mut index,
                keys: &engine.keys,
                wipe: &mut w.keyring,
            };
            carry_out(&mut shredder)?;
            drop(index);
            w.keyring.sync()
        })?;
        Ok(logged)
    }

    /// Runs keyring work, poisoning the store if it fails half-way (the next
    /// open finishes it from the audit log).
    fn guard<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let r = f();
        if let Err(err) = &r
            && !matches!(err, Error::Invalid(_) | Error::Limit(_) | Error::ReadOnly)
        {
            self.engine.commit.poison(err);
        }
        r
    }

    /// Changes the policy file; `audit_seq` is the entry the change belongs to.
    fn update_policy(&self, audit_seq: Option<u64>, f: impl FnOnce(&mut Policy)) -> Result<()> {
        self.engine.check_writable()?;
        let mut p = self.engine.policy.write();
        let mut next = p.clone();
        f(&mut next);
        if let Some(seq) = audit_seq {
            next.audit_seq = seq;
        }
        next.legacy = false;
        next.save(&self.engine.dir)?;
        *p = next;
        Ok(())
    }

    /// The audit log, oldest first.
    ///
    /// # Errors
    /// [`Error::Io`] if the log cannot be read, [`Error::Corrupt`] naming the
    /// first damaged line if any is.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        let _a = self.engine.audit.lock();
        let (entries, recovery) = AuditLog::read_all(&self.engine.dir, AuditMarks::default())?;
        if let Some((offset, reason)) = recovery.damage.into_iter().next() {
            return Err(Error::corrupt(
                self.engine.dir.join(crate::shred::AUDIT_FILE),
                offset,
                reason,
            ));
        }
        Ok(entries)
    }
}
