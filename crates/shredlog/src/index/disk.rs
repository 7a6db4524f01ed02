//! The index's rows on disk: one immutable run file ([`super::run`]) with
//! four sections, read through the shared block cache. It holds what the
//! index holds per generation and per visitor (random ids, keyed hashes of
//! caller ids, keyring slot numbers, times and segment numbers), never a
//! key or personal data.
//!
//! | section | key | value |
//! | --- | --- | --- |
//! | 0 generations | tid (16) | [`GEN_LEN`] bytes: vid (16), caller hash (16), content slot u32, PII slot u32 (0: none), rules version u16, flags u8 (bit 0: records in location files), 0, created ms i64, lowest and highest segment u32, u32 |
//! | 1 visitors | vid (16) | directory slot u32 (0: none) |
//! | 2 visitor's generations | vid (16) ‖ tid (16) | [`LIST_LEN`] bytes: what listing the visitor shows of it ([`Listing`]): content slot u32, flags u8 (bit 0: PII key alive), 0, rules version u16, records u32, earliest and latest message ms i64 |
//! | 3 caller ids | caller hash (16) | tid (16) |
//!
//! Integers are little-endian. A run holds no tombstones: each one is
//! written whole, from the previous run and the changes since
//! ([`write_merged`]). A run whose section 2 has no values (written before
//! listing rows) does not have the index's sections: it is refused, and the
//! index rebuilt (it is derived data).

use std::path::Path;
use std::sync::Arc;

use super::blocks::BlockCache;
use super::rows::RowCache;
use super::run::{Run, RunWriter, SectionSpec};
use super::{CallerHash, TranscriptEntry};
use crate::error::{Error, Result};
use crate::record::{Tid, Vid};

const GENERATIONS: usize = 0;
const VISITORS: usize = 1;
const VISITOR_TIDS: usize = 2;
const CALLERS: usize = 3;

/// Bytes of a generation's row value.
const GEN_LEN: usize = 16 + 16 + 4 + 4 + 2 + 1 + 1 + 8 + 4 + 4;
/// Bytes of a visitor-generation pair's value ([`Listing`]).
pub(super) const LIST_LEN: usize = 4 + 1 + 1 + 2 + 4 + 8 + 8;
/// A visitor's pair as the row cache keeps it: tid and [`LIST_LEN`] bytes.
const PAIR_ROW: usize = 16 + LIST_LEN;

const SECTIONS: [SectionSpec; 4] = [
    SectionSpec {
        key_len: 16,
        val_len: GEN_LEN as u16,
    },
    SectionSpec {
        key_len: 16,
        val_len: 4,
    },
    SectionSpec {
        key_len: 32,
        val_len: LIST_LEN as u16,
    },
    SectionSpec {
        key_len: 16,
        val_len: 16,
    },
];

/// A generation as its row holds it (no records: those are in location
/// files, or in memory for the active segment).
pub(super) fn encode_generation(t: &TranscriptEntry) -> [u8; GEN_LEN] {
    let mut v = [0u8; GEN_LEN];
    v[0..16].copy_from_slice(&t.vid);
    v[16..32].copy_from_slice(&t.caller.to_bytes());
    v[32..36].copy_from_slice(&t.content_slot.to_le_bytes());
    v[36..40].copy_from_slice(&t.pii_slot.unwrap_or(0).to_le_bytes());
    v[40..42].copy_from_slice(&t.rules_version.to_le_bytes());
    v[42] = u8::from(t.sealed);
    v[44..52].copy_from_slice(&t.created_millis.to_le_bytes());
    v[52..56].copy_from_slice(&t.segs.0.to_le_bytes());
    v[56..60].copy_from_slice(&t.segs.1.to_le_bytes());
    v
}

fn word<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(at..at + N) {
        out.copy_from_slice(s);
    }
    out
}

/// The generation of row `tid` → `v` (`v` is [`GEN_LEN`] bytes: the run
/// checked the length).
pub(super) fn decode_generation(tid: Tid, v: &[u8]) -> TranscriptEntry {
    let pii = u32::from_le_bytes(word(v, 36));
    let mut t = TranscriptEntry::new(
        tid,
        word(v, 0),
        CallerHash::from_bytes(word(v, 16)),
        u32::from_le_bytes(word(v, 32)),
        (pii != 0).then_some(pii),
        u16::from_le_bytes(word(v, 40)),
        i64::from_le_bytes(word(v, 44)),
    );
    t.sealed = v.get(42).is_some_and(|f| f & 1 != 0);
    t.segs = (
        u32::from_le_bytes(word(v, 52)),
        u32::from_le_bytes(word(v, 56)),
    );
    t
}

fn id(key: &[u8]) -> [u8; 16] {
    word(key, 0)
}

/// What listing a visitor shows of one of its generations, kept with the
/// visitor's pair in the run so that a listing reads one range of rows
/// (no generation row, no location file): the generation's content slot
/// (its caller id is there), whether its PII key lives, its rules version,
/// and its records' count and time range, as of the run. The index holds in
/// memory every generation whose records or keys changed since the run, so
/// the row of a generation not held is its current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Listing {
    pub tid: Tid,
    pub content_slot: u32,
    pub has_pii: bool,
    pub rules_version: u16,
    pub count: u32,
    /// (earliest, latest) message time; (0, 0) without records.
    pub ts_range: (i64, i64),
}

impl Listing {
    /// The listing of generation `t` whose records add up to `e`.
    pub(crate) fn of(t: &TranscriptEntry, e: &super::Extent) -> Listing {
        Listing {
            tid: t.tid,
            content_slot: t.content_slot,
            has_pii: t.has_pii(),
            rules_version: t.rules_version,
            count: e.count,
            ts_range: e.ts_range.unwrap_or((0, 0)),
        }
    }

    pub(super) fn encode(&self) -> [u8; LIST_LEN] {
        let mut v = [0u8; LIST_LEN];
        v[0..4].copy_from_slice(&self.content_slot.to_le_bytes());
        v[4] = u8::from(self.has_pii);
        v[6..8].copy_from_slice(&self.rules_version.to_le_bytes());
        v[8..12].copy_from_slice(&self.count.to_le_bytes());
        v[12..20].copy_from_slice(&self.ts_range.0.to_le_bytes());
        v[20..28].copy_from_slice(&self.ts_range.1.to_le_bytes());
        v
    }

    /// The listing in `v` ([`LIST_LEN`] bytes: the run checked the length).
    fn decode(tid: Tid, v: &[u8]) -> Listing {
        Listing {
            tid,
            content_slot: u32::from_le_bytes(word(v, 0)),
            has_pii: v.get(4).is_some_and(|f| f & 1 != 0),
            rules_version: u16::from_le_bytes(word(v, 6)),
            count: u32::from_le_bytes(word(v, 8)),
            ts_range: (
                i64::from_le_bytes(word(v, 12)),
                i64::from_le_bytes(word(v, 20)),
            ),
        }
    }
}

/// The pair keys of visitor `vid`: `[vid ‖ 0…, end)` (`end` `None`: to the
/// section's end).
fn pair_range(vid: &Vid) -> ([u8; 32], Option<[u8; 32]>) {
    let mut from = [0u8; 32];
    from[..16].copy_from_slice(vid);
    let mut to = *vid;
    let end = increment(&mut to).then(|| {
        let mut e = [0u8; 32];
        e[..16].copy_from_slice(&to);
        e
    });
    (from, end)
}

/// The index's run: its rows, read a block at a time.
#[derive(Debug)]
pub(super) struct Disk {
    run: Run,
    /// The rows lookups found, kept for the next lookup of the same id.
    rows: RowCache,
}

impl Disk {
    /// Opens the run at `path` (its header and fences only), keeping the
    /// rows its lookups find in `rows`.
    pub(super) fn open(
        path: &Path,
        cache: Arc<BlockCache>,
        cache_id: u64,
        rows: RowCache,
    ) -> Result<Disk> {
        Disk::check(Run::open(path, cache, cache_id)?, rows)
    }

    fn check(run: Run, rows: RowCache) -> Result<Disk> {
        let path = run.path();
        let mut earlier = SECTIONS;
        earlier[VISITOR_TIDS].val_len = 0;
        if run.specs() == earlier {
            return Err(Error::corrupt(
                path,
                0,
                "the index run was written before runs held listing rows \
                 (it is derived data: the index is rebuilt, and a writing open writes a new run)",
            ));
        }
        if run.specs() != SECTIONS {
            return Err(Error::corrupt(
                path,
                0,
                "the index run does not have the index's four sections \
                 (it is derived data: remove index.manifest and open the store writable to rebuild it)",
            ));
        }
        Ok(Disk { run, rows })
    }

    /// The value of `id`'s row in `section` (a 16-byte key; `None`: no row,
    /// or a tombstone): kept in the row cache when found there, else looked
    /// up in the run and kept.
    fn row(&self, section: usize, id: &[u8; 16]) -> Result<Option<Arc<[u8]>>> {
        self.row_kept(section, id, true)
    }

    /// [`Disk::row`], keeping a row read from the run only if `keep`.
    fn row_kept(&self, section: usize, id: &[u8; 16], keep: bool) -> Result<Option<Arc<[u8]>>> {
        if let Some(v) = self.rows.get(&(section as u8, *id)) {
            return Ok(Some(v));
        }
        let Some(Some(v)) = self.run.get(section, id)? else {
            return Ok(None);
        };
        let v: Arc<[u8]> = Arc::from(v);
        if keep {
            self.rows.insert((section as u8, *id), Arc::clone(&v));
        }
        Ok(Some(v))
    }

    /// Keeps the rows lookups find (`true`, the default) or not (open).
    pub(super) fn set_keeping(&self, on: bool) {
        self.rows.set_filling(on);
    }

    pub(super) fn path(&self) -> &Path {
        self.run.path()
    }

    /// Number of generations.
    pub(super) fn generation_count(&self) -> u64 {
        self.run.rows(GENERATIONS)
    }

    #[cfg(test)]
    pub(super) fn generation(&self, tid: &Tid) -> Result<Option<TranscriptEntry>> {
        self.generation_kept(tid, true)
    }

    /// [`Disk::generation`], keeping the row read only if `keep` (a pass
    /// over every generation keeps none: it would push out what queries
    /// use).
    pub(super) fn generation_kept(&self, tid: &Tid, keep: bool) -> Result<Option<TranscriptEntry>> {
        Ok(self
            .row_kept(GENERATIONS, tid, keep)?
            .map(|v| decode_generation(*tid, &v)))
    }

    /// A visitor's directory slot (0: none).
    pub(super) fn visitor_slot(&self, vid: &Vid) -> Result<Option<u32>> {
        Ok(self
            .row(VISITORS, vid)?
            .map(|v| u32::from_le_bytes(word(&v, 0))))
    }

    /// A visitor's directory slot (0: none) and generations, for taking it
    /// into memory or comparing it with memory: the rows read from the run
    /// are not kept in the row cache.
    pub(super) fn visitor(&self, vid: &Vid) -> Result<Option<VisitorRow>> {
        let Some(v) = self.row_kept(VISITORS, vid, false)? else {
            return Ok(None);
        };
        let slot = u32::from_le_bytes(word(&v, 0));
        let tids = self
            .listing_kept(vid, false)?
            .into_iter()
            .map(|l| l.tid)
            .collect();
        Ok(Some((slot, tids)))
    }

    /// A visitor's generations as its pairs list them, in tid order (none
    /// for a visitor the run does not have). A listing read from the run is
    /// kept in the row cache as its pairs' tids and values (a tombstone's
    /// as zeros), [`PAIR_ROW`] bytes each.
    pub(super) fn listing(&self, vid: &Vid) -> Result<Vec<Listing>> {
        self.listing_kept(vid, true)
    }

    /// [`Disk::listing`], keeping a listing read from the run only if
    /// `keep`.
    fn listing_kept(&self, vid: &Vid, keep: bool) -> Result<Vec<Listing>> {
        let rows = match self.rows.get(&(VISITOR_TIDS as u8, *vid)) {
            Some(rows) => rows,
            None => {
                let (from, end) = pair_range(vid);
                let mut rows = Vec::new();
                for row in self
                    .run
                    .range(VISITOR_TIDS, &from, end.as_ref().map(|e| &e[..]))
                {
                    let (k, v) = row?;
                    rows.extend_from_slice(k.get(16..32).unwrap_or(&[0; 16]));
                    match v {
                        Some(v) => rows.extend_from_slice(&v),
                        None => rows.extend_from_slice(&[0; LIST_LEN]),
                    }
                }
                let rows: Arc<[u8]> = Arc::from(rows);
                if keep {
                    self.rows
                        .insert((VISITOR_TIDS as u8, *vid), Arc::clone(&rows));
                }
                rows
            }
        };
        Ok(rows
            .chunks_exact(PAIR_ROW)
            .map(|r| Listing::decode(word(r, 0), r.get(16..).unwrap_or_default()))
            .collect())
    }

    /// Every visitor-generation pair's listing, in (vid, tid) order (for
    /// `verify`).
    pub(super) fn listings(&self) -> impl Iterator<Item = Result<(Vid, Listing)>> + '_ {
        self.run.range(VISITOR_TIDS, &[0; 32], None).map(|row| {
            let (k, v) = row?;
            Ok((
                id(&k),
                Listing::decode(word(&k, 16), v.as_deref().unwrap_or_default()),
            ))
        })
    }

    pub(super) fn caller(&self, h: CallerHash) -> Result<Option<Tid>> {
        Ok(self.row(CALLERS, &h.to_bytes())?.map(|v| word(&v, 0)))
    }

    /// Every generation, in tid order.
    pub(super) fn generations(&self) -> impl Iterator<Item = Result<TranscriptEntry>> + '_ {
        self.run
            .range(GENERATIONS, &[0; 16], None)
            .filter_map(|row| match row {
                Ok((k, Some(v))) => Some(Ok(decode_generation(id(&k), &v))),
                Ok((_, None)) => None,
                Err(e) => Some(Err(e)),
            })
    }

    /// Every visitor and its directory slot, in vid order.
    pub(super) fn visitors(&self) -> impl Iterator<Item = Result<(Vid, u32)>> + '_ {
        self.run
            .range(VISITORS, &[0; 16], None)
            .filter_map(|row| match row {
                Ok((k, Some(v))) => Some(Ok((id(&k), u32::from_le_bytes(word(&v, 0))))),
                Ok((_, None)) => None,
                Err(e) => Some(Err(e)),
            })
    }
}

/// Bytes of one of [`HeldRows`]' entries: tid (16) ‖ generation row ‖
/// flags (1; bit 0: its caller-id hash leads to it in the run).
const HELD_ENTRY: usize = 16 + GEN_LEN + 1;

/// The rows of the generations held in memory when a run was written (those
/// with records in the active segment), as the manifest carries them
/// (docs/FORMAT.md §7b.2): equal to the run's rows of those generations, so
/// that open takes the active segment's generations from here instead of a
/// block read each, and a close can tell without reading the run whether
/// they changed. Entries of [`HELD_ENTRY`] bytes, ascending tid.
#[derive(Debug, Default)]
pub(super) struct HeldRows(Vec<u8>);

impl HeldRows {
    /// The rows of `held` (any order), each with whether its caller id
    /// leads to it.
    pub(super) fn of<'a>(held: impl Iterator<Item = (&'a TranscriptEntry, bool)>) -> HeldRows {
        let mut rows: Vec<[u8; HELD_ENTRY]> = held
            .map(|(t, linked)| {
                let mut e = [0u8; HELD_ENTRY];
                e[..16].copy_from_slice(&t.tid);
                e[16..16 + GEN_LEN].copy_from_slice(&encode_generation(t));
                e[16 + GEN_LEN] = u8::from(linked);
                e
            })
            .collect();
        rows.sort_unstable_by(|a, b| a[..16].cmp(&b[..16]));
        HeldRows(rows.concat())
    }

    /// The rows in `bytes`; `None` unless they are whole entries in strictly
    /// ascending tid order with no unknown flag.
    pub(super) fn from_bytes(bytes: Vec<u8>) -> Option<HeldRows> {
        if !bytes.len().is_multiple_of(HELD_ENTRY) {
            return None;
        }
        let ascending = bytes
            .chunks_exact(HELD_ENTRY)
            .zip(bytes.chunks_exact(HELD_ENTRY).skip(1))
            .all(|(a, b)| a[..16] < b[..16]);
        let flags = bytes.chunks_exact(HELD_ENTRY).all(|e| e[16 + GEN_LEN] <= 1);
        (ascending && flags).then_some(HeldRows(bytes))
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Generation `tid` if its row is here, and whether its caller id
    /// leads to it.
    pub(super) fn get(&self, tid: &Tid) -> Option<(TranscriptEntry, bool)> {
        let n = self.0.len() / HELD_ENTRY;
        let entry = |i: usize| self.0.get(i * HELD_ENTRY..(i + 1) * HELD_ENTRY);
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let e = entry(mid)?;
            match e[..16].cmp(tid.as_slice()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let t = decode_generation(*tid, &e[16..16 + GEN_LEN]);
                    return Some((t, e[16 + GEN_LEN] & 1 != 0));
                }
            }
        }
        None
    }
}

/// Adds one to a big-endian 16-byte id; false when it overflowed.
fn increment(id: &mut [u8; 16]) -> bool {
    for b in id.iter_mut().rev() {
        let (n, carry) = b.overflowing_add(1);
        *b = n;
        if !carry {
            return true;
        }
    }
    false
}

/// A visitor's directory slot (0: none) and generations.
pub(super) type VisitorRow = (u32, Vec<Tid>);

/// A generation's row and its listing (its pair's value).
pub(super) type GenerationRows = ([u8; GEN_LEN], [u8; LIST_LEN]);

/// The changes since the run, for [`write_merged`]: an entry replaces the
/// run's row of its key (`None`: removes it). A visitor's generations in
/// `visitors` come whole: its pairs in the run are all replaced. For a
/// visitor in `visitor_deltas` (and not in `visitors`), the generations
/// are added to the run's, and its row takes the slot given (`None`: the
/// run's row stays, or one without a directory slot is made).
#[derive(Default)]
pub(super) struct Changes {
    pub generations: Vec<(Tid, Option<GenerationRows>)>,
    pub visitors: Vec<(Vid, Option<VisitorRow>)>,
    pub visitor_deltas: Vec<(Vid, Option<u32>, Vec<Tid>)>,
    pub callers: Vec<(CallerHash, Option<Tid>)>,
}

/// What [`merge`] does with a key.
enum Change {
    /// The row becomes this value.
    Set(Vec<u8>),
    /// The row goes.
    Remove,
    /// The run's row stays; without one, this value is the row.
    KeepOr(Vec<u8>),
}

/// Writes the run at `path`: `old`'s rows with `changes` applied (one
/// entry per key). The file is synced, the directory is not. Returns it,
/// opened.
pub(super) fn write_merged(
    path: &Path,
    old: Option<&Disk>,
    mut changes: Changes,
    cache: Arc<BlockCache>,
    cache_id: u64,
    rows: RowCache,
) -> Result<Disk> {
    changes.generations.sort_unstable_by_key(|(k, _)| *k);
    changes.visitors.sort_unstable_by_key(|(vid, _)| *vid);
    changes.callers.sort_unstable_by_key(|(k, _)| *k);
    // An addition to a visitor whose whole entry is here joins it.
    let mut adds = std::mem::take(&mut changes.visitor_deltas);
    adds.retain_mut(|(vid, slot, tids)| {
        match changes.visitors.binary_search_by_key(vid, |(v, _)| *v) {
            Ok(i) => {
                if let Some((whole_slot, whole)) = &mut changes.visitors[i].1 {
                    whole.append(tids);
                    if let Some(s) = slot {
                        *whole_slot = *s;
                    }
                }
                false
            }
            Err(_) => true,
        }
    });
    adds.sort_unstable_by_key(|(vid, _, _)| *vid);
    let mut w = RunWriter::create(path, &SECTIONS)?;

    // Generations.
    let changed = changes
        .generations
        .iter()
        .map(|(k, v)| (k.to_vec(), set_or_remove(v.map(|v| v.0.to_vec()))));
    merge(old, GENERATIONS, &[0; 16], changed, |k, v| {
        w.push(GENERATIONS, k, Some(v))
    })?;

    // Visitors: the whole entries and the additions, in vid order.
    let whole = changes.visitors.iter().map(|(vid, v)| {
        (
            vid.to_vec(),
            set_or_remove(v.as_ref().map(|(slot, _)| slot.to_le_bytes().to_vec())),
        )
    });
    let added = adds.iter().map(|(vid, slot, _)| {
        let change = match slot {
            Some(s) => Change::Set(s.to_le_bytes().to_vec()),
            None => Change::KeepOr(0u32.to_le_bytes().to_vec()),
        };
        (vid.to_vec(), change)
    });
    let mut changed: Vec<(Vec<u8>, Change)> = whole.chain(added).collect();
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    merge(old, VISITORS, &[0; 16], changed.into_iter(), |k, v| {
        w.push(VISITORS, k, Some(v))
    })?;

    // Visitors' generations: a changed visitor's pairs replace the run's.
    let mut pairs: Vec<[u8; 32]> = Vec::new();
    // Looked up once per row of the run's section: hashed, not searched.
    let changed_vids: crate::ids::IdSet = changes.visitors.iter().map(|(v, _)| *v).collect();
    let changed_generations: crate::ids::IdMap<usize> = changes
        .generations
        .iter()
        .enumerate()
        .map(|(i, (tid, _))| (*tid, i))
        .collect();
    let whole = changes
        .visitors
        .iter()
        .filter_map(|(vid, v)| Some((vid, &v.as_ref()?.1)));
    for (vid, tids) in whole.chain(adds.iter().map(|(vid, _, tids)| (vid, tids))) {
        for tid in tids {
            let mut k = [0u8; 32];
            k[..16].copy_from_slice(vid);
            k[16..].copy_from_slice(tid);
            pairs.push(k);
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    {
        // A pair's value is its generation's listing: the changed one when
        // the generation changed (none when it is gone), else the run's.
        let listing_of = |pair: &[u8], kept: Option<&[u8]>| -> Result<Option<Vec<u8>>> {
            let tid: Tid = word(pair, 16);
            if let Some(&i) = changed_generations.get(&tid) {
                return Ok(changes.generations[i].1.map(|(_, l)| l.to_vec()));
            }
            if let Some(v) = kept {
                return Ok(Some(v.to_vec()));
            }
            match old.map(|o| o.run.get(VISITOR_TIDS, pair)).transpose()? {
                Some(Some(Some(v))) => Ok(Some(v)),
                _ => Err(Error::Internal(format!(
                    "visitor {} lists generation {}, which neither the changes nor the run have",
                    crate::ids::hex(&pair[..16]),
                    crate::ids::hex(&tid)
                ))),
            }
        };
        // The run's pairs (but a whole visitor's) and the fresh ones, in
        // key order; a fresh pair the run has already is written once.
        let mut fresh = pairs.into_iter().peekable();
        if let Some(old) = old {
            old.run.scan(VISITOR_TIDS, &[0; 32], |k, v| {
                if changed_vids.contains(&id(k)) {
                    return Ok(());
                }
                while let Some(f) = fresh.next_if(|f| f.as_slice() < k) {
                    if let Some(l) = listing_of(&f, None)? {
                        w.push(VISITOR_TIDS, &f, Some(&l))?;
                    }
                }
                fresh.next_if(|f| f.as_slice() == k);
                match listing_of(k, v)? {
                    Some(l) => w.push(VISITOR_TIDS, k, Some(&l)),
                    None => Ok(()),
                }
            })?;
        }
        for f in fresh {
            if let Some(l) = listing_of(&f, None)? {
                w.push(VISITOR_TIDS, &f, Some(&l))?;
            }
        }
    }

    // Caller ids.
    let changed = changes
        .callers
        .iter()
        .map(|(h, t)| (h.to_bytes().to_vec(), set_or_remove(t.map(|t| t.to_vec()))));
    merge(old, CALLERS, &[0; 16], changed, |k, v| {
        w.push(CALLERS, k, Some(v))
    })?;

    let run = w.finish(cache, cache_id)?;
    Disk::check(run, rows)
}

fn set_or_remove(v: Option<Vec<u8>>) -> Change {
    v.map_or(Change::Remove, Change::Set)
}

/// Streams section `section` of `old` merged with `changed` (sorted by
/// key, one entry a key) into `emit`: a changed key's entry wins.
fn merge(
    old: Option<&Disk>,
    section: usize,
    start: &[u8],
    changed: impl Iterator<Item = (Vec<u8>, Change)>,
    mut emit: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<()> {
    let mut changed = changed.peekable();
    if let Some(old) = old {
        old.run.scan(section, start, |k, v| {
            let mut replaced = false;
            while let Some((ck, _)) = changed.peek() {
                let order = ck.as_slice().cmp(k);
                if order == std::cmp::Ordering::Greater {
                    break;
                }
                let Some((ck, change)) = changed.next() else {
                    break;
                };
                if order == std::cmp::Ordering::Equal {
                    match change {
                        Change::Set(cv) => emit(&ck, &cv)?,
                        Change::Remove => {}
                        Change::KeepOr(_) => {
                            if let Some(v) = v {
                                emit(k, v)?;
                            }
                        }
                    }
                    replaced = true;
                    break;
                }
                // A key the run does not have.
                match change {
                    Change::Set(cv) | Change::KeepOr(cv) => emit(&ck, &cv)?,
                    Change::Remove => {}
                }
            }
            if !replaced && let Some(v) = v {
                emit(k, v)?;
            }
            Ok(())
        })?;
    }
    for (k, change) in changed {
        match change {
            Change::Set(v) | Change::KeepOr(v) => emit(&k, &v)?,
            Change::Remove => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::index::CallerKey;

    fn generation(tid: u8, vid: u8, caller: &str, slot: u32) -> TranscriptEntry {
        let mut t = TranscriptEntry::new(
            [tid; 16],
            [vid; 16],
            CallerKey::derive(&[5; 32]).hash(caller),
            slot,
            slot.is_multiple_of(2).then_some(slot + 1),
            3,
            1_700_000_000_000 + i64::from(slot),
        );
        t.sealed = slot.is_multiple_of(3);
        t.segs = (slot, slot + 4);
        t
    }

    /// A listing made up from a generation's fields (the run only carries it).
    fn listing_of(t: &TranscriptEntry) -> Listing {
        let n = i64::from(t.content_slot);
        Listing {
            tid: t.tid,
            content_slot: t.content_slot,
            has_pii: t.has_pii(),
            rules_version: t.rules_version,
            count: t.content_slot % 5,
            ts_range: (n * 10, n * 10 + 5),
        }
    }

    fn rows(t: &TranscriptEntry) -> Option<GenerationRows> {
        Some((encode_generation(t), listing_of(t).encode()))
    }

    /// What a run should hold, kept by hand.
    #[derive(Default, Clone)]
    struct Model {
        generations: BTreeMap<Tid, TranscriptEntry>,
        visitors: BTreeMap<Vid, VisitorRow>,
        callers: BTreeMap<CallerHash, Tid>,
    }

    /// Checks every lookup of `disk` against `m`, twice: the second time
    /// the answers come from the rows the first kept (as many as its row
    /// cache holds).
    fn check(disk: &Disk, m: &Model) {
        for _ in 0..2 {
            lookups_agree(disk, m);
        }
        assert_eq!(disk.generation_count(), m.generations.len() as u64);
        let all: Vec<Tid> = disk.generations().map(|t| t.unwrap().tid).collect();
        assert_eq!(all, m.generations.keys().copied().collect::<Vec<_>>());
        let pairs: usize = m.visitors.values().map(|v| v.1.len()).sum();
        assert_eq!(disk.listings().count(), pairs);
        let listed: Vec<(Vid, u32)> = disk.visitors().map(Result::unwrap).collect();
        let want: Vec<(Vid, u32)> = m.visitors.iter().map(|(v, (s, _))| (*v, *s)).collect();
        assert_eq!(listed, want);
    }

    fn lookups_agree(disk: &Disk, m: &Model) {
        for (tid, want) in &m.generations {
            let got = disk.generation(tid).unwrap().unwrap();
            assert_eq!(encode_generation(&got), encode_generation(want));
            assert_eq!((got.sealed, got.segs), (want.sealed, want.segs));
        }
        for (vid, (slot, tids)) in &m.visitors {
            let (got_slot, got_tids) = disk.visitor(vid).unwrap().unwrap();
            let mut want = tids.clone();
            want.sort_unstable();
            assert_eq!(
                (got_slot, got_tids),
                (*slot, want.clone()),
                "visitor {vid:?}"
            );
            assert_eq!(disk.visitor_slot(vid).unwrap(), Some(*slot));
            let listed = disk.listing(vid).unwrap();
            let want: Vec<Listing> = want.iter().map(|t| listing_of(&m.generations[t])).collect();
            assert_eq!(listed, want, "visitor {vid:?}");
        }
        for (h, tid) in &m.callers {
            assert_eq!(disk.caller(*h).unwrap(), Some(*tid));
        }
        // Absent keys.
        assert!(disk.generation(&[0xEE; 16]).unwrap().is_none());
        assert!(disk.visitor(&[0xEE; 16]).unwrap().is_none());
    }

    /// The run written over `first` with changes `c`, its row cache small
    /// enough to push rows out all the time.
    fn second_run(dir: &Path, first: &Disk, c: Changes, cache: Arc<BlockCache>) -> Disk {
        write_merged(
            &dir.join("r2"),
            Some(first),
            c,
            cache,
            2,
            RowCache::new(700),
        )
        .unwrap()
    }

    /// A run of `m`'s rows written from nothing, checked against `m`.
    fn first_run(path: &Path, cache: &Arc<BlockCache>, m: &Model) -> Disk {
        let first = write_merged(
            path,
            None,
            changes(&Model::default(), m),
            Arc::clone(cache),
            1,
            RowCache::new(1 << 20),
        )
        .unwrap();
        check(&first, m);
        first
    }

    fn changes(old: &Model, new: &Model) -> Changes {
        let mut c = Changes::default();
        for (tid, t) in &new.generations {
            c.generations.push((*tid, rows(t)));
        }
        for tid in old
            .generations
            .keys()
            .filter(|t| !new.generations.contains_key(*t))
        {
            c.generations.push((*tid, None));
        }
        for (vid, v) in &new.visitors {
            c.visitors.push((*vid, Some(v.clone())));
        }
        for vid in old
            .visitors
            .keys()
            .filter(|v| !new.visitors.contains_key(*v))
        {
            c.visitors.push((*vid, None));
        }
        for (h, t) in &new.callers {
            c.callers.push((*h, Some(*t)));
        }
        for h in old.callers.keys().filter(|h| !new.callers.contains_key(*h)) {
            c.callers.push((*h, None));
        }
        c
    }

    #[test]
    fn runs_written_over_runs_hold_what_the_changes_say() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(BlockCache::new(1 << 20));
        let key = CallerKey::derive(&[5; 32]);
        let mut m = Model::default();
        // Enough rows for several blocks of every section.
        for i in 0..200u32 {
            let (tid, vid) = ((i % 251) as u8, (i % 37) as u8);
            let mut tid16 = [tid; 16];
            tid16[0] = (i / 251) as u8;
            let mut t = generation(tid, vid, &format!("t-{i}"), i + 20);
            t.tid = tid16;
            m.generations.insert(tid16, t.clone());
            let v = m
                .visitors
                .entry([vid; 16])
                .or_insert((u32::from(vid) + 2, Vec::new()));
            v.1.push(tid16);
            m.callers.insert(t.caller, tid16);
        }
        let first = first_run(&dir.path().join("r1"), &cache, &m);
        // Only the changes: one generation gone, one changed, a visitor
        // gone, one with a new slot and a generation fewer, a caller id
        // moved to another generation.
        let old = m.clone();
        let gone: Tid = *m.generations.keys().nth(3).unwrap();
        let gone_t = m.generations.remove(&gone).unwrap();
        m.callers.remove(&gone_t.caller);
        if let Some(v) = m.visitors.get_mut(&gone_t.vid) {
            v.1.retain(|t| *t != gone);
        }
        let changed: Tid = *m.generations.keys().nth(7).unwrap();
        if let Some(t) = m.generations.get_mut(&changed) {
            t.pii_slot = None;
            t.segs = (1, 9);
        }
        m.visitors.remove(&[5; 16]);
        m.visitors.get_mut(&[6; 16]).unwrap().0 = 0;
        m.callers.insert(key.hash("t-0"), changed);
        let mut c = changes(&old, &m);
        // Unchanged rows need not be given: keep only what differs.
        c.generations.retain(|(tid, v)| {
            v.is_none() || *tid == changed || !old.generations.contains_key(tid)
        });
        c.visitors
            .retain(|(vid, v)| v.is_none() || *vid == [6; 16] || *vid == gone_t.vid);
        c.callers
            .retain(|(h, t)| t.is_none() || *h == key.hash("t-0"));
        let second = second_run(dir.path(), &first, c, cache);
        check(&second, &m);
        // The first run is unchanged by the second.
        check(&first, &old);
    }

    #[test]
    fn rows_found_are_answered_again_without_the_run_and_a_pass_keeps_none() {
        let dir = tempfile::tempdir().unwrap();
        // No block cache: a lookup the row cache cannot answer reads the
        // file.
        let cache = Arc::new(BlockCache::new(0));
        let mut m = Model::default();
        for i in 0..120u8 {
            let t = generation(i, i % 30, &format!("t-{i}"), u32::from(i) + 20);
            m.visitors
                .entry(t.vid)
                .or_insert((u32::from(i % 30) + 2, Vec::new()))
                .1
                .push(t.tid);
            m.callers.insert(t.caller, t.tid);
            m.generations.insert(t.tid, t);
        }
        let path = dir.path().join("r1");
        let disk = write_merged(
            &path,
            None,
            changes(&Model::default(), &m),
            cache,
            1,
            RowCache::new(1 << 20),
        )
        .unwrap();
        let (asked, passed) = ([3u8; 16], [4u8; 16]);
        let vid = m.generations[&asked].vid;
        let h = m.generations[&asked].caller;
        let answers = || {
            (
                disk.generation(&asked)
                    .unwrap()
                    .map(|t| encode_generation(&t)),
                disk.visitor_slot(&vid).unwrap(),
                disk.listing(&vid).unwrap(),
                disk.caller(h).unwrap(),
            )
        };
        let want = answers();
        assert!(want.0.is_some() && want.1.is_some() && !want.2.is_empty());
        assert!(disk.generation_kept(&passed, false).unwrap().is_some());
        // A visitor taken into memory (an append's) is not kept either.
        let taken = [7u8; 16];
        assert!(
            disk.visitor(&taken)
                .unwrap()
                .is_some_and(|(_, t)| !t.is_empty())
        );
        // Every data block zeroed (the header and fences stay).
        let mut damaged = std::fs::read(&path).unwrap();
        damaged[super::super::sidecar::BLOCK..].fill(0);
        std::fs::write(&path, &damaged).unwrap();
        assert_eq!(answers(), want);
        // The generation a pass read was not kept: the run is read, and
        // found damaged.
        assert!(matches!(
            disk.generation(&passed),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            disk.visitor_slot(&taken),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(disk.listing(&taken), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn additions_to_visitors_keep_their_rows_and_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(BlockCache::new(1 << 20));
        let mut m = Model::default();
        // Visitors 1..=40 with three generations each (several blocks).
        for v in 1..=40u8 {
            let mut tids = Vec::new();
            for j in 0..3u8 {
                let mut tid = [v; 16];
                tid[15] = j;
                let mut t =
                    generation(v, v, &format!("c-{v}-{j}"), u32::from(v) * 8 + u32::from(j));
                t.tid = tid;
                m.generations.insert(tid, t);
                tids.push(tid);
            }
            m.visitors.insert([v; 16], (u32::from(v) + 100, tids));
        }
        let first = first_run(&dir.path().join("r1"), &cache, &m);
        let tid = |v: u8, j: u8| {
            let mut t = [v; 16];
            t[15] = j;
            t
        };
        let mut c = Changes::default();
        // A new generation of visitor 7 (its row and other pairs stay), one
        // of a visitor the run does not have (a row without a slot), one
        // the run has already (written once), and one of visitor 9, whose
        // whole entry is among the changes too (it joins it).
        c.visitor_deltas.push(([7; 16], None, vec![tid(7, 9)]));
        c.visitor_deltas
            .push(([0xE0; 16], None, vec![tid(0xE0, 1), tid(0xE0, 2)]));
        c.visitor_deltas.push(([8; 16], None, vec![tid(8, 1)]));
        c.visitor_deltas.push(([9; 16], Some(4), vec![tid(9, 5)]));
        // The new generations come with their rows (a listing each).
        for (t, v) in [
            (tid(7, 9), 7),
            (tid(0xE0, 1), 0xE0),
            (tid(0xE0, 2), 0xE0),
            (tid(9, 5), 9),
        ] {
            let mut g = generation(v, v, "new", u32::from(t[15]) + 500);
            g.tid = t;
            c.generations.push((t, rows(&g)));
            m.generations.insert(t, g);
        }
        // Visitor 11's entry moved (its pairs stay).
        c.visitor_deltas.push(([11; 16], Some(77), Vec::new()));
        c.visitors.push(([9; 16], Some((3, vec![tid(9, 0)]))));
        let second = second_run(dir.path(), &first, c, cache);
        m.visitors.get_mut(&[7; 16]).unwrap().1.push(tid(7, 9));
        m.visitors
            .insert([0xE0; 16], (0, vec![tid(0xE0, 1), tid(0xE0, 2)]));
        m.visitors.insert([9; 16], (4, vec![tid(9, 0), tid(9, 5)]));
        m.visitors.get_mut(&[11; 16]).unwrap().0 = 77;
        check(&second, &m);
    }

    /// A generation that changed under a visitor that did not gets a new
    /// listing in its pair; one gone leaves its visitor's pairs.
    #[test]
    fn a_changed_generation_changes_its_listing_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(BlockCache::new(1 << 20));
        let mut m = Model::default();
        for i in 0..90u8 {
            let mut t = generation(i, i % 7, &format!("g-{i}"), u32::from(i) * 3 + 1);
            t.tid = [i; 16];
            m.visitors
                .entry([i % 7; 16])
                .or_insert((u32::from(i % 7) + 1, Vec::new()))
                .1
                .push(t.tid);
            m.generations.insert(t.tid, t);
        }
        let first = first_run(&dir.path().join("r1"), &cache, &m);
        let mut c = Changes::default();
        let t = m.generations.get_mut(&[40; 16]).unwrap();
        t.content_slot = 1000;
        t.pii_slot = None;
        c.generations.push((t.tid, rows(t)));
        m.generations.remove(&[41; 16]);
        m.visitors
            .get_mut(&[41 % 7; 16])
            .unwrap()
            .1
            .retain(|t| *t != [41; 16]);
        c.generations.push(([41; 16], None));
        let second = second_run(dir.path(), &first, c, cache);
        check(&second, &m);
        let l = second.listing(&[40 % 7; 16]).unwrap();
        let l = l.iter().find(|l| l.tid == [40; 16]).unwrap();
        assert_eq!((l.content_slot, l.has_pii, l.count), (1000, false, 0));
    }

    /// A run written before pairs carried listings is refused as such (the
    /// index is rebuilt from the keyring, then written anew).
    #[test]
    fn a_run_without_listing_rows_is_refused_as_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let mut earlier = SECTIONS;
        earlier[VISITOR_TIDS].val_len = 0;
        let mut w = RunWriter::create(&path, &earlier).unwrap();
        w.push(GENERATIONS, &[1; 16], Some(&[0; GEN_LEN])).unwrap();
        w.push(VISITOR_TIDS, &[2; 32], Some(&[])).unwrap();
        let cache = Arc::new(BlockCache::new(1 << 20));
        drop(w.finish(Arc::clone(&cache), 1).unwrap());
        let e = Disk::open(&path, cache, 1, RowCache::new(1 << 20)).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
        assert!(
            e.to_string().contains("before runs held listing rows"),
            "{e}"
        );
    }

    #[test]
    fn a_run_with_other_sections_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r");
        let mut w = RunWriter::create(&path, &SECTIONS[..2]).unwrap();
        w.push(0, &[1; 16], Some(&[0; GEN_LEN])).unwrap();
        let cache = Arc::new(BlockCache::new(1 << 20));
        drop(w.finish(Arc::clone(&cache), 1).unwrap());
        let e = Disk::open(&path, cache, 1, RowCache::new(1 << 20)).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    }
}
