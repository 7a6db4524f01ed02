//! Privacy operations: erasure, deletion, retention with legal holds,
//! restriction, consent, export, audit.
//!
//! Crash atomicity: every operation that destroys keys first appends its audit
//! entry and syncs it (the entry names the random visitor id or the internal
//! transcript id it acts on), then wipes keyring slots and syncs the keyring
//! (whose state then records the entry as acknowledged). At open,
//! [`finish_pending`] redoes the wipes of every logged operation whose effects
//! are not all on disk, so a crash leaves an operation either not started (no
//! entry: nothing was wiped) or finished at the next open. Holds and
//! restrictions are logged first too, then written to the policy file, which
//! records the entry it holds last; open applies later ones.

use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::index::{Index, TranscriptEntry};
use crate::keyring::Keyring;
use crate::message::{Body, Message, Timestamp, Visitor, normalize_email};
use crate::policy::Policy;
use crate::policy::{Hold, RetentionPolicy, hex};
use crate::record::{Tid, Vid};

use super::{MessageFacts, Store, Writer};

/// What a legal hold applies to.
#[derive(Clone, Copy, Debug)]
pub enum HoldTarget<'a> {
    /// Every transcript of the visitor with this email.
    Email(&'a str),
    /// One transcript, by the caller's id.
    Transcript(&'a str),
}

/// New values for [`Store::rectify_visitor`]; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rectification {
    /// The corrected email (becomes the lookup key).
    pub email: Option<String>,
    /// The corrected name.
    pub name: Option<String>,
    /// The corrected phone number.
    pub phone: Option<String>,
}

impl Rectification {
    /// A rectification of the given fields.
    pub fn new(
        email: Option<String>,
        name: Option<String>,
        phone: Option<String>,
    ) -> Rectification {
        Rectification { email, name, phone }
    }
}

/// One consent event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ConsentEvent {
    /// When.
    pub ts: String,
    /// Granted (`true`) or withdrawn/refused (`false`).
    pub granted: bool,
    /// The prompt shown.
    pub prompt: String,
    /// The transcript it was given in.
    pub transcript: String,
}

/// A visitor's consent state and history.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ConsentState {
    /// The latest answer, if any.
    pub current: Option<bool>,
    /// Every event, oldest first.
    pub history: Vec<ConsentEvent>,
}

/// One message in an export, with the facts a data subject is owed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportedMessage {
    /// The message (with `<redacted>` where data was destroyed).
    pub message: Message,
    /// Position within its transcript, from 0.
    pub seq: u32,
    /// File size in bytes, for file uploads.
    pub file_size: Option<u64>,
    /// SHA-256 of the file (hex), while it is held.
    pub file_sha256: Option<String>,
}

/// Everything held about one visitor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VisitorExport {
    /// The visitor's details as most recently given.
    pub visitor: Option<Visitor>,
    /// Transcripts, oldest first, each with its messages in order.
    pub transcripts: Vec<(String, Vec<ExportedMessage>)>,
}

fn entry(op: &str, subject: String, reference: &str) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at: Timestamp::now().as_str().to_owned(),
        op: op.to_owned(),
        subject,
        transcripts: 0,
        keys_destroyed: 0,
        reference: reference.to_owned(),
        detail: None,
    }
}

impl Store {
    /// Fails with [`Error::Restricted`] if the visitor's data is restricted.
    /// A restriction whose visitor has no directory entry any more (their
    /// personal data is gone: erased, redacted by retention, or deleted) no
    /// longer applies: it could never be lifted, since lifting needs the email.
    pub(super) fn check_not_restricted(&self, vid: &Vid) -> Result<()> {
        let restricted = {
            let policy = self.inner.policy.read();
            !policy.restricted.is_empty() && policy.restricted.contains_key(&hex(vid))
        };
        if !restricted {
            return Ok(());
        }
        // Callers may hold the index's read lock already.
        let has_directory_entry = self
            .inner
            .index
            .read_recursive()
            .visitors
            .get(vid)
            .is_some_and(|v| !v.email.is_empty());
        if has_directory_entry {
            return Err(Error::Restricted);
        }
        Ok(())
    }

    /// A restriction ends with the visitor's personal data: once erased, it
    /// could never be lifted (lifting needs the email) and nothing personal is
    /// left to protect.
    fn forget_restriction(&self, vid: &Vid) -> Result<()> {
        let key = hex(vid);
        if self.inner.policy.read().restricted.contains_key(&key) {
            self.update_policy(None, |p| {
                p.restricted.remove(&key);
            })?;
        }
        Ok(())
    }

    fn vid_of(&self, email: &str) -> Result<Vid> {
        self.inner
            .index
            .read()
            .by_email
            .get(crate::message::normalized_email(email).as_ref())
            .copied()
            .ok_or(Error::VisitorNotFound)
    }

    fn held(&self, vid: &Vid, caller_id: &str) -> bool {
        let p = self.inner.policy.read();
        p.visitor_holds.contains_key(&hex(vid)) || p.transcript_holds.contains_key(caller_id)
    }

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
    /// [`Error::VisitorNotFound`], [`Error::LegalHold`], [`Error::Io`].
    pub fn redact_visitor(&self, email: &str, reference: &str) -> Result<AuditEntry> {
        let inner = &*self.inner;
        let mut w = inner.writer.lock();
        inner.commit.check()?;
        let vid = self.vid_of(email)?;
        let tids = tids_of(&inner.index.read(), &vid);
        if inner.policy.read().holds_block_erasure
            && (self.held(&vid, "") || tids.iter().any(|(_, id)| self.held(&vid, id)))
        {
            return Err(Error::LegalHold);
        }
        let mut e = entry("erasure", format!("visitor:{}", hex(&vid)), reference);
        e.transcripts = tids.len() as u64;
        e.keys_destroyed = {
            let index = inner.index.read();
            let keys = tids
                .iter()
                .filter(|(t, _)| {
                    index
                        .transcripts
                        .get(t)
                        .is_some_and(|t| t.pii_key.is_some())
                })
                .count();
            keys as u64 + 1
        };
        let logged = self.log(&mut w, e)?;
        self.guard(|| {
            let mut index = inner.index.write();
            erase_visitor(&mut w.keyring, &mut index, &vid)?;
            w.keyring.sync()
        })?;
        self.forget_restriction(&vid)?;
        Ok(logged)
    }

    /// Deletes everything of a visitor: both keys of every transcript and the
    /// directory entry. Refused with [`Error::LegalHold`] if a hold applies.
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`], [`Error::LegalHold`], [`Error::Io`].
    pub fn delete_visitor(&self, email: &str, reference: &str) -> Result<AuditEntry> {
        let inner = &*self.inner;
        let mut w = inner.writer.lock();
        inner.commit.check()?;
        let vid = self.vid_of(email)?;
        let tids = tids_of(&inner.index.read(), &vid);
        if tids.iter().any(|(_, id)| self.held(&vid, id)) || self.held(&vid, "") {
            return Err(Error::LegalHold);
        }
        let mut e = entry(
            "delete-visitor",
            format!("visitor:{}", hex(&vid)),
            reference,
        );
        e.transcripts = tids.len() as u64;
        e.keys_destroyed = {
            let index = inner.index.read();
            let keys: usize = tids
                .iter()
                .filter_map(|(t, _)| index.transcripts.get(t))
                .map(|t| 1 + usize::from(t.pii_key.is_some()))
                .sum();
            keys as u64 + 1
        };
        let logged = self.log(&mut w, e)?;
        self.guard(|| {
            let mut index = inner.index.write();
            delete_visitor(&mut w.keyring, &mut index, &vid)?;
            w.keyring.sync()
        })?;
        self.forget_restriction(&vid)?;
        Ok(logged)
    }

    /// Deletes one transcript (both keys): it no longer reads at all.
    /// Refused with [`Error::LegalHold`] if a hold applies.
    ///
    /// # Errors
    /// [`Error::TranscriptNotFound`], [`Error::LegalHold`], [`Error::Io`].
    pub fn delete_transcript(&self, id: &str, reference: &str) -> Result<AuditEntry> {
        let inner = &*self.inner;
        let mut w = inner.writer.lock();
        inner.commit.check()?;
        let t = self.entry_by_caller(id)?;
        if self.held(&t.vid, id) {
            return Err(Error::LegalHold);
        }
        let mut e = entry("delete-transcript", format!("transcript:{id}"), reference);
        e.transcripts = 1;
        e.keys_destroyed = 1 + u64::from(t.pii_key.is_some());
        e.detail = Some(format!("tid:{}", hex(&t.tid)));
        let logged = self.log(&mut w, e)?;
        self.guard(|| {
            let mut index = inner.index.write();
            delete_transcript(&mut w.keyring, &mut index, &t.tid)?;
            w.keyring.sync()
        })?;
        Ok(logged)
    }

    /// Retention: redacts (or with `delete`, deletes) every transcript whose
    /// latest message is older than `now_ms - older_than_ms`, except those under
    /// a legal hold. Walks the time index from its oldest end; never scans the log.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a negative period, [`Error::Io`].
    pub fn apply_retention(
        &self,
        older_than_ms: i64,
        delete: bool,
        now_ms: i64,
        reference: &str,
    ) -> Result<AuditEntry> {
        if older_than_ms < 0 {
            return Err(Error::invalid("the retention period must not be negative"));
        }
        let inner = &*self.inner;
        let mut w = inner.writer.lock();
        inner.commit.check()?;
        let cutoff = now_ms.saturating_sub(older_than_ms);
        let (targets, keys) = {
            let index = inner.index.read();
            let mut targets = Vec::new();
            let mut keys = 0u64;
            for (last, tid) in &index.by_time {
                if *last >= cutoff {
                    break;
                }
                let Some(t) = index.transcripts.get(tid) else {
                    continue;
                };
                if self.held(&t.vid, &t.caller_id) || (!delete && t.pii_key.is_none()) {
                    continue;
                }
                keys += u64::from(t.pii_key.is_some()) + u64::from(delete);
                targets.push(*tid);
            }
            (targets, keys)
        };
        let mut e = entry("retention", "store".into(), reference);
        e.transcripts = targets.len() as u64;
        e.keys_destroyed = keys;
        // The targets are listed so that a run cut short by a crash is finished
        // at the next open (internal random ids, no personal data).
        let list: Vec<String> = targets.iter().map(hex).collect();
        e.detail = Some(format!(
            "cutoff:{cutoff},mode:{};targets:{}",
            if delete { "delete" } else { "redact" },
            list.join(" ")
        ));
        let logged = self.log(&mut w, e)?;
        self.guard(|| {
            let mut index = inner.index.write();
            for tid in &targets {
                if delete {
                    delete_transcript(&mut w.keyring, &mut index, tid)?;
                } else {
                    redact_transcript(&mut w.keyring, &mut index, tid)?;
                }
            }
            w.keyring.sync()
        })?;
        Ok(logged)
    }

    /// The stored retention policy.
    pub fn retention_policy(&self) -> Option<RetentionPolicy> {
        self.inner.policy.read().retention.clone()
    }

    /// Stores (or with `None` removes) the retention policy.
    ///
    /// # Errors
    /// [`Error::Io`] if the policy file cannot be written.
    pub fn set_retention_policy(&self, policy: Option<RetentionPolicy>) -> Result<()> {
        self.update_policy(None, |p| p.retention = policy)
    }

    /// Applies the stored retention policy now, if there is one.
    ///
    /// # Errors
    /// As [`Store::apply_retention`].
    pub fn run_retention_policy(&self, reference: &str) -> Result<Option<AuditEntry>> {
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

    /// Whether legal holds also refuse erasure requests (default: no).
    ///
    /// # Errors
    /// [`Error::Io`] if the policy file cannot be written.
    pub fn set_holds_block_erasure(&self, block: bool) -> Result<()> {
        self.update_policy(None, |p| p.holds_block_erasure = block)
    }

    /// Places a legal hold: the target is exempt from retention and deletion.
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`] / [`Error::TranscriptNotFound`], [`Error::Io`].
    pub fn place_hold(&self, target: HoldTarget<'_>, reference: &str) -> Result<AuditEntry> {
        self.hold_op(target, reference, true)
    }

    /// Releases a legal hold.
    ///
    /// # Errors
    /// As [`Store::place_hold`].
    pub fn release_hold(&self, target: HoldTarget<'_>, reference: &str) -> Result<AuditEntry> {
        self.hold_op(target, reference, false)
    }

    fn hold_op(&self, target: HoldTarget<'_>, reference: &str, place: bool) -> Result<AuditEntry> {
        let op = if place { "hold" } else { "release-hold" };
        let subject = match target {
            HoldTarget::Email(email) => format!("visitor:{}", hex(&self.vid_of(email)?)),
            HoldTarget::Transcript(id) => {
                self.entry_by_caller(id)?;
                format!("transcript:{id}")
            }
        };
        self.policy_op(entry(op, subject, reference))
    }

    /// A hold or restriction: logged first, then written to the policy file
    /// (which records the entry's sequence number), then the keyring's state
    /// records the entry as acknowledged. A crash after the entry leaves it
    /// for open to apply ([`apply_policy_entry`]).
    fn policy_op(&self, e: AuditEntry) -> Result<AuditEntry> {
        let mut w = self.inner.writer.lock();
        self.inner.commit.check()?;
        let logged = self.log(&mut w, e)?;
        self.update_policy(Some(logged.seq), |p| {
            apply_policy_entry(p, &logged);
        })?;
        self.guard(|| w.keyring.sync())?;
        Ok(logged)
    }

    /// Legal holds in force: (subject, hold).
    pub fn holds(&self) -> Vec<(String, Hold)> {
        let p = self.inner.policy.read();
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

    /// Restriction of processing (Art. 18): appends and ordinary reads of the
    /// visitor's data fail with [`Error::Restricted`]; export, erasure and
    /// lifting the restriction still work.
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`], [`Error::Io`].
    pub fn restrict_visitor(&self, email: &str, reference: &str) -> Result<AuditEntry> {
        self.restriction(email, reference, true)
    }

    /// Lifts a restriction.
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`], [`Error::Io`].
    pub fn lift_restriction(&self, email: &str, reference: &str) -> Result<AuditEntry> {
        self.restriction(email, reference, false)
    }

    fn restriction(&self, email: &str, reference: &str, on: bool) -> Result<AuditEntry> {
        let vid = hex(&self.vid_of(email)?);
        let op = if on {
            "restriction"
        } else {
            "lift-restriction"
        };
        self.policy_op(entry(op, format!("visitor:{vid}"), reference))
    }

    /// The visitor's consent state and history (from consent events in their
    /// transcripts). Works on restricted visitors.
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`], [`Error::Corrupt`].
    pub fn consent(&self, email: &str) -> Result<ConsentState> {
        let export = self.export(email)?;
        let mut events = Vec::new();
        for (id, msgs) in &export.transcripts {
            for m in msgs {
                if let Body::Consent { granted, prompt } = &m.message.body {
                    events.push((
                        m.message.ts.unix_millis(),
                        ConsentEvent {
                            ts: m.message.ts.as_str().to_owned(),
                            granted: *granted,
                            prompt: prompt.clone(),
                            transcript: id.clone(),
                        },
                    ));
                }
            }
        }
        events.sort_by_key(|(ms, _)| *ms);
        let history: Vec<ConsentEvent> = events.into_iter().map(|(_, e)| e).collect();
        Ok(ConsentState {
            current: history.last().map(|e| e.granted),
            history,
        })
    }

    /// Everything held about a visitor (Art. 15 and 20). Works on restricted
    /// visitors.
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`], [`Error::Corrupt`].
    pub fn export(&self, email: &str) -> Result<VisitorExport> {
        let vid = self.vid_of(email)?;
        let entries: Vec<TranscriptEntry> = {
            let index = self.inner.index.read();
            let mut v: Vec<&TranscriptEntry> = index
                .visitors
                .get(&vid)
                .map(|v| {
                    v.transcripts
                        .iter()
                        .filter_map(|(_, t)| index.transcripts.get(t))
                        .collect()
                })
                .unwrap_or_default();
            v.sort_by_key(|t| (t.first_ts(), t.caller_id.clone()));
            v.into_iter()
                .filter(|t| !t.records.is_empty())
                .cloned()
                .collect()
        };
        let mut out = VisitorExport::default();
        let mut latest: Option<(i64, Visitor)> = None;
        for t in &entries {
            let msgs: Vec<ExportedMessage> = self
                .read_entry(&t.tid)?
                .into_iter()
                .map(|(message, f): (Message, MessageFacts)| {
                    if let Some(v) = &message.visitor
                        && latest
                            .as_ref()
                            .is_none_or(|(ms, _)| *ms <= message.ts.unix_millis())
                    {
                        latest = Some((message.ts.unix_millis(), v.clone()));
                    }
                    ExportedMessage {
                        seq: f.seq,
                        file_size: f.file_size,
                        file_sha256: f
                            .file_sha256
                            .map(|h| h.iter().map(|b| format!("{b:02x}")).collect()),
                        message,
                    }
                })
                .collect();
            out.transcripts.push((t.caller_id.clone(), msgs));
        }
        out.visitor = latest.map(|(_, v)| v);
        Ok(out)
    }

    /// Re-redaction by rewrite: reads the transcript, redacts it with the
    /// current detection rules (plus `extra` literal strings the rules missed),
    /// writes it as a new version under new keys and destroys the old keys.
    /// The new version records the current rules version.
    ///
    /// Crash-safe: the new version is synced before the audit entry that
    /// commits it; at open, a committed rewrite's old keys are destroyed and an
    /// uncommitted new version is dropped.
    ///
    /// # Errors
    /// [`Error::TranscriptNotFound`], [`Error::Invalid`] for an unusable span,
    /// [`Error::Io`].
    pub fn rewrite_transcript(
        &self,
        id: &str,
        extra: &[String],
        reference: &str,
    ) -> Result<AuditEntry> {
        let inner = &*self.inner;
        let detector = if extra.iter().all(|s| s.is_empty()) {
            inner.detector.clone()
        } else {
            let mut cfg = inner.detector.config().clone();
            for s in extra.iter().filter(|s| !s.is_empty()) {
                cfg.custom.push(crate::pii::CustomPattern {
                    name: "rewrite".into(),
                    regex: regex::escape(s),
                });
            }
            crate::pii::Detector::new(&cfg).map_err(|e| Error::invalid(e.to_string()))?
        };
        self.rewrite_with(id, &detector, &|m| m, reference)
    }

    /// Rewrites a transcript under new keys, passing each message through
    /// `transform` and splitting it with `detector`.
    fn rewrite_with(
        &self,
        id: &str,
        detector: &crate::pii::Detector,
        transform: &dyn Fn(Message) -> Message,
        reference: &str,
    ) -> Result<AuditEntry> {
        let inner = &*self.inner;
        let mut w = inner.writer.lock();
        inner.commit.check()?;
        let old = self.entry_by_caller(id)?;
        self.check_not_restricted(&old.vid)?;
        let messages: Vec<Message> = self
            .read_entry(&old.tid)?
            .into_iter()
            .map(|(m, _)| transform(m))
            .collect();
        // A transcript whose PII key is gone stays without one: what reads as
        // `<redacted>` must not come back as literal text under a live key.
        let redacted = old.pii_key.is_none();
        let mut prepared = Vec::with_capacity(messages.len());
        for m in &messages {
            prepared.push(super::prepare(
                m,
                detector,
                inner.options.max_message_bytes,
            )?);
        }
        if redacted {
            for p in &mut prepared {
                p.pii = None;
            }
        }
        let new = self.guard_value(|| {
            super::create_transcript(&mut w, old.vid, id, old.created_millis + 1, !redacted)
        })?;
        inner
            .keyring_dirty
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let items: Vec<_> = prepared.iter().map(|p| (&new, p)).collect();
        let records = self.guard_value(|| self.seal_and_write(&mut w, &items))?;
        let ticket = inner.commit.ticket();
        inner
            .commit
            .wait_holding_writer(ticket, || inner.sync_now())?;
        let mut e = entry("rewrite", format!("transcript:{id}"), reference);
        e.transcripts = 1;
        e.keys_destroyed = 1 + u64::from(!redacted);
        e.detail = Some(format!("old:{},new:{}", hex(&old.tid), hex(&new.tid)));
        let logged = self.log(&mut w, e)?;
        self.guard(|| {
            let mut index = inner.index.write();
            let tid = new.tid;
            index.by_caller.insert(id.to_owned(), tid);
            index.insert_transcript(new);
            for (t, r, d) in records {
                index.add_record(&t, r, d);
            }
            delete_transcript(&mut w.keyring, &mut index, &old.tid)?;
            index.by_caller.insert(id.to_owned(), tid);
            w.keyring.sync()
        })?;
        if std::mem::take(&mut w.checkpoint_due) {
            inner.write_checkpoint(&w, false)?;
        }
        Ok(logged)
    }

    /// Rectification (GDPR Art. 16): corrects a visitor's email, name or phone.
    /// Every transcript of the visitor is rewritten under new keys with every
    /// occurrence of an old value (in visitor details, form values and text)
    /// replaced by the new one, and the old keys destroyed, so the old values
    /// do not stay behind; a new email replaces the directory entry in place.
    ///
    /// Applied transcript by transcript: if interrupted, run it again.
    ///
    /// # Errors
    /// [`Error::VisitorNotFound`], [`Error::Invalid`] if the new email belongs
    /// to another visitor, [`Error::Restricted`], [`Error::Io`].
    pub fn rectify_visitor(
        &self,
        email: &str,
        fix: &Rectification,
        reference: &str,
    ) -> Result<AuditEntry> {
        let inner = &*self.inner;
        let vid = self.vid_of(email)?;
        self.check_not_restricted(&vid)?;
        let new_email = fix
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        if let Some(e) = new_email {
            let norm = normalize_email(e);
            if norm.len() > crate::keyring::MAX_EMAIL {
                return Err(Error::invalid("the new email is too long"));
            }
            if inner
                .index
                .read()
                .by_email
                .get(&norm)
                .is_some_and(|v| *v != vid)
            {
                return Err(Error::invalid(
                    "the new email already belongs to another visitor",
                ));
            }
        }
        // Old values: every distinct value the visitor's messages hold.
        let export = self.export(email)?;
        let mut old: Vec<(String, String)> = Vec::new();
        for (_, msgs) in &export.transcripts {
            for m in msgs {
                if let Some(v) = &m.message.visitor {
                    let pairs = [
                        (Some(&v.email), new_email),
                        (v.name.as_ref(), fix.name.as_deref()),
                        (v.phone.as_ref(), fix.phone.as_deref()),
                    ];
                    for (was, now) in pairs {
                        if let (Some(was), Some(now)) = (was, now)
                            && was != now
                            && was != crate::REDACTED
                            && !old.iter().any(|(w, _)| w == was)
                        {
                            old.push((was.clone(), now.to_owned()));
                        }
                    }
                }
            }
        }
        // Longest first, so that a value containing another is replaced whole.
        old.sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
        let replace = |s: &str| {
            old.iter()
                .fold(s.to_owned(), |acc, (w, n)| acc.replace(w.as_str(), n))
        };
        let transform = |mut m: Message| {
            if let Some(v) = &mut m.visitor {
                if let Some(e) = new_email {
                    v.email = e.to_owned();
                }
                if let Some(n) = &fix.name {
                    v.name = Some(n.clone());
                }
                if let Some(p) = &fix.phone {
                    v.phone = Some(p.clone());
                }
            }
            m.body = match m.body {
                Body::Text(t) => Body::Text(replace(&t)),
                Body::Form(f) => Body::Form(f.into_iter().map(|(k, v)| (k, replace(&v))).collect()),
                Body::Consent { granted, prompt } => Body::Consent {
                    granted,
                    prompt: replace(&prompt),
                },
                other => other,
            };
            m
        };
        let mut changed = 0u64;
        let mut keys = 0u64;
        for (id, _) in &export.transcripts {
            keys += self
                .rewrite_with(id, &inner.detector, &transform, reference)?
                .keys_destroyed;
            changed += 1;
        }
        if let Some(e) = new_email {
            let mut w = inner.writer.lock();
            let mut index = inner.index.write();
            let norm = normalize_email(e);
            self.guard(|| {
                if let Some(v) = index.visitors.get(&vid) {
                    // One aligned 512-byte slot written in place.
                    w.keyring.write(
                        v.slot,
                        &crate::keyring::Slot::Visitor(crate::keyring::VisitorSlot {
                            vid,
                            email: norm.clone(),
                        }),
                    )?;
                }
                w.keyring.sync()
            })?;
            if let Some(v) = index.visitors.get_mut(&vid) {
                let previous = std::mem::replace(&mut v.email, norm.clone());
                index.by_email.remove(&previous);
            }
            index.by_email.insert(norm, vid);
        }
        let fields: Vec<&str> = [
            ("email", new_email.is_some()),
            ("name", fix.name.is_some()),
            ("phone", fix.phone.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| f)
        .collect();
        let mut e = entry("rectification", format!("visitor:{}", hex(&vid)), reference);
        e.transcripts = changed;
        e.keys_destroyed = keys;
        e.detail = Some(format!("fields:{}", fields.join("+")));
        let mut w = inner.writer.lock();
        let logged = self.log(&mut w, e)?;
        self.guard(|| w.keyring.sync())?;
        Ok(logged)
    }

    /// Rewrites every transcript written under older detection rules than the
    /// current ones; returns how many were rewritten.
    ///
    /// # Errors
    /// As [`Store::rewrite_transcript`].
    pub fn rewrite_stale(&self, reference: &str) -> Result<u64> {
        let stale: Vec<String> = {
            let index = self.inner.index.read();
            index
                .transcripts
                .values()
                .filter(|t| t.rules_version < crate::pii::RULES_VERSION && !t.records.is_empty())
                .map(|t| t.caller_id.clone())
                .collect()
        };
        for id in &stale {
            self.rewrite_transcript(id, &[], reference)?;
        }
        Ok(stale.len() as u64)
    }

    fn guard_value<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let r = f();
        if let Err(err) = &r
            && !matches!(err, Error::Invalid(_) | Error::Limit(_) | Error::ReadOnly)
        {
            self.inner.commit.poison(err);
        }
        r
    }

    /// The audit log, oldest first.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Corrupt`] if the log cannot be read.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        let _a = self.inner.audit.lock();
        let mode = crate::audit::AuditMode {
            read_only: true,
            salvage: true,
        };
        let (_, entries, _) =
            crate::audit::AuditLog::open(&self.inner.dir, Default::default(), mode)?;
        Ok(entries)
    }

    /// Appends an audit entry durably and notes it in the keyring's state
    /// (written by the keyring sync that follows every entry).
    fn log(&self, w: &mut Writer, e: AuditEntry) -> Result<AuditEntry> {
        if self.inner.options.read_only {
            return Err(Error::ReadOnly);
        }
        let mut audit = self.inner.audit.lock();
        let r = audit.append(e);
        match &r {
            Ok(_) => {
                let (entries, bytes) = audit.marks();
                w.keyring.note_audit(entries, bytes, None);
            }
            Err(err) => self.inner.commit.poison(err),
        }
        r
    }

    /// Runs keyring work, poisoning the store if it fails half-way (the next
    /// open finishes it from the audit log).
    fn guard(&self, f: impl FnOnce() -> Result<()>) -> Result<()> {
        let r = f();
        if let Err(err) = &r {
            self.inner.commit.poison(err);
        }
        r
    }

    /// Changes the policy file; `audit_seq` is the entry the change belongs to.
    fn update_policy(
        &self,
        audit_seq: Option<u64>,
        f: impl FnOnce(&mut crate::policy::Policy),
    ) -> Result<()> {
        if self.inner.options.read_only {
            return Err(Error::ReadOnly);
        }
        self.inner.commit.check()?;
        let mut p = self.inner.policy.write();
        let mut next = p.clone();
        f(&mut next);
        if let Some(seq) = audit_seq {
            next.audit_seq = seq;
        }
        next.save(&self.inner.dir)?;
        *p = next;
        Ok(())
    }
}

/// The visitor's transcripts: (tid, caller id). Costs O(their number).
fn tids_of(index: &Index, vid: &Vid) -> Vec<(Tid, String)> {
    let Some(v) = index.visitors.get(vid) else {
        return Vec::new();
    };
    v.tids
        .iter()
        .filter_map(|tid| index.transcripts.get(tid))
        .map(|t| (t.tid, t.caller_id.clone()))
        .collect()
}

/// Where destroyed keys go: the keyring (wiped in place, not synced), or,
/// for a read-only store applying a logged erasure in memory, nowhere.
pub(super) trait Wipe {
    fn wipe(&mut self, slot: u32) -> Result<()>;
}

impl Wipe for Keyring {
    fn wipe(&mut self, slot: u32) -> Result<()> {
        Keyring::wipe(self, slot)
    }
}

/// Wipes nothing: the index alone forgets the keys.
pub(super) struct InMemory;

impl Wipe for InMemory {
    fn wipe(&mut self, _slot: u32) -> Result<()> {
        Ok(())
    }
}

/// Destroys a transcript's PII key and updates the index.
fn redact_transcript(keyring: &mut dyn Wipe, index: &mut Index, tid: &Tid) -> Result<()> {
    let Some(t) = index.transcripts.get_mut(tid) else {
        return Ok(());
    };
    if t.pii_key.is_none() {
        return Ok(());
    }
    keyring.wipe(t.pii_slot)?;
    t.pii_key = None;
    t.pii_slot = 0;
    let vid = t.vid;
    let pii_bytes: Vec<(u64, u64)> = t
        .records
        .iter()
        .map(|r| (r.loc.seg, u64::from(r.pii_len)))
        .collect();
    for (seg, n) in pii_bytes {
        index.usage.entry(seg).or_default().kill(n);
    }
    // Once no transcript of the visitor holds personal data any more, their
    // email has no business in the directory either.
    let all_redacted = tids_of(index, &vid)
        .iter()
        .all(|(t, _)| index.transcripts.get(t).is_none_or(|t| t.pii_key.is_none()));
    if all_redacted {
        wipe_directory(keyring, index, &vid)?;
    }
    Ok(())
}

/// Destroys both keys of a transcript and drops it from the index. A visitor
/// left without transcripts loses their directory entry too: nothing may keep
/// an email that no data needs.
pub(super) fn delete_transcript(
    keyring: &mut dyn Wipe,
    index: &mut Index,
    tid: &Tid,
) -> Result<()> {
    redact_transcript(keyring, index, tid)?;
    let Some(t) = index.transcripts.get(tid) else {
        return Ok(());
    };
    keyring.wipe(t.content_slot)?;
    let vid = t.vid;
    index.remove_transcript(tid);
    if index.visitors.get(&vid).is_some_and(|v| v.tids.is_empty()) {
        wipe_directory(keyring, index, &vid)?;
        index.visitors.remove(&vid);
    }
    Ok(())
}

/// Wipes a visitor's directory entry.
fn wipe_directory(keyring: &mut dyn Wipe, index: &mut Index, vid: &Vid) -> Result<()> {
    if let Some(v) = index.visitors.get_mut(vid) {
        if v.slot != 0 {
            keyring.wipe(v.slot)?;
        }
        if !v.email.is_empty() && index.by_email.get(&v.email) == Some(vid) {
            index.by_email.remove(&v.email);
        }
        v.email.clear();
        v.slot = 0;
    }
    Ok(())
}

fn erase_visitor(keyring: &mut dyn Wipe, index: &mut Index, vid: &Vid) -> Result<()> {
    for (tid, _) in tids_of(index, vid) {
        redact_transcript(keyring, index, &tid)?;
    }
    wipe_directory(keyring, index, vid)
}

fn delete_visitor(keyring: &mut dyn Wipe, index: &mut Index, vid: &Vid) -> Result<()> {
    for (tid, _) in tids_of(index, vid) {
        delete_transcript(keyring, index, &tid)?;
    }
    wipe_directory(keyring, index, vid)?;
    index.visitors.remove(vid);
    Ok(())
}

use crate::policy::parse_hex_id as parse_id;

/// Applies a hold or restriction entry to the policy; false for other entries.
pub(super) fn apply_policy_entry(p: &mut Policy, e: &AuditEntry) -> bool {
    let hold = || Hold {
        reference: e.reference.clone(),
        since: e.at.clone(),
    };
    let visitor = e.subject.strip_prefix("visitor:");
    let transcript = e.subject.strip_prefix("transcript:");
    match (e.op.as_str(), visitor, transcript) {
        ("hold", Some(v), _) => p.visitor_holds.insert(v.to_owned(), hold()).is_none(),
        ("hold", _, Some(t)) => p.transcript_holds.insert(t.to_owned(), hold()).is_none(),
        ("release-hold", Some(v), _) => p.visitor_holds.remove(v).is_some(),
        ("release-hold", _, Some(t)) => p.transcript_holds.remove(t).is_some(),
        ("restriction", Some(v), _) => p.restricted.insert(v.to_owned(), hold()).is_none(),
        ("lift-restriction", Some(v), _) => p.restricted.remove(v).is_some(),
        _ => return false,
    };
    true
}

/// What [`finish_pending`] did.
#[derive(Default)]
pub(super) struct Finished {
    /// (audit sequence number, operation) of each operation finished.
    pub ops: Vec<(u64, String)>,
    /// Keyring slots were wiped: sync the keyring.
    pub keyring_changed: bool,
    /// The policy changed: save it.
    pub policy_changed: bool,
}

/// Finishes, at open, every logged operation whose effects did not all reach
/// the disk: the key destructions of erasures, deletions, retention runs and
/// committed rewrites (on the keyring, or only in the index when `keyring` is
/// `None`: a read-only open), and holds and restrictions the policy file does
/// not hold yet. This is the only repair an open makes by itself: it
/// completes requests the log shows were made.
pub(super) fn finish_pending(
    keyring: Option<&mut Keyring>,
    index: &mut Index,
    entries: &[AuditEntry],
    policy: &mut Policy,
) -> Result<Finished> {
    let mut in_memory = InMemory;
    let wipes: &mut dyn Wipe = match keyring {
        Some(k) => k,
        None => &mut in_memory,
    };
    let mut out = Finished::default();
    if policy.legacy {
        // A version-1 policy file was written before its entries were
        // logged: it holds every one of them.
        policy.audit_seq = entries.last().map_or(0, |e| e.seq);
    }
    for e in entries {
        let vid = e.subject.strip_prefix("visitor:").and_then(parse_id);
        let mut done = false;
        match (e.op.as_str(), vid) {
            ("erasure", Some(vid)) => {
                // O(the visitor's transcripts), not O(the store): open time must
                // not grow with the number of erasures ever made.
                let pending = index.visitors.get(&vid).is_some_and(|v| v.slot != 0)
                    || tids_of(index, &vid).iter().any(|(t, _)| {
                        index
                            .transcripts
                            .get(t)
                            .is_some_and(|t| t.pii_key.is_some())
                    });
                if pending {
                    erase_visitor(wipes, index, &vid)?;
                    done = true;
                }
                out.policy_changed |= policy.restricted.remove(&hex(&vid)).is_some();
            }
            // Every transcript of a visitor is linked from its visitor entry.
            ("delete-visitor", Some(vid)) => {
                if index.visitors.contains_key(&vid) {
                    delete_visitor(wipes, index, &vid)?;
                    done = true;
                }
                out.policy_changed |= policy.restricted.remove(&hex(&vid)).is_some();
            }
            ("delete-transcript", _) => {
                let tid = e
                    .detail
                    .as_deref()
                    .and_then(|d| d.strip_prefix("tid:"))
                    .and_then(parse_id);
                if let Some(tid) = tid.filter(|t| index.transcripts.contains_key(t)) {
                    delete_transcript(wipes, index, &tid)?;
                    done = true;
                }
            }
            ("retention", _) => {
                // The run's targets are listed in the entry; finish any left.
                let tids = e
                    .detail
                    .as_deref()
                    .and_then(|d| d.split_once(";targets:"))
                    .map(|(_, t)| t);
                let delete = e
                    .detail
                    .as_deref()
                    .is_some_and(|d| d.contains("mode:delete"));
                for tid in tids.unwrap_or_default().split(' ').filter_map(parse_id) {
                    let pending = index
                        .transcripts
                        .get(&tid)
                        .is_some_and(|t| delete || t.pii_key.is_some());
                    if pending {
                        if delete {
                            delete_transcript(wipes, index, &tid)?;
                        } else {
                            redact_transcript(wipes, index, &tid)?;
                        }
                        done = true;
                    }
                }
            }
            ("rewrite", _) => done |= finish_rewrite(wipes, index, e)?,
            _ if e.seq > policy.audit_seq && apply_policy_entry(policy, e) => {
                policy.audit_seq = e.seq;
                out.policy_changed = true;
                out.ops.push((e.seq, e.op.clone()));
            }
            _ => {}
        }
        if done {
            out.keyring_changed = true;
            out.ops.push((e.seq, e.op.clone()));
        }
    }
    Ok(out)
}

/// A committed rewrite (its entry is the commit record) whose old version's
/// keys are still there: destroys them. Returns whether it did.
fn finish_rewrite(keyring: &mut dyn Wipe, index: &mut Index, e: &AuditEntry) -> Result<bool> {
    let old = e
        .detail
        .as_deref()
        .and_then(|d| d.strip_prefix("old:"))
        .and_then(|d| d.get(..32))
        .and_then(parse_id);
    let new = e
        .detail
        .as_deref()
        .and_then(|d| d.split_once(",new:"))
        .and_then(|(_, n)| parse_id(n));
    let Some(old) = old.filter(|t| index.transcripts.contains_key(t)) else {
        return Ok(false);
    };
    delete_transcript(keyring, index, &old)?;
    if let Some(new) = new
        && let Some(t) = index.transcripts.get(&new)
    {
        index.by_caller.insert(t.caller_id.clone(), new);
    }
    Ok(true)
}

/// Of two or more live generations of one caller id (a rewrite cut short
/// before its commit record, or keys of an append that never wrote a record),
/// keeps the committed one visible: the oldest that has a record, else the
/// oldest. The others leave the index; their slots are returned for a later
/// compaction to wipe (open destroys no key it cannot prove unacknowledged).
pub(super) fn resolve_generations(index: &mut Index) -> Vec<u32> {
    // When every live transcript is the one its caller id leads to, there are
    // none (the common case, checked without copying every caller id).
    let linked = index
        .by_caller
        .values()
        .filter(|tid| index.transcripts.contains_key(*tid))
        .count();
    if linked == index.transcripts.len() {
        return Vec::new();
    }
    let mut by_caller: std::collections::HashMap<String, Vec<(i64, Tid)>> =
        std::collections::HashMap::new();
    for t in index.transcripts.values() {
        by_caller
            .entry(t.caller_id.clone())
            .or_default()
            .push((t.created_millis, t.tid));
    }
    let mut leftovers = Vec::new();
    for (caller, mut versions) in by_caller {
        if versions.len() < 2 {
            continue;
        }
        versions.sort();
        let has_records = |tid: &Tid| {
            index
                .transcripts
                .get(tid)
                .is_some_and(|t| !t.records.is_empty())
        };
        let keep = versions
            .iter()
            .find(|(_, t)| has_records(t))
            .or(versions.first())
            .map(|(_, t)| *t);
        for (_, tid) in &versions {
            if Some(*tid) == keep {
                continue;
            }
            if let Some(t) = index.remove_transcript(tid) {
                leftovers.push(t.content_slot);
                if t.pii_key.is_some() {
                    leftovers.push(t.pii_slot);
                }
            }
        }
        if let Some(keep) = keep {
            index.by_caller.insert(caller, keep);
        }
    }
    leftovers
}

/// Transcripts that have keys but no records: left by appends that failed or
/// were cut short before any record reached the disk (never acknowledged).
/// Deleted by compaction of a sound store (their keys, and a directory entry
/// left with no transcript, would otherwise keep an email alive that no data
/// needs); open leaves them alone.
pub(super) fn drop_empty_transcripts(keyring: &mut Keyring, index: &mut Index) -> Result<bool> {
    let empty: Vec<Tid> = index
        .transcripts
        .values()
        .filter(|t| t.records.is_empty())
        .map(|t| t.tid)
        .collect();
    for tid in &empty {
        delete_transcript(keyring, index, tid)?;
    }
    Ok(!empty.is_empty())
}
