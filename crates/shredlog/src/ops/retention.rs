//! Retention: redacting (or deleting) everything older than a period, except
//! what a legal hold covers; the policy the operator stores for it.

use crate::error::{Error, Result};
use crate::message::Timestamp;
use crate::policy::RetentionPolicy;
use crate::record::Tid;
use crate::shred::{AuditEntry, Intent};
use crate::store::Store;

impl Store {
    /// Retention: redacts (or with `delete`, deletes) every transcript whose
    /// latest message is older than `now_ms - older_than_ms`, except those under
    /// a legal hold. Walks the time index from its oldest end; never scans the log.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a negative period, [`Error::ReadOnly`],
    /// [`Error::Io`].
    pub fn apply_retention(
        &self,
        older_than_ms: i64,
        delete: bool,
        now_ms: i64,
        reference: &str,
    ) -> Result<AuditEntry> {
        self.engine.screen.reference(reference)?;
        if older_than_ms < 0 {
            return Err(Error::invalid("the retention period must not be negative"));
        }
        let engine = &*self.engine;
        let mut w = engine.writer.lock();
        engine.check_writable()?;
        let cutoff = now_ms.saturating_sub(older_than_ms);
        let (targets, keys) = {
            let index = engine.index.read();
            let mut targets: Vec<Tid> = Vec::new();
            let mut keys = 0u64;
            for (last, t) in index.by_age() {
                if last >= cutoff {
                    break;
                }
                if self.held(&t.vid, &t.caller_id) || (!delete && !t.has_pii()) {
                    continue;
                }
                keys += u64::from(t.has_pii()) + u64::from(delete);
                targets.push(t.tid);
            }
            (targets, keys)
        };
        let mode = if delete { "delete" } else { "redact" };
        let intent = Intent::retention(cutoff, delete, &targets);
        let mut e = super::entry("retention", "store".into(), reference, Some(intent.clone()));
        e.transcripts = targets.len() as u64;
        e.keys_destroyed = keys;
        e.detail = Some(format!("cutoff:{cutoff},mode:{mode}"));
        self.shred_logged(&mut w, e, |s| s.apply(&intent).map(|_| ()))
    }

    /// The stored retention policy.
    pub fn retention_policy(&self) -> Option<RetentionPolicy> {
        self.engine.policy.read().retention.clone()
    }

    /// Stores (or with `None` removes) the retention policy.
    ///
    /// # Errors
    /// [`Error::Io`] if the policy file cannot be written, [`Error::ReadOnly`].
    pub fn set_retention_policy(&self, policy: Option<RetentionPolicy>) -> Result<()> {
        self.update_policy(None, |p| p.retention = policy)
    }

    /// Applies the stored retention policy now, if there is one.
    ///
    /// # Errors
    /// As [`Store::apply_retention`].
    pub fn run_retention_policy(&self, reference: &str) -> Result<Option<AuditEntry>> {
        self.engine.screen.reference(reference)?;
        let Some(p) = self.retention_policy() else {
            return Ok(None);
        };
        self.apply_retention(
            p.older_than_ms,
            p.delete,
            Timestamp::now().unix_millis(),
            reference,
        )
        .map(Some)
    }
}
