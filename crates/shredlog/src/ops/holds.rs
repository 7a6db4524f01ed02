//! Legal holds (exempt from retention and deletion, and from erasure when the
//! operator says so) and restriction of processing (GDPR Art. 18). Both live
//! in the policy file; each change is logged first, then written there.

use crate::error::Result;
use crate::ids::hex;
use crate::policy::Hold;
use crate::shred::intent::HexId;
use crate::shred::redo::apply_to_policy;
use crate::shred::{AuditEntry, Intent};
use crate::store::Store;

/// What a legal hold applies to.
#[derive(Clone, Copy, Debug)]
pub enum HoldTarget<'a> {
    /// Every transcript of the visitor with this email.
    Email(&'a str),
    /// One transcript, by the caller's id.
    Transcript(&'a str),
}

impl Store {
    /// Places a legal hold: the target is exempt from retention and deletion.
    ///
    /// # Errors
    /// [`crate::Error::VisitorNotFound`] / [`crate::Error::TranscriptNotFound`],
    /// [`crate::Error::ReadOnly`], [`crate::Error::Io`].
    pub fn place_hold(&self, target: HoldTarget<'_>, reference: &str) -> Result<AuditEntry> {
        self.hold(target, reference, true)
    }

    /// Releases a legal hold.
    ///
    /// # Errors
    /// As [`Store::place_hold`].
    pub fn release_hold(&self, target: HoldTarget<'_>, reference: &str) -> Result<AuditEntry> {
        self.hold(target, reference, false)
    }

    fn hold(&self, target: HoldTarget<'_>, reference: &str, place: bool) -> Result<AuditEntry> {
        self.engine.screen.reference(reference)?;
        let op = if place { "hold" } else { "release-hold" };
        let (subject, intent) = match target {
            HoldTarget::Email(email) => {
                let vid = self.vid_of(email)?;
                let intent = Intent::Hold {
                    visitor: Some(HexId(vid)),
                    transcript: None,
                    place,
                };
                (format!("visitor:{}", hex(&vid)), intent)
            }
            HoldTarget::Transcript(id) => {
                self.entry_by_caller(id)?;
                let intent = Intent::Hold {
                    visitor: None,
                    transcript: Some(id.to_owned()),
                    place,
                };
                (format!("transcript:{id}"), intent)
            }
        };
        self.policy_change(super::entry(op, subject, reference, Some(intent)))
    }

    /// Legal holds in force: (subject, hold).
    pub fn holds(&self) -> Vec<(String, Hold)> {
        let p = self.engine.policy.read();
        let v = p
            .visitor_holds
            .iter()
            .map(|(k, h)| (format!("visitor:{k}"), h.clone()));
        let t = p
            .transcript_holds
            .iter()
            .map(|(k, h)| (format!("transcript:{k}"), h.clone()));
        v.chain(t).collect()
    }

    /// Whether legal holds also refuse erasure requests (default: no).
    ///
    /// # Errors
    /// [`crate::Error::Io`] if the policy file cannot be written,
    /// [`crate::Error::ReadOnly`].
    pub fn set_holds_block_erasure(&self, block: bool) -> Result<()> {
        self.update_policy(None, |p| p.holds_block_erasure = block)
    }

    /// Restriction of processing (Art. 18): appends and ordinary reads of the
    /// visitor's data fail with [`crate::Error::Restricted`]; export, erasure
    /// and lifting the restriction still work.
    ///
    /// # Errors
    /// [`crate::Error::VisitorNotFound`], [`crate::Error::ReadOnly`],
    /// [`crate::Error::Io`].
    pub fn restrict_visitor(&self, email: &str, reference: &str) -> Result<AuditEntry> {
        self.restriction(email, reference, true)
    }

    /// Lifts a restriction.
    ///
    /// # Errors
    /// As [`Store::restrict_visitor`].
    pub fn lift_restriction(&self, email: &str, reference: &str) -> Result<AuditEntry> {
        self.restriction(email, reference, false)
    }

    fn restriction(&self, email: &str, reference: &str, on: bool) -> Result<AuditEntry> {
        self.engine.screen.reference(reference)?;
        let vid = self.vid_of(email)?;
        let op = if on {
            "restriction"
        } else {
            "lift-restriction"
        };
        let intent = Intent::Restriction {
            visitor: HexId(vid),
            on,
        };
        self.policy_change(super::entry(
            op,
            format!("visitor:{}", hex(&vid)),
            reference,
            Some(intent),
        ))
    }

    /// A hold or restriction: logged first, then written to the policy file
    /// (which records the entry's sequence number), then the keyring's state
    /// records the entry as acknowledged. A crash after the entry leaves it
    /// for open to apply (`shred::redo`), the same way.
    fn policy_change(&self, e: AuditEntry) -> Result<AuditEntry> {
        let mut w = self.engine.writer.lock();
        self.engine.check_writable()?;
        let logged = self.log(&mut w, e)?;
        if let Some(intent) = logged.intent() {
            self.update_policy(Some(logged.seq), |p| {
                apply_to_policy(p, &logged, &intent);
            })?;
        }
        self.guard(|| w.keyring.sync())?;
        Ok(logged)
    }
}
