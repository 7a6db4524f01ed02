//! The index: email → visitor, visitor → transcripts by time, time →
//! transcripts, caller id → transcript generation, transcript → record
//! locations, and byte accounting per segment.
//!
//! It holds no keys (the keyring's key cache does) and no personal data but
//! the emails of the directory (which come from the keyring). Its maps are
//! private: callers change it only through the verbs below, each of which
//! keeps these invariants:
//!
//! - every transcript generation is linked from its visitor's entry
//!   (`visitors[vid].tids`), and a visitor entry exists for every `vid` a
//!   transcript carries (a placeholder without email once the directory
//!   entry is gone);
//! - `by_email[e] = vid` exactly when `visitors[vid].email == e` (non-empty);
//! - `by_caller[id]` names the one generation of caller id `id` that reads
//!   and writes see; every generation in the index is that one (a second one
//!   exists only inside [`Index::replace_generation`]);
//! - a generation with records is in `by_time` and in its visitor's
//!   `transcripts` under its latest message time, one without is in neither;
//! - `usage[seg].live` counts the bytes of live records in `seg` (less the
//!   PII parts of generations whose PII key is gone), `usage[seg].dead` the rest.
//!
//! Today it lives in memory, rebuilt at open from the keyring's slots, the
//! checkpoint and a scan; a disk-resident index would keep these verbs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::ids::{IdMap, IdSet};
use crate::record::{MsgIdDigest, Tid, Vid};

mod checkpoint;
pub(crate) use checkpoint::{Checkpoint, CheckpointTranscript};

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

/// A live transcript generation. Read-only outside the index.
#[derive(Clone, Debug)]
pub(crate) struct TranscriptEntry {
    pub tid: Tid,
    pub vid: Vid,
    pub caller_id: String,
    pub content_slot: u32,
    /// The PII key's slot; `None` once the key is destroyed (or for a
    /// generation written without one).
    pub pii_slot: Option<u32>,
    pub rules_version: u16,
    pub created_millis: i64,
    /// In sequence (= append) order.
    pub records: Vec<RecordRef>,
    /// (earliest, latest) message time.
    pub ts_range: Option<(i64, i64)>,
    /// Digests of the caller's message ids its records carry.
    pub msg_ids: IdSet,
}

impl TranscriptEntry {
    /// A generation without records.
    pub(crate) fn new(
        tid: Tid,
        vid: Vid,
        caller_id: String,
        content_slot: u32,
        pii_slot: Option<u32>,
        rules_version: u16,
        created_millis: i64,
    ) -> TranscriptEntry {
        TranscriptEntry {
            tid,
            vid,
            caller_id,
            content_slot,
            pii_slot,
            rules_version,
            created_millis,
            records: Vec::new(),
            ts_range: None,
            msg_ids: IdSet::default(),
        }
    }

    pub(crate) fn first_ts(&self) -> Option<i64> {
        self.ts_range.map(|r| r.0)
    }

    pub(crate) fn last_ts(&self) -> Option<i64> {
        self.ts_range.map(|r| r.1)
    }

    pub(crate) fn next_seq(&self) -> u32 {
        self.records.last().map_or(0, |r| r.seq + 1)
    }

    /// Whether its PII key lives.
    pub(crate) fn has_pii(&self) -> bool {
        self.pii_slot.is_some()
    }
}

/// A visitor directory entry. Read-only outside the index.
#[derive(Clone, Debug, Default)]
pub(crate) struct VisitorEntry {
    /// The normalised email; empty once the directory entry is gone.
    pub email: String,
    /// The directory slot; 0 once wiped.
    pub slot: u32,
    /// (last message time, tid) of each generation with at least one record.
    transcripts: BTreeSet<(i64, Tid)>,
    /// Every live generation of the visitor, with or without records.
    tids: IdSet,
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

/// Where the records of a compacted segment went: old offset → (new offset,
/// new frame length, PII part dropped).
pub(crate) type Moves = BTreeMap<u64, (u64, u32, bool)>;

/// The index (see the module documentation for its invariants).
#[derive(Default)]
pub(crate) struct Index {
    transcripts: IdMap<TranscriptEntry>,
    by_caller: HashMap<String, Tid>,
    visitors: IdMap<VisitorEntry>,
    by_email: HashMap<String, Vid>,
    /// (last message time, tid) of every generation with records.
    by_time: BTreeSet<(i64, Tid)>,
    usage: BTreeMap<u64, SegmentUsage>,
}

impl Index {
    // ----- building -----

    /// Reserves room for `n` more generations.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.transcripts.reserve(n);
        self.by_caller.reserve(n);
    }

    /// Adds a directory entry under the canonical form of its email
    /// ([`crate::email`]; an entry written before canonical emails may
    /// differ from it). A second entry of a visitor is refused (false). An
    /// older entry whose canonical form another visitor has already (two
    /// spellings of one address, stored before canonical emails) keeps its
    /// stored spelling as key and is counted in [`Index::email_twins`].
    pub(crate) fn add_visitor(&mut self, vid: Vid, email: String, slot: u32) -> bool {
        if self.visitors.get(&vid).is_some_and(|v| v.slot != 0) {
            return false;
        }
        let canonical = crate::email::canonical(&email)
            .ok()
            .map(std::borrow::Cow::into_owned);
        let key = match canonical {
            Some(c) if self.by_email.get(&c).is_none_or(|other| *other == vid) => c,
            // Its canonical form is taken: a twin, kept under its spelling.
            Some(_) => email,
            // Stored before emails were checked: kept as stored.
            None => email,
        };
        if !key.is_empty() {
            self.by_email.insert(key.clone(), vid);
        }
        let v = self.visitors.entry(vid).or_default();
        v.slot = slot;
        v.email = key;
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
            .get(&t.caller_id)
            .is_some_and(|old| self.transcripts.contains_key(old));
        if visible || !taken {
            self.by_caller.insert(t.caller_id.clone(), t.tid);
        }
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

    /// Takes over a checkpoint's dead-byte counts.
    pub(crate) fn load_dead(&mut self, dead: Vec<(u64, u64, Option<i64>)>) {
        for (id, bytes, since) in dead {
            let u = self.usage.entry(id).or_default();
            u.dead += bytes;
            u.dead_since = since;
        }
    }

    /// Gives a generation without records its whole list at once and returns
    /// its latest message time, for the caller to put in the time index.
    /// Falls back to [`Index::add_record`] (which keeps the time index itself,
    /// and `None` is returned) when the generation already has records or the
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
        let redacted = !t.has_pii();
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

    /// Adds a record to a known generation, keeping the time indexes right.
    /// A record of no known generation, or a second copy of one (a
    /// compaction cut short), counts as dead bytes; returns whether it was
    /// added.
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
        // The PII part of a redacted generation's record is dead already.
        let dead_pii = if t.has_pii() {
            0
        } else {
            u64::from(rec.pii_len)
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

    // ----- privacy verbs -----

    /// Forgets a generation's PII key: its PII parts become dead bytes.
    /// Returns the PII key's slot (for the caller to wipe), `None` if the key
    /// was gone already.
    pub(crate) fn forget_pii(&mut self, tid: &Tid) -> Option<u32> {
        let t = self.transcripts.get_mut(tid)?;
        let slot = t.pii_slot.take()?;
        for r in &t.records {
            self.usage
                .entry(r.loc.seg)
                .or_default()
                .kill(u64::from(r.pii_len));
        }
        Some(slot)
    }

    /// Removes a generation: its records become dead bytes. Returns it (its
    /// slots are for the caller to wipe).
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
            // PII parts of a redacted generation were already counted dead.
            let pii = if t.has_pii() { 0 } else { u64::from(r.pii_len) };
            u.kill(u64::from(r.loc.len) - pii);
        }
        Some(t)
    }

    /// Removes a visitor's directory entry (the email mapping); the visitor
    /// stays as a placeholder while generations carry its id. Returns the
    /// directory slot (for the caller to wipe), `None` if there was none.
    pub(crate) fn clear_directory(&mut self, vid: &Vid) -> Option<u32> {
        let v = self.visitors.get_mut(vid)?;
        if !v.email.is_empty() && self.by_email.get(&v.email) == Some(vid) {
            self.by_email.remove(&v.email);
        }
        v.email.clear();
        let slot = std::mem::take(&mut v.slot);
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
            .filter(|t| t.records.is_empty())
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

    /// Changes a visitor's email (rectification): the directory slot is
    /// rewritten in place by the caller.
    pub(crate) fn rename_email(&mut self, vid: &Vid, email: String) {
        let Some(v) = self.visitors.get_mut(vid) else {
            return;
        };
        let previous = std::mem::replace(&mut v.email, email.clone());
        if self.by_email.get(&previous) == Some(vid) {
            self.by_email.remove(&previous);
        }
        self.by_email.insert(email, *vid);
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
        let caller = new.caller_id.clone();
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
        // none (the common case, checked without copying every caller id).
        let linked = self
            .by_caller
            .values()
            .filter(|tid| self.transcripts.contains_key(*tid))
            .count();
        if linked == self.transcripts.len() {
            return Vec::new();
        }
        let mut by_caller: HashMap<&str, Vec<&TranscriptEntry>> = HashMap::new();
        for t in self.transcripts.values() {
            by_caller.entry(&t.caller_id).or_default().push(t);
        }
        let mut decisions: Vec<(String, Tid, Vec<Tid>)> = Vec::new();
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
                decisions.push((caller.to_owned(), kept, others));
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
            self.by_caller.insert(t.caller_id.clone(), *tid);
        }
    }

    // ----- slots and segments -----

    /// A generation's slots moved (keyring compaction).
    pub(crate) fn move_slots(&mut self, tid: &Tid, content: u32, pii: Option<u32>) {
        if let Some(t) = self.transcripts.get_mut(tid) {
            t.content_slot = content;
            t.pii_slot = pii;
        }
    }

    /// A directory entry moved (keyring compaction).
    pub(crate) fn move_visitor_slot(&mut self, vid: &Vid, slot: u32) {
        if let Some(v) = self.visitors.get_mut(vid) {
            v.slot = slot;
        }
    }

    /// Segment `seg` was rewritten by compaction: its live records moved as
    /// `moves` says; the rest of the file is dead. Returns the live bytes, or
    /// the first record that did not move (a bug).
    pub(crate) fn records_moved(
        &mut self,
        seg: u64,
        moves: &Moves,
        records_len: u64,
    ) -> Result<u64, RecordRef> {
        let mut live = 0u64;
        for t in self.transcripts.values_mut() {
            let redacted = !t.has_pii();
            for r in t.records.iter_mut().filter(|r| r.loc.seg == seg) {
                let Some(&(off, len, dropped)) = moves.get(&r.loc.off) else {
                    return Err(*r);
                };
                r.loc.off = off;
                r.loc.len = len;
                if dropped {
                    r.pii_len = 0;
                }
                live += u64::from(len) - if redacted { u64::from(r.pii_len) } else { 0 };
            }
        }
        let u = self.usage.entry(seg).or_default();
        *u = SegmentUsage {
            live,
            ..SegmentUsage::default()
        };
        u.add_dead(records_len.saturating_sub(live));
        Ok(live)
    }

    /// Segment `seg` is gone (nothing in it was live).
    pub(crate) fn segment_removed(&mut self, seg: u64) {
        self.usage.remove(&seg);
    }

    // ----- queries -----

    /// A live generation.
    pub(crate) fn transcript(&self, tid: &Tid) -> Option<&TranscriptEntry> {
        self.transcripts.get(tid)
    }

    /// The generation a caller id leads to.
    pub(crate) fn by_caller(&self, id: &str) -> Option<&TranscriptEntry> {
        self.transcripts.get(self.by_caller.get(id)?)
    }

    /// Every live generation.
    pub(crate) fn transcripts(&self) -> impl Iterator<Item = &TranscriptEntry> {
        self.transcripts.values()
    }

    /// Number of live generations.
    #[cfg(test)]
    pub(crate) fn transcript_count(&self) -> usize {
        self.transcripts.len()
    }

    /// The visitor an email in canonical form belongs to.
    pub(crate) fn vid_by_email(&self, email: &str) -> Option<Vid> {
        self.by_email.get(email).copied()
    }

    /// The visitor an email as a caller wrote it belongs to: an entry stored
    /// under exactly that spelling (trimmed, lower-case: how entries were
    /// keyed before canonical emails, which a twin keeps), else the entry of
    /// its canonical form.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] when `email` is not an email address and
    /// no entry has that spelling.
    pub(crate) fn vid_by_address(&self, email: &str) -> crate::Result<Option<Vid>> {
        let canonical = crate::email::canonical(email);
        if let Ok(std::borrow::Cow::Borrowed(plain)) = &canonical {
            // Already canonical: its own spelling.
            return Ok(self.vid_by_email(plain));
        }
        if let Some(vid) = self.by_email.get(email.trim().to_lowercase().as_str()) {
            return Ok(Some(*vid));
        }
        canonical.map(|c| self.vid_by_email(&c))
    }

    /// Directory entries that share their canonical email with another
    /// visitor (two spellings of one address stored before canonical
    /// emails); each is found only by its own spelling.
    pub(crate) fn email_twins(&self) -> usize {
        self.visitors
            .values()
            .filter(|v| {
                !v.email.is_empty()
                    && crate::email::canonical(&v.email).is_ok_and(|c| c != v.email.as_str())
            })
            .count()
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
        self.by_email.len()
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
                .filter_map(|t| self.transcripts.get(t))
                .collect()
        })
    }

    /// A visitor's generations with records, newest (latest message) first.
    pub(crate) fn listing(&self, vid: &Vid) -> impl Iterator<Item = &TranscriptEntry> {
        self.visitors
            .get(vid)
            .into_iter()
            .flat_map(|v| v.transcripts.iter().rev())
            .filter_map(|(_, tid)| self.transcripts.get(tid))
    }

    /// Generations with records, oldest latest-message first.
    pub(crate) fn by_age(&self) -> impl Iterator<Item = (i64, &TranscriptEntry)> {
        self.by_time
            .iter()
            .filter_map(|(last, tid)| Some((*last, self.transcripts.get(tid)?)))
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
            caller.into(),
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
        assert!(ix.add_visitor([9; 16], "ann@example.com".into(), 2));
        assert!(
            !ix.add_visitor([9; 16], "ann@example.com".into(), 3),
            "one entry per visitor"
        );
        ix.add_transcript(entry(1, 9, "t-1"), true);
        ix.add_transcript(entry(2, 9, "t-2"), true);
        ix.add_record(&[1; 16], rec(0, 50, 1, 32), Some([4; 16]));
        ix.add_record(&[2; 16], rec(0, 70, 1, 132), None);
        ix.add_record(&[1; 16], rec(1, 90, 1, 232), None);
        let listed: Vec<&str> = ix.listing(&[9; 16]).map(|t| t.caller_id.as_str()).collect();
        assert_eq!(listed, ["t-1", "t-2"], "newest first");
        let aged: Vec<i64> = ix.by_age().map(|(last, _)| last).collect();
        assert_eq!(aged, [70, 90]);
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
        assert_eq!(ix.listing(&[9; 16]).count(), 1);
        // The directory entry goes, the visitor stays while a generation
        // carries its id.
        assert_eq!(ix.clear_directory(&[9; 16]), Some(2));
        assert_eq!(ix.vid_by_email("ann@example.com"), None);
        ix.drop_visitor_if_unused(&[9; 16]);
        assert!(ix.knows_visitor(&[9; 16]));
        ix.remove_transcript(&[2; 16]);
        ix.drop_visitor_if_unused(&[9; 16]);
        assert!(!ix.knows_visitor(&[9; 16]));
    }

    #[test]
    fn a_rewrite_replaces_its_generation_and_hidden_generations_leave() {
        let mut ix = Index::default();
        ix.add_visitor([9; 16], "ann@example.com".into(), 2);
        ix.add_transcript(entry(1, 9, "t-1"), true);
        ix.add_record(&[1; 16], rec(0, 50, 1, 32), None);
        let new = entry(3, 9, "t-1");
        let old = ix
            .replace_generation(&[1; 16], new, vec![(rec(0, 50, 2, 32), Some([5; 16]))])
            .unwrap();
        assert_eq!(old.tid, [1; 16]);
        assert_eq!(ix.by_caller("t-1").unwrap().tid, [3; 16]);
        assert!(ix.by_caller("t-1").unwrap().msg_ids.contains(&[5; 16]));
        // An uncommitted second generation (as open finds it) is hidden.
        ix.add_transcript(entry(4, 9, "t-1"), false);
        assert_eq!(ix.by_caller("t-1").unwrap().tid, [3; 16]);
        let hidden = ix.hide_generations(|v| v.iter().map(|t| t.tid).min());
        assert_eq!(hidden.len(), 1);
        assert_eq!(hidden[0].tid, [4; 16]);
        assert_eq!(ix.transcript_count(), 1);
    }

    #[test]
    fn renaming_an_email_moves_the_lookup() {
        let mut ix = Index::default();
        ix.add_visitor([9; 16], "ann@example.com".into(), 2);
        ix.rename_email(&[9; 16], "ann@new.example".into());
        assert_eq!(ix.vid_by_email("ann@example.com"), None);
        assert_eq!(ix.vid_by_email("ann@new.example"), Some([9; 16]));
        assert_eq!(ix.directory_len(), 1);
    }

    #[test]
    fn older_entries_are_keyed_by_their_canonical_form_and_twins_by_their_spelling() {
        let mut ix = Index::default();
        assert!(ix.add_visitor([1; 16], "ann@x.example".into(), 1));
        // Stored by an older version under another spelling of the same address.
        assert!(ix.add_visitor([2; 16], "ann@x.example.".into(), 2));
        // And one stored before emails were checked.
        assert!(ix.add_visitor([3; 16], "bob".into(), 3));
        assert!(ix.add_visitor([4; 16], "mailto:cy@x.example".into(), 4));
        assert_eq!(ix.email_twins(), 1);
        assert_eq!(ix.vid_by_address("ANN@x.example").unwrap(), Some([1; 16]));
        assert_eq!(ix.vid_by_address("ann@x.example.").unwrap(), Some([2; 16]));
        assert_eq!(ix.vid_by_address(" Bob ").unwrap(), Some([3; 16]));
        assert_eq!(ix.vid_by_address("Cy@X.example").unwrap(), Some([4; 16]));
        assert!(ix.vid_by_address("nobody").is_err());
        assert_eq!(ix.vid_by_address("dan@x.example").unwrap(), None);
    }
}
