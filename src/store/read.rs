//! The read path: a transcript whole, a visitor's transcripts by time.

use super::*;

impl Store {
    /// Every message of a transcript, in the order appended. Personal data whose
    /// key was destroyed reads as [`crate::REDACTED`].
    ///
    /// # Errors
    /// [`Error::TranscriptNotFound`], or [`Error::Corrupt`] if a record fails its
    /// checks (never altered data).
    pub fn transcript(&self, id: &str) -> Result<Vec<Message>> {
        let entry = self.entry_by_caller(id)?;
        self.check_not_restricted(&entry.vid)?;
        Ok(self
            .read_entry(&entry.tid)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// A copy of a live transcript's index entry.
    pub(super) fn entry_by_caller(&self, id: &str) -> Result<TranscriptEntry> {
        let index = self.inner.index.read();
        let tid = index.by_caller.get(id).ok_or(Error::TranscriptNotFound)?;
        let t = index
            .transcripts
            .get(tid)
            .ok_or(Error::TranscriptNotFound)?;
        if t.records.is_empty() {
            return Err(Error::TranscriptNotFound);
        }
        Ok(t.clone())
    }

    /// Reads every message of a transcript with its facts. The index entry and
    /// the segments are taken under one lock, so that compaction moving records
    /// cannot pair old locations with new files.
    pub(super) fn read_entry(&self, tid: &Tid) -> Result<Vec<(Message, MessageFacts)>> {
        let (entry, segs) = {
            let index = self.inner.index.read();
            let entry = index
                .transcripts
                .get(tid)
                .ok_or(Error::TranscriptNotFound)?
                .clone();
            let segs = self.segments_for(&entry.records);
            (entry, segs)
        };
        let entry = &entry;
        let mut out = Vec::with_capacity(entry.records.len());
        for r in &entry.records {
            let seg = segs
                .get(&r.loc.seg)
                .ok_or_else(|| Error::corrupt(&self.inner.dir, r.loc.seg, "segment missing"))?;
            out.push(read_message(seg, r, entry)?);
        }
        Ok(out)
    }

    pub(super) fn segments_for(&self, records: &[RecordRef]) -> HashMap<u64, Arc<Segment>> {
        let segs = self.inner.segments.read();
        let mut out = HashMap::new();
        for r in records {
            if let Some(s) = segs.get(&r.loc.seg) {
                out.entry(r.loc.seg).or_insert_with(|| Arc::clone(s));
            }
        }
        out
    }

    /// A visitor's transcripts, newest (by latest message) first, optionally
    /// only those with messages between `from` and `to` (inclusive, Unix ms).
    ///
    /// # Errors
    /// None today; the `Result` leaves room for lookups that touch disk.
    pub fn transcripts_by_email(
        &self,
        email: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<TranscriptInfo>> {
        let index = self.inner.index.read();
        let Some(vid) = index.by_email.get(normalized_email(email).as_ref()) else {
            return Ok(Vec::new());
        };
        self.check_not_restricted(vid)?;
        let Some(v) = index.visitors.get(vid) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (_, tid) in v.transcripts.iter().rev() {
            let Some(t) = index.transcripts.get(tid) else {
                continue;
            };
            let (Some(first), Some(last)) = (t.first_ts(), t.last_ts()) else {
                continue;
            };
            if from.is_some_and(|f| last < f) || to.is_some_and(|to| first > to) {
                continue;
            }
            out.push(info(t, first, last));
        }
        Ok(out)
    }
}

pub(super) fn info(t: &TranscriptEntry, first: i64, last: i64) -> TranscriptInfo {
    TranscriptInfo {
        id: t.caller_id.clone(),
        first: Timestamp::from_unix_millis(first),
        last: Timestamp::from_unix_millis(last),
        messages: t.records.len(),
        redacted: t.pii_key.is_none(),
        rules_version: t.rules_version,
    }
}

/// Facts about a stored message that the message itself does not carry.
#[derive(Clone, Debug, Default)]
pub(crate) struct MessageFacts {
    /// Position in the transcript.
    pub seq: u32,
    /// Size of the uploaded file, for file messages (kept after redaction).
    pub file_size: Option<u64>,
    /// SHA-256 of the uploaded file while its PII key lives.
    pub file_sha256: Option<[u8; 32]>,
}

/// Reads, authenticates and joins one record.
pub(super) fn read_message(
    seg: &Segment,
    r: &RecordRef,
    t: &TranscriptEntry,
) -> Result<(Message, MessageFacts)> {
    let path = seg.path();
    let bytes = seg.read(r.loc.off, r.loc.len as usize)?;
    let corrupt = |why: &str| Error::corrupt(path, r.loc.off, why.to_owned());
    let (rec, size) = record::decode(&bytes).map_err(|e| corrupt(&e.describe()))?;
    if size != r.loc.len as usize || rec.header.tid != t.tid || rec.header.seq != r.seq {
        return Err(corrupt("record is not the one the index expects"));
    }
    let h = &rec.header;
    let content_plain = zeroize::Zeroizing::new(
        t.content_key
            .open(&h.content_nonce, record::aad(b'C', h).as_ref(), rec.content)
            .ok_or_else(|| corrupt("record content does not authenticate"))?,
    );
    let (content, msg_id): (ContentPart, Option<String>) = if h.version == record::RECORD_VERSION_1
    {
        let part = crate::codec::decode(&content_plain);
        (
            part.ok_or_else(|| corrupt("record content does not decode"))?,
            None,
        )
    } else {
        let v2: split::ContentV2Owned = crate::codec::decode(&content_plain)
            .ok_or_else(|| corrupt("record content does not decode"))?;
        (v2.part, Some(v2.msg_id).filter(|m| !m.is_empty()))
    };
    let pii: Option<PiiPart> = match (&t.pii_key, rec.pii.is_empty()) {
        (Some(key), false) => {
            let plain = zeroize::Zeroizing::new(
                key.open(&h.pii_nonce, record::aad(b'P', h).as_ref(), rec.pii)
                    .ok_or_else(|| corrupt("record PII part does not authenticate"))?,
            );
            Some(
                crate::codec::decode(&plain)
                    .ok_or_else(|| corrupt("record PII part does not decode"))?,
            )
        }
        (Some(_), true) => Some(PiiPart::default()),
        (None, _) => None,
    };
    let ctx = JoinContext {
        transcript: &t.caller_id,
        ts_millis: h.ts_millis,
        msg_id: msg_id.as_deref(),
    };
    let msg = split::join(&ctx, &content, pii.as_ref()).map_err(|e| corrupt(e.0))?;
    let facts = MessageFacts {
        seq: h.seq,
        file_size: match &content.body {
            split::ContentBody::File { size, .. } => Some(*size),
            _ => None,
        },
        file_sha256: split::file_sha256(pii.as_ref()),
    };
    Ok((msg, facts))
}
