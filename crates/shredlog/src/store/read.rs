//! The read path: a transcript whole, a visitor's transcripts by time.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Store, TranscriptInfo};
use crate::error::{Error, Result};
use crate::index::{RecordRef, TranscriptEntry};
use crate::keyring::TranscriptKeys;
use crate::message::Message;
use crate::record::{self, MessageKeys, OpenError, PiiPlain, RECORD_VERSION_1};
use crate::segment::Segment;
use crate::split::{self, ContentPart, ContentV2Owned, JoinContext, PiiPart};

impl Store {
    /// Every message of a transcript, in the order appended. Personal data whose
    /// key was destroyed reads as [`crate::REDACTED`].
    ///
    /// # Errors
    /// [`Error::TranscriptNotFound`], [`Error::Restricted`], or
    /// [`Error::Corrupt`] if a record fails its checks (never altered data).
    pub fn transcript(&self, id: &str) -> Result<Vec<Message>> {
        let entry = self.entry_by_caller(id)?;
        self.check_not_restricted(&entry.vid)?;
        Ok(self
            .read_entry(&entry.tid)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// A copy of the index entry of the generation a caller id leads to.
    pub(crate) fn entry_by_caller(&self, id: &str) -> Result<TranscriptEntry> {
        let index = self.engine.index.read();
        let t = index.by_caller(id)?.ok_or(Error::TranscriptNotFound)?;
        if t.is_empty() {
            return Err(Error::TranscriptNotFound);
        }
        Ok(t.into_owned())
    }

    /// Reads every message of a generation with its facts. The index entry
    /// and the segments are taken under one lock, so that compaction moving
    /// records cannot pair old locations with new files.
    pub(crate) fn read_entry(&self, tid: &record::Tid) -> Result<Vec<(Message, MessageFacts)>> {
        let (entry, segs, keys, records) = {
            let index = self.engine.index.read();
            let entry = index.transcript(tid)?.ok_or(Error::TranscriptNotFound)?;
            let keys = self.engine.keys.get(&entry)?;
            let records = index.records(&entry)?;
            let entry = entry.into_owned();
            let segs = self.segments_for(&records);
            (entry, segs, keys, records)
        };
        let mut out = Vec::with_capacity(records.len());
        for r in &records {
            let seg = segs
                .get(&r.loc.seg)
                .ok_or_else(|| Error::corrupt(&self.engine.dir, r.loc.seg, "segment missing"))?;
            out.push(read_message(seg, r, &entry, &keys)?);
        }
        Ok(out)
    }

    fn segments_for(&self, records: &[RecordRef]) -> HashMap<u64, Arc<Segment>> {
        let segs = self.engine.segments.read();
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
    /// [`Error::Restricted`] for a restricted visitor.
    pub fn transcripts_by_email(
        &self,
        email: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<TranscriptInfo>> {
        let index = self.engine.index.read();
        let Some(vid) = self.engine.vid_by_address(&index, email)? else {
            return Ok(Vec::new());
        };
        self.check_not_restricted(&vid)?;
        let mut out = Vec::new();
        for l in index.visitor_listing(&vid)? {
            let (first, last) = l.ts_range;
            if from.is_some_and(|f| last < f) || to.is_some_and(|to| first > to) {
                continue;
            }
            // The id is in the generation's slot (the index has its hash).
            let id = self.engine.keys.caller_id_at(&l.tid, l.content_slot)?;
            out.push(TranscriptInfo::listed(&l, &id));
        }
        Ok(out)
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
pub(crate) fn read_message(
    seg: &Segment,
    r: &RecordRef,
    t: &TranscriptEntry,
    keys: &TranscriptKeys,
) -> Result<(Message, MessageFacts)> {
    let path = seg.path();
    let bytes = seg.read(r.loc.off, r.loc.len as usize)?;
    let corrupt = |why: &str| Error::corrupt(path, r.loc.off, why.to_owned());
    let caller_id: &str = &keys.caller_id;
    let keys = MessageKeys {
        content: &keys.content,
        pii: keys.pii.as_ref().filter(|_| t.has_pii()),
    };
    let (opened, size) =
        record::open_message(&bytes, keys).map_err(|e: OpenError| corrupt(&e.describe()))?;
    let h = &opened.header;
    if size != r.loc.len as usize || h.tid != t.tid || h.seq != r.seq {
        return Err(corrupt("record is not the one the index expects"));
    }
    let (content, msg_id): (ContentPart, Option<String>) = if h.version == RECORD_VERSION_1 {
        let part = crate::codec::decode(&opened.content);
        (
            part.ok_or_else(|| corrupt("record content does not decode"))?,
            None,
        )
    } else {
        let v2: ContentV2Owned = crate::codec::decode(&opened.content)
            .ok_or_else(|| corrupt("record content does not decode"))?;
        (v2.part, Some(v2.msg_id).filter(|m| !m.is_empty()))
    };
    let pii: Option<PiiPart> = match opened.pii {
        PiiPlain::Open(plain) => Some(
            crate::codec::decode(&plain)
                .ok_or_else(|| corrupt("record PII part does not decode"))?,
        ),
        PiiPlain::None => Some(PiiPart::default()),
        PiiPlain::Gone => None,
    };
    let ctx = JoinContext {
        transcript: caller_id,
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
        file_sha256: split::file_sha256(&content, pii.as_ref()),
    };
    Ok((msg, facts))
}
