//! Retention: redacting (or deleting) everything older than a period, except
//! what a legal hold covers; the policy the operator stores for it.

use super::Preview;
use crate::error::{Error, Result};
use crate::message::Timestamp;
use crate::policy::RetentionPolicy;
use crate::record::Tid;
use crate::shred::{AuditEntry, Intent};
use crate::store::Store;

/// What a retention run does; [`Store::apply_retention`] and
/// [`Store::preview_retention`] both work from it.
struct RetentionPlan {
    cutoff: i64,
    delete: bool,
    targets: Vec<Tid>,
    keys_destroyed: u64,
    held: u64,
}

impl RetentionPlan {
    fn detail(&self) -> String {
        let mode = if self.delete { "delete" } else { "redact" };
        format!("cutoff:{},mode:{mode}", self.cutoff)
    }
}

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
        let engine = &*self.engine;
        let mut w = engine.writer.lock();
        engine.check_writable()?;
        let plan = self.retention_plan(older_than_ms, delete, now_ms)?;
        let intent = Intent::retention(plan.cutoff, delete, &plan.targets);
        let mut e = super::entry("retention", "store".into(), reference, Some(intent.clone()));
        e.transcripts = plan.targets.len() as u64;
        e.keys_destroyed = plan.keys_destroyed;
        e.detail = Some(plan.detail());
        self.shred_logged(&mut w, e, |s| s.apply(&intent).map(|_| ()))
    }

    /// What [`Store::apply_retention`] would do now, without doing it: how
    /// many transcripts it would redact (or delete), the keys that destroys,
    /// and how many transcripts it would leave alone because a legal hold
    /// covers them. Writes nothing; works on a store opened read-only.
    ///
    /// ```
    /// # use shredlog::{Store, Options, Timestamp, interchange};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path(), Options::default())?;
    /// # store.append(&interchange::parse_line(r#"{"transcript":"t-1","ts":"2024-05-02T10:15:03Z","from":"visitor","visitor":{"email":"ann@example.com"},"kind":"text","text":"hi"}"#)?)?;
    /// let now = Timestamp::now().unix_millis();
    /// let preview = store.preview_retention(90 * 86_400_000, false, now)?;
    /// assert_eq!((preview.transcripts, preview.held), (1, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Invalid`] for a negative period.
    pub fn preview_retention(
        &self,
        older_than_ms: i64,
        delete: bool,
        now_ms: i64,
    ) -> Result<Preview> {
        let plan = self.retention_plan(older_than_ms, delete, now_ms)?;
        Ok(Preview {
            op: "retention".into(),
            subject: "store".into(),
            transcripts: plan.targets.len() as u64,
            keys_destroyed: plan.keys_destroyed,
            held: plan.held,
            refused_by_hold: false,
            restricted: false,
            detail: Some(plan.detail()),
        })
    }

    fn retention_plan(
        &self,
        older_than_ms: i64,
        delete: bool,
        now_ms: i64,
    ) -> Result<RetentionPlan> {
        if older_than_ms < 0 {
            return Err(Error::invalid("the retention period must not be negative"));
        }
        let cutoff = now_ms.saturating_sub(older_than_ms);
        let index = self.engine.index.read();
        let mut plan = RetentionPlan {
            cutoff,
            delete,
            targets: Vec::new(),
            keys_destroyed: 0,
            held: 0,
        };
        for (last, t) in index.by_age()? {
            if last >= cutoff {
                break;
            }
            if !delete && !t.has_pii() {
                // Already redacted: nothing left for a redacting run to do.
                continue;
            }
            if self.held(&t.vid, Some(t.caller)) {
                plan.held += 1;
                continue;
            }
            plan.keys_destroyed += u64::from(t.has_pii()) + u64::from(delete);
            plan.targets.push(t.tid);
        }
        Ok(plan)
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
