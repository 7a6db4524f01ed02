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
//! sealed segment. The generations, visitors and caller-id hashes live on
//! disk too, in the index's run ([`disk`], docs/FORMAT.md §7b), read a
//! block at a time through the same bounded block cache: the maps here hold
//! only what changed since the run was written (a whole entry, or `None` for
//! one gone) and the generations with records in memory, and
//! [`Index::write_run`] writes the changes into a new run. The invariants
//! above hold of the maps over the run. Open builds on the run and replays
//! what came after it (`store::open`); without a usable run it rebuilds
//! every entry from the keyring's slots and the location files' summaries.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::{IdMap, IdSet};
use crate::record::{MsgIdDigest, Tid, Vid};

mod blocks;
mod callers;
mod checkpoint;
mod disk;
mod finder;
mod manifest;
mod rows;
mod run;
mod sidecar;
mod small_set;
use blocks::BlockCache;
use callers::Callers;
pub(crate) use callers::{CallerHash, CallerKey};
pub(crate) use checkpoint::{Checkpoint, CheckpointTranscript};
pub(crate) use disk::Listing;
pub(crate) use manifest::{MANIFEST_FILE, Manifest, run_file_name};
use rows::RowCache;
use sidecar::ItemKey;
pub(crate) use sidecar::{Builder as SidecarBuilder, Describes, Entry, Rebuild, Sidecar, Summary};
pub(crate) use sidecar::{file_name as sidecar_file_name, id_of as sidecar_id_of};
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

/// Gives `t`, which holds no records in memory, `recs` (in ascending
/// sequence order) as [`Index::add_record`] would one by one; returns the
/// live and dead bytes they add per segment, for the caller's accounting.
fn take_records(t: &mut TranscriptEntry, recs: Vec<RecordRef>) -> Vec<(u64, u64, u64)> {
    let pii = t.has_pii();
    // (segment, live bytes, dead bytes), in the order met.
    let mut bytes: Vec<(u64, u64, u64)> = Vec::new();
    for r in &recs {
        let dead = if pii { 0 } else { u64::from(r.pii_len) };
        let live = u64::from(r.loc.len).saturating_sub(dead);
        match bytes.iter_mut().find(|(seg, _, _)| *seg == r.loc.seg) {
            Some(b) => {
                b.1 += live;
                b.2 += dead;
            }
            None => bytes.push((r.loc.seg, live, dead)),
        }
    }
    for (seg, _, _) in &bytes {
        t.note_segment(*seg);
    }
    t.recent_mut().records = recs;
    bytes
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

/// What changed of a visitor not held in memory ([`Index`]'s
/// `visitor_deltas`).
#[derive(Clone, Debug, Default)]
struct VisitorDelta {
    /// Its directory slot, when it moved.
    slot: Option<u32>,
    /// Generations added to it.
    added: SmallSet<Tid>,
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
///
/// Its generations, visitors and caller ids are on disk, in the index's run
/// ([`disk::Disk`]), as of the run's writing; the maps here hold what
/// changed since (a whole entry, or `None` for one that is gone), and every
/// generation with records in memory. [`Index::write_run`] writes them into
/// a new run and forgets them.
pub(crate) struct Index {
    disk: Option<disk::Disk>,
    /// Boxed: a hash table keeps up to twice as many buckets as entries, and
    /// a bucket of a box is 24 bytes where one of an entry is about 210.
    transcripts: IdMap<Option<Box<TranscriptEntry>>>,
    by_caller: Callers,
    visitors: IdMap<Option<VisitorEntry>>,
    /// Changes to visitors that are not held in `visitors`: the visitor's
    /// entry is the run's (or a new one) with these applied. An append of a
    /// returning visitor's new transcript, or a directory entry moved by a
    /// table's growth, so reads nothing of the run (or only the slot); the
    /// visitor is read (and held) when it is asked about.
    visitor_deltas: IdMap<VisitorDelta>,
    caller_key: CallerKey,
    /// Live generations.
    transcript_count: u64,
    /// Entries the maps kept when the run was written (not changes).
    kept_over_run: usize,
    /// Visitors with a directory entry.
    directory: usize,
    usage: BTreeMap<u64, SegmentUsage>,
    /// The record-location files of sealed segments.
    sidecars: BTreeMap<u64, Arc<Sidecar>>,
    /// The blocks of those files, and of the run, that lookups read lately.
    blocks: Arc<BlockCache>,
    /// Bytes of the row cache of each run opened or written
    /// ([`rows::RowCache`]).
    row_bytes: usize,
    /// The summaries and entries of location files that reads found.
    items: Arc<RowCache<ItemKey>>,
    /// The run's rows of the generations held when it was written (kept in
    /// its manifest too): read instead of the run.
    run_rows: disk::HeldRows,
}

impl Default for Index {
    fn default() -> Index {
        Index::new(CallerKey::random())
    }
}

/// `cache_bytes` as (bytes of blocks, bytes of run rows, bytes of
/// location-file items): a quarter each for the answers of the lookups
/// queries repeat, which take tens or hundreds of bytes where their blocks
/// take 4 KiB each ([`rows::RowCache`]), the rest for blocks.
fn cache_split(cache_bytes: usize) -> (usize, usize, usize) {
    let rows = cache_bytes / 4;
    let items = cache_bytes / 4;
    (cache_bytes - rows - items, rows, items)
}

/// A generation as a lookup gives it: borrowed when it is held in memory,
/// read from the run otherwise.
pub(crate) type Gen<'a> = Cow<'a, TranscriptEntry>;

impl Index {
    // ----- building -----

    /// An empty index whose caller ids are hashed under `caller_key`.
    pub(crate) fn new(caller_key: CallerKey) -> Index {
        Index {
            disk: None,
            transcripts: IdMap::default(),
            by_caller: Callers::default(),
            visitors: IdMap::default(),
            visitor_deltas: IdMap::default(),
            caller_key,
            transcript_count: 0,
            kept_over_run: 0,
            directory: 0,
            usage: BTreeMap::new(),
            sidecars: BTreeMap::new(),
            blocks: Arc::new(BlockCache::new(
                cache_split(crate::config::DEFAULT_CACHE_BYTES).0,
            )),
            row_bytes: cache_split(crate::config::DEFAULT_CACHE_BYTES).1,
            items: Arc::new(RowCache::new(
                cache_split(crate::config::DEFAULT_CACHE_BYTES).2,
            )),
            run_rows: disk::HeldRows::default(),
        }
    }

    /// The key of its caller-id hashes.
    pub(crate) fn caller_key(&self) -> &CallerKey {
        &self.caller_key
    }

    /// The hash of caller id `id` under this index's key.
    pub(crate) fn caller_hash(&self, id: &str) -> CallerHash {
        self.caller_key.hash(id)
    }

    /// Keeps at most `bytes` of location-file and run blocks, of run rows
    /// and of location-file items for lookups ([`crate::Options::cache_bytes`], split by
    /// [`cache_split`]); set before any file is loaded.
    pub(crate) fn set_cache_bytes(&mut self, bytes: usize) {
        let (blocks, rows, items) = cache_split(bytes);
        self.blocks = Arc::new(BlockCache::new(blocks));
        self.row_bytes = rows;
        self.items = Arc::new(RowCache::new(items));
    }

    /// Keeps the blocks lookups read, and the run rows and location-file
    /// items they find, in the caches (`true`, the default) or not (open: the blocks it reads to
    /// build on the run would fill the cache with what queries mostly do
    /// not ask for).
    pub(crate) fn set_caching(&self, on: bool) {
        self.blocks.set_filling(on);
        self.items.set_filling(on);
        if let Some(d) = &self.disk {
            d.set_keeping(on);
        }
    }

    /// An empty row cache for a run, keeping rows as the block cache keeps
    /// blocks.
    fn row_cache(&self) -> RowCache {
        let rows = RowCache::new(self.row_bytes);
        rows.set_filling(self.blocks.is_filling());
        rows
    }

    /// Takes a location file in: `seg`'s from now on.
    fn keep_sidecar(&mut self, seg: u64, sidecar: Arc<Sidecar>) {
        sidecar.use_cache(Arc::clone(&self.blocks), Arc::clone(&self.items));
        self.sidecars.insert(seg, sidecar);
    }

    // ----- the maps over the run -----

    /// A generation from the run (`None`: it has no row there), for
    /// holding in memory: its row is not kept in the run's row cache.
    fn disk_generation(&self, tid: &Tid) -> crate::Result<Option<TranscriptEntry>> {
        match &self.disk {
            Some(d) => d.generation_kept(tid, false),
            None => Ok(None),
        }
    }

    /// A generation, where it is held, made changeable: read from the run
    /// into the maps if needed.
    fn generation_mut(&mut self, tid: &Tid) -> crate::Result<Option<&mut TranscriptEntry>> {
        if !self.transcripts.contains_key(tid) {
            if let Some((t, linked)) = self.run_rows.get(tid) {
                // The run's row, as the manifest keeps it, and its link.
                if linked && self.by_caller.get(t.caller).is_none() {
                    self.by_caller.insert(t.caller, t.tid);
                }
                self.transcripts.insert(*tid, Some(Box::new(t)));
                return Ok(self.transcripts.get_mut(tid).and_then(|t| t.as_deref_mut()));
            }
            let Some(t) = self.disk_generation(tid)? else {
                return Ok(None);
            };
            // Held from now on, it is looked up by its caller id too (for
            // every message an append gives it): that link is held as well.
            if self.by_caller.get(t.caller).is_none()
                && self.caller_target(t.caller)? == Some(t.tid)
            {
                self.by_caller.insert(t.caller, t.tid);
            }
            self.transcripts.insert(*tid, Some(Box::new(t)));
        }
        Ok(self.transcripts.get_mut(tid).and_then(|t| t.as_deref_mut()))
    }

    /// A visitor, where it is held, made changeable (`create`: a new empty
    /// entry when it is unknown).
    fn visitor_mut(&mut self, vid: &Vid, create: bool) -> crate::Result<Option<&mut VisitorEntry>> {
        if !matches!(self.visitors.get(vid), Some(Some(_))) {
            let known = match self.visitors.get(vid) {
                Some(None) => None,
                _ => self.disk_visitor(vid)?,
            };
            // Held from now on, with what was added to it.
            self.visitor_deltas.remove(vid);
            match known {
                Some(v) => {
                    self.visitors.insert(*vid, Some(v));
                }
                None if create => {
                    self.visitors.insert(*vid, Some(VisitorEntry::default()));
                }
                None => return Ok(None),
            }
        }
        Ok(self.visitors.get_mut(vid).and_then(Option::as_mut))
    }

    /// A visitor not held in `visitors`: the run's entry, with the
    /// generations added to it since.
    fn disk_visitor(&self, vid: &Vid) -> crate::Result<Option<VisitorEntry>> {
        let in_run = match &self.disk {
            Some(d) => d.visitor(vid)?.map(|(slot, tids)| {
                let mut set = SmallSet::default();
                for t in tids {
                    set.insert(t);
                }
                VisitorEntry { slot, tids: set }
            }),
            None => None,
        };
        let Some(delta) = self.visitor_deltas.get(vid) else {
            return Ok(in_run);
        };
        let mut v = in_run.unwrap_or_default();
        if let Some(slot) = delta.slot {
            v.slot = slot;
        }
        for t in delta.added.iter() {
            v.tids.insert(*t);
        }
        Ok(Some(v))
    }

    /// The generation caller-id hash `h` leads to (it may be gone).
    fn caller_target(&self, h: CallerHash) -> crate::Result<Option<Tid>> {
        match self.by_caller.get(h) {
            Some(t) => Ok(t),
            None => match &self.disk {
                Some(d) => d.caller(h),
                None => Ok(None),
            },
        }
    }

    /// Makes `h` lead nowhere if it leads to `tid`.
    fn unlink_caller(&mut self, h: CallerHash, tid: &Tid) -> crate::Result<()> {
        if self.caller_target(h)? == Some(*tid) {
            self.by_caller.forget(h);
        }
        Ok(())
    }

    // ----- changes -----

    /// Adds a visitor's directory entry, at keyring slot `slot`. A second
    /// entry of a visitor is refused (false).
    pub(crate) fn add_visitor(&mut self, vid: Vid, slot: u32) -> crate::Result<bool> {
        let Some(v) = self.visitor_mut(&vid, true)? else {
            return Err(crate::Error::Internal(
                "a visitor entry was not made".into(),
            ));
        };
        if v.slot != 0 {
            return Ok(false);
        }
        v.slot = slot;
        self.directory += 1;
        Ok(true)
    }

    /// Adds a generation without records and makes it the one its caller id
    /// leads to, unless that id already leads to a live generation and
    /// `visible` is false (then it is only linked, for
    /// [`Index::hide_generations`] to settle).
    pub(crate) fn add_transcript(
        &mut self,
        t: TranscriptEntry,
        visible: bool,
    ) -> crate::Result<()> {
        self.add_generation(t, visible, false)
    }

    /// Adds a generation just made (its id is new: nothing is looked up
    /// for it), visible.
    pub(crate) fn add_new_transcript(&mut self, t: TranscriptEntry) -> crate::Result<()> {
        self.add_generation(t, true, true)
    }

    fn add_generation(
        &mut self,
        t: TranscriptEntry,
        visible: bool,
        new: bool,
    ) -> crate::Result<()> {
        if self.visitors.contains_key(&t.vid) {
            if let Some(v) = self.visitor_mut(&t.vid, true)? {
                v.tids.insert(t.tid);
            }
        } else {
            // Not held: noted as an addition, without reading the run.
            self.visitor_deltas
                .entry(t.vid)
                .or_default()
                .added
                .insert(t.tid);
        }
        let taken = !visible
            && match self.caller_target(t.caller)? {
                Some(held) => self.transcript(&held)?.is_some(),
                None => false,
            };
        if !taken {
            self.by_caller.insert(t.caller, t.tid);
        }
        if new || self.transcript(&t.tid)?.is_none() {
            self.transcript_count += 1;
        }
        self.transcripts.insert(t.tid, Some(Box::new(t)));
        Ok(())
    }

    /// Loads the checkpoint's record lists, only records of the segments
    /// `wanted` accepts (and none of segments that have a location file: it
    /// is what says where those are).
    pub(crate) fn load_checkpoint_records(
        &mut self,
        lists: Vec<CheckpointTranscript>,
        wanted: impl Fn(u64) -> bool,
    ) -> crate::Result<()> {
        // Whether a segment's records are taken: asked once per segment
        // met in a row (a transcript's records are mostly in one).
        let mut last: Option<(u64, bool)> = None;
        for (tid, mut recs, ids) in lists {
            recs.retain(|r| match last {
                Some((seg, take)) if seg == r.loc.seg => take,
                _ => {
                    let take = wanted(r.loc.seg) && !self.sidecars.contains_key(&r.loc.seg);
                    last = Some((r.loc.seg, take));
                    take
                }
            });
            if recs.is_empty() {
                continue;
            }
            // The common case, a generation with no records in memory yet
            // and its records in sequence order, takes them at once.
            let sorted = recs.is_sorted_by(|a, b| a.seq < b.seq);
            let taken = match self.generation_mut(&tid)? {
                Some(t) if sorted && t.recent().is_empty() => {
                    let bytes = take_records(t, recs);
                    t.recent_mut().ids.extend(ids);
                    for (seg, live, dead) in bytes {
                        let u = self.usage.entry(seg).or_default();
                        u.live += live;
                        u.add_dead(dead);
                    }
                    continue;
                }
                Some(_) => recs,
                None => continue,
            };
            let mut any = false;
            for r in taken {
                any |= self.add_record(&tid, r, None)?;
            }
            if any && let Some(t) = self.generation_mut(&tid)? {
                t.recent_mut().ids.extend(ids);
            }
        }
        Ok(())
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
        let record_bytes = sidecar.record_bytes()?;
        let mut live = 0u64;
        for s in sidecar.summaries()? {
            let Some(t) = self.generation_mut(&s.tid)? else {
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
        u.add_dead(record_bytes.saturating_sub(live));
        if u.dead > 0 && since.is_some() {
            u.dead_since = since;
        }
        self.keep_sidecar(seg, sidecar);
        Ok(())
    }

    /// Takes a sealed segment's location file whose records the run already
    /// knows (open with a manifest), with the byte accounting the manifest
    /// holds for it: its summaries are not read.
    pub(crate) fn take_sidecar(&mut self, sidecar: Arc<Sidecar>, usage: SegmentUsage) {
        let seg = sidecar.describes().segment;
        self.usage.insert(seg, usage);
        self.keep_sidecar(seg, sidecar);
    }

    /// Points a visitor's directory entry at `slot` (open with a manifest:
    /// the keyring's entry is elsewhere than the run says, or new).
    pub(crate) fn set_directory_slot(&mut self, vid: &Vid, slot: u32) -> crate::Result<()> {
        let Some(v) = self.visitor_mut(vid, true)? else {
            return Err(crate::Error::Internal(
                "a visitor entry was not made".into(),
            ));
        };
        let had = std::mem::replace(&mut v.slot, slot) != 0;
        match (had, slot != 0) {
            (false, true) => self.directory += 1,
            (true, false) => self.directory -= 1,
            _ => {}
        }
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
            // Records in memory are only ever of generations held here.
            let Some(Some(t)) = self.transcripts.get_mut(&s.tid) else {
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

    /// The generations held in memory (changed since the run, or with
    /// records in memory).
    fn held(&self) -> impl Iterator<Item = &TranscriptEntry> {
        self.transcripts.values().filter_map(|t| t.as_deref())
    }

    /// How many records of segment `seg` are held in memory.
    pub(crate) fn held_records_in(&self, seg: u64) -> usize {
        self.held()
            .map(|t| t.recent().iter().filter(|r| r.loc.seg == seg).count())
            .sum()
    }

    /// The generations with records in memory (those the checkpoint saves).
    pub(crate) fn with_recent_records(&self) -> impl Iterator<Item = &TranscriptEntry> {
        self.held().filter(|t| t.recent.is_some())
    }

    /// Opens segment `seg`'s location file now if it was opened late and
    /// not read yet (compaction, before it writes the rewritten segment's).
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] or [`crate::Error::Io`] if it cannot be
    /// opened or rebuilt.
    pub(crate) fn open_sidecar(&self, seg: u64) -> crate::Result<()> {
        match self.sidecars.get(&seg) {
            Some(s) => s.open_now(),
            None => Ok(()),
        }
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
    ) -> crate::Result<bool> {
        let Some(t) = self.generation_mut(tid)? else {
            self.usage
                .entry(rec.loc.seg)
                .or_default()
                .add_dead(u64::from(rec.loc.len));
            return Ok(false);
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
                        return Ok(false);
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
        Ok(true)
    }

    // ----- privacy verbs -----

    /// Forgets a generation's PII key: its PII parts become dead bytes.
    /// Returns the PII key's slot (for the caller to wipe), `None` if the key
    /// was gone already.
    pub(crate) fn forget_pii(&mut self, tid: &Tid) -> crate::Result<Option<u32>> {
        let Some(t) = self.transcript(tid)? else {
            return Ok(None);
        };
        let bytes = self.bytes_of(&t);
        drop(t);
        let Some(slot) = self.generation_mut(tid)?.and_then(|t| t.pii_slot.take()) else {
            return Ok(None);
        };
        for (seg, _, pii) in bytes {
            self.usage.entry(seg).or_default().kill(pii);
        }
        Ok(Some(slot))
    }

    /// Removes a generation: its records become dead bytes. Returns it (its
    /// slots are for the caller to wipe).
    pub(crate) fn remove_transcript(
        &mut self,
        tid: &Tid,
    ) -> crate::Result<Option<TranscriptEntry>> {
        let Some(t) = self.transcript(tid)?.map(Cow::into_owned) else {
            return Ok(None);
        };
        let bytes = self.bytes_of(&t);
        self.transcripts.insert(*tid, None);
        self.transcript_count = self.transcript_count.saturating_sub(1);
        self.unlink_caller(t.caller, tid)?;
        if let Some(v) = self.visitor_mut(&t.vid, false)? {
            v.tids.remove(tid);
        }
        for (seg, bytes, pii) in bytes {
            let u = self.usage.entry(seg).or_default();
            // PII parts of a redacted generation were already counted dead.
            u.kill(bytes - if t.has_pii() { 0 } else { pii });
        }
        Ok(Some(t))
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
    pub(crate) fn clear_directory(&mut self, vid: &Vid) -> crate::Result<Option<u32>> {
        let Some(v) = self.visitor_mut(vid, false)? else {
            return Ok(None);
        };
        let slot = std::mem::take(&mut v.slot);
        if slot != 0 {
            self.directory -= 1;
        }
        Ok((slot != 0).then_some(slot))
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
    ///
    /// Only generations held in memory are asked: those of the run had
    /// records when it was written (it is written with everything durable).
    pub(crate) fn drop_recordless(&mut self) -> crate::Result<Vec<TranscriptEntry>> {
        let empty: Vec<Tid> = self
            .held()
            .filter(|t| t.is_empty())
            .map(|t| t.tid)
            .collect();
        let mut out = Vec::with_capacity(empty.len());
        for tid in &empty {
            out.extend(self.remove_transcript(tid)?);
        }
        Ok(out)
    }

    /// Visitors with a directory entry but no generation (left by appends
    /// that never wrote a record).
    pub(crate) fn visitors_without_generations(&self) -> crate::Result<Vec<Vid>> {
        let mut out = Vec::new();
        for v in self.directory() {
            let (vid, _) = v?;
            if self.visitor(&vid)?.is_some_and(|v| v.tids.is_empty()) {
                out.push(vid);
            }
        }
        Ok(out)
    }

    /// Drops a visitor entry that no generation needs any more.
    pub(crate) fn drop_visitor_if_unused(&mut self, vid: &Vid) -> crate::Result<()> {
        if self
            .visitor(vid)?
            .is_some_and(|v| v.tids.is_empty() && v.slot == 0)
        {
            self.visitors.insert(*vid, None);
        }
        Ok(())
    }

    /// Commits a rewrite: `new` (with its records) becomes the generation its
    /// caller id leads to, and `old` is removed and returned (its slots are
    /// for the caller to wipe).
    pub(crate) fn replace_generation(
        &mut self,
        old: &Tid,
        new: TranscriptEntry,
        records: Vec<(RecordRef, Option<MsgIdDigest>)>,
    ) -> crate::Result<Option<TranscriptEntry>> {
        let tid = new.tid;
        let caller = new.caller;
        self.add_new_transcript(new)?;
        for (r, d) in records {
            self.add_record(&tid, r, d)?;
        }
        let removed = self.remove_transcript(old)?;
        self.by_caller.insert(caller, tid);
        Ok(removed)
    }

    /// Of two or more generations of one caller id, keeps the one `keep`
    /// chooses visible and takes the others out; returns them (their slots
    /// are left for a later compaction to wipe). Only generations held in
    /// memory are asked about: those of the run were settled when it was
    /// written.
    pub(crate) fn hide_generations(
        &mut self,
        keep: impl Fn(&[&TranscriptEntry]) -> Option<Tid>,
    ) -> crate::Result<Vec<TranscriptEntry>> {
        // Generations held here whose caller id leads elsewhere.
        let mut stray: Vec<CallerHash> = Vec::new();
        for t in self.held() {
            if self.caller_target(t.caller)? != Some(t.tid) {
                stray.push(t.caller);
            }
        }
        if stray.is_empty() {
            return Ok(Vec::new());
        }
        stray.sort_unstable();
        stray.dedup();
        let mut versions_of: HashMap<CallerHash, Vec<TranscriptEntry>> = HashMap::new();
        for t in self.held() {
            if stray.binary_search(&t.caller).is_ok() {
                versions_of.entry(t.caller).or_default().push(t.clone());
            }
        }
        for h in &stray {
            if let Some(target) = self.caller_target(*h)?
                && !self.transcripts.contains_key(&target)
                && let Some(t) = self.transcript(&target)?
            {
                let t = t.into_owned();
                versions_of.entry(*h).or_default().push(t);
            }
        }
        let mut hidden = Vec::new();
        for (caller, versions) in versions_of {
            let refs: Vec<&TranscriptEntry> = versions.iter().collect();
            let kept = match refs.as_slice() {
                [one] => Some(one.tid),
                _ => keep(&refs),
            };
            if let Some(kept) = kept {
                for t in versions.iter().filter(|t| t.tid != kept) {
                    hidden.extend(self.remove_transcript(&t.tid)?);
                }
                self.by_caller.insert(caller, kept);
            }
        }
        Ok(hidden)
    }

    /// Makes a generation the one its caller id leads to (a rewrite's new
    /// generation, once the old one is gone).
    pub(crate) fn make_visible(&mut self, tid: &Tid) -> crate::Result<()> {
        if let Some(t) = self.transcript(tid)? {
            let caller = t.caller;
            drop(t);
            self.by_caller.insert(caller, *tid);
        }
        Ok(())
    }

    // ----- slots and segments -----

    /// Keeps the PII slot of each generation held in memory that `owns`
    /// says is its own, and forgets the others (open, once every slot has
    /// been read; those of the run were settled when it was written).
    pub(crate) fn settle_pii_slots(&mut self, mut owns: impl FnMut(&Tid, u32) -> bool) {
        for t in self
            .transcripts
            .values_mut()
            .filter_map(|t| t.as_deref_mut())
        {
            if let Some(slot) = t.pii_slot
                && !owns(&t.tid, slot)
            {
                t.pii_slot = None;
            }
        }
    }

    /// A generation's slots moved (keyring compaction).
    pub(crate) fn move_slots(
        &mut self,
        tid: &Tid,
        content: u32,
        pii: Option<u32>,
    ) -> crate::Result<()> {
        if let Some(t) = self.generation_mut(tid)? {
            t.content_slot = content;
            t.pii_slot = pii;
        }
        Ok(())
    }

    /// Moves a visitor's directory entry from slot `from` to `to`, if its
    /// entry is the one at `from` (not another copy of it).
    pub(crate) fn move_visitor_slot_from(
        &mut self,
        vid: &Vid,
        from: u32,
        to: u32,
    ) -> crate::Result<()> {
        if !self.visitors.contains_key(vid) {
            // Not held: noted, without reading its generations.
            if self.visitor_slot(vid)? == Some(from) {
                self.visitor_deltas.entry(*vid).or_default().slot = Some(to);
            }
            return Ok(());
        }
        if let Some(v) = self.visitor_mut(vid, false)?
            && v.slot == from
        {
            v.slot = to;
        }
        Ok(())
    }

    /// A directory entry moved (keyring compaction).
    pub(crate) fn move_visitor_slot(&mut self, vid: &Vid, slot: u32) -> crate::Result<()> {
        if !self.visitors.contains_key(vid) {
            // Not held: noted, without reading its generations.
            if self.visitor_slot(vid)?.is_some() {
                self.visitor_deltas.entry(*vid).or_default().slot = Some(slot);
            }
            return Ok(());
        }
        if let Some(v) = self.visitor_mut(vid, false)? {
            v.slot = slot;
        }
        Ok(())
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
        let record_bytes = sidecar.record_bytes()?;
        let summaries: IdMap<Summary> = sidecar
            .summaries()?
            .into_iter()
            .map(|s| (s.tid, s))
            .collect();
        // Every live generation that had records in the old file: in its
        // location file, or held in memory.
        let mut had: Vec<Tid> = Vec::new();
        if let Some(old) = self.sidecars.get(&seg) {
            for s in old.summaries()? {
                if self.transcript_passing(&s.tid)?.is_some_and(|t| t.sealed) {
                    had.push(s.tid);
                }
            }
        }
        had.extend(self.held().filter(|t| t.holds_in(seg)).map(|t| t.tid));
        if let Some(lost) = had.iter().find(|tid| !summaries.contains_key(*tid)) {
            return Ok(Err(*lost));
        }
        let mut live = 0u64;
        for tid in had {
            let Some(t) = self.generation_mut(&tid)? else {
                continue;
            };
            t.forget_recent_in(seg);
            t.sealed = true;
            t.note_segment(seg);
        }
        for s in summaries.values() {
            if let Some(t) = self.transcript_passing(&s.tid)?.filter(|t| t.sealed) {
                live += s.bytes - if t.has_pii() { 0 } else { s.pii_bytes };
            }
        }
        let u = self.usage.entry(seg).or_default();
        *u = SegmentUsage {
            live,
            ..SegmentUsage::default()
        };
        u.add_dead(record_bytes.saturating_sub(live));
        self.keep_sidecar(seg, sidecar);
        Ok(Ok(live))
    }

    /// Holds in memory every live generation with records in segment
    /// `seg`'s location file (before the segment goes: a generation may
    /// have a second copy of a record there, which its count includes), so
    /// that its listing is worked out anew and written with the next run.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] if the file's summaries cannot be read.
    pub(crate) fn hold_generations_in(&mut self, seg: u64) -> crate::Result<()> {
        let Some(sidecar) = self.sidecars.get(&seg).cloned() else {
            return Ok(());
        };
        for s in sidecar.summaries()? {
            self.generation_mut(&s.tid)?;
        }
        Ok(())
    }

    /// Segment `seg` is gone (nothing in it was live).
    pub(crate) fn segment_removed(&mut self, seg: u64) {
        self.usage.remove(&seg);
        self.sidecars.remove(&seg);
    }

    // ----- the run -----

    /// Entries held in memory over the run, less those held on after it
    /// was written (the generations with records in memory).
    pub(crate) fn changes_held(&self) -> usize {
        (self.transcripts.len()
            + self.visitors.len()
            + self.visitor_deltas.len()
            + self.by_caller.len())
        .saturating_sub(self.kept_over_run)
    }

    /// Writes the index's run anew at `path` (synced; the directory is not):
    /// the current run's rows with the changes held here, then uses it and
    /// forgets those changes. Generations with records in memory stay held.
    /// On an error nothing changes (the file at `path` may be left).
    pub(crate) fn write_run(&mut self, path: &std::path::Path, cache_id: u64) -> crate::Result<()> {
        // The rows of the generations held on, as the new run has them.
        let mut held = Vec::new();
        for t in self.with_recent_records() {
            held.push((t, self.caller_target(t.caller)? == Some(t.tid)));
        }
        let run_rows = disk::HeldRows::of(held.into_iter());
        // Each changed generation's row and listing (its records' count
        // and times, worked out now: from memory, or the location files).
        let mut generations = Vec::with_capacity(self.transcripts.len());
        for (tid, t) in &self.transcripts {
            let rows = match t.as_deref() {
                Some(t) => Some((
                    disk::encode_generation(t),
                    disk::Listing::of(t, &self.extent(t)?).encode(),
                )),
                None => None,
            };
            generations.push((*tid, rows));
        }
        let changes = disk::Changes {
            generations,
            visitors: self
                .visitors
                .iter()
                .map(|(vid, v)| {
                    (
                        *vid,
                        v.as_ref()
                            .map(|v| (v.slot, v.tids.iter().copied().collect())),
                    )
                })
                .collect(),
            visitor_deltas: self
                .visitor_deltas
                .iter()
                .map(|(vid, d)| (*vid, d.slot, d.added.iter().copied().collect()))
                .collect(),
            callers: self.by_caller.iter().collect(),
        };
        let run = disk::write_merged(
            path,
            self.disk.as_ref(),
            changes,
            Arc::clone(&self.blocks),
            cache_id,
            self.row_cache(),
        )?;
        self.disk = Some(run);
        self.run_rows = run_rows;
        self.transcripts
            .retain(|_, t| t.as_ref().is_some_and(|t| t.recent.is_some()));
        self.visitors = IdMap::default();
        self.visitor_deltas = IdMap::default();
        // The caller ids of the generations still held stay too: appends
        // look them up for every message.
        let transcripts = &self.transcripts;
        self.by_caller
            .retain(|t| t.is_some_and(|t| transcripts.contains_key(&t)));
        self.kept_over_run = self.transcripts.len() + self.by_caller.len();
        Ok(())
    }

    /// Takes the run at `path` as the index's rows (open; the maps must be
    /// empty), with the counts its manifest gives.
    pub(crate) fn use_run(
        &mut self,
        path: &std::path::Path,
        cache_id: u64,
        transcripts: u64,
        directory: usize,
    ) -> crate::Result<()> {
        let run = disk::Disk::open(path, Arc::clone(&self.blocks), cache_id, self.row_cache())?;
        if run.generation_count() != transcripts {
            return Err(crate::Error::corrupt(
                path,
                0,
                "the index run holds another number of generations than its manifest says",
            ));
        }
        self.disk = Some(run);
        self.transcript_count = transcripts;
        self.directory = directory;
        Ok(())
    }

    /// The run's rows of the generations held in memory when it was
    /// written, for its manifest ([`Index::use_run_rows`] at the next open).
    pub(crate) fn run_rows(&self) -> &[u8] {
        self.run_rows.as_bytes()
    }

    /// Takes the rows of held generations from the run's manifest (open): a
    /// generation open loads records of is read from there instead of the
    /// run. False (and nothing taken) if they are not whole rows in order.
    pub(crate) fn use_run_rows(&mut self, rows: Vec<u8>) -> bool {
        match disk::HeldRows::from_bytes(rows) {
            Some(rows) => {
                self.run_rows = rows;
                true
            }
            None => false,
        }
    }

    /// Whether the run holds exactly what the maps hold: every generation,
    /// visitor and caller-id link held in memory is the run's row of it
    /// (records aside), and every one held as gone has none there. Then a
    /// new run would be this one again.
    ///
    /// # Errors
    /// As the run's lookups.
    pub(crate) fn matches_run(&self) -> crate::Result<bool> {
        let Some(d) = &self.disk else {
            return Ok(false);
        };
        if !self.visitor_deltas.is_empty() {
            // Every one is a change the run does not have.
            return Ok(false);
        }
        for (tid, t) in &self.transcripts {
            let row = match self.run_rows.get(tid) {
                Some((row, _)) => Some(row),
                None => d.generation_kept(tid, false)?,
            };
            let same = match (t, row) {
                (Some(t), Some(row)) => disk::encode_generation(t) == disk::encode_generation(&row),
                (None, None) => true,
                _ => false,
            };
            if !same {
                return Ok(false);
            }
        }
        for (vid, v) in &self.visitors {
            let same = match (v, d.visitor(vid)?) {
                (Some(v), Some((slot, mut tids))) => {
                    let mut held: Vec<Tid> = v.tids.iter().copied().collect();
                    held.sort_unstable();
                    tids.sort_unstable();
                    v.slot == slot && held == tids
                }
                (None, None) => true,
                _ => false,
            };
            if !same {
                return Ok(false);
            }
        }
        for (h, tid) in self.by_caller.iter() {
            let known = tid
                .and_then(|tid| self.run_rows.get(&tid))
                .is_some_and(|(row, linked)| linked && row.caller == h);
            if !known && d.caller(h)? != tid {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The run in use, if any.
    pub(crate) fn run_path(&self) -> Option<&std::path::Path> {
        self.disk.as_ref().map(disk::Disk::path)
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
        self.extent_kept(t, false)
    }

    /// [`Index::extent`], keeping the summaries read in the item cache if
    /// `keep` (a transcript's read; writing a run, which works out every
    /// changed generation's, keeps none).
    fn extent_kept(&self, t: &TranscriptEntry, keep: bool) -> crate::Result<Extent> {
        let mut e = Extent::default();
        if t.sealed {
            for (seg, sidecar) in self.sidecars.range(t.segment_range()) {
                if t.holds_in(*seg) {
                    continue;
                }
                if let Some(s) = sidecar.find_kept(&t.tid, keep)? {
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
        // A read: what it finds in location files is kept for the next.
        let extent = self.extent_kept(t, true)?;
        let mut out = Vec::with_capacity(extent.count as usize);
        for (seg, s) in &extent.parts {
            out.extend(
                self.part_entries_kept(t, *seg, s, true)?
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
        self.part_entries_kept(t, seg, s, false)
    }

    fn part_entries_kept(
        &self,
        t: &TranscriptEntry,
        seg: u64,
        s: &Summary,
        keep: bool,
    ) -> crate::Result<Vec<Entry>> {
        let sidecar = self.sidecars.get(&seg).ok_or_else(|| {
            crate::Error::Internal(format!(
                "segment {seg} has no record-location file but the index names one"
            ))
        })?;
        let entries = sidecar.entries_kept(s.first, s.count, keep)?;
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
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] if the index's run is damaged where it
    /// would be.
    pub(crate) fn transcript(&self, tid: &Tid) -> crate::Result<Option<Gen<'_>>> {
        self.transcript_kept(tid, true)
    }

    /// [`Index::transcript`] for a pass over many generations: a row read
    /// from the run is not kept in its row cache.
    fn transcript_passing(&self, tid: &Tid) -> crate::Result<Option<Gen<'_>>> {
        self.transcript_kept(tid, false)
    }

    fn transcript_kept(&self, tid: &Tid, keep: bool) -> crate::Result<Option<Gen<'_>>> {
        match self.transcripts.get(tid) {
            Some(Some(t)) => Ok(Some(Cow::Borrowed(&**t))),
            Some(None) => Ok(None),
            None => match &self.disk {
                Some(d) => Ok(d.generation_kept(tid, keep)?.map(Cow::Owned)),
                None => Ok(None),
            },
        }
    }

    /// The generation a caller id leads to.
    ///
    /// # Errors
    /// As [`Index::transcript`].
    pub(crate) fn by_caller(&self, id: &str) -> crate::Result<Option<Gen<'_>>> {
        match self.caller_target(self.caller_hash(id))? {
            Some(tid) => self.transcript(&tid),
            None => Ok(None),
        }
    }

    /// Every live generation: those held in memory, then the run's others.
    pub(crate) fn transcripts(&self) -> impl Iterator<Item = crate::Result<Gen<'_>>> {
        let held = self.held().map(|t| Ok(Cow::Borrowed(t)));
        let on_disk = self
            .disk
            .iter()
            .flat_map(|d| d.generations())
            .filter(|t| {
                !t.as_ref()
                    .is_ok_and(|t| self.transcripts.contains_key(&t.tid))
            })
            .map(|t| t.map(Cow::Owned));
        held.chain(on_disk)
    }

    /// Number of live generations.
    pub(crate) fn transcript_count(&self) -> u64 {
        self.transcript_count
    }

    /// A visitor's entry.
    ///
    /// # Errors
    /// As [`Index::transcript`].
    pub(crate) fn visitor(&self, vid: &Vid) -> crate::Result<Option<Cow<'_, VisitorEntry>>> {
        match self.visitors.get(vid) {
            Some(Some(v)) => Ok(Some(Cow::Borrowed(v))),
            Some(None) => Ok(None),
            None => Ok(self.disk_visitor(vid)?.map(Cow::Owned)),
        }
    }

    /// A visitor's directory slot (0: none), `None` for an unknown visitor:
    /// [`Index::visitor`]'s `slot` without reading its generations.
    ///
    /// # Errors
    /// As [`Index::transcript`].
    pub(crate) fn visitor_slot(&self, vid: &Vid) -> crate::Result<Option<u32>> {
        match self.visitors.get(vid) {
            Some(Some(v)) => Ok(Some(v.slot)),
            Some(None) => Ok(None),
            None => {
                let in_run = match &self.disk {
                    Some(d) => d.visitor_slot(vid)?,
                    None => None,
                };
                match self.visitor_deltas.get(vid) {
                    Some(d) => Ok(d.slot.or(in_run).or(Some(0))),
                    None => Ok(in_run),
                }
            }
        }
    }

    /// Whether the visitor (a placeholder included) is known.
    ///
    /// # Errors
    /// As [`Index::transcript`].
    pub(crate) fn knows_visitor(&self, vid: &Vid) -> crate::Result<bool> {
        Ok(self.visitor(vid)?.is_some())
    }

    /// Visitors in the directory.
    pub(crate) fn directory_len(&self) -> usize {
        self.directory
    }

    /// Every directory entry: (visitor, slot).
    pub(crate) fn directory(&self) -> impl Iterator<Item = crate::Result<(Vid, u32)>> + '_ {
        let held = self
            .visitors
            .iter()
            .filter_map(|(vid, v)| v.as_ref().map(|v| Ok((*vid, v.slot))));
        let on_disk = self
            .disk
            .iter()
            .flat_map(|d| d.visitors())
            .filter(|v| {
                !v.as_ref()
                    .is_ok_and(|(vid, _)| self.visitors.contains_key(vid))
            })
            .map(|v| {
                v.map(|(vid, slot)| {
                    let moved = self.visitor_deltas.get(&vid).and_then(|d| d.slot);
                    (vid, moved.unwrap_or(slot))
                })
            });
        held.chain(on_disk)
            .filter(|v| !v.as_ref().is_ok_and(|(_, slot)| *slot == 0))
    }

    /// Every live generation of a visitor, with or without records.
    ///
    /// # Errors
    /// As [`Index::transcript`].
    pub(crate) fn generations_of(&self, vid: &Vid) -> crate::Result<Vec<Gen<'_>>> {
        let Some(v) = self.visitor(vid)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for tid in v.tids.iter() {
            out.extend(self.transcript(tid)?);
        }
        Ok(out)
    }

    /// A visitor's generations with records and their extents, newest
    /// (latest message) first.
    ///
    /// # Errors
    /// As [`Index::extent`].
    pub(crate) fn listing(&self, vid: &Vid) -> crate::Result<Vec<(Gen<'_>, Extent)>> {
        let mut out = Vec::new();
        for t in self.generations_of(vid)? {
            if t.is_empty() {
                continue;
            }
            let e = self.extent(&t)?;
            if e.count > 0 {
                out.push((t, e));
            }
        }
        out.sort_by_key(|(t, e)| std::cmp::Reverse((e.last_ts(), t.tid)));
        Ok(out)
    }

    /// What listing a visitor shows: its generations with records, newest
    /// (latest message) first. A visitor the run holds as it is, and each
    /// of its generations not held in memory, is read from its pairs in the
    /// run (one range of rows: no generation row, no location file); the
    /// others are worked out as [`Index::listing`] does.
    ///
    /// # Errors
    /// As [`Index::extent`].
    pub(crate) fn visitor_listing(&self, vid: &Vid) -> crate::Result<Vec<Listing>> {
        let mut out = Vec::new();
        match &self.disk {
            Some(d)
                if !self.visitors.contains_key(vid) && !self.visitor_deltas.contains_key(vid) =>
            {
                for l in d.listing(vid)? {
                    match self.transcripts.get(&l.tid) {
                        Some(Some(t)) => {
                            let e = self.extent(t)?;
                            if e.count > 0 {
                                out.push(Listing::of(t, &e));
                            }
                        }
                        Some(None) => {}
                        None if l.count > 0 => out.push(l),
                        None => {}
                    }
                }
            }
            _ => {
                for (t, e) in self.listing(vid)? {
                    out.push(Listing::of(&t, &e));
                }
            }
        }
        out.sort_by_key(|l| std::cmp::Reverse((l.ts_range.1, l.tid)));
        Ok(out)
    }

    /// Every visitor-generation pair of the run whose listing differs from
    /// what the generation's records add up to now, for `verify`: (its
    /// listing in the run, as it should be). Generations held in memory
    /// are left out (their listing is worked out, never read).
    ///
    /// # Errors
    /// As [`Index::extent`].
    pub(crate) fn stale_listings(&self) -> crate::Result<Vec<(Listing, Option<Listing>)>> {
        let Some(d) = &self.disk else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in d.listings() {
            let (vid, l) = row?;
            if self.transcripts.contains_key(&l.tid)
                || self.visitors.contains_key(&vid)
                || self.visitor_deltas.contains_key(&vid)
            {
                continue;
            }
            let now = match self.transcript_passing(&l.tid)? {
                Some(t) => Some(Listing::of(&t, &self.extent(&t)?)),
                None => None,
            };
            if now != Some(l) {
                out.push((l, now));
            }
        }
        Ok(out)
    }

    /// Calls `f` with each live generation's summary in each location file
    /// that [`Index::extent`] would count (one pass over every file's
    /// summaries, for the questions about every generation).
    fn for_each_summary(&self, mut f: impl FnMut(&TranscriptEntry, &Summary)) -> crate::Result<()> {
        for (seg, sidecar) in &self.sidecars {
            for s in sidecar.summaries()? {
                if let Some(t) = self.transcript_passing(&s.tid)?
                    && t.sealed
                    && !t.holds_in(*seg)
                {
                    f(&t, &s);
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
    pub(crate) fn by_age(&self) -> crate::Result<Vec<(i64, Gen<'_>)>> {
        let mut last: IdMap<i64> = IdMap::default();
        self.for_each_summary(|t, s| {
            let l = last.entry(t.tid).or_insert(s.max_ts);
            *l = (*l).max(s.max_ts);
        })?;
        for t in self.held() {
            if let Some(ts) = t.recent().iter().map(|r| r.ts).max() {
                let l = last.entry(t.tid).or_insert(ts);
                *l = (*l).max(ts);
            }
        }
        let mut out: Vec<(i64, Gen<'_>)> = Vec::with_capacity(last.len());
        for (tid, l) in last {
            if let Some(t) = self.transcript_passing(&tid)? {
                out.push((l, t));
            }
        }
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
        Ok(n + self.held().map(|t| t.recent().len() as u64).sum::<u64>())
    }

    /// Byte accounting per segment.
    pub(crate) fn usage(&self) -> &BTreeMap<u64, SegmentUsage> {
        &self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CallerKey {
        CallerKey::derive(&[3; 32])
    }

    fn entry(tid: u8, vid: u8, caller: &str) -> TranscriptEntry {
        TranscriptEntry::new(
            [tid; 16],
            [vid; 16],
            key().hash(caller),
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
    fn held_rows_stand_for_the_run_and_tell_what_changed_since() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::new(key());
        for t in 1..=6u8 {
            index
                .add_new_transcript(entry(t, t % 2, &format!("c{t}")))
                .unwrap();
        }
        // Generations 1..=3 have records in memory (the active segment).
        for t in 1..=3u8 {
            assert!(
                index
                    .add_record(&[t; 16], rec(0, 1, 9, 64 * u64::from(t)), None)
                    .unwrap()
            );
        }
        assert!(!index.matches_run().unwrap(), "no run yet");
        index.write_run(&dir.path().join("a.run"), 1).unwrap();
        assert!(index.matches_run().unwrap());
        let rows = index.run_rows().to_vec();
        assert_eq!(rows.len(), 3 * 77, "the three generations held on");

        // A new index on that run, as open builds it: the held generations
        // come from the rows, equal to the run's, with their caller links.
        let mut reopened = Index::new(key());
        reopened
            .use_run(&dir.path().join("a.run"), 2, 6, 0)
            .unwrap();
        assert!(reopened.use_run_rows(rows.clone()));
        for t in 1..=3u8 {
            assert!(
                reopened
                    .add_record(&[t; 16], rec(0, 1, 9, 64 * u64::from(t)), None)
                    .unwrap()
            );
            let held = reopened.transcript(&[t; 16]).unwrap().unwrap();
            let row = reopened.disk_generation(&[t; 16]).unwrap().unwrap();
            assert_eq!(
                disk::encode_generation(&held),
                disk::encode_generation(&row)
            );
            assert_eq!(
                reopened.by_caller.get(key().hash(&format!("c{t}"))),
                Some(Some([t; 16])),
                "its link is held"
            );
        }
        assert!(
            reopened.matches_run().unwrap(),
            "records alone change no row"
        );
        // Any change to what the run holds shows.
        let changed = |f: &dyn Fn(&mut Index)| {
            let mut i = Index::new(key());
            i.use_run(&dir.path().join("a.run"), 3, 6, 0).unwrap();
            assert!(i.use_run_rows(rows.clone()));
            f(&mut i);
            assert!(!i.matches_run().unwrap());
        };
        changed(&|i| {
            i.forget_pii(&[1; 16]).unwrap();
        });
        changed(&|i| {
            i.forget_pii(&[5; 16]).unwrap();
        });
        changed(&|i| {
            i.add_record(&[2; 16], rec(1, 2, 10, 0), None).unwrap();
        });
        changed(&|i| {
            i.add_new_transcript(entry(7, 1, "c7")).unwrap();
        });
        changed(&|i| {
            i.remove_transcript(&[4; 16]).unwrap();
        });
        // Rows that are not whole entries in order are refused.
        let mut r = Index::new(key());
        assert!(!r.use_run_rows(rows[..rows.len() - 1].to_vec()));
        let mut swapped = rows[77..154].to_vec();
        swapped.extend_from_slice(&rows[..77]);
        assert!(!r.use_run_rows(swapped));
        let mut flagged = rows.clone();
        flagged[76] = 2;
        assert!(!r.use_run_rows(flagged));
    }

    #[test]
    fn a_returning_visitors_new_generation_is_added_without_reading_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::new(key());
        index.add_visitor([1; 16], 40).unwrap();
        index.add_new_transcript(entry(1, 1, "a")).unwrap();
        index.add_new_transcript(entry(2, 1, "b")).unwrap();
        index.write_run(&dir.path().join("a.run"), 1).unwrap();
        let tids = |i: &Index, vid: u8| -> Vec<Tid> {
            let mut t: Vec<Tid> = i
                .visitor(&[vid; 16])
                .unwrap()
                .unwrap()
                .tids
                .iter()
                .copied()
                .collect();
            t.sort_unstable();
            t
        };
        // Visitor 1 is not held: its new generation is an addition; the
        // visitor answers with all three, and keeps its directory slot.
        index.add_new_transcript(entry(3, 1, "c")).unwrap();
        assert!(index.visitors.is_empty());
        assert_eq!(tids(&index, 1), vec![[1; 16], [2; 16], [3; 16]]);
        assert_eq!(index.visitor(&[1; 16]).unwrap().unwrap().slot, 40);
        // So does a visitor the run does not know.
        index.add_new_transcript(entry(4, 2, "d")).unwrap();
        assert_eq!(tids(&index, 2), vec![[4; 16]]);
        // Its slot, read without its generations, says the same.
        assert_eq!(index.visitor_slot(&[1; 16]).unwrap(), Some(40));
        assert_eq!(index.visitor_slot(&[2; 16]).unwrap(), Some(0));
        assert_eq!(index.visitor_slot(&[9; 16]).unwrap(), None);
        assert_eq!(index.generations_of(&[2; 16]).unwrap().len(), 1);
        assert!(!index.matches_run().unwrap());
        // A generation removed takes the addition along (the visitor is
        // held from then on).
        index.add_new_transcript(entry(5, 1, "e")).unwrap();
        index.remove_transcript(&[5; 16]).unwrap();
        assert_eq!(tids(&index, 1), vec![[1; 16], [2; 16], [3; 16]]);
        assert!(!index.visitor_deltas.contains_key(&[1; 16]));
        index.write_run(&dir.path().join("b.run"), 2).unwrap();
        assert!(index.matches_run().unwrap());
        let d = index.disk.as_ref().unwrap();
        assert_eq!(
            d.visitor(&[1; 16]).unwrap(),
            Some((40, vec![[1; 16], [2; 16], [3; 16]]))
        );
        assert_eq!(d.visitor(&[2; 16]).unwrap(), Some((0, vec![[4; 16]])));
        assert_eq!(index.directory().count(), 1);
        // A directory entry that moves (a table's growth) is noted too,
        // only if it is the one at the place named.
        index.move_visitor_slot_from(&[1; 16], 40, 41).unwrap();
        index.move_visitor_slot_from(&[1; 16], 40, 50).unwrap();
        assert!(index.visitors.is_empty());
        assert_eq!(index.visitor_slot(&[1; 16]).unwrap(), Some(41));
        assert_eq!(index.visitor(&[1; 16]).unwrap().unwrap().slot, 41);
        let listed: Vec<(Vid, u32)> = index.directory().map(Result::unwrap).collect();
        assert_eq!(listed, vec![([1; 16], 41)]);
        index.write_run(&dir.path().join("c.run"), 3).unwrap();
        let d = index.disk.as_ref().unwrap();
        assert_eq!(
            d.visitor(&[1; 16]).unwrap(),
            Some((41, vec![[1; 16], [2; 16], [3; 16]]))
        );
    }

    #[test]
    fn verbs_keep_the_maps_consistent() {
        let mut ix = Index::new(key());
        assert!(ix.add_visitor([9; 16], 2).unwrap());
        assert!(
            !ix.add_visitor([9; 16], 3).unwrap(),
            "one entry per visitor"
        );
        ix.add_transcript(entry(1, 9, "t-1"), true).unwrap();
        ix.add_transcript(entry(2, 9, "t-2"), true).unwrap();
        ix.add_record(&[1; 16], rec(0, 50, 1, 32), Some([4; 16]))
            .unwrap();
        ix.add_record(&[2; 16], rec(0, 70, 1, 132), None).unwrap();
        ix.add_record(&[1; 16], rec(1, 90, 1, 232), None).unwrap();
        let listed: Vec<CallerHash> = ix
            .listing(&[9; 16])
            .unwrap()
            .iter()
            .map(|(t, _)| t.caller)
            .collect();
        assert_eq!(
            listed,
            [key().hash("t-1"), key().hash("t-2")],
            "newest first"
        );
        let aged: Vec<i64> = ix.by_age().unwrap().iter().map(|(last, _)| *last).collect();
        assert_eq!(aged, [70, 90]);
        assert_eq!(ix.record_count().unwrap(), 3);
        assert_eq!(ix.usage()[&1].live, 300);
        // Forgetting a PII key kills its PII parts once.
        assert_eq!(ix.forget_pii(&[1; 16]).unwrap(), Some(21));
        assert_eq!(ix.forget_pii(&[1; 16]).unwrap(), None);
        assert_eq!((ix.usage()[&1].live, ix.usage()[&1].dead), (240, 60));
        // Removing it kills the rest of its records, not the PII parts again.
        let gone = ix.remove_transcript(&[1; 16]).unwrap().unwrap();
        assert_eq!(gone.content_slot, 11);
        assert_eq!((ix.usage()[&1].live, ix.usage()[&1].dead), (100, 200));
        assert!(ix.by_caller("t-1").unwrap().is_none());
        assert_eq!(ix.listing(&[9; 16]).unwrap().len(), 1);
        // The directory entry goes, the visitor stays while a generation
        // carries its id.
        assert_eq!(ix.directory_len(), 1);
        assert_eq!(ix.clear_directory(&[9; 16]).unwrap(), Some(2));
        assert_eq!(ix.clear_directory(&[9; 16]).unwrap(), None);
        assert_eq!(
            (
                ix.directory_len(),
                ix.visitor(&[9; 16]).unwrap().unwrap().slot
            ),
            (0, 0)
        );
        ix.drop_visitor_if_unused(&[9; 16]).unwrap();
        assert!(ix.knows_visitor(&[9; 16]).unwrap());
        ix.remove_transcript(&[2; 16]).unwrap();
        ix.drop_visitor_if_unused(&[9; 16]).unwrap();
        assert!(!ix.knows_visitor(&[9; 16]).unwrap());
    }

    #[test]
    fn a_rewrite_replaces_its_generation_and_hidden_generations_leave() {
        let mut ix = Index::new(key());
        ix.add_visitor([9; 16], 2).unwrap();
        ix.add_transcript(entry(1, 9, "t-1"), true).unwrap();
        ix.add_record(&[1; 16], rec(0, 50, 1, 32), None).unwrap();
        let new = entry(3, 9, "t-1");
        let old = ix
            .replace_generation(&[1; 16], new, vec![(rec(0, 50, 2, 32), Some([5; 16]))])
            .unwrap();
        assert_eq!(old.unwrap().tid, [1; 16]);
        assert_eq!(ix.by_caller("t-1").unwrap().unwrap().tid, [3; 16]);
        let t = ix.by_caller("t-1").unwrap().unwrap();
        assert!(ix.has_msg_id(&t, &[5; 16]).unwrap());
        assert!(!ix.has_msg_id(&t, &[6; 16]).unwrap());
        // An uncommitted second generation (as open finds it) is hidden.
        ix.add_transcript(entry(4, 9, "t-1"), false).unwrap();
        assert_eq!(ix.by_caller("t-1").unwrap().unwrap().tid, [3; 16]);
        let hidden = ix
            .hide_generations(|v| v.iter().map(|t| t.tid).min())
            .unwrap();
        assert_eq!(hidden.len(), 1);
        assert_eq!(hidden[0].tid, [4; 16]);
        assert_eq!(ix.transcript_count(), 1);
    }

    #[test]
    fn a_sealed_segments_records_leave_memory_for_its_location_file() {
        let mut ix = Index::new(key());
        ix.add_visitor([9; 16], 2).unwrap();
        ix.add_transcript(entry(1, 9, "t-1"), true).unwrap();
        ix.add_transcript(entry(2, 9, "t-2"), true).unwrap();
        let mut builder = SidecarBuilder::default();
        let mut recs = Vec::new();
        for (i, (tid, seq, off)) in [(1u8, 0u32, 32u64), (2, 0, 132), (1, 1, 232)]
            .into_iter()
            .enumerate()
        {
            let r = rec(seq, 50 + i as i64, 1, off);
            let d = (tid == 1 && seq == 1).then_some([7; 16]);
            ix.add_record(&[tid; 16], r, d).unwrap();
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
        ix.add_record(&[1; 16], rec(2, 90, 2, 32), Some([8; 16]))
            .unwrap();
        let before: Vec<Vec<RecordRef>> = [1u8, 2]
            .iter()
            .map(|t| {
                ix.records(&ix.transcript(&[*t; 16]).unwrap().unwrap())
                    .unwrap()
            })
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
        let t1 = ix.transcript(&[1; 16]).unwrap().unwrap();
        assert_eq!(
            Index::recent_records(&t1).len(),
            1,
            "only segment 2's record"
        );
        assert!(Index::recent_records(&ix.transcript(&[2; 16]).unwrap().unwrap()).is_empty());
        // Their memory is given back, not only their length.
        assert!(ix.transcript(&[2; 16]).unwrap().unwrap().recent.is_none());
        assert_eq!(t1.recent.as_ref().unwrap().records.capacity(), 1);
        let after: Vec<Vec<RecordRef>> = [1u8, 2]
            .iter()
            .map(|t| {
                ix.records(&ix.transcript(&[*t; 16]).unwrap().unwrap())
                    .unwrap()
            })
            .collect();
        assert_eq!(after, before);
        assert_eq!(ix.usage(), &usage);
        assert!(ix.has_msg_id(&t1, &[7; 16]).unwrap(), "read from the file");
        assert!(ix.has_msg_id(&t1, &[8; 16]).unwrap(), "held in memory");
        assert!(!ix.has_msg_id(&t1, &[9; 16]).unwrap());
        assert_eq!(
            (t1.segs, ix.transcript(&[2; 16]).unwrap().unwrap().segs),
            ((1, 2), (1, 1))
        );
        let e = ix.extent(&t1).unwrap();
        assert_eq!((e.count, e.next_seq, e.ts_range), (3, 3, Some((50, 90))));
        assert_eq!(ix.next_seq(&t1).unwrap(), 3);
        assert_eq!(ix.record_count().unwrap(), 4);
        let aged: Vec<(i64, Tid)> = ix
            .by_age()
            .unwrap()
            .iter()
            .map(|(l, t)| (*l, t.tid))
            .collect();
        assert_eq!(aged, [(51, [2; 16]), (90, [1; 16])]);
        assert_eq!(
            ix.records_in(&t1, 1).unwrap().len(),
            2,
            "read from the file"
        );
        assert_eq!(ix.records_in(&t1, 2).unwrap().len(), 1, "held in memory");
        // Removing a generation kills its bytes in both segments.
        ix.forget_pii(&[1; 16]).unwrap();
        ix.remove_transcript(&[1; 16]).unwrap();
        assert_eq!(ix.usage()[&1].live, 100);
        assert_eq!(ix.usage()[&2].live, 0);
    }

    #[test]
    fn the_directory_counts_visitors_with_an_entry_and_refuses_a_second() {
        let mut ix = Index::new(key());
        assert!(ix.add_visitor([9; 16], 2).unwrap());
        assert!(
            !ix.add_visitor([9; 16], 3).unwrap(),
            "a second entry of a visitor"
        );
        assert!(ix.add_visitor([8; 16], 4).unwrap());
        ix.move_visitor_slot(&[9; 16], 7).unwrap();
        assert_eq!(ix.visitor(&[9; 16]).unwrap().unwrap().slot, 7);
        assert_eq!(ix.directory_len(), 2);
        assert_eq!(ix.clear_directory(&[8; 16]).unwrap(), Some(4));
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
