//! The index: visitor → directory slot and transcripts, caller id (by its
//! keyed hash) → transcript generation, transcript → record locations and
//! times, and byte accounting per segment.
//!
//! It holds no keys (the keyring's key cache does) and no personal data: the
//! directory's emails stay in the keyring, whose directory table answers
//! lookups by email ([`crate::keyring::DirectoryReader`]); the index knows a
//! visitor only by its random id and its entry's slot. Its maps are
//! private: callers change it only through the verbs below, each of which
//! keeps these invariants:
//!
//! - every transcript generation is linked from its visitor's entry
//!   (`visitors[vid].tids`), and a visitor entry exists for every `vid` a
//!   transcript carries (a placeholder without email once the directory
//!   entry is gone);
//! - `directory` counts the visitors whose entry's slot is not 0;
//! - `by_caller[hash(id)]` names the one generation of caller id `id` that reads
//!   and writes see; every generation in the index is that one (a second one
//!   exists only inside [`Index::replace_generation`]);
//! - `usage[seg].live` counts the bytes of live records in `seg` (less the
//!   PII parts of generations whose PII key is gone), `usage[seg].dead` the rest;
//! - a generation's records in a segment are either all held in memory
//!   (`recent`: the active segment, or one whose location file came while
//!   they were being committed) or all found in that segment's location file
//!   (`sidecars`), and `sealed` is set when any are found there.
//!
//! Record locations and times live on disk, in one record-location file per
//! sealed segment ([`Sidecar`], docs/FORMAT.md §7a), read through the page
//! cache: a generation's count, times and records are worked out when asked
//! ([`Index::extent`]), so that the index holds nothing per record of a
//! sealed segment and, per generation, only its identity and the range of
//! segments it has records in. The rest
//! (generations, visitors, the directory's slots) is rebuilt at open from
//! the keyring's slots, the location files' summaries, the checkpoint (the
//! active segment's records) and a scan of what it does not cover.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::{IdMap, IdSet};
use crate::record::{MsgIdDigest, Tid, Vid};

mod blocks;
mod callers;
mod checkpoint;
mod finder;
mod sidecar;
mod small_set;
use blocks::BlockCache;
pub(crate) use callers::CallerHash;
use callers::Callers;
pub(crate) use checkpoint::{Checkpoint, CheckpointTranscript};
pub(crate) use sidecar::file_name as sidecar_file_name;
pub(crate) use sidecar::{Builder as SidecarBuilder, Describes, Entry, Sidecar, Summary};
use small_set::SmallSet;

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

/// A generation's records in memory (of segments without a location file).
#[derive(Clone, Debug, Default)]
struct Recent {
    /// In sequence order.
    records: Vec<RecordRef>,
    /// Digests of the caller's message ids of (at least) these records;
    /// those of records in location files are read from there.
    ids: IdSet,
}

/// A live transcript generation. Read-only outside the index.
///
/// It holds its identity and keys' slots, not its records: those of sealed
/// segments are in their record-location files, found there by the
/// generation id ([`Index::extent`], [`Index::records`]); only the records of
/// segments that have none (the active segment) are kept in memory.
#[derive(Clone, Debug)]
pub(crate) struct TranscriptEntry {
    pub tid: Tid,
    pub vid: Vid,
    /// Its caller id's keyed hash (the id is in its keyring slot, read with
    /// its keys: [`crate::keyring::TranscriptKeys::caller_id`]).
    pub caller: CallerHash,
    pub content_slot: u32,
    /// The PII key's slot; `None` once the key is destroyed (or for a
    /// generation written without one).
    pub pii_slot: Option<u32>,
    pub rules_version: u16,
    pub created_millis: i64,
    /// Whether location files hold records of it; when false, every record
    /// of it is in `recent` (and none need be looked up).
    sealed: bool,
    /// The lowest and highest segment it has records in (`u32::MAX, 0`
    /// for none), so that a lookup asks only the location files between:
    /// a segment keeps its id when compaction rewrites it, and a
    /// generation's records go only to segments written after it was made.
    segs: (u32, u32),
    /// Records in segments without a location file (the active segment),
    /// and their message-id digests; `None` when there are none, so that a
    /// generation whose records are all in location files costs one pointer
    /// here.
    recent: Option<Box<Recent>>,
}

impl TranscriptEntry {
    /// A generation without records.
    pub(crate) fn new(
        tid: Tid,
        vid: Vid,
        caller: CallerHash,
        content_slot: u32,
        pii_slot: Option<u32>,
        rules_version: u16,
        created_millis: i64,
    ) -> TranscriptEntry {
        TranscriptEntry {
            tid,
            vid,
            caller,
            content_slot,
            pii_slot,
            rules_version,
            created_millis,
            sealed: false,
            segs: (u32::MAX, 0),
            recent: None,
        }
    }

    /// Notes that it has records in segment `seg`.
    fn note_segment(&mut self, seg: u64) {
        match u32::try_from(seg) {
            Ok(s) if s < u32::MAX => self.segs = (self.segs.0.min(s), self.segs.1.max(s)),
            // Beyond the range kept: every segment is asked.
            _ => self.segs = (0, u32::MAX),
        }
    }

    /// The segments it may have records in.
    fn segment_range(&self) -> std::ops::RangeInclusive<u64> {
        u64::from(self.segs.0)..=u64::from(self.segs.1)
    }

    /// Whether it has no record.
    pub(crate) fn is_empty(&self) -> bool {
        !self.sealed && self.recent().is_empty()
    }

    /// Whether its PII key lives.
    pub(crate) fn has_pii(&self) -> bool {
        self.pii_slot.is_some()
    }

    /// Whether it holds records of segment `seg` in memory.
    fn holds_in(&self, seg: u64) -> bool {
        self.recent().iter().any(|r| r.loc.seg == seg)
    }

    /// Drops the in-memory records of segment `seg` (now in its location
    /// file) and gives their memory back: a vector keeps its capacity, and
    /// every generation that ever had records in memory would otherwise keep
    /// room for all of them, so that memory grew with the store's history.
    fn forget_recent_in(&mut self, seg: u64) {
        let Some(r) = self.recent.as_mut() else {
            return;
        };
        r.records.retain(|r| r.loc.seg != seg);
        if r.records.is_empty() {
            self.recent = None;
        } else {
            r.records.shrink_to_fit();
        }
    }

    /// Its records held in memory, in sequence order.
    fn recent(&self) -> &[RecordRef] {
        self.recent.as_ref().map_or(&[], |r| &r.records)
    }

    /// Its records held in memory, made room for.
    fn recent_mut(&mut self) -> &mut Recent {
        self.recent.get_or_insert_with(Box::default)
    }
}

/// What a generation's records add up to: worked out from the summaries of
/// the location files that hold some of them and from those in memory
/// ([`Index::extent`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extent {
    /// Number of records.
    pub count: u32,
    /// One more than the highest sequence number.
    pub next_seq: u32,
    /// (earliest, latest) message time.
    pub ts_range: Option<(i64, i64)>,
    /// Its records in location files: (segment, its summary there).
    parts: Vec<(u64, Summary)>,
    /// (segment, frame bytes, PII bytes) of its records, per segment.
    bytes: Vec<(u64, u64, u64)>,
}

impl Extent {
    fn add_ts(&mut self, lo: i64, hi: i64) {
        self.ts_range = Some(match self.ts_range {
            Some((a, b)) => (a.min(lo), b.max(hi)),
            None => (lo, hi),
        });
    }

    fn add_bytes(&mut self, seg: u64, bytes: u64, pii: u64) {
        match self.bytes.iter_mut().find(|(s, _, _)| *s == seg) {
            Some(o) => {
                o.1 += bytes;
                o.2 += pii;
            }
            None => self.bytes.push((seg, bytes, pii)),
        }
    }

    /// Counts records held in memory.
    fn add_records(&mut self, records: &[RecordRef]) {
        for r in records {
            self.count += 1;
            self.next_seq = self.next_seq.max(r.seq.saturating_add(1));
            self.add_ts(r.ts, r.ts);
            self.add_bytes(r.loc.seg, u64::from(r.loc.len), u64::from(r.pii_len));
        }
    }

    pub(crate) fn first_ts(&self) -> Option<i64> {
        self.ts_range.map(|r| r.0)
    }

    pub(crate) fn last_ts(&self) -> Option<i64> {
        self.ts_range.map(|r| r.1)
    }
}

/// A visitor directory entry. Read-only outside the index.
#[derive(Clone, Debug, Default)]
pub(crate) struct VisitorEntry {
    /// The directory slot; 0 once wiped (or for a placeholder).
    pub slot: u32,
    /// Every live generation of the visitor, with or without records.
    tids: SmallSet<Tid>,
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
    fn kill(&mut self, n: u64) {
        self.live = self.live.saturating_sub(n);
        self.add_dead(n);
    }

    /// Counts `n` more dead bytes.
    fn add_dead(&mut self, n: u64) {
        if n > 0 {
            self.dead += n;
            self.dead_since
                .get_or_insert_with(|| crate::message::Timestamp::now().unix_millis());
        }
    }
}

/// The index (see the module documentation for its invariants).
#[derive(Default)]
pub(crate) struct Index {
    /// Boxed: a hash table keeps up to twice as many buckets as entries, and
    /// a bucket of a box is 24 bytes where one of an entry is about 210.
    transcripts: IdMap<Box<TranscriptEntry>>,
    by_caller: Callers,
    visitors: IdMap<VisitorEntry>,
    /// Visitors with a directory entry.
    directory: usize,
    usage: BTreeMap<u64, SegmentUsage>,
    /// The record-location files of sealed segments.
    sidecars: BTreeMap<u64, Arc<Sidecar>>,
    /// The blocks of those files that lookups read lately.
    blocks: Arc<BlockCache>,
}

impl Index {
    // ----- building -----

    /// Keeps at most `bytes` of location-file blocks for lookups
    /// ([`crate::Options::cache_bytes`]); set before any file is loaded.
    pub(crate) fn set_cache_bytes(&mut self, bytes: usize) {
        self.blocks = Arc::new(BlockCache::new(bytes));
    }

    /// Takes a location file in: `seg`'s from now on.
    fn keep_sidecar(&mut self, seg: u64, sidecar: Arc<Sidecar>) {
        sidecar.use_cache(Arc::clone(&self.blocks));
        self.sidecars.insert(seg, sidecar);
    }

    /// Adds a visitor's directory entry, at keyring slot `slot`. A second
    /// entry of a visitor is refused (false).
    pub(crate) fn add_visitor(&mut self, vid: Vid, slot: u32) -> bool {
        let v = self.visitors.entry(vid).or_default();
        if v.slot != 0 {
            return false;
        }
        v.slot = slot;
        self.directory += 1;
        true
    }

    /// Adds a generation without records and makes it the one its caller id
    /// leads to, unless that id already leads to a live generation and
    /// `visible` is false (then it is only linked, for
    /// [`Index::hide_generations`] to settle).
    pub(crate) fn add_transcript(&mut self, t: TranscriptEntry, visible: bool) {
        let v = self.visitors.entry(t.vid).or_default();
        v.tids.insert(t.tid);
        let taken = self
            .by_caller
            .get(t.caller)
            .is_some_and(|held| self.transcripts.contains_key(&held));
        if visible || !taken {
            self.by_caller.insert(t.caller, t.tid);
        }
        self.transcripts.insert(t.tid, Box::new(t));
    }

    /// Loads the checkpoint's record lists, only records of the segments
    /// `wanted` accepts (and none of segments that have a location file: it
    /// is what says where those are).
    pub(crate) fn load_checkpoint_records(
        &mut self,
        lists: Vec<CheckpointTranscript>,
        wanted: impl Fn(u64) -> bool,
    ) {
        for (tid, recs, ids) in lists {
            let mut any = false;
            for r in recs {
                if wanted(r.loc.seg) && !self.sidecars.contains_key(&r.loc.seg) {
                    any |= self.add_record(&tid, r, None);
                }
            }
            if any && let Some(t) = self.transcripts.get_mut(&tid) {
                t.recent_mut().ids.extend(ids);
            }
        }
    }

    /// Takes over a checkpoint's dead-byte counts.
    pub(crate) fn load_dead(&mut self, dead: Vec<(u64, u64, Option<i64>)>) {
        for (id, bytes, since) in dead {
            let u = self.usage.entry(id).or_default();
            u.dead += bytes;
            u.dead_since = since;
        }
    }

    /// Takes a sealed segment's location file at open: every generation it
    /// has records of finds them there from now on (they must not be added
    /// again), and the segment's bytes that no generation has are dead.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] if the file's summaries are damaged.
    pub(crate) fn load_sidecar(&mut self, sidecar: Arc<Sidecar>) -> crate::Result<()> {
        let seg = sidecar.describes().segment;
        let mut live = 0u64;
        for s in sidecar.summaries()? {
            let Some(t) = self.transcripts.get_mut(&s.tid) else {
                continue;
            };
            t.sealed = true;
            t.note_segment(seg);
            live += s.bytes - if t.has_pii() { 0 } else { s.pii_bytes };
        }
        let u = self.usage.entry(seg).or_default();
        let since = u.dead_since;
        *u = SegmentUsage {
            live,
            ..SegmentUsage::default()
        };
        u.add_dead(sidecar.record_bytes().saturating_sub(live));
        if u.dead > 0 && since.is_some() {
            u.dead_since = since;
        }
        self.keep_sidecar(seg, sidecar);
        Ok(())
    }

    /// A sealed segment got its location file (after a roll): the records
    /// of it held in memory leave memory, read from the file from now on.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] if the file's summaries cannot be read
    /// (nothing changes then).
    pub(crate) fn attach_sidecar(&mut self, sidecar: Arc<Sidecar>) -> crate::Result<()> {
        let seg = sidecar.describes().segment;
        let summaries = sidecar.summaries()?;
        for s in summaries {
            let Some(t) = self.transcripts.get_mut(&s.tid) else {
                continue;
            };
            let held = t.recent().iter().filter(|r| r.loc.seg == seg).count();
            // A generation whose records in the segment are not all held
            // (one being committed) keeps them in memory, and gets the rest
            // there too when the commit publishes them.
            if held == 0 || held != s.count as usize {
                continue;
            }
            t.forget_recent_in(seg);
            t.sealed = true;
            t.note_segment(seg);
        }
        self.keep_sidecar(seg, sidecar);
        Ok(())
    }

    /// How many records of segment `seg` are held in memory.
    pub(crate) fn held_records_in(&self, seg: u64) -> usize {
        self.transcripts
            .values()
            .map(|t| t.recent().iter().filter(|r| r.loc.seg == seg).count())
            .sum()
    }

    /// The location files held (for `verify`).
    pub(crate) fn sidecars(&self) -> impl Iterator<Item = &Arc<Sidecar>> {
        self.sidecars.values()
    }

    /// Adds a record to a known generation, in memory. A record of no known
    /// generation, or a second copy of one it holds (a compaction cut
    /// short), counts as dead bytes; returns whether it was added.
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
        // into a segment scanned earlier or later.
        let recent = t.recent_mut();
        match recent.records.last() {
            Some(last) if last.seq >= rec.seq => {
                match recent.records.binary_search_by_key(&rec.seq, |r| r.seq) {
                    Ok(_) => {
                        self.usage
                            .entry(rec.loc.seg)
                            .or_default()
                            .add_dead(u64::from(rec.loc.len));
                        return false;
                    }
                    Err(pos) => recent.records.insert(pos, rec),
                }
            }
            _ => recent.records.push(rec),
        }
        if let Some(d) = msg_id {
            recent.ids.insert(d);
        }
        t.note_segment(rec.loc.seg);
        // The PII part of a redacted generation's record is dead already.
        let dead_pii = if t.has_pii() {
            0
        } else {
            u64::from(rec.pii_len)
        };
        let u = self.usage.entry(rec.loc.seg).or_default();
        u.live += u64::from(rec.loc.len) - dead_pii;
        u.add_dead(dead_pii);
        true
    }

    // ----- privacy verbs -----

    /// Forgets a generation's PII key: its PII parts become dead bytes.
    /// Returns the PII key's slot (for the caller to wipe), `None` if the key
    /// was gone already.
    pub(crate) fn forget_pii(&mut self, tid: &Tid) -> Option<u32> {
        let bytes = self.bytes_of(self.transcripts.get(tid)?);
        let slot = self.transcripts.get_mut(tid)?.pii_slot.take()?;
        for (seg, _, pii) in bytes {
            self.usage.entry(seg).or_default().kill(pii);
        }
        Some(slot)
    }

    /// Removes a generation: its records become dead bytes. Returns it (its
    /// slots are for the caller to wipe).
    pub(crate) fn remove_transcript(&mut self, tid: &Tid) -> Option<TranscriptEntry> {
        let bytes = self.bytes_of(self.transcripts.get(tid)?);
        let t = *self.transcripts.remove(tid)?;
        self.by_caller.remove(t.caller, tid);
        if let Some(v) = self.visitors.get_mut(&t.vid) {
            v.tids.remove(tid);
        }
        for (seg, bytes, pii) in bytes {
            let u = self.usage.entry(seg).or_default();
            // PII parts of a redacted generation were already counted dead.
            u.kill(bytes - if t.has_pii() { 0 } else { pii });
        }
        Some(t)
    }

    /// A generation's (segment, frame bytes, PII bytes) for the byte
    /// accounting. An erasure must not wait for a damaged location file to
    /// be rebuilt, so one that cannot be read counts for nothing here: the
    /// accounting only steers compaction, and compaction, a read and
    /// `verify` read that file again and report it.
    fn bytes_of(&self, t: &TranscriptEntry) -> Vec<(u64, u64, u64)> {
        match self.extent(t) {
            Ok(e) => e.bytes,
            Err(_) => {
                let mut e = Extent::default();
                e.add_records(t.recent());
                e.bytes
            }
        }
    }

    /// Removes a visitor's directory entry (the email mapping); the visitor
    /// stays as a placeholder while generations carry its id. Returns the
    /// directory slot (for the caller to wipe), `None` if there was none.
    pub(crate) fn clear_directory(&mut self, vid: &Vid) -> Option<u32> {
        let v = self.visitors.get_mut(vid)?;
        let slot = std::mem::take(&mut v.slot);
        if slot != 0 {
            self.directory -= 1;
        }
        (slot != 0).then_some(slot)
    }

    /// Removes the generations that have keys but no record: an append cut
    /// short before its first record reached the disk (never acknowledged).
    /// Returns them: their slots belong to nothing, for compaction to wipe.
    /// (Kept, their live PII keys would keep the visitor's directory entry,
    /// and so the email, once retention or an erasure had redacted
    /// everything the visitor wrote.) A visitor they leave without
    /// generations keeps the directory entry, which the next append of that
    /// email reuses, and which compaction wipes if none comes
    /// ([`Index::visitors_without_generations`]).
    pub(crate) fn drop_recordless(&mut self) -> Vec<TranscriptEntry> {
        let empty: Vec<Tid> = self
            .transcripts
            .values()
            .filter(|t| t.is_empty())
            .map(|t| t.tid)
            .collect();
        empty
            .iter()
            .filter_map(|tid| self.remove_transcript(tid))
            .collect()
    }

    /// Visitors with a directory entry but no generation (left by appends
    /// that never wrote a record).
    pub(crate) fn visitors_without_generations(&self) -> Vec<Vid> {
        self.visitors
            .iter()
            .filter(|(_, v)| v.tids.is_empty() && v.slot != 0)
            .map(|(vid, _)| *vid)
            .collect()
    }

    /// Drops a visitor entry that no generation needs any more.
    pub(crate) fn drop_visitor_if_unused(&mut self, vid: &Vid) {
        if self
            .visitors
            .get(vid)
            .is_some_and(|v| v.tids.is_empty() && v.slot == 0)
        {
            self.visitors.remove(vid);
        }
    }

    /// Commits a rewrite: `new` (with its records) becomes the generation its
    /// caller id leads to, and `old` is removed and returned (its slots are
    /// for the caller to wipe).
    pub(crate) fn replace_generation(
        &mut self,
        old: &Tid,
        new: TranscriptEntry,
        records: Vec<(RecordRef, Option<MsgIdDigest>)>,
    ) -> Option<TranscriptEntry> {
        let tid = new.tid;
        let caller = new.caller;
        self.add_transcript(new, true);
        for (r, d) in records {
            self.add_record(&tid, r, d);
        }
        let removed = self.remove_transcript(old);
        self.by_caller.insert(caller, tid);
        removed
    }

    /// Of two or more generations of one caller id, keeps the one `keep`
    /// chooses visible and takes the others out; returns them (their slots
    /// are left for a later compaction to wipe).
    pub(crate) fn hide_generations(
        &mut self,
        keep: impl Fn(&[&TranscriptEntry]) -> Option<Tid>,
    ) -> Vec<TranscriptEntry> {
        // When every generation is the one its caller id leads to, there are
        // none (the common case, checked without grouping them).
        let linked = self
            .by_caller
            .targets()
            .filter(|tid| self.transcripts.contains_key(*tid))
            .count();
        if linked == self.transcripts.len() {
            return Vec::new();
        }
        let mut by_caller: HashMap<CallerHash, Vec<&TranscriptEntry>> = HashMap::new();
        for t in self.transcripts.values() {
            by_caller.entry(t.caller).or_default().push(t);
        }
        let mut decisions: Vec<(CallerHash, Tid, Vec<Tid>)> = Vec::new();
        for (caller, versions) in by_caller {
            let kept = match versions.as_slice() {
                [one] => Some(one.tid),
                _ => keep(&versions),
            };
            if let Some(kept) = kept {
                let others = versions
                    .iter()
                    .map(|t| t.tid)
                    .filter(|t| *t != kept)
                    .collect();
                decisions.push((caller, kept, others));
            }
        }
        let mut hidden = Vec::new();
        for (caller, kept, others) in decisions {
            for tid in others {
                hidden.extend(self.remove_transcript(&tid));
            }
            self.by_caller.insert(caller, kept);
        }
        hidden
    }

    /// Makes a generation the one its caller id leads to (a rewrite's new
    /// generation, once the old one is gone).
    pub(crate) fn make_visible(&mut self, tid: &Tid) {
        if let Some(t) = self.transcripts.get(tid) {
            self.by_caller.insert(t.caller, *tid);
        }
    }

    // ----- slots and segments -----

    /// Keeps the PII slot of each generation that `owns` says is its own,
    /// and forgets the others (open, once every slot has been read).
    pub(crate) fn settle_pii_slots(&mut self, mut owns: impl FnMut(&Tid, u32) -> bool) {
        for t in self.transcripts.values_mut() {
            if let Some(slot) = t.pii_slot
                && !owns(&t.tid, slot)
            {
                t.pii_slot = None;
            }
        }
    }

    /// A generation's slots moved (keyring compaction).
    pub(crate) fn move_slots(&mut self, tid: &Tid, content: u32, pii: Option<u32>) {
        if let Some(t) = self.transcripts.get_mut(tid) {
            t.content_slot = content;
            t.pii_slot = pii;
        }
    }

    /// A directory entry moved (keyring compaction).
    /// Moves a visitor's directory entry from slot `from` to `to`, if its
    /// entry is the one at `from` (not another copy of it).
    pub(crate) fn move_visitor_slot_from(&mut self, vid: &Vid, from: u32, to: u32) {
        if let Some(v) = self.visitors.get_mut(vid)
            && v.slot == from
        {
            v.slot = to;
        }
    }

    pub(crate) fn move_visitor_slot(&mut self, vid: &Vid, slot: u32) {
        if let Some(v) = self.visitors.get_mut(vid) {
            v.slot = slot;
        }
    }

    /// Segment `seg` was rewritten by compaction, and `sidecar` is the
    /// location file of the new file: every generation's records in it are
    /// read from there now; the rest of the file is dead. Returns the live
    /// bytes, or a generation whose records the new file lacks (a bug).
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] if the new file's summaries, or the old
    /// file's, cannot be read.
    pub(crate) fn records_moved(
        &mut self,
        seg: u64,
        sidecar: Arc<Sidecar>,
    ) -> crate::Result<std::result::Result<u64, Tid>> {
        let summaries: IdMap<Summary> = sidecar
            .summaries()?
            .into_iter()
            .map(|s| (s.tid, s))
            .collect();
        // Every live generation that had records in the old file: in its
        // location file, or held in memory.
        let mut had: Vec<Tid> = match self.sidecars.get(&seg) {
            Some(old) => old
                .summaries()?
                .into_iter()
                .map(|s| s.tid)
                .filter(|tid| self.transcripts.get(tid).is_some_and(|t| t.sealed))
                .collect(),
            None => Vec::new(),
        };
        had.extend(
            self.transcripts
                .values()
                .filter(|t| t.holds_in(seg))
                .map(|t| t.tid),
        );
        if let Some(lost) = had.iter().find(|tid| !summaries.contains_key(*tid)) {
            return Ok(Err(*lost));
        }
        let mut live = 0u64;
        for tid in had {
            let Some(t) = self.transcripts.get_mut(&tid) else {
                continue;
            };
            t.forget_recent_in(seg);
            t.sealed = true;
            t.note_segment(seg);
        }
        for s in summaries.values() {
            if let Some(t) = self.transcripts.get(&s.tid).filter(|t| t.sealed) {
                live += s.bytes - if t.has_pii() { 0 } else { s.pii_bytes };
            }
        }
        let u = self.usage.entry(seg).or_default();
        *u = SegmentUsage {
            live,
            ..SegmentUsage::default()
        };
        u.add_dead(sidecar.record_bytes().saturating_sub(live));
        self.keep_sidecar(seg, sidecar);
        Ok(Ok(live))
    }

    /// Segment `seg` is gone (nothing in it was live).
    pub(crate) fn segment_removed(&mut self, seg: u64) {
        self.usage.remove(&seg);
        self.sidecars.remove(&seg);
    }

    // ----- queries -----

    /// What a generation's records add up to: its summaries in the location
    /// files (each file's finder rules most out from memory; one block read
    /// per file that holds it) and its records in memory. The records of a
    /// segment it holds in memory are counted from there.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] if a location file is damaged,
    /// [`crate::Error::Io`] if it cannot be read.
    pub(crate) fn extent(&self, t: &TranscriptEntry) -> crate::Result<Extent> {
        let mut e = Extent::default();
        if t.sealed {
            for (seg, sidecar) in self.sidecars.range(t.segment_range()) {
                if t.holds_in(*seg) {
                    continue;
                }
                if let Some(s) = sidecar.find(&t.tid)? {
                    e.count += s.count;
                    e.next_seq = e.next_seq.max(s.max_seq.saturating_add(1));
                    e.add_ts(s.min_ts, s.max_ts);
                    e.add_bytes(*seg, s.bytes, s.pii_bytes);
                    e.parts.push((*seg, s));
                }
            }
        }
        e.add_records(t.recent());
        Ok(e)
    }

    /// A generation's next sequence number.
    ///
    /// # Errors
    /// As [`Index::extent`].
    pub(crate) fn next_seq(&self, t: &TranscriptEntry) -> crate::Result<u32> {
        if !t.sealed {
            return Ok(t.recent().last().map_or(0, |r| r.seq.saturating_add(1)));
        }
        Ok(self.extent(t)?.next_seq)
    }

    /// A generation's records, in sequence order: those of sealed segments
    /// read from their location files, the others from memory. Of two
    /// copies of one sequence number (a compaction cut short) the one in the
    /// lower segment counts.
    ///
    /// # Errors
    /// As [`Index::extent`].
    pub(crate) fn records(&self, t: &TranscriptEntry) -> crate::Result<Vec<RecordRef>> {
        let extent = self.extent(t)?;
        let mut out = Vec::with_capacity(extent.count as usize);
        for (seg, s) in &extent.parts {
            out.extend(
                self.part_entries(t, *seg, s)?
                    .into_iter()
                    .map(|e| e.record_ref(*seg)),
            );
        }
        out.extend_from_slice(t.recent());
        out.sort_by_key(|r| (r.seq, r.loc.seg, r.loc.off));
        out.dedup_by_key(|r| r.seq);
        Ok(out)
    }

    /// A generation's records in segment `seg`.
    ///
    /// # Errors
    /// As [`Index::extent`].
    pub(crate) fn records_in(
        &self,
        t: &TranscriptEntry,
        seg: u64,
    ) -> crate::Result<Vec<RecordRef>> {
        if t.holds_in(seg) {
            return Ok(t
                .recent()
                .iter()
                .filter(|r| r.loc.seg == seg)
                .copied()
                .collect());
        }
        let Some(sidecar) = self.sidecars.get(&seg).filter(|_| t.sealed) else {
            return Ok(Vec::new());
        };
        let Some(s) = sidecar.find(&t.tid)? else {
            return Ok(Vec::new());
        };
        Ok(self
            .part_entries(t, seg, &s)?
            .into_iter()
            .map(|e| e.record_ref(seg))
            .collect())
    }

    fn part_entries(
        &self,
        t: &TranscriptEntry,
        seg: u64,
        s: &Summary,
    ) -> crate::Result<Vec<Entry>> {
        let sidecar = self.sidecars.get(&seg).ok_or_else(|| {
            crate::Error::Internal(format!(
                "segment {seg} has no record-location file but the index names one"
            ))
        })?;
        let entries = sidecar.entries(s.first, s.count)?;
        if entries.iter().any(|e| e.tid != t.tid) {
            return Err(crate::Error::corrupt(
                sidecar.path(),
                0,
                "record-location file does not hold the records its summary names",
            ));
        }
        Ok(entries)
    }

    /// Whether a generation holds a record with this message-id digest.
    ///
    /// # Errors
    /// As [`Index::extent`].
    pub(crate) fn has_msg_id(&self, t: &TranscriptEntry, d: &MsgIdDigest) -> crate::Result<bool> {
        if t.recent.as_ref().is_some_and(|r| r.ids.contains(d)) {
            return Ok(true);
        }
        if !t.sealed {
            return Ok(false);
        }
        for (seg, s) in &self.extent(t)?.parts {
            if self
                .part_entries(t, *seg, s)?
                .iter()
                .any(|e| e.msg_id.as_ref() == Some(d))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Digests of the message ids of a generation's records in memory.
    pub(crate) fn recent_msg_ids(t: &TranscriptEntry) -> impl Iterator<Item = &MsgIdDigest> {
        t.recent.iter().flat_map(|r| r.ids.iter())
    }

    /// A generation's records held in memory (of segments without a
    /// location file).
    pub(crate) fn recent_records(t: &TranscriptEntry) -> &[RecordRef] {
        t.recent()
    }

    /// A live generation.
    pub(crate) fn transcript(&self, tid: &Tid) -> Option<&TranscriptEntry> {
        self.transcripts.get(tid).map(|t| &**t)
    }

    /// The generation a caller id leads to.
    pub(crate) fn by_caller(&self, id: &str) -> Option<&TranscriptEntry> {
        let tid = self.by_caller.get(CallerHash::of(id))?;
        self.transcripts.get(&tid).map(|t| &**t)
    }

    /// Every live generation.
    pub(crate) fn transcripts(&self) -> impl Iterator<Item = &TranscriptEntry> {
        self.transcripts.values().map(|t| &**t)
    }

    /// Number of live generations.
    #[cfg(test)]
    pub(crate) fn transcript_count(&self) -> usize {
        self.transcripts.len()
    }

    /// A visitor's entry.
    pub(crate) fn visitor(&self, vid: &Vid) -> Option<&VisitorEntry> {
        self.visitors.get(vid)
    }

    /// Whether the visitor (a placeholder included) is known.
    pub(crate) fn knows_visitor(&self, vid: &Vid) -> bool {
        self.visitors.contains_key(vid)
    }

    /// Visitors in the directory.
    pub(crate) fn directory_len(&self) -> usize {
        self.directory
    }

    /// Every directory entry: (visitor, slot).
    pub(crate) fn directory(&self) -> impl Iterator<Item = (Vid, u32)> + '_ {
        self.visitors
            .iter()
            .filter(|(_, v)| v.slot != 0)
            .map(|(vid, v)| (*vid, v.slot))
    }

    /// Every live generation of a visitor, with or without records.
    pub(crate) fn generations_of(&self, vid: &Vid) -> Vec<&TranscriptEntry> {
        self.visitors.get(vid).map_or_else(Vec::new, |v| {
            v.tids
                .iter()
                .filter_map(|t| self.transcripts.get(t).map(|t| &**t))
                .collect()
        })
    }

    /// A visitor's generations with records and their extents, newest
    /// (latest message) first.
    ///
    /// # Errors
    /// As [`Index::extent`].
    pub(crate) fn listing(&self, vid: &Vid) -> crate::Result<Vec<(&TranscriptEntry, Extent)>> {
        let mut out = Vec::new();
        for t in self.generations_of(vid) {
            if t.is_empty() {
                continue;
            }
            let e = self.extent(t)?;
            if e.count > 0 {
                out.push((t, e));
            }
        }
        out.sort_by_key(|(t, e)| std::cmp::Reverse((e.last_ts(), t.tid)));
        Ok(out)
    }

    /// Calls `f` with each live generation's summary in each location file
    /// that [`Index::extent`] would count (one pass over every file's
    /// summaries, for the questions about every generation).
    fn for_each_summary(&self, mut f: impl FnMut(&TranscriptEntry, &Summary)) -> crate::Result<()> {
        for (seg, sidecar) in &self.sidecars {
            for s in sidecar.summaries()? {
                if let Some(t) = self.transcripts.get(&s.tid)
                    && t.sealed
                    && !t.holds_in(*seg)
                {
                    f(t, &s);
                }
            }
        }
        Ok(())
    }

    /// Generations with records, oldest latest-message first. One pass over
    /// the location files' summaries; holds a time per generation while it
    /// sorts.
    ///
    /// # Errors
    /// As [`Index::extent`].
    pub(crate) fn by_age(&self) -> crate::Result<Vec<(i64, &TranscriptEntry)>> {
        let mut last: IdMap<i64> = IdMap::default();
        self.for_each_summary(|t, s| {
            let l = last.entry(t.tid).or_insert(s.max_ts);
            *l = (*l).max(s.max_ts);
        })?;
        for t in self.transcripts() {
            if let Some(ts) = t.recent().iter().map(|r| r.ts).max() {
                let l = last.entry(t.tid).or_insert(ts);
                *l = (*l).max(ts);
            }
        }
        let mut out: Vec<(i64, &TranscriptEntry)> = last
            .into_iter()
            .filter_map(|(tid, l)| Some((l, self.transcript(&tid)?)))
            .collect();
        out.sort_unstable_by_key(|(l, t)| (*l, t.tid));
        Ok(out)
    }

    /// Number of records of every live generation.
    ///
    /// # Errors
    /// As [`Index::extent`].
    pub(crate) fn record_count(&self) -> crate::Result<u64> {
        let mut n = 0u64;
        self.for_each_summary(|_, s| n += u64::from(s.count))?;
        Ok(n + self
            .transcripts()
            .map(|t| t.recent().len() as u64)
            .sum::<u64>())
    }

    /// Byte accounting per segment.
    pub(crate) fn usage(&self) -> &BTreeMap<u64, SegmentUsage> {
        &self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tid: u8, vid: u8, caller: &str) -> TranscriptEntry {
        TranscriptEntry::new(
            [tid; 16],
            [vid; 16],
            CallerHash::of(caller),
            10 + u32::from(tid),
            Some(20 + u32::from(tid)),
            1,
            5,
        )
    }

    fn rec(seq: u32, ts: i64, seg: u64, off: u64) -> RecordRef {
        RecordRef {
            seq,
            ts,
            loc: Loc { seg, off, len: 100 },
            pii_len: 30,
        }
    }

    #[test]
    fn verbs_keep_the_maps_consistent() {
        let mut ix = Index::default();
        assert!(ix.add_visitor([9; 16], 2));
        assert!(!ix.add_visitor([9; 16], 3), "one entry per visitor");
        ix.add_transcript(entry(1, 9, "t-1"), true);
        ix.add_transcript(entry(2, 9, "t-2"), true);
        ix.add_record(&[1; 16], rec(0, 50, 1, 32), Some([4; 16]));
        ix.add_record(&[2; 16], rec(0, 70, 1, 132), None);
        ix.add_record(&[1; 16], rec(1, 90, 1, 232), None);
        let listed: Vec<CallerHash> = ix
            .listing(&[9; 16])
            .unwrap()
            .iter()
            .map(|(t, _)| t.caller)
            .collect();
        assert_eq!(
            listed,
            [CallerHash::of("t-1"), CallerHash::of("t-2")],
            "newest first"
        );
        let aged: Vec<i64> = ix.by_age().unwrap().iter().map(|(last, _)| *last).collect();
        assert_eq!(aged, [70, 90]);
        assert_eq!(ix.record_count().unwrap(), 3);
        assert_eq!(ix.usage()[&1].live, 300);
        // Forgetting a PII key kills its PII parts once.
        assert_eq!(ix.forget_pii(&[1; 16]), Some(21));
        assert_eq!(ix.forget_pii(&[1; 16]), None);
        assert_eq!((ix.usage()[&1].live, ix.usage()[&1].dead), (240, 60));
        // Removing it kills the rest of its records, not the PII parts again.
        let gone = ix.remove_transcript(&[1; 16]).unwrap();
        assert_eq!(gone.content_slot, 11);
        assert_eq!((ix.usage()[&1].live, ix.usage()[&1].dead), (100, 200));
        assert!(ix.by_caller("t-1").is_none());
        assert_eq!(ix.listing(&[9; 16]).unwrap().len(), 1);
        // The directory entry goes, the visitor stays while a generation
        // carries its id.
        assert_eq!(ix.directory_len(), 1);
        assert_eq!(ix.clear_directory(&[9; 16]), Some(2));
        assert_eq!(ix.clear_directory(&[9; 16]), None);
        assert_eq!(
            (ix.directory_len(), ix.visitor(&[9; 16]).unwrap().slot),
            (0, 0)
        );
        ix.drop_visitor_if_unused(&[9; 16]);
        assert!(ix.knows_visitor(&[9; 16]));
        ix.remove_transcript(&[2; 16]);
        ix.drop_visitor_if_unused(&[9; 16]);
        assert!(!ix.knows_visitor(&[9; 16]));
    }

    #[test]
    fn a_rewrite_replaces_its_generation_and_hidden_generations_leave() {
        let mut ix = Index::default();
        ix.add_visitor([9; 16], 2);
        ix.add_transcript(entry(1, 9, "t-1"), true);
        ix.add_record(&[1; 16], rec(0, 50, 1, 32), None);
        let new = entry(3, 9, "t-1");
        let old = ix
            .replace_generation(&[1; 16], new, vec![(rec(0, 50, 2, 32), Some([5; 16]))])
            .unwrap();
        assert_eq!(old.tid, [1; 16]);
        assert_eq!(ix.by_caller("t-1").unwrap().tid, [3; 16]);
        let t = ix.by_caller("t-1").unwrap();
        assert!(ix.has_msg_id(t, &[5; 16]).unwrap());
        assert!(!ix.has_msg_id(t, &[6; 16]).unwrap());
        // An uncommitted second generation (as open finds it) is hidden.
        ix.add_transcript(entry(4, 9, "t-1"), false);
        assert_eq!(ix.by_caller("t-1").unwrap().tid, [3; 16]);
        let hidden = ix.hide_generations(|v| v.iter().map(|t| t.tid).min());
        assert_eq!(hidden.len(), 1);
        assert_eq!(hidden[0].tid, [4; 16]);
        assert_eq!(ix.transcript_count(), 1);
    }

    #[test]
    fn a_sealed_segments_records_leave_memory_for_its_location_file() {
        let mut ix = Index::default();
        ix.add_visitor([9; 16], 2);
        ix.add_transcript(entry(1, 9, "t-1"), true);
        ix.add_transcript(entry(2, 9, "t-2"), true);
        let mut builder = SidecarBuilder::default();
        let mut recs = Vec::new();
        for (i, (tid, seq, off)) in [(1u8, 0u32, 32u64), (2, 0, 132), (1, 1, 232)]
            .into_iter()
            .enumerate()
        {
            let r = rec(seq, 50 + i as i64, 1, off);
            let d = (tid == 1 && seq == 1).then_some([7; 16]);
            ix.add_record(&[tid; 16], r, d);
            recs.push(([tid; 16], r));
            builder.add(Entry {
                tid: [tid; 16],
                seq,
                ts: r.ts,
                off,
                len: r.loc.len,
                pii_len: r.pii_len,
                msg_id: d,
            });
        }
        // A record of t-1 in the next segment stays in memory.
        ix.add_record(&[1; 16], rec(2, 90, 2, 32), Some([8; 16]));
        let before: Vec<Vec<RecordRef>> = [1u8, 2]
            .iter()
            .map(|t| ix.records(ix.transcript(&[*t; 16]).unwrap()).unwrap())
            .collect();
        let usage = ix.usage().clone();
        let describes = Describes {
            segment: 1,
            generation: 1,
            segment_len: 400,
        };
        let sidecar =
            Sidecar::in_memory(std::path::Path::new("1.idx"), builder.finish(describes)).unwrap();
        ix.attach_sidecar(Arc::new(sidecar)).unwrap();
        let t1 = ix.transcript(&[1; 16]).unwrap();
        assert_eq!(
            Index::recent_records(t1).len(),
            1,
            "only segment 2's record"
        );
        assert!(Index::recent_records(ix.transcript(&[2; 16]).unwrap()).is_empty());
        // Their memory is given back, not only their length.
        assert!(ix.transcript(&[2; 16]).unwrap().recent.is_none());
        assert_eq!(t1.recent.as_ref().unwrap().records.capacity(), 1);
        let after: Vec<Vec<RecordRef>> = [1u8, 2]
            .iter()
            .map(|t| ix.records(ix.transcript(&[*t; 16]).unwrap()).unwrap())
            .collect();
        assert_eq!(after, before);
        assert_eq!(ix.usage(), &usage);
        assert!(ix.has_msg_id(t1, &[7; 16]).unwrap(), "read from the file");
        assert!(ix.has_msg_id(t1, &[8; 16]).unwrap(), "held in memory");
        assert!(!ix.has_msg_id(t1, &[9; 16]).unwrap());
        assert_eq!(
            (t1.segs, ix.transcript(&[2; 16]).unwrap().segs),
            ((1, 2), (1, 1))
        );
        let e = ix.extent(t1).unwrap();
        assert_eq!((e.count, e.next_seq, e.ts_range), (3, 3, Some((50, 90))));
        assert_eq!(ix.next_seq(t1).unwrap(), 3);
        assert_eq!(ix.record_count().unwrap(), 4);
        let aged: Vec<(i64, Tid)> = ix
            .by_age()
            .unwrap()
            .iter()
            .map(|(l, t)| (*l, t.tid))
            .collect();
        assert_eq!(aged, [(51, [2; 16]), (90, [1; 16])]);
        assert_eq!(ix.records_in(t1, 1).unwrap().len(), 2, "read from the file");
        assert_eq!(ix.records_in(t1, 2).unwrap().len(), 1, "held in memory");
        // Removing a generation kills its bytes in both segments.
        ix.forget_pii(&[1; 16]);
        ix.remove_transcript(&[1; 16]);
        assert_eq!(ix.usage()[&1].live, 100);
        assert_eq!(ix.usage()[&2].live, 0);
    }

    #[test]
    fn the_directory_counts_visitors_with_an_entry_and_refuses_a_second() {
        let mut ix = Index::default();
        assert!(ix.add_visitor([9; 16], 2));
        assert!(!ix.add_visitor([9; 16], 3), "a second entry of a visitor");
        assert!(ix.add_visitor([8; 16], 4));
        ix.move_visitor_slot(&[9; 16], 7);
        assert_eq!(ix.visitor(&[9; 16]).unwrap().slot, 7);
        assert_eq!(ix.directory_len(), 2);
        assert_eq!(ix.clear_directory(&[8; 16]), Some(4));
        assert_eq!(ix.directory_len(), 1);
    }

    /// The index holds one entry per live generation and one per visitor:
    /// a field that grows them grows every store's memory.
    #[test]
    fn entries_stay_small() {
        assert!(std::mem::size_of::<TranscriptEntry>() <= 88);
        assert!(std::mem::size_of::<VisitorEntry>() <= 40);
        assert_eq!(std::mem::size_of::<CallerHash>(), 16);
        assert_eq!(std::mem::align_of::<CallerHash>(), 8);
    }
}
