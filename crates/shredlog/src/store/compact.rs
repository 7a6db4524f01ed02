//! Compaction: rewrites sealed segments without their dead bytes, so that
//! shredded ciphertext leaves the disk and the store's size follows its live
//! data. Records are copied as ciphertext (a record whose PII key is gone loses
//! its PII part; its content part is copied unchanged, which its associated
//! data allows): compaction never needs, holds or writes a plaintext.
//!
//! Each segment is rewritten to `<id>.seg.tmp`, synced, and renamed over the
//! original, so a crash leaves either the old or the new file, both complete;
//! readers that hold the old file's map keep a valid view until they finish.
//! The checkpoint is rewritten after each run (an older one no longer fits the
//! shorter file and is ignored, which costs a scan, never data).

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Engine, Store, Writer};
use crate::error::{Error, IoContext, Result};
use crate::index::SegmentUsage;
use crate::keyring::{self, LiveSlots, Moved};
use crate::message::Timestamp;
use crate::record::{self, FLAG_PII, Tid};
use crate::segment::{self, SEGMENT_HEADER, Segment};
use crate::shred::Shredder;

/// What to compact.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CompactOptions {
    /// Only segments whose dead bytes make up at least this share (0.0–1.0).
    /// Default 0: any dead byte qualifies.
    pub min_dead_ratio: f64,
    /// Only segments holding dead bytes older than this many milliseconds.
    pub dead_older_than_ms: Option<i64>,
    /// Also seal the active segment first if it holds dead bytes, so that
    /// nothing dead is left anywhere. Default false.
    pub include_active: bool,
    /// Limit the rate of compaction I/O (bytes written per second).
    pub bytes_per_sec: Option<u64>,
}

impl CompactOptions {
    /// Everything dead, now: what `shredlog compact` does.
    pub fn everything() -> CompactOptions {
        CompactOptions {
            include_active: true,
            ..CompactOptions::default()
        }
    }
}

/// What a compaction run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CompactReport {
    /// Segments rewritten.
    pub segments_rewritten: u64,
    /// Segments removed because nothing in them was live.
    pub segments_removed: u64,
    /// Bytes of the compacted segment files before.
    pub bytes_before: u64,
    /// Bytes of the compacted segment files after.
    pub bytes_after: u64,
    /// Records copied.
    pub records_copied: u64,
    /// Records whose PII part was dropped (its key was gone).
    pub pii_parts_dropped: u64,
    /// Keyring bytes before and after.
    pub keyring_bytes_before: u64,
    /// Keyring bytes after.
    pub keyring_bytes_after: u64,
    /// Keyring slots wiped that belonged to nothing (left by crashes).
    pub leftover_slots_wiped: u64,
}

/// A live record to copy: where it is, whose it is, whether its PII part goes.
struct Live {
    off: u64,
    len: u32,
    tid: Tid,
    seq: u32,
    drop_pii: bool,
}

impl Store {
    /// Compacts the sealed segments that `options` selects; `progress` is
    /// called with (bytes done, bytes total).
    ///
    /// Runs alongside reads and writes; one compaction at a time.
    ///
    /// # Errors
    /// [`Error::Io`] if a file cannot be written or renamed (the original
    /// segment then stays in place), [`Error::ReadOnly`] for a store opened
    /// read-only.
    pub fn compact_with_progress(
        &self,
        options: &CompactOptions,
        progress: &dyn Fn(u64, u64),
    ) -> Result<CompactReport> {
        self.engine.compact(options, progress)
    }

    /// [`Store::compact_with_progress`] without progress reports.
    ///
    /// # Errors
    /// As [`Store::compact_with_progress`].
    pub fn compact(&self, options: &CompactOptions) -> Result<CompactReport> {
        self.compact_with_progress(options, &|_, _| {})
    }
}

impl Engine {
    /// See [`Store::compact_with_progress`].
    pub(crate) fn compact(
        &self,
        options: &CompactOptions,
        progress: &dyn Fn(u64, u64),
    ) -> Result<CompactReport> {
        let inner = self;
        if inner.options.read_only {
            return Err(Error::ReadOnly);
        }
        if inner.report.found_damage() {
            // Records whose keys sit in a damaged slot would look dead.
            return Err(Error::corrupt(
                &inner.dir,
                0,
                "the store was opened in salvage mode and damage was found: compaction would drop records it cannot read; copy what you need out (export) and repair the store first",
            ));
        }
        let _one = inner.compaction.lock();
        inner.commit.check()?;
        let mut report = CompactReport {
            leftover_slots_wiped: self.drop_leftovers()?,
            ..CompactReport::default()
        };
        let now = Timestamp::now().unix_millis();
        let old_enough = |u: &SegmentUsage| {
            u.dead > 0
                && options
                    .dead_older_than_ms
                    .is_none_or(|age| u.dead_since.is_some_and(|since| since <= now - age))
        };
        if options.include_active {
            let mut w = inner.writer.lock();
            let (active, active_len) = w.last_segment();
            let active_dead = inner
                .index
                .read()
                .usage()
                .get(&active)
                .is_some_and(old_enough);
            if active_dead && active_len > SEGMENT_HEADER {
                self.roll(&mut w)?;
                w.checkpoint_due = false;
            }
        }
        let (victims, mut live) = {
            let w = inner.writer.lock();
            let index = inner.index.read();
            let active = w.last_segment().0;
            let victims: Vec<(u64, SegmentUsage)> = index
                .usage()
                .iter()
                .filter(|(id, u)| {
                    let total = (u.live + u.dead).max(1) as f64;
                    **id != active
                        && old_enough(u)
                        && u.dead as f64 / total >= options.min_dead_ratio
                })
                .map(|(id, u)| (*id, *u))
                .collect();
            let wanted: HashSet<u64> = victims.iter().map(|v| v.0).collect();
            let mut live: HashMap<u64, Vec<Live>> = HashMap::new();
            for t in index.transcripts() {
                let t = t?;
                for &seg in &wanted {
                    for r in index.records_in(&t, seg)? {
                        live.entry(seg).or_default().push(Live {
                            off: r.loc.off,
                            len: r.loc.len,
                            tid: t.tid,
                            seq: r.seq,
                            drop_pii: !t.has_pii() && r.pii_len > 0,
                        });
                    }
                }
            }
            (victims, live)
        };
        let total: u64 = victims.iter().map(|(_, u)| u.live + u.dead).sum();
        let mut done = 0u64;
        progress(0, total);
        for (id, usage) in victims {
            let mut records = live.remove(&id).unwrap_or_default();
            records.sort_by_key(|r| r.off);
            self.compact_segment(id, records, options, &mut report)?;
            done += usage.live + usage.dead;
            progress(done, total);
        }
        self.compact_keyring(&mut report)?;
        if inner.options.checkpoint {
            let w = inner.writer.lock();
            inner.write_checkpoint(&w, false)?;
        }
        Ok(report)
    }

    /// Wipes the keyring slots that belong to nothing (`Engine::leftovers`:
    /// a writing open calls this before it serves anything) and deletes
    /// transcripts that have keys but no record; returns how many slots it
    /// wiped. Runs only on a store opened without damage, under the
    /// writer's lock (so no append is between writing keys and records).
    pub(crate) fn drop_leftovers(&self) -> Result<u64> {
        let inner = self;
        let mut w = inner.writer.lock();
        let mut index = inner.index.write();
        let leftovers = std::mem::take(&mut *inner.leftovers.lock());
        let r = (|| {
            // What is wiped here is in no log: the keyring stops naming the
            // index's run first (open rebuilds the index until the run this
            // compaction writes at its end), so that a crash never leaves a
            // run naming slots and entries wiped since.
            let mut run_named = true;
            let mut forget_run = |w: &mut Writer| -> Result<()> {
                if std::mem::take(&mut run_named) {
                    w.keyring.note_run(0);
                    w.keyring.sync()?;
                }
                Ok(())
            };
            if !leftovers.is_empty() {
                forget_run(&mut w)?;
            }
            for &slot in &leftovers {
                w.keyring.wipe(slot)?;
            }
            // Generations that have keys but no record (left out of the index
            // at open, but one may be created since by an append that failed
            // before its first record) and directory entries that no
            // generation needs: left by appends that failed or were cut short
            // before any record reached the disk (never acknowledged). They
            // would keep an email alive that no data needs.
            let mut empty: Vec<Tid> = Vec::new();
            for t in index.transcripts() {
                let t = t?;
                if t.is_empty() {
                    empty.push(t.tid);
                }
            }
            if !empty.is_empty() {
                forget_run(&mut w)?;
            }
            let mut shredder = Shredder {
                index: &mut index,
                keys: &inner.keys,
                wipe: &mut w.keyring,
            };
            for tid in &empty {
                shredder.delete_transcript(tid)?;
            }
            let orphans = shredder.index.visitors_without_generations()?;
            if !orphans.is_empty() {
                forget_run(&mut w)?;
            }
            let mut shredder = Shredder {
                index: &mut index,
                keys: &inner.keys,
                wipe: &mut w.keyring,
            };
            for vid in &orphans {
                shredder.clear_directory(vid)?;
                shredder.index.drop_visitor_if_unused(vid)?;
            }
            if !empty.is_empty() || !orphans.is_empty() || !leftovers.is_empty() {
                w.keyring.sync()?;
            }
            Ok(())
        })();
        if let Err(e) = &r {
            inner.commit.poison(e);
        }
        r.map(|()| leftovers.len() as u64)
    }

    fn compact_segment(
        &self,
        id: u64,
        records: Vec<Live>,
        options: &CompactOptions,
        report: &mut CompactReport,
    ) -> Result<()> {
        let inner = self;
        let Some(seg) = inner.segments.read().get(&id).cloned() else {
            return Ok(());
        };
        let Segment::Sealed {
            path, generation, ..
        } = &*seg
        else {
            return Ok(());
        };
        // Its records are read through a map of the file for this pass.
        let map = segment::map(path, seg.file()?)?;
        // Its location file, if open left it for its first read, is opened
        // (or rebuilt) now, while it is still the one of this file: the
        // rewritten file's takes its name below.
        inner.index.read().open_sidecar(id)?;
        // The rewritten file is the next generation of this segment id, so
        // that a checkpoint of the old one is never taken for it.
        let generation = generation.saturating_add(1);
        report.bytes_before += map.len() as u64;
        let tmp = path.with_extension("seg.tmp");
        let started = Instant::now();
        // (old offset, new offset, new length, PII dropped)
        let mut moved: Vec<(u64, u64, u32, bool)> = Vec::with_capacity(records.len());
        let mut sidecar = None;
        if !records.is_empty() {
            let mut out = std::io::BufWriter::with_capacity(
                1 << 20,
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)
                    .at(&tmp)?,
            );
            let mut pos = 0u64;
            out.write_all(&segment::header(id, generation)).at(&tmp)?;
            pos += SEGMENT_HEADER;
            let mut frame = Vec::new();
            for r in &records {
                let start = usize::try_from(r.off)
                    .map_err(|_| Error::corrupt(path, r.off, "offset out of range"))?;
                let bytes = map.get(start..start + r.len as usize).ok_or_else(|| {
                    Error::corrupt(path, r.off, "record extends past the end of the segment")
                })?;
                let (rec, _) =
                    record::decode(bytes).map_err(|e| Error::corrupt(path, r.off, e.describe()))?;
                if rec.header.tid != r.tid || rec.header.seq != r.seq {
                    return Err(Error::corrupt(
                        path,
                        r.off,
                        "record is not the one the index expects",
                    ));
                }
                let written: &[u8] = if r.drop_pii {
                    let mut h = rec.header.clone();
                    h.flags &= !FLAG_PII;
                    h.pii_len = 0;
                    h.pii_nonce = [0; 12];
                    frame.clear();
                    record::encode(&h, rec.content, &[], &mut frame);
                    report.pii_parts_dropped += 1;
                    &frame
                } else {
                    bytes
                };
                crate::failpoint::check("compact.write").at(&tmp)?;
                out.write_all(written).at(&tmp)?;
                moved.push((r.off, pos, written.len() as u32, r.drop_pii));
                pos += written.len() as u64;
                report.records_copied += 1;
                if let Some(rate) = options.bytes_per_sec.filter(|r| *r > 0) {
                    let due = Duration::from_secs_f64(pos as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
            out.write_all(&record::encode_footer(&record::Footer {
                generation,
                data_len: pos,
                segment: id,
            }))
            .at(&tmp)?;
            let file = out
                .into_inner()
                .map_err(|e| Error::io(&tmp, e.into_error()))?;
            crate::failpoint::check("compact.sync").at(&tmp)?;
            file.sync_all().at(&tmp)?;
            // The new file's record locations, written before the swap: until
            // then this process reads the old one's through its open handle,
            // and after a crash before the swap the file names a generation
            // the segment does not have, and is rebuilt.
            drop(file);
            sidecar = Some(Arc::new(super::locations::build_sealed(
                &inner.dir, &tmp, id, 0, true,
            )?));
        }

        // Swap under the writer's lock, so that no key dies half-way, and the
        // index lock, so that readers see old locations with the old file or
        // new locations with the new one.
        let mut w = inner.writer.lock();
        let mut index = inner.index.write();
        let mut segs = inner.segments.write();
        crate::failpoint::check("compact.rename").at(path)?;
        if moved.is_empty() {
            // The keyring stops naming the index's run (which may name this
            // segment) before the file goes: open takes a segment that a run
            // the keyring names lists, and that is missing, for lost data.
            // The compaction writes a new run when it ends.
            if w.keyring.marks().run != 0 {
                w.keyring.note_run(0);
                w.keyring.sync()?;
            }
            index.hold_generations_in(id)?;
            std::fs::remove_file(path).at(path)?;
            crate::fsutil::sync_dir(&inner.dir)?;
            // Its location file goes too (one left by a crash here is
            // removed by the next writing open).
            let idx = inner.dir.join(crate::index::sidecar_file_name(id));
            if let Err(e) = std::fs::remove_file(&idx)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(Error::io(&idx, e));
            }
            segs.remove(&id);
            index.segment_removed(id);
            report.segments_removed += 1;
            return Ok(());
        }
        std::fs::rename(&tmp, path).at(path)?;
        crate::fsutil::sync_dir(&inner.dir)?;
        let file = OpenOptions::new().read(true).open(path).at(path)?;
        let new_len = file.metadata().at(path)?.len();
        segs.insert(
            id,
            Arc::new(Segment::sealed(path.clone(), Arc::new(file), generation)),
        );
        drop(segs);
        report.segments_rewritten += 1;
        report.bytes_after += new_len;
        let sidecar = sidecar.ok_or_else(|| {
            Error::Internal("a rewritten segment has no record-location file".into())
        })?;
        index.records_moved(id, sidecar)?.map_err(|tid| {
            // Cannot happen: records only die, they are not born in sealed
            // segments.
            Error::Internal(format!(
                "compaction of {} did not copy the live records of generation {}",
                path.display(),
                crate::ids::hex(&tid)
            ))
        })?;
        Ok(())
    }

    /// Keyring compaction: moves live slots from the end of the file into
    /// free slots and truncates the file.
    fn compact_keyring(&self, report: &mut CompactReport) -> Result<()> {
        let mut w = self.writer.lock();
        report.keyring_bytes_before = keyring_bytes(&w.keyring);
        // Slots move: no run may name them any more. The keyring says so
        // durably before any moves, and a new run is written after.
        w.keyring.note_run(0);
        w.keyring.sync()?;
        w.keyring.lift_floor()?;
        let mut index = self.index.write();
        let mut live: Vec<LiveSlots> = Vec::new();
        for t in index.transcripts() {
            let t = t?;
            live.push(LiveSlots::Transcript {
                tid: t.tid,
                content: t.content_slot,
                pii: t.pii_slot,
            });
        }
        for v in index.directory() {
            let (vid, slot) = v?;
            live.push(LiveSlots::Visitor { vid, slot });
        }
        match keyring::relocate(&mut w.keyring, &live) {
            Ok(moved) => {
                for m in moved {
                    match m {
                        Moved::Transcript { tid, content, pii } => {
                            index.move_slots(&tid, content, pii)?;
                        }
                        Moved::Visitor { vid, slot } => index.move_visitor_slot(&vid, slot)?,
                    }
                }
            }
            Err(e) => {
                // The index may name slots whose writes failed: refuse further
                // writes until a reopen rebuilds it from the keyring.
                self.commit.poison(&e);
                return Err(e);
            }
        }
        report.keyring_bytes_after = keyring_bytes(&w.keyring);
        drop(index);
        if self.options.checkpoint && self.commit.is_clean() {
            self.write_run(&mut w)?;
        }
        Ok(())
    }
}

/// The keyring's bytes as a compaction reports them: its length (the file
/// may run on past it, a hole a growth left, which a compaction cuts).
fn keyring_bytes(keyring: &crate::keyring::Keyring) -> u64 {
    u64::from(keyring.len()) * keyring.unit_bytes()
}
