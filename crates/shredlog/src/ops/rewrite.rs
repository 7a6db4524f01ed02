//! Re-redaction by rewrite (a transcript written again under new keys with
//! the current rules, or with extra spans the rules missed, and the old keys
//! destroyed) and rectification (GDPR Art. 16), which is a rewrite of every
//! transcript of a visitor with the old values replaced.

use crate::email::normalize_email;
use crate::error::{Error, Result};
use crate::ids::hex;
use crate::keyring::StagedSlots;
use crate::keyring::directory::Sectors;
use crate::message::{Body, Message};
use crate::pii::{CustomPattern, Detector, RULES_VERSION};
use crate::shred::{AuditEntry, Intent};
use crate::store::{At, Hashing, Item, NewGeneration, Store, create_transcript, prepare};

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

impl Store {
    /// Re-redaction by rewrite: reads the transcript, redacts it with the
    /// current detection rules (plus `extra` literal strings the rules missed),
    /// writes it as a new version under new keys and destroys the old keys.
    /// The new version records the current rules version.
    ///
    /// Crash-safe: the new version is synced before the audit entry that
    /// commits it; at open, a committed rewrite's old keys are destroyed and an
    /// uncommitted new version is not seen (its slots are wiped by the next
    /// compaction).
    ///
    /// # Errors
    /// [`Error::TranscriptNotFound`], [`Error::Invalid`] for an unusable span,
    /// [`Error::ReadOnly`], [`Error::Io`].
    pub fn rewrite_transcript(
        &self,
        id: &str,
        extra: &[String],
        reference: &str,
    ) -> Result<AuditEntry> {
        self.engine.screen.reference(reference)?;
        let engine = &*self.engine;
        let detector = if extra.iter().all(|s| s.is_empty()) {
            engine.detector.clone()
        } else {
            let mut cfg = engine.detector.config().clone();
            for s in extra.iter().filter(|s| !s.is_empty()) {
                cfg.custom.push(CustomPattern {
                    name: "rewrite".into(),
                    regex: regex::escape(s),
                });
            }
            Detector::new(&cfg).map_err(|e| Error::invalid(e.to_string()))?
        };
        self.rewrite_with(id, &detector, &|m| m, reference)
    }

    /// Rewrites a transcript under new keys, passing each message through
    /// `transform` and splitting it with `detector`.
    fn rewrite_with(
        &self,
        id: &str,
        detector: &Detector,
        transform: &dyn Fn(Message) -> Message,
        reference: &str,
    ) -> Result<AuditEntry> {
        let engine = &*self.engine;
        let mut w = engine.writer.lock();
        engine.check_writable()?;
        let old = self.entry_by_caller(id)?;
        self.check_not_restricted(&old.vid)?;
        let messages: Vec<Message> = self
            .read_entry(&old.tid, Hashing::Skip)?
            .into_iter()
            .map(|(m, _)| transform(m))
            .collect();
        // A transcript whose PII key is gone stays without one: what reads as
        // `<redacted>` must not come back as literal text under a live key.
        let redacted = !old.has_pii();
        let mut prepared = Vec::with_capacity(messages.len());
        for m in &messages {
            prepared.push(prepare(
                m,
                detector,
                None,
                engine.options.max_message_bytes,
            )?);
        }
        if redacted {
            for p in &mut prepared {
                p.pii = None;
            }
        }
        let new = self.guard(|| {
            let mut staged = StagedSlots::default();
            let new = create_transcript(
                &mut w,
                &mut staged,
                NewGeneration {
                    vid: old.vid,
                    caller_id: id,
                    caller: engine.caller_key.hash(id),
                    min_created: old.created_millis + 1,
                },
                !redacted,
                &mut crate::seal::Nonces::with_bytes(16 + 2 * 32)?,
            )?;
            w.keyring.write_staged(staged)?;
            Ok(new)
        })?;
        engine
            .keyring_dirty
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let items: Vec<Item<'_>> = prepared
            .iter()
            .map(|p| Item {
                at: At::new_generation(&new.entry),
                keys: new.keys.clone(),
                prepared: p,
            })
            .collect();
        let records = self.guard(|| engine.seal_and_write(&mut w, &items))?;
        let ticket = engine.commit.ticket();
        engine
            .commit
            .wait_holding_writer(ticket, || engine.sync_now())?;
        let mut e = super::entry(
            "rewrite",
            format!("transcript:{id}"),
            reference,
            Some(Intent::rewrite(&old.tid, &new.entry.tid)),
        );
        e.transcripts = 1;
        e.keys_destroyed = 1 + u64::from(!redacted);
        e.detail = Some(format!("old:{},new:{}", hex(&old.tid), hex(&new.entry.tid)));
        // The entry commits the rewrite; then the new version is published
        // and the old one's keys destroyed.
        let logged = self.log(&mut w, e)?;
        self.guard(|| {
            let mut index = engine.index.write();
            engine.keys.insert(new.entry.tid, new.keys);
            let records = records.into_iter().map(|(_, r, d)| (r, d)).collect();
            if let Some(gone) = index.replace_generation(&old.tid, new.entry, records)? {
                w.keyring.wipe(gone.content_slot)?;
                if let Some(p) = gone.pii_slot {
                    w.keyring.wipe(p)?;
                }
                engine.keys.forget(&gone.tid);
            }
            drop(index);
            w.keyring.sync()
        })?;
        if std::mem::take(&mut w.checkpoint_due) {
            engine.write_checkpoint(&w, false)?;
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
    /// to another visitor, [`Error::Restricted`], [`Error::ReadOnly`],
    /// [`Error::Io`].
    pub fn rectify_visitor(
        &self,
        email: &str,
        fix: &Rectification,
        reference: &str,
    ) -> Result<AuditEntry> {
        self.engine.screen.reference(reference)?;
        let engine = &*self.engine;
        let vid = self.vid_of(email)?;
        self.check_not_restricted(&vid)?;
        let new_email = fix
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        if let Some(e) = new_email {
            let norm = normalize_email(e)?;
            if norm.len() > crate::keyring::MAX_EMAIL {
                return Err(Error::invalid("the new email is too long"));
            }
            if engine
                .vid_by_address(&engine.index.read(), &norm, Sectors::Mapped)?
                .is_some_and(|v| v != vid)
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
                            && was != crate::message::REDACTED
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
                .rewrite_with(id, &engine.detector, &transform, reference)?
                .keys_destroyed;
            changed += 1;
        }
        if let Some(e) = new_email {
            let mut w = engine.writer.lock();
            let mut index = engine.index.write();
            let norm = normalize_email(e)?;
            let slot = index.visitor_slot(&vid)?.filter(|s| *s != 0);
            let moved = self.guard(|| {
                // Written anew where the new email's hash places it in the
                // directory's table, and the old entry wiped; in place (one
                // write inside one sector) only for another spelling of the
                // same address that fits its cells (`Keyring::rewrite_visitor`).
                let moved = match slot {
                    Some(slot) => w.keyring.rewrite_visitor(slot, vid, &norm)?,
                    None => (0, Vec::new()),
                };
                w.keyring.sync()?;
                Ok(moved)
            })?;
            // Entries a growth of the directory's table moved, then this one.
            let follow = (|| -> Result<()> {
                for m in &moved.1 {
                    index.move_visitor_slot_from(&m.vid, m.from, m.to)?;
                }
                if slot.is_some() {
                    index.move_visitor_slot(&vid, moved.0)?;
                }
                Ok(())
            })();
            if let Err(e) = follow {
                // The entries moved on disk: the index must follow.
                self.engine.commit.poison(&e);
                return Err(e);
            }
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
        let mut e = super::entry(
            "rectification",
            format!("visitor:{}", hex(&vid)),
            reference,
            None,
        );
        e.transcripts = changed;
        e.keys_destroyed = keys;
        e.detail = Some(format!("fields:{}", fields.join("+")));
        let mut w = engine.writer.lock();
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
        self.engine.screen.reference(reference)?;
        let stale: Vec<std::sync::Arc<str>> = {
            let index = self.engine.index.read();
            let mut stale = Vec::new();
            for t in index.transcripts() {
                let t = t?;
                if t.rules_version < RULES_VERSION && !t.is_empty() {
                    stale.push(self.engine.keys.caller_id(&t)?);
                }
            }
            stale
        };
        for id in &stale {
            self.rewrite_transcript(id, &[], reference)?;
        }
        Ok(stale.len() as u64)
    }
}
