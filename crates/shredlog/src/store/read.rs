//! The read path: a transcript whole, a visitor's transcripts by time.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Store, TranscriptInfo};
use crate::error::{Error, Result};
use crate::index::{RecordRef, TranscriptEntry};
use crate::keyring::TranscriptKeys;
use crate::keyring::directory::Sectors;
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
            .read_entry(&entry.tid, Hashing::Skip)?
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

    /// Reads every message of a generation with its facts (the files'
    /// SHA-256 only with [`Hashing::Files`]). The index entry and the
    /// segments are taken under one lock, so that compaction moving records
    /// cannot pair old locations with new files.
    pub(crate) fn read_entry(
        &self,
        tid: &record::Tid,
        hashing: Hashing,
    ) -> Result<Vec<(Message, MessageFacts)>> {
        let (entry, segs, keys, records) = {
            let index = self.engine.index.read();
            let entry = index.transcript(tid)?.ok_or(Error::TranscriptNotFound)?;
            let keys = self.engine.keys.get(&entry)?;
            let records = index.records(&entry)?;
            let entry = entry.into_owned();
            let segs = self.segments_for(&records);
            (entry, segs, keys, records)
        };
        // Records close together in a segment (a conversation written
        // while few others were) are read with one positioned read.
        // Per record: the span read that holds it, and where.
        let mut buffers: Vec<Vec<u8>> = Vec::new();
        let mut at: Vec<Option<(usize, usize)>> = vec![None; records.len()];
        for span in spans(&records) {
            let seg = segs
                .get(&span.seg)
                .ok_or_else(|| Error::corrupt(&self.engine.dir, span.seg, "segment missing"))?;
            // A span that cannot be read whole is read a record at a time,
            // so that an error names the record's own offset.
            let Ok(whole) = seg.read(span.off, span.len) else {
                continue;
            };
            for &i in &span.records {
                at[i] = Some((buffers.len(), (records[i].loc.off - span.off) as usize));
            }
            buffers.push(whole.into_owned());
        }
        let opener = Opener::new(&entry, &keys, hashing);
        let mut out = Vec::with_capacity(records.len());
        for (r, at) in records.iter().zip(at) {
            let seg = segs
                .get(&r.loc.seg)
                .ok_or_else(|| Error::corrupt(&self.engine.dir, r.loc.seg, "segment missing"))?;
            let frame = at.and_then(|(b, at)| buffers.get(b)?.get(at..at + r.loc.len as usize));
            out.push(match frame {
                Some(frame) => open_record(seg.path(), frame, r, &entry, &opener)?,
                None => read_record(seg, r, &entry, &opener)?,
            });
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
        let Some(vid) = self.engine.vid_by_address(&index, email, Sectors::Mapped)? else {
            return Ok(Vec::new());
        };
        self.check_not_restricted(&vid)?;
        let mut listed = index.visitor_listing(&vid)?;
        listed.retain(|l| {
            let (first, last) = l.ts_range;
            !(from.is_some_and(|f| last < f) || to.is_some_and(|to| first > to))
        });
        // The ids are in the generations' slots (the index has their hashes).
        let slots: Vec<_> = listed.iter().map(|l| (l.tid, l.content_slot)).collect();
        let ids = self.engine.keys.caller_ids_at(&slots)?;
        Ok(listed
            .iter()
            .zip(ids)
            .map(|(l, id)| TranscriptInfo::listed(l, &id))
            .collect())
    }
}

/// Whether reading a file message computes its SHA-256 (when its record
/// does not carry it): a pass over the file's bytes that only an export needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hashing {
    /// [`MessageFacts::file_sha256`] is filled in.
    Files,
    /// [`MessageFacts::file_sha256`] is `None`.
    Skip,
}

/// Facts about a stored message that the message itself does not carry.
#[derive(Clone, Debug, Default)]
pub(crate) struct MessageFacts {
    /// Position in the transcript.
    pub seq: u32,
    /// Size of the uploaded file, for file messages (kept after redaction).
    pub file_size: Option<u64>,
    /// SHA-256 of the uploaded file while its PII key lives, when read with
    /// [`Hashing::Files`].
    pub file_sha256: Option<[u8; 32]>,
}

/// Records further apart than this in a segment are read apart.
const SPAN_GAP: u64 = 8 << 10;
/// The most one read of several records takes.
const SPAN_MAX: u64 = 256 << 10;

/// Records of one segment read with one positioned read.
struct Span {
    seg: u64,
    off: u64,
    len: usize,
    /// Their positions in the records given to [`spans`].
    records: Vec<usize>,
}

/// `records` grouped into spans: in offset order per segment, a record
/// joins the span before it when less than [`SPAN_GAP`] bytes lie between
/// them and the span stays within [`SPAN_MAX`] bytes.
fn spans(records: &[RecordRef]) -> Vec<Span> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_unstable_by_key(|&i| (records[i].loc.seg, records[i].loc.off));
    let mut out: Vec<Span> = Vec::new();
    for i in order {
        let loc = records[i].loc;
        let end = loc.off + u64::from(loc.len);
        if let Some(s) = out.last_mut()
            && s.seg == loc.seg
            && loc.off >= s.off + s.len as u64
            && loc.off - (s.off + s.len as u64) < SPAN_GAP
            && end - s.off <= SPAN_MAX
        {
            s.len = (end - s.off) as usize;
            s.records.push(i);
            continue;
        }
        out.push(Span {
            seg: loc.seg,
            off: loc.off,
            len: loc.len as usize,
            records: vec![i],
        });
    }
    out
}

/// Reads, authenticates and joins one record.
pub(crate) fn read_message(
    seg: &Segment,
    r: &RecordRef,
    t: &TranscriptEntry,
    keys: &TranscriptKeys,
) -> Result<(Message, MessageFacts)> {
    read_record(seg, r, t, &Opener::new(t, keys, Hashing::Skip))
}

/// Reads record `r` from `seg` alone and opens it.
fn read_record(
    seg: &Segment,
    r: &RecordRef,
    t: &TranscriptEntry,
    opener: &Opener<'_>,
) -> Result<(Message, MessageFacts)> {
    let bytes = seg.read(r.loc.off, r.loc.len as usize)?;
    open_record(seg.path(), &bytes, r, t, opener)
}

/// What opening a generation's records takes: its caller id and its keys
/// made ready once for all of them.
struct Opener<'a> {
    caller_id: &'a str,
    keys: MessageKeys,
    hashing: Hashing,
}

impl<'a> Opener<'a> {
    fn new(t: &TranscriptEntry, keys: &'a TranscriptKeys, hashing: Hashing) -> Opener<'a> {
        Opener {
            caller_id: &keys.caller_id,
            keys: MessageKeys::new(&keys.content, keys.pii.as_ref().filter(|_| t.has_pii())),
            hashing,
        }
    }
}

/// Authenticates and joins record `r`, whose frame is `bytes` (read from
/// the segment file at `path`).
fn open_record(
    path: &std::path::Path,
    bytes: &[u8],
    r: &RecordRef,
    t: &TranscriptEntry,
    opener: &Opener<'_>,
) -> Result<(Message, MessageFacts)> {
    let corrupt = |why: &str| Error::corrupt(path, r.loc.off, why.to_owned());
    let caller_id = opener.caller_id;
    let (opened, size) =
        record::open_message(bytes, &opener.keys).map_err(|e: OpenError| corrupt(&e.describe()))?;
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
    let facts = MessageFacts {
        seq: h.seq,
        file_size: match &content.body {
            split::ContentBody::File { size, .. } => Some(*size),
            _ => None,
        },
        file_sha256: match opener.hashing {
            Hashing::Files => split::file_sha256(&content, pii.as_ref()),
            Hashing::Skip => None,
        },
    };
    let ctx = JoinContext {
        transcript: caller_id,
        ts_millis: h.ts_millis,
        msg_id: msg_id.as_deref(),
    };
    let msg = split::join(&ctx, content, pii).map_err(|e| corrupt(e.0))?;
    Ok((msg, facts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Loc;

    fn rec(seq: u32, seg: u64, off: u64, len: u32) -> RecordRef {
        RecordRef {
            seq,
            ts: 0,
            loc: Loc { seg, off, len },
            pii_len: 0,
        }
    }

    #[test]
    fn records_close_together_share_a_read_and_others_do_not() {
        let records = [
            rec(0, 1, 100, 50),
            rec(1, 1, 150, 50),
            // A gap just under SPAN_GAP joins; one of SPAN_GAP does not.
            rec(2, 1, 200 + SPAN_GAP - 1, 10),
            rec(3, 1, 200 + SPAN_GAP - 1 + 10 + SPAN_GAP, 10),
            // Another segment, given out of order.
            rec(5, 2, 64, 8),
            rec(4, 2, 32, 32),
        ];
        let got: Vec<(u64, u64, usize, Vec<usize>)> = spans(&records)
            .into_iter()
            .map(|s| (s.seg, s.off, s.len, s.records))
            .collect();
        let third = 200 + SPAN_GAP - 1 + 10 + SPAN_GAP;
        assert_eq!(
            got,
            vec![
                (
                    1,
                    100,
                    (200 + SPAN_GAP - 1 + 10 - 100) as usize,
                    vec![0, 1, 2]
                ),
                (1, third, 10, vec![3]),
                (2, 32, 40, vec![5, 4]),
            ]
        );
        // Every record is inside its span.
        for s in spans(&records) {
            for i in s.records {
                let l = records[i].loc;
                assert!(l.off >= s.off && l.off + u64::from(l.len) <= s.off + s.len as u64);
            }
        }
    }

    #[test]
    fn a_span_stays_within_its_limit() {
        let records: Vec<RecordRef> = (0..100u32)
            .map(|i| rec(i, 1, u64::from(i) * 10_000, 10_000))
            .collect();
        let spans = spans(&records);
        assert!(spans.iter().all(|s| s.len as u64 <= SPAN_MAX));
        assert_eq!(
            spans.len(),
            (100 * 10_000u64).div_ceil(SPAN_MAX - SPAN_MAX % 10_000) as usize
        );
        assert_eq!(spans.iter().map(|s| s.records.len()).sum::<usize>(), 100);
    }
}
