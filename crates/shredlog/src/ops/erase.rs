//! Erasure request (GDPR Art. 17): the visitor's personal data becomes
//! unreadable at once, by destroying keys; the conversations stay readable
//! with `<redacted>` where it was.

use super::Preview;
use crate::error::{Error, Result};
use crate::ids::hex;
use crate::record::Vid;
use crate::shred::{AuditEntry, Intent};
use crate::store::Store;

/// What an erasure of one visitor does; [`Store::redact_visitor`] and
/// [`Store::preview_redact_visitor`] both work from it.
struct ErasurePlan {
    transcripts: u64,
    keys_destroyed: u64,
    held: u64,
    refused_by_hold: bool,
}

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
        let plan = self.erasure_plan(&vid)?;
        if plan.refused_by_hold {
            return Err(Error::LegalHold);
        }
        let mut e = super::entry(
            "erasure",
            format!("visitor:{}", hex(&vid)),
            reference,
            Some(Intent::erase_visitor(&vid)),
        );
        e.transcripts = plan.transcripts;
        e.keys_destroyed = plan.keys_destroyed;
        let logged = self.shred_logged(&mut w, e, |s| s.erase_visitor(&vid).map(|_| ()))?;
        drop(w);
        self.forget_restriction(&vid)?;
        Ok(logged)
    }

    /// What [`Store::redact_visitor`] would do now, without doing it: the
    /// counts of its erasure report, the transcripts under a legal hold, and
    /// whether a hold would refuse it. Writes nothing; works on a store
    /// opened read-only.
    ///
    /// ```
    /// # use shredlog::{Store, Options, interchange};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path(), Options::default())?;
    /// # store.append(&interchange::parse_line(r#"{"transcript":"t-1","ts":"2024-05-02T10:15:03Z","from":"visitor","visitor":{"email":"ann@example.com"},"kind":"text","text":"hi"}"#)?)?;
    /// let preview = store.preview_redact_visitor("Ann@Example.com")?;
    /// assert_eq!((preview.transcripts, preview.keys_destroyed), (1, 2));
    /// assert_eq!(store.redact_visitor("ann@example.com", "T-1")?.transcripts, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`].
    pub fn preview_redact_visitor(&self, email: &str) -> Result<Preview> {
        let vid = self.vid_of(email)?;
        let plan = self.erasure_plan(&vid)?;
        Ok(Preview {
            op: "erasure".into(),
            subject: format!("visitor:{}", hex(&vid)),
            transcripts: plan.transcripts,
            keys_destroyed: plan.keys_destroyed,
            held: plan.held,
            refused_by_hold: plan.refused_by_hold,
            restricted: self.is_restricted(&vid),
            detail: None,
        })
    }

    fn erasure_plan(&self, vid: &Vid) -> Result<ErasurePlan> {
        let engine = &*self.engine;
        let index = engine.index.read();
        let gens = index.generations_of(vid)?;
        let live_keys = gens.iter().filter(|t| t.has_pii()).count() as u64;
        let held = gens
            .iter()
            .filter(|t| self.held(vid, Some(t.caller)))
            .count() as u64;
        let any_hold = held > 0 || self.held(vid, None);
        Ok(ErasurePlan {
            transcripts: gens.len() as u64,
            // Every live PII key, and the directory entry.
            keys_destroyed: live_keys + 1,
            held,
            refused_by_hold: any_hold && engine.policy.read().holds_block_erasure,
        })
    }
}
