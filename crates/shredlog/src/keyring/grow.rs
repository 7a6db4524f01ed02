//! Rebuilding a format-5 keyring's table: with the young area merged into
//! it when that is full, smaller when compaction finds it mostly empty
//! (docs/FORMAT.md §6.13, §6.14).
//!
//! The table always starts right after the header and the state, and the
//! young area follows it: a rebuild writes the new table whole into
//! `keyring.grow` (every slot of the table and the young area placed anew and
//! re-encoded for its new place; a caller slot by the hash it holds), syncs it,
//! names its region in the keyring's header as the table *being moved in*
//! (the commit point), then copies it over the old one, writes the header
//! naming it as the table, syncs, and wipes `keyring.grow`. A crash before
//! the commit point leaves the old table in force (open wipes the leftover
//! file); one after it leaves a header that names the move, and the next
//! writing open copies the file in again before it reads a slot.
//!
//! Memory stays bounded: the old table is read a chunk at a time and the new
//! one is written to the file through one chunk (`table::Builder`; homes
//! keep their order when the table grows, so reading the old table in order
//! writes the new one in about that order). Only the list of moves the
//! index needs, and which PII slots the transcript slots named (to place
//! the others after), are held.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use zeroize::Zeroizing;

use super::{Keyring, Slot, SlotDamage, cells, encode_cells, scan_slots, table};
use crate::error::{Error, IoContext, Result};
use crate::record::{Tid, Vid};

/// Name of the new table while a rebuild writes it.
pub(crate) const GROW_TMP: &str = "keyring.grow";

/// Bytes of the old table read at a time (whole sectors).
const CHUNK: usize = 2 << 20;

/// Fewest cells the young area takes before it is merged into the table.
const YOUNG_CELLS: u64 = 16 << 10;

/// Where a slot went when the table was rebuilt (caller slots are made
/// anew, not moved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Moved {
    pub from: u32,
    pub to: u32,
    pub what: MovedSlot,
}

/// What moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MovedSlot {
    /// A generation's transcript slot, and where its PII slot is now
    /// (`None`: it has none, or its transcript slot named none of its own).
    Transcript {
        tid: Tid,
        pii: Option<u32>,
    },
    Pii,
    /// A directory entry.
    Visitor {
        vid: Vid,
    },
}

impl Keyring {
    /// Makes room for `cells` more cells of slots in the young area: when
    /// it would hold more than half the table's room (or 16,384 cells)
    /// with them, rebuilds the table with the young area merged into it.
    /// Returns what moved; the caller gives it to the index, which must not
    /// be read in between (hold its lock across).
    #[must_use = "moved slots must be given to the index"]
    pub(crate) fn reserve(&mut self, cells: u64) -> Result<Vec<Moved>> {
        self.writable()?;
        let region = self.table()?.table;
        // New slots go to the young area; it is merged into the table (which
        // is rebuilt, bigger if need be) once it holds as many cells as half
        // the table's room, or 16,384, whichever is more.
        let young = self.young_cells + cells;
        let least = crate::failpoint::young_cells().unwrap_or(YOUNG_CELLS);
        if young <= (region.capacity() / 2).max(least) {
            return Ok(Vec::new());
        }
        let wanted = self.occupancy.used_cells() + young;
        let sectors = table::Region::sectors_to_hold(wanted)
            .ok_or_else(|| Error::Limit("keyring is full".into()))?;
        self.rebuild(sectors.max(region.sectors))
    }

    /// Rebuilds the table smaller, at most 4/7 full, when it is at most 3/7
    /// full (keyring compaction): it then loses at least a quarter of its
    /// sectors. Returns what moved.
    #[must_use = "moved slots must be given to the index"]
    pub(crate) fn shrink(&mut self) -> Result<Vec<Moved>> {
        self.writable()?;
        let region = self.table()?.table;
        let sectors =
            table::Region::sectors_to_hold(self.occupancy.used_cells() + self.young_cells)
                .ok_or_else(|| Error::Internal("keyring table size overflow".into()))?;
        if u64::from(sectors) * 4 > u64::from(region.sectors) * 3 {
            self.cut_tail()?;
            return Ok(Vec::new());
        }
        self.rebuild(sectors)
    }

    /// Cuts off what follows the table: zeros that a smaller rebuild cut
    /// short between zeroing them and cutting the file left (the state
    /// records the shorter length first).
    fn cut_tail(&mut self) -> Result<()> {
        let end = self.table()?.table.end().max(self.young_end);
        let size = self.src.len().at(&self.path)?;
        let keep = u64::from(end) * cells::CELL as u64;
        if size <= keep {
            return Ok(());
        }
        let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
        let mut at = keep;
        while at < size {
            let n = (size - at).min(CHUNK as u64) as usize;
            self.src.read_exact_at(&mut buf[..n], at).at(&self.path)?;
            if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
                // Not ours to cut: load reports such a cell as damage.
                return Err(Error::corrupt(
                    &self.path,
                    at + i as u64,
                    "bytes after the keyring's table",
                ));
            }
            at += n as u64;
        }
        self.len = end;
        self.marks.slots = end;
        self.sync()?;
        self.file.set_len(keep).at(&self.path)?;
        self.file.sync_all().at(&self.path)?;
        Ok(())
    }

    /// Rebuilds the table with `sectors` sectors (see the module
    /// documentation). Damage in the old table stops it before anything is
    /// committed.
    pub(super) fn rebuild(&mut self, sectors: u32) -> Result<Vec<Moved>> {
        let old = self.table()?.table;
        let new = table::Region {
            start: cells::FIRST_CELL,
            sectors,
        };
        let dir = self
            .path
            .parent()
            .ok_or_else(|| Error::Internal("keyring without a directory".into()))?
            .to_owned();
        let tmp = dir.join(GROW_TMP);
        let moved = match self.write_grown(old, new, &tmp) {
            Ok(moved) => moved,
            Err(e) => {
                // Nothing is committed: the old table is in force.
                let _ = super::rekey::wipe_file(&tmp);
                return Err(e);
            }
        };
        crate::fsutil::sync_dir(&dir)?;
        // The commit point: from here the new table is the keyring's.
        self.set_table(|d| d.growing = new);
        self.write_header()?;
        self.sync_file()?;
        self.move_in()?;
        Ok(moved)
    }

    /// Writes the table `new`, holding every slot of `old`, to `tmp`
    /// (synced); returns where each live slot goes.
    pub(super) fn write_grown(
        &self,
        old: table::Region,
        new: table::Region,
        tmp: &std::path::Path,
    ) -> Result<Vec<Moved>> {
        let hasher = self.hasher()?.clone();
        crate::failpoint::check("keyring.write").at(tmp)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(tmp)
            .at(tmp)?;
        let mut builder = table::Builder::in_file(new, file.try_clone().at(tmp)?, tmp)?;
        let wrapped = self.kek.is_some();
        let put = |builder: &mut table::Builder, slot: &Slot, hash: u64| -> Result<u32> {
            let n = cells::cells_for(slot.payload_len(wrapped)?)
                .ok_or_else(|| Error::Internal("slot larger than a sector".into()))?;
            let at = builder
                .place(hash, n)?
                .ok_or_else(|| Error::Internal("the rebuilt keyring table is full".into()))?;
            let enc = encode_cells(self.kek.as_ref(), &self.keyring_id, at, slot)?;
            builder.put(at, &enc)?;
            Ok(at)
        };
        // One pass in the old table's order: directory entries and caller
        // slots by their hashes, each transcript slot with the PII slot it
        // names just before it (both by the visitor's hash, so usually side
        // by side); then, only if some PII slot was named by none (left by a
        // crash), a second pass for those, by their own hash. Reading the old
        // table in order writes the new one in roughly rising order
        // (`table::Builder`).
        let reader = self.reader();
        let mut moved = Vec::new();
        let mut named: HashSet<u32> = HashSet::new();
        let mut piis = 0usize;
        let mut piis_young = 0usize;
        let mut handle = |from: u32, slot: &Slot| -> Result<()> {
            match slot {
                Slot::Visitor(v) => {
                    let to = put(&mut builder, slot, hasher.slot(slot))?;
                    moved.push(Moved {
                        from,
                        to,
                        what: MovedSlot::Visitor { vid: v.vid },
                    });
                }
                Slot::Caller(_) => {
                    put(&mut builder, slot, hasher.slot(slot))?;
                }
                Slot::Pii(_) => piis += 1,
                Slot::Transcript(t) => {
                    let mut t = t.clone();
                    let (tid, vid) = (t.tid, t.vid);
                    let near = hasher.transcript(&vid);
                    // The slot its PII index names, if that is its PII slot
                    // (after a redaction the index may name free cells, or
                    // the middle of another slot: no PII slot then; damage
                    // in the slots themselves is the scan's to report).
                    let pii = match (t.pii_slot >= cells::FIRST_CELL)
                        .then(|| reader.read(t.pii_slot).ok().flatten())
                        .flatten()
                    {
                        Some(p @ Slot::Pii(_))
                            if matches!(&p, Slot::Pii(x) if x.tid == tid)
                                && named.insert(t.pii_slot) =>
                        {
                            let to = put(&mut builder, &p, near)?;
                            moved.push(Moved {
                                from: t.pii_slot,
                                to,
                                what: MovedSlot::Pii,
                            });
                            Some(to)
                        }
                        _ => None,
                    };
                    t.pii_slot = pii.unwrap_or(0);
                    let to = put(&mut builder, &Slot::Transcript(t), near)?;
                    moved.push(Moved {
                        from,
                        to,
                        what: MovedSlot::Transcript { tid, pii },
                    });
                }
            }
            Ok(())
        };
        // The table in its order; the young area's slots (written in time
        // order) sorted by their hashes, so that they too are placed in
        // about rising order (a home rises with the hash).
        let old_end = old.end();
        let mut young: Vec<(u64, u32)> = Vec::new();
        self.each_table_slot(old, |from, slot| {
            if from < old_end {
                return handle(from, slot);
            }
            match slot {
                Slot::Pii(_) => {
                    piis_young += 1;
                }
                Slot::Transcript(t) => young.push((hasher.transcript(&t.vid), from)),
                other => young.push((hasher.slot(other), from)),
            }
            Ok(())
        })?;
        young.sort_unstable();
        for (_, from) in young {
            if let Some(slot) = reader.read(from)? {
                handle(from, &slot)?;
            }
        }
        let piis = piis + piis_young;
        if named.len() < piis {
            self.each_table_slot(old, |index, slot| {
                if matches!(slot, Slot::Pii(_)) && !named.contains(&index) {
                    let to = put(&mut builder, slot, hasher.slot(slot))?;
                    moved.push(Moved {
                        from: index,
                        to,
                        what: MovedSlot::Pii,
                    });
                }
                Ok(())
            })?;
        }
        builder.finish()?;
        crate::failpoint::check("keyring.sync").at(tmp)?;
        file.sync_all().at(tmp)?;
        crate::failpoint::synced(tmp, &file);
        Ok(moved)
    }

    /// Hands every slot of the table `region` to `each`, reading a chunk at
    /// a time; the first damaged one is an error naming its offset.
    fn each_table_slot(
        &self,
        region: table::Region,
        mut each: impl FnMut(u32, &Slot) -> Result<()>,
    ) -> Result<()> {
        // The table, then the young area after it.
        let unit = cells::CELL;
        let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
        let mut start = region.start;
        let end = self.len.max(region.end());
        while start < end {
            let n = ((CHUNK / unit) as u32).min(end - start);
            let chunk = &mut buf[..n as usize * unit];
            self.file
                .read_exact_at(chunk, u64::from(start) * unit as u64)
                .at(&self.path)?;
            let mut failed: Option<Error> = None;
            let mut damage: Option<SlotDamage> = None;
            scan_slots(
                self.layout,
                self.kek.as_ref(),
                &self.keyring_id,
                self.tables(),
                chunk,
                start,
                |index, _, found| {
                    if failed.is_some() || damage.is_some() {
                        return;
                    }
                    match found {
                        Ok(None) => {}
                        Ok(Some(slot)) => {
                            if let Err(e) = each(index, &slot) {
                                failed = Some(e);
                            }
                        }
                        Err(reason) => {
                            damage = Some(SlotDamage {
                                index,
                                offset: u64::from(index) * unit as u64,
                                reason,
                            });
                        }
                    }
                },
            );
            if let Some(e) = failed {
                return Err(e);
            }
            if let Some(d) = damage {
                return Err(Error::corrupt(
                    &self.path,
                    d.offset,
                    format!(
                        "keyring slot {}: {} (the table cannot be rebuilt over it)",
                        d.index, d.reason
                    ),
                ));
            }
            start += n;
        }
        Ok(())
    }

    /// Copies the table that the header names as being moved in from
    /// `keyring.grow` over the old one, writes the header naming it as the
    /// table, syncs, and wipes the file. Done by a rebuild after its commit
    /// point, and by a writing open that finds the header naming a move.
    pub(super) fn move_in(&mut self) -> Result<()> {
        let new = self.table()?.growing;
        if new.is_none() {
            return Ok(());
        }
        let dir = self
            .path
            .parent()
            .ok_or_else(|| Error::Internal("keyring without a directory".into()))?
            .to_owned();
        let tmp = dir.join(GROW_TMP);
        let src = OpenOptions::new().read(true).open(&tmp).map_err(|e| {
            Error::corrupt(
                &self.path,
                super::GROW_TARGET_AT as u64,
                format!(
                    "the keyring names a rebuilt table in {GROW_TMP}, which cannot be read: {e}"
                ),
            )
        })?;
        let bytes = u64::from(new.sectors) * u64::from(cells::SECTOR_CELLS) * cells::CELL as u64;
        let len = src.metadata().at(&tmp)?.len();
        if len != bytes {
            return Err(Error::corrupt(
                &tmp,
                len.min(bytes),
                format!("a rebuilt keyring table of {len} bytes where the keyring names {bytes}"),
            ));
        }
        {
            // Lookups wait: the table's bytes change under them.
            let view = std::sync::Arc::clone(&self.view);
            let mut lookups = view.write();
            let base = u64::from(new.start) * cells::CELL as u64;
            let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
            let mut at = 0u64;
            while at < bytes {
                let n = (bytes - at).min(CHUNK as u64) as usize;
                src.read_exact_at(&mut buf[..n], at).at(&tmp)?;
                crate::failpoint::check("keyring.write").at(&self.path)?;
                self.file
                    .write_all_at(&buf[..n], base + at)
                    .at(&self.path)?;
                at += n as u64;
            }
            // A smaller table: what followed it (the old table's end) is
            // zeroed before the file is cut, so that no key is left in
            // freed blocks.
            let (end, stop) = (
                u64::from(new.end()) * cells::CELL as u64,
                u64::from(self.len) * cells::CELL as u64,
            );
            let zeros = vec![0u8; CHUNK];
            let mut at = end;
            while at < stop {
                let n = (stop - at).min(CHUNK as u64) as usize;
                self.file.write_all_at(&zeros[..n], at).at(&self.path)?;
                at += n as u64;
            }
            self.set_table(|d| {
                d.table = new;
                d.growing = table::Region::NONE;
            });
            *lookups = super::directory::View {
                hasher: self.hasher()?.clone(),
                region: new,
                young: std::collections::HashMap::new(),
            };
            // The young area is in the new table now (and zeroed above).
            self.young_cells = 0;
            self.young_end = 0;
        }
        self.occupancy = self.read_occupancy(new)?;
        let shorter = self.len > new.end();
        self.len = new.end();
        self.marks.slots = new.end();
        self.write_header()?;
        // The state records the new length with this sync; the file is cut
        // only after (a file longer than the state says is fine, never a
        // shorter one).
        self.sync()?;
        if shorter {
            self.file
                .set_len(u64::from(new.end()) * cells::CELL as u64)
                .at(&self.path)?;
            self.file.sync_all().at(&self.path)?;
        }
        super::rekey::wipe_file(&tmp)?;
        crate::fsutil::sync_dir(&dir)?;
        Ok(())
    }

    /// Finishes a rebuild whose commit point a crash passed (at open, before
    /// any slot is read): the marks are taken from the state slot, so that
    /// the sync that ends the move writes them back as they were.
    pub(super) fn finish_rebuild(&mut self) -> Result<()> {
        let mut state = [0u8; super::SLOT_SIZE];
        self.file
            .read_exact_at(&mut state, super::SLOT_SIZE as u64)
            .at(&self.path)?;
        let marks = super::decode_state(&state)
            .map_err(|reason| Error::corrupt(&self.path, super::SLOT_SIZE as u64, reason))?;
        self.marks = marks;
        self.written = Some(marks);
        let size = self.file.metadata().at(&self.path)?.len();
        self.len = u32::try_from(size / cells::CELL as u64)
            .map_err(|_| Error::corrupt(&self.path, 0, "keyring too large"))?;
        self.move_in()
    }

    /// Reads which cells of the table are in use and which sectors spilled.
    fn read_occupancy(&self, region: table::Region) -> Result<table::Occupancy> {
        let mut occupancy = table::Occupancy::empty(region);
        let unit = cells::CELL;
        let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
        let mut start = region.start;
        while start < region.end() {
            let n = ((CHUNK / unit) as u32).min(region.end() - start);
            let chunk = &mut buf[..n as usize * unit];
            self.file
                .read_exact_at(chunk, u64::from(start) * unit as u64)
                .at(&self.path)?;
            occupancy.read_sectors(region, start, chunk);
            start += n;
        }
        Ok(occupancy)
    }
}
