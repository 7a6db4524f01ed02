//! The in-memory index (email → visitor, visitor → transcripts by time,
//! time → transcripts, transcript → record locations) and its checkpoint file.
//!
//! Keys and emails come from the keyring at open; the checkpoint holds only
//! record locations, so it never contains personal data.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::record::{MsgIdDigest, Tid, Vid};
use crate::seal::Key;

/// Hasher for maps keyed by transcript and visitor ids. The ids are 16 random
/// bytes drawn by the store (never chosen by a caller), so a multiply-rotate
/// mix of them spreads as well as SipHash does, at a fraction of the cost:
/// open builds these maps for every transcript.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (w, b) in word.iter_mut().zip(chunk) {
                *w = *b;
            }
            self.0 = (self.0.rotate_left(26) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
}

/// A map keyed by transcript or visitor id.
pub(crate) type IdMap<V> = HashMap<[u8; 16], V, BuildHasherDefault<IdHasher>>;
/// A set of transcript or visitor ids.
pub(crate) type IdSet = HashSet<[u8; 16], BuildHasherDefault<IdHasher>>;

/// Where a record lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Loc {
    pub seg: u64,
    pub off: u64,
    /// Size of the whole frame.
    pub len: u32,
}

/// One message record of a transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordRef {
    pub seq: u32,
    pub ts: i64,
    pub loc: Loc,
    /// Bytes of the sealed PII part (0 when none).
    pub pii_len: u32,
}

/// A live transcript.
#[derive(Clone, Debug)]
pub(crate) struct TranscriptEntry {
    pub tid: Tid,
    pub vid: Vid,
    pub caller_id: String,
    pub content_slot: u32,
    pub pii_slot: u32,
    pub content_key: Key,
    pub pii_key: Option<Key>,
    pub rules_version: u16,
    pub created_millis: i64,
    /// In sequence (= append) order.
    pub records: Vec<RecordRef>,
    /// (earliest, latest) message time, kept up to date by `Index::add_record`.
    pub ts_range: Option<(i64, i64)>,
    /// Digests of the caller's message ids its records carry (for "already
    /// stored" answers to retried appends).
    pub msg_ids: IdSet,
}

impl TranscriptEntry {
    pub(crate) fn first_ts(&self) -> Option<i64> {
        self.ts_range.map(|r| r.0)
    }

    pub(crate) fn last_ts(&self) -> Option<i64> {
        self.ts_range.map(|r| r.1)
    }

    pub(crate) fn next_seq(&self) -> u32 {
        self.records.last().map_or(0, |r| r.seq + 1)
    }
}

/// A visitor directory entry.
#[derive(Clone, Debug)]
pub(crate) struct VisitorEntry {
    pub email: String,
    pub slot: u32,
    /// (last message time, tid) of each transcript with at least one record.
    pub transcripts: BTreeSet<(i64, Tid)>,
    /// Every live transcript of the visitor, with or without records.
    pub tids: IdSet,
}

/// Byte accounting per segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentUsage {
    /// Bytes of live records.
    pub live: u64,
    /// Bytes of records that can never be read again (keys destroyed, unknown).
    pub dead: u64,
    /// When the oldest of those dead bytes died (Unix ms), as far as known: the
    /// delete-persistence bound counts from here.
    pub dead_since: Option<i64>,
}

impl SegmentUsage {
    /// Moves `n` bytes from live to dead.
    pub(crate) fn kill(&mut self, n: u64) {
        self.live = self.live.saturating_sub(n);
        self.add_dead(n);
    }

    /// Counts `n` more dead bytes.
    pub(crate) fn add_dead(&mut self, n: u64) {
        if n > 0 {
            self.dead += n;
            self.dead_since
                .get_or_insert_with(|| crate::message::Timestamp::now().unix_millis());
        }
    }
}

/// The index.
#[derive(Default)]
pub(crate) struct Index {
    pub transcripts: IdMap<TranscriptEntry>,
    pub by_caller: HashMap<String, Tid>,
    pub visitors: IdMap<VisitorEntry>,
    pub by_email: HashMap<String, Vid>,
    /// (last message time, tid) of every transcript with records.
    pub by_time: BTreeSet<(i64, Tid)>,
    pub usage: BTreeMap<u64, SegmentUsage>,
}

impl Index {
    /// Adds a live transcript (without records) and links it to its visitor,
    /// creating a placeholder visitor entry if the visitor has none.
    pub(crate) fn insert_transcript(&mut self, t: TranscriptEntry) {
        let v = self.visitors.entry(t.vid).or_insert_with(|| VisitorEntry {
            email: String::new(),
            slot: 0,
            transcripts: BTreeSet::new(),
            tids: IdSet::default(),
        });
        v.tids.insert(t.tid);
        self.transcripts.insert(t.tid, t);
    }

    /// Loads the checkpoint's record lists (each in sequence order), then
    /// builds the time index from them in bulk: sorting once and building
    /// the tree from sorted entries beats an insert per transcript.
    pub(crate) fn load_checkpoint_records(&mut self, lists: Vec<CheckpointTranscript>) {
        let mut by_time = Vec::with_capacity(lists.len());
        for (tid, recs, ids) in lists {
            if let Some(t) = self.transcripts.get_mut(&tid) {
                t.msg_ids.extend(ids);
            }
            if let Some(last) = self.attach_records(&tid, recs) {
                by_time.push((last, tid));
            }
        }
        by_time.sort_unstable();
        let bulk: BTreeSet<(i64, Tid)> = by_time.into_iter().collect();
        if self.by_time.is_empty() {
            self.by_time = bulk;
        } else {
            self.by_time.extend(bulk);
        }
    }

    /// Gives a transcript without records its whole list at once and returns
    /// its latest message time, for the caller to put in the time index.
    /// Falls back to [`Index::add_record`] (which keeps the time index itself,
    /// and `None` is returned) when the transcript already has records or the
    /// list is not strictly ordered.
    fn attach_records(&mut self, tid: &Tid, recs: Vec<RecordRef>) -> Option<i64> {
        let ordered = recs.windows(2).all(|w| w[0].seq < w[1].seq);
        let Some(t) = self
            .transcripts
            .get_mut(tid)
            .filter(|t| ordered && t.records.is_empty() && !recs.is_empty())
        else {
            for r in recs {
                self.add_record(tid, r, None);
            }
            return None;
        };
        let redacted = t.pii_key.is_none();
        let mut range = (i64::MAX, i64::MIN);
        // A transcript's records sit in few segments: sum per run of one
        // segment, then add each run to the usage map once.
        let mut run: Option<(u64, u64, u64)> = None; // (segment, live, dead)
        let usage = &mut self.usage;
        let mut flush = |run: (u64, u64, u64)| {
            let u = usage.entry(run.0).or_default();
            u.live += run.1;
            u.add_dead(run.2);
        };
        for r in &recs {
            range = (range.0.min(r.ts), range.1.max(r.ts));
            let dead_pii = if redacted { u64::from(r.pii_len) } else { 0 };
            let live = u64::from(r.loc.len).saturating_sub(dead_pii);
            match &mut run {
                Some((seg, l, d)) if *seg == r.loc.seg => {
                    *l += live;
                    *d += dead_pii;
                }
                _ => {
                    if let Some(done) = run.take() {
                        flush(done);
                    }
                    run = Some((r.loc.seg, live, dead_pii));
                }
            }
        }
        if let Some(done) = run {
            flush(done);
        }
        t.records = recs;
        t.ts_range = Some(range);
        if let Some(v) = self.visitors.get_mut(&t.vid) {
            v.transcripts.insert((range.1, *tid));
        }
        Some(range.1)
    }

    /// Adds a record to a known transcript, keeping the time indexes right.
    pub(crate) fn add_record(
        &mut self,
        tid: &Tid,
        rec: RecordRef,
        msg_id: Option<MsgIdDigest>,
    ) -> bool {
        let Some(t) = self.transcripts.get_mut(tid) else {
            self.usage
                .entry(rec.loc.seg)
                .or_default()
                .add_dead(u64::from(rec.loc.len));
            return false;
        };
        // Records arrive in sequence order, except after compaction moved some
        // into a segment scanned earlier or later; a sequence number already
        // present is a second copy of the same record (a compaction cut short).
        match t.records.last() {
            Some(last) if last.seq >= rec.seq => {
                match t.records.binary_search_by_key(&rec.seq, |r| r.seq) {
                    Ok(_) => {
                        self.usage
                            .entry(rec.loc.seg)
                            .or_default()
                            .add_dead(u64::from(rec.loc.len));
                        return false;
                    }
                    Err(pos) => t.records.insert(pos, rec),
                }
            }
            _ => t.records.push(rec),
        }
        if let Some(d) = msg_id {
            t.msg_ids.insert(d);
        }
        let old_last = t.last_ts();
        t.ts_range = Some(match t.ts_range {
            Some((a, b)) => (a.min(rec.ts), b.max(rec.ts)),
            None => (rec.ts, rec.ts),
        });
        let new_last = t.last_ts();
        let vid = t.vid;
        // The PII part of a redacted transcript's record is dead already.
        let dead_pii = if t.pii_key.is_none() {
            u64::from(rec.pii_len)
        } else {
            0
        };
        let u = self.usage.entry(rec.loc.seg).or_default();
        u.live += u64::from(rec.loc.len) - dead_pii;
        u.add_dead(dead_pii);
        if old_last != new_last {
            if let Some(old) = old_last {
                self.by_time.remove(&(old, *tid));
            }
            if let Some(new) = new_last {
                self.by_time.insert((new, *tid));
            }
            if let Some(v) = self.visitors.get_mut(&vid) {
                if let Some(old) = old_last {
                    v.transcripts.remove(&(old, *tid));
                }
                if let Some(new) = new_last {
                    v.transcripts.insert((new, *tid));
                }
            }
        }
        true
    }

    /// Removes a transcript, turning its records into dead bytes.
    pub(crate) fn remove_transcript(&mut self, tid: &Tid) -> Option<TranscriptEntry> {
        let t = self.transcripts.remove(tid)?;
        if self.by_caller.get(&t.caller_id) == Some(tid) {
            self.by_caller.remove(&t.caller_id);
        }
        if let Some(last) = t.last_ts() {
            self.by_time.remove(&(last, *tid));
        }
        if let Some(v) = self.visitors.get_mut(&t.vid) {
            if let Some(last) = t.last_ts() {
                v.transcripts.remove(&(last, *tid));
            }
            v.tids.remove(tid);
        }
        for r in &t.records {
            let u = self.usage.entry(r.loc.seg).or_default();
            // PII parts of a redacted transcript were already counted dead.
            let len = u64::from(r.loc.len)
                - if t.pii_key.is_none() {
                    u64::from(r.pii_len)
                } else {
                    0
                };
            u.kill(len);
        }
        Some(t)
    }
}

/// A transcript in the checkpoint: its records in sequence order and the
/// digests of its message ids.
pub(crate) type CheckpointTranscript = (Tid, Vec<RecordRef>, Vec<MsgIdDigest>);

/// The checkpoint: record locations up to a position in the log.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// Segments covered, ascending: (id, generation of the file, its length
    /// at checkpoint time). A segment whose generation differs was rewritten
    /// since (the checkpoint is stale); one of the same generation that is
    /// shorter lost acknowledged data.
    pub segments: Vec<(u64, u32, u64)>,
    /// Dead bytes per segment at checkpoint time, and since when (Unix ms).
    pub dead: Vec<(u64, u64, Option<i64>)>,
    /// Live transcripts' records.
    pub transcripts: Vec<CheckpointTranscript>,
}

const CKPT_MAGIC: &[u8; 8] = b"SHRDCKP1";
const CKPT_VERSION: u32 = 3;
pub(crate) const CKPT_FILE: &str = "index.ckpt";

impl Checkpoint {
    /// `magic[8] | version u32 | len u64 | crc32 u32 (of payload) | payload`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let payload = crate::codec::encode(self);
        let mut out = Vec::with_capacity(24 + payload.len());
        out.extend_from_slice(CKPT_MAGIC);
        out.extend_from_slice(&CKPT_VERSION.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// `None` if the bytes are not a valid checkpoint (the store then scans).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        if bytes.get(0..8)? != CKPT_MAGIC {
            return None;
        }
        let version = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
        if version != CKPT_VERSION {
            return None;
        }
        let len = usize::try_from(u64::from_le_bytes(bytes.get(12..20)?.try_into().ok()?)).ok()?;
        let crc = u32::from_le_bytes(bytes.get(20..24)?.try_into().ok()?);
        let payload = bytes.get(24..)?;
        if payload.len() != len || crc32fast::hash(payload) != crc {
            return None;
        }
        crate::codec::decode(payload)
    }

    pub(crate) fn load(dir: &Path) -> Option<Checkpoint> {
        let bytes = std::fs::read(dir.join(CKPT_FILE)).ok()?;
        Checkpoint::decode(&bytes)
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        crate::fsutil::write_atomic(dir, CKPT_FILE, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_roundtrip_and_damage() {
        let c = Checkpoint {
            segments: vec![(1, 1, 100), (2, 1, 50)],
            dead: vec![(1, 10, Some(5))],
            transcripts: vec![(
                [7; 16],
                vec![RecordRef {
                    seq: 0,
                    ts: 5,
                    loc: Loc {
                        seg: 1,
                        off: 32,
                        len: 68,
                    },
                    pii_len: 0,
                }],
                vec![[3; 16]],
            )],
        };
        let bytes = c.encode();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), c);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(Checkpoint::decode(&bad).is_none(), "flip at {i}");
        }
        assert!(Checkpoint::decode(&bytes[..bytes.len() - 1]).is_none());
    }
}
