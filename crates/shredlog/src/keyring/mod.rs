//! The keyring: slots holding data keys and the visitor directory,
//! overwritten in place to shred. Optionally every slot is wrapped under an
//! operator-supplied key-encryption key (KEK).
//!
//! Layout (docs/FORMAT.md has every byte): the first 512 bytes are the file
//! header, the next 512 the keyring's state ([`Marks`]: what was durable in
//! every file when the keyring was last synced); after them, slots holding
//! keys and directory entries. In format 3 (written now) a slot takes as
//! many 64-byte cells as it needs, 1 to 8, never crossing a 512-byte sector
//! ([`cells`]); formats 1 and 2 gave every slot 512 bytes ([`legacy`]), and
//! a writing open rewrites them in format 3 ([`rekey::upgrade`]). Either
//! way a slot lives inside one disk sector, so writing or wiping it is a
//! single write inside one sector.

use crate::secret::SecretVec;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::{Error, IoContext, Result};
use crate::record::Vid;
use crate::seal::{Key, NONCE_LEN, random_array};

/// Size of the header and of the state slot, and of every slot in formats
/// 1 and 2.
pub(crate) const SLOT_SIZE: usize = 512;
const MAGIC: &[u8; 8] = b"SHRDKEYR";
/// Keyring format written now: slots in 64-byte cells, directory entries
/// in a hash-placed table ([`table`]).
const KEYRING_VERSION: u16 = 4;
/// Format 3: 64-byte cells, directory entries among the other slots. Read;
/// a writing open rewrites it in format 4.
const KEYRING_VERSION_3: u16 = 3;
/// Format 2: 512-byte slots with a state slot. Read; a writing open
/// rewrites it in format 3.
const KEYRING_VERSION_2: u16 = 2;
/// The first keyring format (slot 1 all zero). Read; a writing open
/// rewrites it in format 3, with the state still to be written.
const KEYRING_VERSION_1: u16 = 1;
/// Header byte 13 of a format-3 keyring: 1 while its state slot is still
/// all zero (rewritten from format 1, whose marks are not known until open
/// has recovered the store); the first write of the state clears it.
const STATE_PENDING_AT: usize = 13;
const SLOT_VERSION: u8 = 1;
/// The slot holding the keyring's state (in 512-byte units).
pub(crate) const STATE_SLOT: u32 = 1;
/// Fewest bytes the file grows by when the keyring runs out (128 KiB).
const GROW_BYTES: usize = 128 << 10;
/// Most bytes the file grows by at a time (1 MiB). The file grows by an
/// eighth of itself between the two, as a hole: its new length is synced
/// once, and the cells are made ready a step at a time after
/// ([`READY_BYTES`]).
const MAX_GROW_BYTES: usize = 1 << 20;
/// Bytes of zeros written at a time over the hole a growth left (64 KiB),
/// as the keyring comes to need them. Their cells are the keyring's length
/// ([`Keyring::len`]), free until taken. Written so that the slots written
/// there later overwrite blocks the file system has already allocated (a
/// sync of overwrites commits no file-system metadata); and so few, since
/// open reads the zero cells in the keyring's length (they may hold slots
/// written since the index's run), never the hole beyond.
const READY_BYTES: usize = 64 << 10;
const KEK_CHECK_AAD: &[u8] = b"shredlog-kek-check";

mod cache;
pub(crate) mod cells;
mod compact;
pub(crate) mod directory;
mod free;
mod legacy;
pub(crate) mod rekey;
mod slot;
mod state;
pub(crate) mod table;
pub(crate) use cache::{KeyCache, TranscriptKeys};
pub(crate) use compact::{LiveSlots, Moved, relocate};
pub(crate) use directory::DirectoryReader;
pub(crate) use slot::{
    LinkSlot, MAX_EMAIL, MAX_TRANSCRIPT_ID, PiiSlot, REVISIONS, Slot, TranscriptSlot, VisitorSlot,
    newer_revision,
};
use state::encode_state;
pub(crate) use state::{Marks, decode_state};

/// How slots are laid out in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Formats 1 and 2: one 512-byte slot each (read only).
    Slots,
    /// Format 3: 64-byte cells.
    Cells,
}

impl Layout {
    fn of(version: u16) -> Layout {
        if version >= KEYRING_VERSION_3 {
            Layout::Cells
        } else {
            Layout::Slots
        }
    }

    /// Bytes of the unit slot indices count in.
    fn unit(self) -> usize {
        match self {
            Layout::Slots => SLOT_SIZE,
            Layout::Cells => cells::CELL,
        }
    }

    /// The first unit that holds a key or directory entry.
    fn first_data(self) -> u32 {
        match self {
            Layout::Slots => legacy::FIRST_SLOT,
            Layout::Cells => cells::FIRST_CELL,
        }
    }
}

/// What [`Keyring::open`] hands the slots it reads to.
pub(crate) trait SlotSink {
    /// Called once, before any slot, with the keyring's id, the
    /// directory's hash key ([`Keyring::directory_key`]) and the state
    /// slot's marks (`None`: never written, or damaged).
    ///
    /// Returns `Some` to have only the slots from [`Tail::floor`] on read
    /// (the directory's table is not read: `Tail::occupancy` says which of
    /// its cells are used, and the [`LinkSlot`]s above the floor where the
    /// entries written since are); `None` reads every slot.
    fn start(
        &mut self,
        _keyring_id: &[u8; 16],
        _directory_key: Option<&[u8; 32]>,
        _marks: Option<&Marks>,
    ) -> Option<Tail> {
        None
    }

    /// Slot `index`, as decoded.
    fn slot(&mut self, index: u32, slot: Slot);
}

impl<F: FnMut(u32, Slot)> SlotSink for F {
    fn slot(&mut self, index: u32, slot: Slot) {
        self(index, slot);
    }
}

/// What open reads of a keyring whose slots below a floor the index's run
/// holds ([`SlotSink::start`]).
#[derive(Clone, Debug)]
pub(crate) struct Tail {
    /// The first cell to read.
    pub floor: u32,
    /// The directory table's occupancy when the run was written (one byte
    /// a sector, [`table::Occupancy`]).
    pub occupancy: Vec<u8>,
    /// Free cells below the floor then.
    pub stranded: u64,
}

/// The open keyring file.
pub(crate) struct Keyring {
    path: PathBuf,
    file: Arc<File>,
    kek: Option<Key>,
    keyring_id: [u8; 16],
    /// Format version of the file's header.
    version: u16,
    layout: Layout,
    /// A format-3 keyring whose state slot is still all zero (header flag).
    state_pending: bool,
    /// Length in units (cells, or 512-byte slots in formats 1 and 2) of the
    /// part of the file slots may be in, header and state included: every
    /// unit past it is a hole a growth left ahead of need.
    len: u32,
    /// Length of the file in units (at least `len`).
    file_len: u32,
    /// Free units.
    free: free::FreeCells,
    /// Where the next search for free cells starts (next fit).
    cursor: u32,
    /// No new slot goes below this cell: the index's run names the slots
    /// below it, and open reads only the cells from here on for what came
    /// after ([`Keyring::set_floor`]).
    floor: u32,
    /// Free cells below the floor (not in `free`: only a keyring
    /// compaction uses them again).
    stranded: u64,
    /// One past the last cell of any slot outside the directory's table.
    used_end: u32,
    /// The marks as they will be written with the next sync.
    marks: Marks,
    /// The marks in the state slot on disk (`None`: not written yet).
    written: Option<Marks>,
    /// The visitor directory's table (format 4; `None` for an older
    /// keyring opened read-only).
    directory: Option<Directory>,
    /// Which of the table's cells are in use.
    occupancy: table::Occupancy,
    /// Where lookups by email go (shared with every [`DirectoryReader`]).
    view: directory::SharedView,
}

/// Slots written together (a batch's new keys and directory entries):
/// encoded as they are staged, then written by [`Keyring::write_staged`] in
/// runs of neighbouring slots, one positioned write per run. The encoded
/// bytes (keys, emails) are wiped when the batch is dropped.
#[derive(Default)]
pub(crate) struct StagedSlots {
    slots: BTreeMap<u32, SecretVec>,
}

/// A slot that failed its checks at open.
#[derive(Clone, Debug)]
pub(crate) struct SlotDamage {
    pub index: u32,
    /// Its offset in the file.
    pub offset: u64,
    pub reason: &'static str,
}

/// What [`Keyring::check_copy`] found.
pub(crate) struct CopyCheck {
    /// The state slot's marks, unless it is all zero.
    pub state: Option<Result<Marks, &'static str>>,
    /// Bytes the state says the file held durably.
    pub needed: u64,
    /// Slots in use.
    pub in_use: u64,
    pub damaged: Vec<SlotDamage>,
}

/// What `open` found.
pub(crate) struct Loaded {
    pub keyring: Keyring,
    pub damaged: Vec<SlotDamage>,
    /// The durable marks of the state slot (`None` for a keyring whose state
    /// was never written, or when the state slot is damaged and salvage
    /// ignored it).
    pub marks: Option<Marks>,
}

/// How to open the keyring.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenMode {
    /// Create the keyring if the file is missing or empty.
    pub create: bool,
    /// Open the file read-only: nothing is ever written.
    pub read_only: bool,
    /// Report a damaged state slot or a short file instead of failing.
    pub salvage: bool,
}

/// What a keyring's header says.
struct Header {
    keyring_id: [u8; 16],
    version: u16,
    state_pending: bool,
    /// The visitor directory's table (format 4; `None` before).
    directory: Option<Directory>,
}

/// Header fields of a format-4 keyring's visitor directory
/// (docs/FORMAT.md §6.12).
#[derive(Clone)]
pub(crate) struct Directory {
    /// The key of the hash that places entries.
    pub key: Zeroizing<[u8; 32]>,
    /// Where the table is.
    pub table: table::Region,
    /// Cells to zero before anything else uses them: a grown table's old
    /// region, or a new one whose growth was cut short.
    pub retire: table::Region,
}

/// Header bytes of the directory's hash key (plaintext keyrings).
const DIR_KEY_AT: usize = 96;
/// Header bytes of the directory table's region.
const DIR_TABLE_AT: usize = 128;
/// Header bytes of the region to retire.
const DIR_RETIRE_AT: usize = 136;

/// A directory entry a growth of the table moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MovedEntry {
    pub vid: Vid,
    pub from: u32,
    pub to: u32,
}

/// The regions a slot walk treats apart: the directory's table (whose
/// sectors start with a header cell and hold only directory entries) and
/// the region being retired (skipped: neither slots nor free cells).
#[derive(Clone, Copy, Debug, Default)]
struct Tables {
    table: table::Region,
    retire: table::Region,
}

impl Tables {
    fn of(directory: Option<&Directory>) -> Tables {
        directory.map_or_else(Tables::default, |d| Tables {
            table: d.table,
            retire: d.retire,
        })
    }
}

impl Keyring {
    /// The keyring's random id (the store's identity at a backup destination).
    pub(crate) fn id(&self) -> [u8; 16] {
        self.keyring_id
    }

    /// The directory's hash key (format 4), from which other keyed hashes
    /// of the store are derived.
    pub(crate) fn directory_key(&self) -> Option<&[u8; 32]> {
        self.directory.as_ref().map(|d| &*d.key)
    }

    /// Opens (or with `mode.create` creates) `dir/keyring`, handing each slot
    /// in use to `each` (in slot order) as it is decoded. A writing open of a
    /// format-1 or format-2 keyring rewrites it in format 3 first.
    pub(crate) fn open(
        dir: &Path,
        kek: Option<&Key>,
        mode: OpenMode,
        mut each: impl SlotSink,
    ) -> Result<Loaded> {
        let path = dir.join("keyring");
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::io(&path, e)),
        };
        if size == 0 {
            if !mode.create || mode.read_only {
                return Err(Error::NotAStore(dir.to_owned()));
            }
            let created = Keyring::create(dir, path, kek)?;
            each.start(
                &created.keyring.id(),
                created.keyring.directory_key(),
                created.marks.as_ref(),
            );
            return Ok(created);
        }
        if !mode.read_only {
            // A rewrite cut short leaves its output: wipe it.
            rekey::wipe_leftover(dir)?;
        }
        let (file, header) = Keyring::open_file(&path, kek, mode.read_only)?;
        let (file, header, size) = if header.version < KEYRING_VERSION && !mode.read_only {
            drop(file);
            rekey::upgrade(dir, kek)?;
            let (file, header) = Keyring::open_file(&path, kek, false)?;
            let size = file.metadata().at(&path)?.len();
            (file, header, size)
        } else {
            (file, header, size)
        };
        let layout = Layout::of(header.version);
        let view = match &header.directory {
            Some(d) => directory::View::table(d.key.clone(), d.table, &file),
            None => directory::View::legacy(),
        };
        let mut keyring = Keyring {
            path,
            file: Arc::new(file),
            kek: kek.cloned(),
            keyring_id: header.keyring_id,
            version: header.version,
            layout,
            state_pending: header.state_pending,
            len: layout.first_data(),
            file_len: layout.first_data(),
            free: free::FreeCells::default(),
            cursor: layout.first_data(),
            floor: 0,
            stranded: 0,
            used_end: layout.first_data(),
            marks: Marks::default(),
            written: None,
            occupancy: header
                .directory
                .as_ref()
                .map(|d| table::Occupancy::empty(d.table))
                .unwrap_or_default(),
            view: Arc::new(parking_lot::RwLock::new(view)),
            directory: header.directory,
        };
        let (mut damaged, marks) = keyring.load_slots(size, &mut each)?;
        if let Some(m) = marks {
            let needed = u64::from(m.slots) * layout.unit() as u64;
            if size < needed {
                let reason = "the keyring is shorter than the slots it held durably: its end is missing (cut short?)";
                if !mode.salvage {
                    return Err(Error::corrupt(
                        &keyring.path,
                        size,
                        format!("{reason}; {needed} bytes were acknowledged"),
                    ));
                }
                damaged.push(SlotDamage {
                    index: (size / layout.unit() as u64) as u32,
                    offset: size,
                    reason,
                });
            }
            keyring.marks = m;
        }
        keyring.marks.slots = keyring.len;
        keyring.written = marks;
        if !mode.read_only && damaged.is_empty() {
            // A table growth cut short: zero what it left.
            keyring.retire_region()?;
        }
        Ok(Loaded {
            keyring,
            damaged,
            marks,
        })
    }

    /// Opens the file and checks its header.
    fn open_file(path: &Path, kek: Option<&Key>, read_only: bool) -> Result<(File, Header)> {
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .at(path)?;
        let mut header = [0u8; SLOT_SIZE];
        file.read_exact_at(&mut header, 0)
            .map_err(|_| Error::corrupt(path, 0, "keyring header truncated"))?;
        let header = check_header(path, &header, kek)?;
        Ok((file, header))
    }

    /// Creates a new keyring: header and state slot, synced, directory synced.
    fn create(dir: &Path, path: PathBuf, kek: Option<&Key>) -> Result<Loaded> {
        // Owner-only: without a key-encryption key the keyring holds data keys.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .at(&path)?;
        let keyring_id = random_array()?;
        let directory = new_directory(cells::FIRST_CELL)?;
        let header = build_header(keyring_id, kek, false, &directory)?;
        file.write_all_at(&header, 0).at(&path)?;
        let (table_bytes, occupancy) = table::Builder::new(directory.table).finish();
        file.write_all_at(
            &table_bytes,
            u64::from(directory.table.start) * cells::CELL as u64,
        )
        .at(&path)?;
        let len = directory.table.end();
        let marks = Marks {
            slots: len,
            writes: 1,
            ..Marks::default()
        };
        file.write_all_at(&encode_state(&marks), SLOT_SIZE as u64)
            .at(&path)?;
        file.sync_all().at(&path)?;
        crate::failpoint::synced(&path, &file);
        crate::fsutil::sync_dir(dir)?;
        let view = directory::View::table(directory.key.clone(), directory.table, &file);
        let keyring = Keyring {
            path,
            file: Arc::new(file),
            kek: kek.cloned(),
            keyring_id,
            version: KEYRING_VERSION,
            layout: Layout::Cells,
            state_pending: false,
            len,
            file_len: len,
            free: free::FreeCells::default(),
            cursor: len,
            floor: 0,
            stranded: 0,
            used_end: len,
            marks,
            written: Some(marks),
            view: Arc::new(parking_lot::RwLock::new(view)),
            directory: Some(directory),
            occupancy,
        };
        Ok(Loaded {
            keyring,
            damaged: Vec::new(),
            marks: Some(marks),
        })
    }

    /// Decodes the state slot and every data slot, read 2 MiB at a time with
    /// positioned reads: open reads the whole keyring, and a map of it would
    /// leave all of it in the process's resident memory.
    fn load_slots(
        &mut self,
        size: u64,
        each: &mut impl SlotSink,
    ) -> Result<(Vec<SlotDamage>, Option<Marks>)> {
        /// Bytes read at a time (whole sectors). Small: the buffer is wiped
        /// when the walk ends, and open with the index's run reads only the
        /// keyring's tail (about a MiB at most). Under
        /// glibc's map threshold (128 KiB), so that each open's buffer comes
        /// from the heap instead of a map of its own, made, faulted in and
        /// unmapped at every open (two fifths of reading the tail; `perf`
        /// counts half as much time in the buffer's set-up since).
        const CHUNK: usize = 64 << 10;
        let unit = self.layout.unit();
        let count = u32::try_from(size / unit as u64)
            .map_err(|_| Error::corrupt(&self.path, 0, "keyring too large"))?;
        let mut damaged = Vec::new();
        let mut marks = None;
        let mut state = [0u8; SLOT_SIZE];
        let has_state = size >= 2 * SLOT_SIZE as u64;
        if has_state {
            self.file
                .read_exact_at(&mut state, SLOT_SIZE as u64)
                .at(&self.path)?;
        }
        let unset = self.version == KEYRING_VERSION_1 || self.state_pending;
        let state_damage = |reason| SlotDamage {
            index: STATE_SLOT,
            offset: SLOT_SIZE as u64,
            reason,
        };
        if has_state {
            if !(unset && is_zero(&state)) {
                match decode_state(&state) {
                    Ok(m) => marks = Some(m),
                    Err(reason) => damaged.push(state_damage(reason)),
                }
            }
        } else if !unset {
            damaged.push(state_damage(
                "the keyring's state slot is missing (cut short?)",
            ));
        }
        let directory_key = self.directory.as_ref().map(|d| *d.key);
        let tail = match each.start(&self.keyring_id, directory_key.as_ref(), marks.as_ref()) {
            None => None,
            Some(t) => {
                let fits = self
                    .directory
                    .as_ref()
                    .filter(|_| self.layout == Layout::Cells)
                    .and_then(|d| table::Occupancy::from_bytes(d.table, t.occupancy));
                let Some(occupancy) = fits else {
                    // The sink builds on the index's run: it must not get a
                    // walk of every slot instead. (Open rebuilds the index.)
                    let manifest = self.path.with_file_name("index.manifest");
                    return Err(Error::corrupt(
                        manifest,
                        0,
                        "the index manifest does not fit the keyring's directory table",
                    ));
                };
                Some((t.floor, occupancy, t.stranded))
            }
        };
        let first = self.layout.first_data();
        // Free cells below `keep_free` are stranded (the run's floor).
        let mut keep_free = first;
        let mut start = first;
        let tables = Tables::of(self.directory.as_ref());
        let skip_table = tail.is_some();
        if let Some((floor, occupancy, stranded)) = tail {
            self.occupancy = occupancy;
            self.stranded = stranded;
            self.floor = floor;
            self.used_end = floor.max(first);
            keep_free = floor;
            // From the start of the floor's sector (no slot crosses one).
            start = (floor - floor % cells::SECTOR_CELLS).max(first);
        }
        // The hole a growth left at the file's end holds no slot: it is not
        // read. The keyring's length runs to it, or as far as the state
        // counted (cells made ready since the last growth whose zeros were
        // not synced may be a hole again).
        let hole = self.hole_from(start, count, size, tables);
        let len = marks.map_or(hole, |m| m.slots.clamp(hole, count));
        // No larger than what is left to read (a buffer is wiped whole).
        let left = u64::from(hole.saturating_sub(start)) * unit as u64;
        let mut buf = ReadBuf::new(CHUNK.min(usize::try_from(left).unwrap_or(CHUNK)));
        while start < hole {
            if skip_table && tables.table.contains(start) {
                start = tables.table.end();
                continue;
            }
            let mut n = ((CHUNK / unit) as u32).min(hole - start);
            if skip_table && start < tables.table.start && !tables.table.is_none() {
                n = n.min(tables.table.start - start);
            }
            let (chunk, held) = buf.fill(n as usize * unit, unit, |b| {
                self.read_units(b, start, n).map(|_| ())
            })?;
            let mut next = start + n;
            // The chunk's trailing zero cells (a grown keyring's tail) are
            // free cells, taken at once instead of one by one; zeros hold
            // no slot, nor part of one (a slot's later cells are marked).
            let zeros = if self.layout == Layout::Cells {
                let z = start + held;
                let overlaps = |r: &table::Region| !r.is_none() && r.start < next && z < r.end();
                (z < next && !overlaps(&tables.table) && !overlaps(&tables.retire)).then_some(z)
            } else {
                None
            };
            let chunk: &[u8] = match zeros {
                Some(z) => {
                    self.free.insert_range(z.max(keep_free)..next);
                    &chunk[..(z - start) as usize * unit]
                }
                None => chunk,
            };
            // Free cells come in runs: added a run at a time.
            let mut free_run = 0..0;
            let free = &mut self.free;
            let occupancy = &mut self.occupancy;
            let used_end = &mut self.used_end;
            let view = &self.view;
            scan_slots(
                self.layout,
                self.kek.as_ref(),
                &self.keyring_id,
                tables,
                chunk,
                start,
                |index, step, found| {
                    next = next.max(index + step);
                    let in_table = tables.table.contains(index);
                    match found {
                        Ok(None) if in_table => {}
                        Ok(None) if index < keep_free => {}
                        Ok(None) if free_run.end == index => free_run.end += 1,
                        Ok(None) => {
                            free.insert_range(std::mem::replace(&mut free_run, index..index + 1));
                        }
                        Ok(Some(slot)) => {
                            if !in_table {
                                *used_end = (*used_end).max(index + step);
                            }
                            if let Slot::Link(l) = &slot
                                && skip_table
                                && tables.table.contains(l.cell)
                            {
                                // An entry written since the run (its
                                // cells may be free in the run's copy).
                                occupancy.mark(tables.table, l.cell, u32::from(l.cells), true);
                            }
                            if in_table {
                                occupancy.mark(tables.table, index, step, true);
                            } else if let Slot::Visitor(v) = &slot {
                                // An older keyring's entry (in format 4 one
                                // outside the table is damage).
                                view.write().add_legacy(&v.email, index);
                            }
                            each.slot(index, slot);
                        }
                        Err(reason) => {
                            if in_table {
                                // Never written over: damage is reported, not lost.
                                occupancy.mark(tables.table, index, step, true);
                            }
                            damaged.push(SlotDamage {
                                index,
                                offset: u64::from(index) * unit as u64,
                                reason,
                            });
                        }
                    }
                },
            );
            self.free.insert_range(free_run);
            // The spilled flags of the table's sectors read in this chunk
            // (chunks start and end at sector boundaries).
            if let Some(d) = self.directory.as_ref().filter(|_| !skip_table) {
                let from = start.max(d.table.start);
                let to = (start + n).min(d.table.end());
                for cell in (from..to).step_by(cells::SECTOR_CELLS as usize) {
                    let at = (cell - start) as usize * unit;
                    if table::parse_header_cell(chunk.get(at..).unwrap_or_default()) == Ok(true) {
                        self.occupancy.set_spilled(d.table.sector_of(cell));
                    }
                }
            }
            // Chunks end at sector ends, so no slot crosses one; `next`
            // only passes the chunk's end for a slot cut short by the
            // file's end, which the scan reported.
            start = next;
        }
        self.free.insert_range(hole.max(keep_free)..len);
        self.len = len.max(first);
        self.file_len = count.max(self.len);
        Ok((damaged, marks))
    }

    /// The first unit from `start` on that open need not read: where the
    /// hole at the end of the file (`size` bytes, `count` units) starts,
    /// rounded up to a sector. `count` when the file ends in data or its
    /// file system does not tell holes apart, in the older layouts, and
    /// when a region of the directory's table reaches into the hole (the
    /// table is read, and a region to retire zeroed, as before).
    fn hole_from(&self, start: u32, count: u32, size: u64, tables: Tables) -> u32 {
        if self.layout != Layout::Cells || start >= count {
            return count;
        }
        let unit = self.layout.unit() as u64;
        let at = crate::fsutil::zeros_from(&self.file, u64::from(start) * unit, size);
        let hole = u32::try_from(at.div_ceil(unit))
            .unwrap_or(count)
            .next_multiple_of(cells::SECTOR_CELLS)
            .clamp(start, count);
        let reaches = |r: &table::Region| !r.is_none() && hole < r.end();
        if reaches(&tables.table) || reaches(&tables.retire) {
            count
        } else {
            hole
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file handle, for syncing outside the writer's lock.
    pub(crate) fn file(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// Length in units of the part of the file slots may be in (header and
    /// state included); the file may run on past it, a hole grown ahead.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Bytes of the unit [`Keyring::len`], [`Keyring::free_count`] and slot
    /// indices count in: 64 (format 3) or 512.
    pub(crate) fn unit_bytes(&self) -> u64 {
        self.layout.unit() as u64
    }

    /// The first unit that may hold a slot.
    pub(crate) fn first_data(&self) -> u32 {
        self.layout.first_data()
    }

    /// Number of free units.
    pub(crate) fn free_count(&self) -> usize {
        self.free.len() as usize
    }

    /// Units holding slots, and units free for them: in the directory's
    /// table and outside it (its sectors' header cells, and a region still
    /// to retire, are neither).
    pub(crate) fn cell_counts(&self) -> (u64, u64) {
        let all = u64::from(self.len.saturating_sub(self.layout.first_data()));
        let heap_free = self.free.len() + self.stranded;
        let Some(d) = &self.directory else {
            return (all.saturating_sub(heap_free), heap_free);
        };
        let table_used = self.occupancy.used_cells();
        let table_free = d.table.capacity().saturating_sub(table_used);
        let retire = u64::from(d.retire.end().min(self.len).saturating_sub(d.retire.start));
        let used = all.saturating_sub(heap_free + table_free + u64::from(d.table.sectors) + retire);
        (used, heap_free + table_free)
    }

    fn writable(&self) -> Result<()> {
        match self.layout {
            Layout::Cells => Ok(()),
            Layout::Slots => Err(Error::Internal(
                "a format-1 or format-2 keyring is written only after a writing open rewrote it"
                    .into(),
            )),
        }
    }

    /// Cells `slot` takes when written.
    pub(crate) fn cells_for(&self, slot: &Slot) -> Result<u32> {
        let len = slot.payload_len(self.kek.is_some())?;
        cells::cells_for(len).ok_or_else(|| Error::Internal("slot larger than a sector".into()))
    }

    /// Takes free cells for `slot` (the next run that fits, after the last
    /// one taken), extending the file when there is none. A directory entry
    /// goes where its email's hash places it in the directory's table,
    /// which [`Keyring::reserve_visitors`] must have made room in (a growth
    /// moves the entries on disk, so it is never done here, between the
    /// entries of one batch).
    pub(crate) fn allocate(&mut self, slot: &Slot) -> Result<u32> {
        self.writable()?;
        let n = self.cells_for(slot)?;
        if let (Slot::Visitor(v), Some(_)) = (slot, &self.directory) {
            return self.place_visitor(&v.email, n);
        }
        let from = self.cursor.max(self.floor);
        let found = self
            .find_run(from.., n)
            .or_else(|| self.find_run(self.floor..from, n));
        let first = match found {
            Some(first) => first,
            None => {
                self.grow()?;
                self.find_run(self.cursor.max(self.floor).., n)
                    .or_else(|| self.find_run(self.floor.., n))
                    .ok_or_else(|| Error::Limit("keyring is full".into()))?
            }
        };
        self.free.remove_range(first..first + n);
        self.cursor = first + n;
        self.used_end = self.used_end.max(first + n);
        Ok(first)
    }

    /// Keeps every slot allocated from now on at or above cell `cell` (one
    /// past the last key or link slot when the index's run was written,
    /// [`Keyring::used_end`]). Free cells below stay free (counted, not
    /// held) until a keyring compaction lifts the floor
    /// ([`Keyring::lift_floor`]) and writes a new run.
    pub(crate) fn set_floor(&mut self, cell: u32) {
        let kept = self.free.split_off(cell);
        self.stranded += self.free.len();
        self.free = kept;
        self.floor = cell;
    }

    /// Lifts the floor (a keyring compaction): the free cells below it are
    /// found again by reading that part of the file.
    pub(crate) fn lift_floor(&mut self) -> Result<()> {
        const CHUNK: usize = 2 << 20;
        let end = self.floor.min(self.len);
        self.floor = 0;
        if self.stranded == 0 {
            return Ok(());
        }
        let unit = self.layout.unit();
        let tables = Tables::of(self.directory.as_ref());
        let mut buf = SecretVec::new(vec![0u8; CHUNK]);
        let mut found = Vec::new();
        let mut start = self.layout.first_data();
        while start < end {
            let n = ((CHUNK / unit) as u32).min(end - start);
            let chunk = self.read_units(&mut buf, start, n)?;
            let mut next = start + n;
            scan_slots(
                self.layout,
                self.kek.as_ref(),
                &self.keyring_id,
                tables,
                chunk,
                start,
                |index, step, slot| {
                    next = next.max(index + step);
                    if matches!(slot, Ok(None)) && !tables.table.contains(index) {
                        found.push(index);
                    }
                },
            );
            start = next;
        }
        for cell in found {
            self.free.insert(cell);
        }
        self.stranded = 0;
        Ok(())
    }

    /// What open needs to read only the slots from `floor` on
    /// ([`SlotSink::start`]): the directory table's occupancy and the free
    /// cells below.
    pub(crate) fn tail_from(&self, floor: u32) -> Tail {
        let below = self.free.count_below(floor);
        Tail {
            floor,
            occupancy: self.occupancy.to_bytes(),
            stranded: self.stranded + below,
        }
    }

    /// One past the last cell of any slot outside the directory's table:
    /// the floor a new run sets.
    pub(crate) fn used_end(&self) -> u32 {
        self.used_end
    }

    /// Makes room in the directory's table for `cells` more cells of
    /// entries, keeping it at most half full: grows it when not. Returns
    /// the entries a growth moved, which the caller gives to the index
    /// before anything reads their old places.
    #[must_use = "moved directory entries must be given to the index"]
    pub(crate) fn reserve_visitors(&mut self, cells: u64) -> Result<Vec<MovedEntry>> {
        let Some(d) = &self.directory else {
            return Ok(Vec::new());
        };
        let wanted = self.occupancy.used_cells() + cells;
        if wanted * 2 <= d.table.capacity() {
            return Ok(Vec::new());
        }
        self.grow_table(wanted)
    }

    /// Places a directory entry of `n` cells for `email` in the table; the
    /// header cells of the sectors passed over are marked spilled at once
    /// (not synced: a flag without the entry only lengthens a lookup).
    fn place_visitor(&mut self, email: &str, n: u32) -> Result<u32> {
        let d = self
            .directory
            .as_ref()
            .ok_or_else(|| Error::Internal("directory entry without a table".into()))?;
        let region = d.table;
        let hash = table::visitor_hash(&d.key, email);
        let placed = self.occupancy.place(region, hash, n).ok_or_else(|| {
            Error::Internal("the directory table is full (room was not reserved)".into())
        })?;
        for sector in placed.spilled {
            self.write_raw(region.header_cell(sector), &table::header_cell(true))?;
        }
        Ok(placed.cell)
    }

    /// Moves the directory's table to a new region at the file's end, big
    /// enough for `cells` cells of entries at most half full, crash-safely:
    /// the new region is first named in the header as one to retire (so a
    /// crash before the switch has open zero it), written and synced; then
    /// the header names it as the table and the old one as the region to
    /// retire; the old region is zeroed and synced, and the header forgets
    /// it (synced) before its cells are free for other slots.
    fn grow_table(&mut self, cells: u64) -> Result<Vec<MovedEntry>> {
        let Some(old) = self.directory.as_ref().map(|d| d.table) else {
            return Ok(Vec::new());
        };
        let sectors = table::Region::sectors_for(cells)
            .ok_or_else(|| Error::Limit("keyring is full".into()))?;
        if sectors <= old.sectors {
            return Ok(Vec::new());
        }
        let start = self.len.next_multiple_of(cells::SECTOR_CELLS);
        let new = table::Region { start, sectors };
        let unit = cells::CELL;
        let key = self
            .directory
            .as_ref()
            .map(|d| d.key.clone())
            .ok_or_else(|| Error::Internal("directory without a key".into()))?;
        /// Bytes read or written at a time (whole sectors): the tables are
        /// never held whole, so that a growth costs memory in proportion to
        /// this, not to the number of visitors.
        const CHUNK: usize = 1 << 20;
        let chunk_cells = (CHUNK / unit) as u32;
        let mut buf = SecretVec::new(vec![0u8; CHUNK]);

        // 1. Every entry of the old table is given its place in the new one
        // (an entry's place depends on the entries placed before it). Damage
        // in the old table stops the growth before anything is written.
        let mut occupancy = table::Occupancy::empty(new);
        let mut moved: Vec<(MovedEntry, u32)> = Vec::new();
        let old_cells = old.sectors * cells::SECTOR_CELLS;
        let mut at = 0;
        while at < old_cells {
            let n = chunk_cells.min(old_cells - at);
            let chunk = self.read_units(&mut buf, old.start + at, n)?;
            let mut failed: Option<Error> = None;
            scan_slots(
                self.layout,
                self.kek.as_ref(),
                &self.keyring_id,
                Tables {
                    table: old,
                    retire: table::Region::NONE,
                },
                chunk,
                old.start + at,
                |index, _, found| {
                    if failed.is_some() {
                        return;
                    }
                    let slot = match found {
                        Ok(Some(slot @ Slot::Visitor(_))) => slot,
                        Ok(_) => return,
                        Err(reason) => {
                            failed = Some(Error::corrupt(
                                &self.path,
                                u64::from(index) * unit as u64,
                                format!(
                                    "keyring slot {index}: {reason} (the directory table cannot grow over it)"
                                ),
                            ));
                            return;
                        }
                    };
                    let Slot::Visitor(v) = &slot else { return };
                    let placed = self.cells_for(&slot).and_then(|n| {
                        occupancy
                            .place(new, table::visitor_hash(&key, &v.email), n)
                            .map(|p| (p.cell, n))
                            .ok_or_else(|| {
                                Error::Internal("the new directory table is full".into())
                            })
                    });
                    match placed {
                        Ok((to, n)) => moved.push((
                            MovedEntry {
                                vid: v.vid,
                                from: index,
                                to,
                            },
                            n,
                        )),
                        Err(e) => failed = Some(e),
                    }
                },
            );
            if let Some(e) = failed {
                return Err(e);
            }
            at += n;
        }
        // Entries move: no index run names their places any more (the
        // state says so with the first sync below), and open reads every
        // entry until a new run is written.
        self.marks.run = 0;
        // 2. Name the new region as one to retire.
        self.set_directory(|d| d.retire = new);
        self.write_header()?;
        self.sync()?;
        // 3. Write the new table a chunk at a time, in order: each entry read
        // again from the old table and sealed to its new place, each sector
        // starting with its header cell; then sync.
        moved.sort_unstable_by_key(|(m, _)| m.to);
        let gap = self.len..start;
        let new_cells = new.sectors * cells::SECTOR_CELLS;
        let mut next = moved.iter().peekable();
        let mut at = 0;
        while at < new_cells {
            let n = chunk_cells.min(new_cells - at);
            let out = buf
                .get_mut(..n as usize * unit)
                .ok_or_else(|| Error::Internal("keyring write buffer too small".into()))?;
            out.fill(0);
            for sector in (at / cells::SECTOR_CELLS)..((at + n) / cells::SECTOR_CELLS) {
                let from = (sector * cells::SECTOR_CELLS - at) as usize * unit;
                out[from..from + unit]
                    .copy_from_slice(&table::header_cell(occupancy.is_spilled(sector)));
            }
            while let Some((m, cells)) = next.next_if(|(m, _)| m.to < new.start + at + n) {
                let mut old_slot = SecretVec::new(vec![0u8; *cells as usize * unit]);
                self.file
                    .read_exact_at(&mut old_slot, u64::from(m.from) * unit as u64)
                    .at(&self.path)?;
                let slot = match decode_at(
                    self.layout,
                    self.kek.as_ref(),
                    &self.keyring_id,
                    m.from,
                    &old_slot,
                ) {
                    Ok(Some(slot)) => slot,
                    _ => {
                        return Err(Error::corrupt(
                            &self.path,
                            u64::from(m.from) * unit as u64,
                            format!(
                                "keyring slot {}: changed while the directory table grew",
                                m.from
                            ),
                        ));
                    }
                };
                let enc = self.encode_slot(m.to, &slot)?;
                let from = (m.to - new.start - at) as usize * unit;
                out.get_mut(from..from + enc.len())
                    .ok_or_else(|| Error::Internal("directory entry out of range".into()))?
                    .copy_from_slice(&enc);
            }
            self.write_raw(new.start + at, out)?;
            at += n;
        }
        self.stranded += u64::from(gap.start.max(self.floor).min(gap.end) - gap.start);
        self.free.insert_range(gap.start.max(self.floor)..gap.end);
        self.marks.slots = self.len;
        self.sync()?;
        let moved: Vec<MovedEntry> = moved.into_iter().map(|(m, _)| m).collect();
        // 4. Switch: the new region is the table, the old one to retire.
        self.set_directory(|d| {
            d.table = new;
            d.retire = old;
        });
        self.occupancy = occupancy;
        self.write_header()?;
        self.sync()?;
        // Lookups go to the new table from now on; the write lock waits for
        // any still reading the old one, which is zeroed only after.
        *self.view.write() = directory::View::table(key, new, &self.file);
        // 5. Zero the old region, then forget it.
        self.retire_region()?;
        Ok(moved)
    }

    /// Zeroes the region the header names to retire (the part inside the
    /// file), syncs, clears it from the header, syncs, and frees its cells.
    fn retire_region(&mut self) -> Result<()> {
        let Some(retire) = self.directory.as_ref().map(|d| d.retire) else {
            return Ok(());
        };
        if retire.is_none() {
            return Ok(());
        }
        let end = retire.end().min(self.len);
        if end > retire.start {
            // A MiB at a time.
            let step = (1 << 20) / cells::CELL as u32;
            let zeros = vec![0u8; step.min(end - retire.start) as usize * cells::CELL];
            for at in (retire.start..end).step_by(step as usize) {
                let n = step.min(end - at) as usize * cells::CELL;
                self.write_raw(at, &zeros[..n])?;
            }
            self.sync_file()?;
        }
        self.set_directory(|d| d.retire = table::Region::NONE);
        self.write_header()?;
        self.sync_file()?;
        if end > retire.start {
            let from = retire.start.max(self.floor).min(end);
            self.stranded += u64::from(from - retire.start);
            self.free.insert_range(from..end);
        }
        Ok(())
    }

    /// Reads `n` units from unit `start` into the front of `buf` (a chunk
    /// of a walk over the file) and returns them.
    fn read_units<'b>(&self, buf: &'b mut [u8], start: u32, n: u32) -> Result<&'b mut [u8]> {
        let unit = self.layout.unit();
        let chunk = buf
            .get_mut(..n as usize * unit)
            .ok_or_else(|| Error::Internal("keyring read buffer too small".into()))?;
        self.file
            .read_exact_at(chunk, u64::from(start) * unit as u64)
            .at(&self.path)?;
        Ok(chunk)
    }

    /// Syncs the file without writing the state.
    fn sync_file(&mut self) -> Result<()> {
        crate::failpoint::check("keyring.sync").at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        crate::failpoint::synced(&self.path, &self.file);
        Ok(())
    }

    /// Whether cell `index` is in the directory's table.
    pub(crate) fn in_directory_table(&self, index: u32) -> bool {
        self.directory
            .as_ref()
            .is_some_and(|d| d.table.contains(index))
    }

    fn set_directory(&mut self, change: impl FnOnce(&mut Directory)) {
        if let Some(d) = self.directory.as_mut() {
            change(d);
        }
    }

    /// The lowest free run of `n` cells below `below` (for compaction).
    pub(crate) fn allocate_below(&mut self, slot: &Slot, below: u32) -> Result<Option<u32>> {
        self.writable()?;
        let n = self.cells_for(slot)?;
        let Some(first) = self.find_run(..below, n).filter(|f| f + n <= below) else {
            return Ok(None);
        };
        self.free.remove_range(first..first + n);
        Ok(Some(first))
    }

    /// The first run of `n` free cells inside one sector among the free
    /// cells in `range`.
    fn find_run(&self, range: impl std::ops::RangeBounds<u32>, n: u32) -> Option<u32> {
        self.free.find_run(range, n)
    }

    /// Makes 64 KiB of free (all-zero) cells ready at the keyring's end, in
    /// one write. When the file has no room left for them, it first grows
    /// by 128 KiB, or an eighth of the keyring up to 1 MiB, as a hole whose
    /// new length is synced: so that the file's length (and the sync that
    /// makes it durable) changes once per many new transcripts, and ever
    /// more rarely as the store grows, while open reads no more than a
    /// step of zeros past the last slot.
    fn grow(&mut self) -> Result<()> {
        let unit = self.layout.unit() as u32;
        let full = || Error::Limit("keyring is full".into());
        // Ending on a 4 KiB boundary, where file systems' blocks end: the
        // hole past the cells made ready starts where they end.
        let len = self
            .len
            .checked_add(READY_BYTES as u32 / unit)
            .and_then(|l| l.checked_next_multiple_of(4096 / unit))
            .ok_or_else(full)?;
        let by = len - self.len;
        if len > self.file_len {
            let ahead =
                (self.len / 8).clamp(GROW_BYTES as u32 / unit, MAX_GROW_BYTES as u32 / unit);
            let file_len = self.len.checked_add(ahead.max(by)).ok_or_else(full)?;
            crate::failpoint::check("keyring.write").at(&self.path)?;
            self.file
                .set_len(u64::from(file_len) * u64::from(unit))
                .at(&self.path)?;
            // The new length is made durable before the state may record
            // the cells in it.
            crate::failpoint::check("keyring.sync").at(&self.path)?;
            self.file.sync_data().at(&self.path)?;
            crate::failpoint::synced(&self.path, &self.file);
            self.file_len = file_len;
        }
        // Not synced: until they are, the cells are a hole, read as zeros
        // all the same.
        crate::failpoint::check("keyring.write").at(&self.path)?;
        let zeros = vec![0u8; by as usize * unit as usize];
        self.file
            .write_all_at(&zeros, u64::from(self.len) * u64::from(unit))
            .at(&self.path)?;
        self.free.insert_range(self.len..len);
        self.cursor = self.len;
        self.len = len;
        self.marks.slots = len;
        Ok(())
    }

    /// Reads and decodes slot `index` from the file (`None`: a free slot).
    pub(crate) fn read_slot(&self, index: u32) -> Result<Option<Slot>> {
        self.reader().read(index)
    }

    /// Writes a slot in place (not synced).
    pub(crate) fn write(&mut self, index: u32, slot: &Slot) -> Result<()> {
        let bytes = self.encode_slot(index, slot)?;
        self.write_raw(index, &bytes)
    }

    /// Rewrites the directory entry at `index` with `email` (not synced): in
    /// place when the new email has the entry's placement (another spelling
    /// of the same address) and fits its cells (the cells it no longer needs
    /// zeroed in the same write), else written anew where its hash places it,
    /// with the next revision, synced, and the old entry wiped. Returns where
    /// it is now, and the entries a growth of the table made room by moving
    /// (this one among them, if it was).
    pub(crate) fn rewrite_visitor(
        &mut self,
        index: u32,
        vid: Vid,
        email: &str,
    ) -> Result<(u32, Vec<MovedEntry>)> {
        self.writable()?;
        // Room for the entry should it move (a growth moves this one too).
        let probe = Slot::Visitor(VisitorSlot {
            vid,
            email: email.to_owned(),
            revision: 0,
        });
        let moved = self.reserve_visitors(u64::from(self.cells_for(&probe)?))?;
        let index = moved
            .iter()
            .find(|m| m.from == index)
            .map_or(index, |m| m.to);
        let revision = match self.read_slot(index)? {
            Some(Slot::Visitor(v)) if v.vid == vid => v.revision,
            _ => {
                return Err(Error::Internal(format!(
                    "keyring slot {index} is not the directory entry the index names"
                )));
            }
        };
        let old = self.extent(index)?;
        let stays = match (&self.directory, self.read_slot(index)?) {
            (Some(d), Some(Slot::Visitor(v))) => {
                table::visitor_hash(&d.key, &v.email) == table::visitor_hash(&d.key, email)
            }
            _ => true,
        };
        let slot = Slot::Visitor(VisitorSlot {
            vid,
            email: email.to_owned(),
            revision,
        });
        let needed = self.cells_for(&slot)?;
        if needed <= old && stays {
            let mut bytes = self.encode_slot(index, &slot)?;
            bytes.resize(old as usize * cells::CELL, 0);
            self.write_raw(index, &bytes)?;
            // The cells it no longer needs are free (and zero) now.
            self.release(index + needed, old - needed);
            return Ok((index, moved));
        }
        let Slot::Visitor(mut entry) = slot else {
            return Err(Error::Internal(
                "rewrite_visitor: not a directory entry".into(),
            ));
        };
        entry.revision = (entry.revision + 1) % REVISIONS;
        let slot = Slot::Visitor(entry);
        let new = self.allocate(&slot)?;
        self.write(new, &slot)?;
        // The new entry is durable before the old one goes: a crash between
        // leaves both, and open keeps the newer revision. Open must read
        // every entry to see both: no index run is used until a new one is
        // written.
        self.marks.run = 0;
        self.sync()?;
        self.wipe(index)?;
        Ok((new, moved))
    }

    /// Encodes `slot` for index `index` into `staged` (nothing is written).
    /// A directory entry in the table gets its [`LinkSlot`] staged with it.
    pub(crate) fn stage(
        &mut self,
        staged: &mut StagedSlots,
        index: u32,
        slot: &Slot,
    ) -> Result<()> {
        let bytes = self.encode_slot(index, slot)?;
        let cells = (bytes.len() / self.layout.unit()) as u8;
        staged.slots.insert(index, bytes);
        if let Slot::Visitor(v) = slot
            && self
                .directory
                .as_ref()
                .is_some_and(|d| d.table.contains(index))
        {
            let link = Slot::Link(LinkSlot {
                vid: v.vid,
                cell: index,
                cells,
                revision: v.revision,
            });
            let at = self.allocate(&link)?;
            let bytes = self.encode_slot(at, &link)?;
            staged.slots.insert(at, bytes);
        }
        Ok(())
    }

    /// Writes the staged slots (not synced): each run of neighbouring slots
    /// with one positioned write.
    pub(crate) fn write_staged(&mut self, staged: StagedSlots) -> Result<()> {
        let unit = self.layout.unit();
        let mut run = SecretVec::default();
        let mut sizes = Vec::new();
        let mut first = None;
        let mut next = 0;
        for (&index, bytes) in &staged.slots {
            if first.is_some() && index != next {
                self.write_run(first.unwrap_or(0), &run, &sizes)?;
                run.clear();
                sizes.clear();
                first = None;
            }
            first.get_or_insert(index);
            run.extend_from_slice(bytes);
            sizes.push(bytes.len());
            next = index + (bytes.len() / unit) as u32;
        }
        if let Some(first) = first {
            self.write_run(first, &run, &sizes)?;
        }
        Ok(())
    }

    /// Writes neighbouring slots (of `sizes` bytes each) in one write.
    fn write_run(&mut self, first: u32, bytes: &[u8], sizes: &[usize]) -> Result<()> {
        let unit = self.layout.unit();
        // A failpoint counts slots, as slot-by-slot writes would: one that
        // fires at the k-th slot of a run leaves the slots before it written.
        let mut done = 0;
        for size in sizes {
            if let Err(e) = crate::failpoint::check("keyring.write") {
                let done = bytes.get(..done).unwrap_or_default();
                self.write_at(first, done)?;
                return Err(e).at(&self.path);
            }
            done += size;
        }
        self.write_at(first, bytes)?;
        self.wrote_to(first + (bytes.len() / unit) as u32);
        Ok(())
    }

    /// Writes `bytes` at unit `index`. A write into the directory's table
    /// holds the lookups' lock, so that a lookup reading the same sector
    /// sees each cell whole, before or after (a half-written cell would
    /// fail its CRC and be reported as damage).
    fn write_at(&self, index: u32, bytes: &[u8]) -> Result<()> {
        let unit = self.layout.unit();
        let offset = u64::from(index) * unit as u64;
        let end = index.saturating_add(bytes.len().div_ceil(unit) as u32);
        let touches_table = self
            .directory
            .as_ref()
            .is_some_and(|d| index < d.table.end() && d.table.start < end);
        let _lookups = touches_table.then(|| self.view.write());
        self.file.write_all_at(bytes, offset).at(&self.path)
    }

    /// Cells the slot (or damaged piece) at `index` takes, read from the file.
    fn extent(&self, index: u32) -> Result<u32> {
        match self.layout {
            Layout::Slots => Ok(1),
            Layout::Cells => {
                let bytes = self.reader().read_cells(index)?;
                Ok(if bytes.is_empty() {
                    1
                } else {
                    cells::extent(&bytes)
                })
            }
        }
    }

    /// Overwrites a slot with zeros in place (not synced) and frees it.
    pub(crate) fn wipe(&mut self, index: u32) -> Result<()> {
        let n = self.extent(index)?;
        let zeros = vec![0u8; n as usize * self.layout.unit()];
        if self
            .directory
            .as_ref()
            .is_some_and(|d| d.table.is_header_cell(index))
        {
            return Err(Error::Internal(format!(
                "keyring cell {index} is a directory sector's header, not a slot"
            )));
        }
        self.write_raw(index, &zeros)?;
        self.release(index, n);
        Ok(())
    }

    /// Frees cells `index .. index + n`, now zero on disk: for directory
    /// entries in the table, or for key slots elsewhere.
    fn release(&mut self, index: u32, n: u32) {
        match self.directory.as_ref().map(|d| d.table) {
            Some(region) if region.contains(index) => {
                self.occupancy.mark(region, index, n, false);
            }
            _ if index >= self.floor => self.free.insert_range(index..index + n),
            _ if index >= self.layout.first_data() => self.stranded += u64::from(n),
            _ => {}
        }
    }

    fn write_raw(&mut self, index: u32, bytes: &[u8]) -> Result<()> {
        let unit = self.layout.unit();
        crate::failpoint::check("keyring.write").at(&self.path)?;
        self.write_at(index, bytes)?;
        self.wrote_to(index + bytes.len().div_ceil(unit) as u32);
        Ok(())
    }

    /// Counts units up to `end`, just written, in the keyring's length and
    /// the file's.
    fn wrote_to(&mut self, end: u32) {
        self.len = self.len.max(end);
        self.file_len = self.file_len.max(end);
    }

    /// The marks the next sync will write.
    pub(crate) fn marks(&self) -> Marks {
        self.marks
    }

    /// Records the active segment's durable length in the state (written
    /// with the next sync). `len` must already be on stable storage.
    pub(crate) fn note_segment(&mut self, segment: u64, len: u64) {
        if (segment, len) > (self.marks.segment, self.marks.segment_len) {
            self.marks.segment = segment;
            self.marks.segment_len = len;
        }
    }

    /// Records how much of the audit log is durable (entries, bytes), and how
    /// much of it has all its effects on disk.
    /// Records the index run open may use (0: none), written with the next
    /// sync.
    pub(crate) fn note_run(&mut self, run: u64) {
        self.marks.run = run;
    }

    pub(crate) fn note_audit(&mut self, entries: u64, bytes: u64, done: Option<(u64, u64)>) {
        self.marks.audit_entries = self.marks.audit_entries.max(entries);
        self.marks.audit_bytes = self.marks.audit_bytes.max(bytes);
        if let Some((e, b)) = done {
            self.marks.audit_done_entries = self.marks.audit_done_entries.max(e);
            self.marks.audit_done_bytes = self.marks.audit_done_bytes.max(b);
        }
    }

    /// Writes the state slot if the marks changed since it was last written
    /// (not synced). A keyring whose state was never written has its
    /// header's pending flag cleared in the same sync.
    pub(crate) fn flush_state(&mut self) -> Result<()> {
        self.writable()?;
        let mut next = self.marks;
        next.writes = self.written.map_or(0, |m| m.writes);
        if self.written == Some(next) && !self.state_pending {
            return Ok(());
        }
        next.writes += 1;
        self.write_raw(
            STATE_SLOT * (SLOT_SIZE / self.layout.unit()) as u32,
            &encode_state(&next),
        )?;
        if self.state_pending {
            self.state_pending = false;
            self.write_header()?;
        }
        self.marks = next;
        self.written = Some(next);
        Ok(())
    }

    /// Writes the header from what the keyring holds (not synced).
    fn write_header(&mut self) -> Result<()> {
        let directory = self
            .directory
            .as_ref()
            .ok_or_else(|| Error::Internal("keyring header of an older format rewritten".into()))?;
        let header = build_header(
            self.keyring_id,
            self.kek.as_ref(),
            self.state_pending,
            directory,
        )?;
        self.write_raw(0, &header)
    }

    /// Cuts free cells, and the hole past them, off the end of the file
    /// (durably).
    pub(crate) fn truncate_free_tail(&mut self) -> Result<()> {
        self.writable()?;
        let first = self.layout.first_data();
        let mut len = self.len;
        while len > first && self.free.contains(len - 1) {
            len -= 1;
        }
        if len == self.len && len == self.file_len {
            return Ok(());
        }
        // The state first: a crash between the two leaves a file longer than
        // the state says, never shorter.
        self.marks.slots = len;
        self.sync()?;
        self.file
            .set_len(u64::from(len) * self.layout.unit() as u64)
            .at(&self.path)?;
        self.file.sync_all().at(&self.path)?;
        self.free.split_off(len);
        self.cursor = self.cursor.min(len);
        self.used_end = self.used_end.min(len);
        self.len = len;
        self.file_len = len;
        Ok(())
    }

    /// Writes the state (if it changed) and makes every write so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.flush_state()?;
        crate::failpoint::check("keyring.sync").at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        crate::failpoint::synced(&self.path, &self.file);
        Ok(())
    }

    fn encode_slot(&self, index: u32, slot: &Slot) -> Result<SecretVec> {
        self.writable()?;
        encode_cells(self.kek.as_ref(), &self.keyring_id, index, slot)
    }

    /// Encodes a slot without writing it (for the fuzzers).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn encode_for_test(&self, index: u32, slot: &Slot) -> Vec<u8> {
        self.encode_slot(index, slot)
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    /// Decodes the slot at cell `index` from `bytes` (that cell to the end
    /// of its sector); `Ok(None)` for a free cell.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn decode_slot(
        &self,
        index: u32,
        bytes: &[u8],
    ) -> Result<Option<Slot>, &'static str> {
        decode_at(
            self.layout,
            self.kek.as_ref(),
            &self.keyring_id,
            index,
            bytes,
        )
    }

    /// Checks every slot of `bytes`, a copy of the whole keyring file (for
    /// `verify`).
    pub(crate) fn check_copy(&self, bytes: &[u8]) -> CopyCheck {
        let unit = self.layout.unit();
        let mut check = CopyCheck {
            state: bytes
                .get(SLOT_SIZE..2 * SLOT_SIZE)
                .and_then(|s| <&[u8; SLOT_SIZE]>::try_from(s).ok())
                .filter(|s| !is_zero(&s[..]))
                .map(decode_state),
            needed: 0,
            in_use: 0,
            damaged: Vec::new(),
        };
        if let Some(Ok(m)) = check.state {
            check.needed = u64::from(m.slots) * unit as u64;
        }
        let first = self.layout.first_data();
        let data = bytes.get(first as usize * unit..).unwrap_or_default();
        let tables = Tables::of(self.directory.as_ref());
        let mut entries = Vec::new();
        let mut found = |index: u32, r: Result<Option<Slot>, &'static str>| match r {
            Ok(None) => {}
            Ok(Some(slot)) => {
                check.in_use += 1;
                if let Slot::Visitor(v) = slot
                    && tables.table.contains(index)
                {
                    entries.push((index, v.email));
                }
            }
            Err(reason) => check.damaged.push(SlotDamage {
                index,
                offset: u64::from(index) * unit as u64,
                reason,
            }),
        };
        scan_slots(
            self.layout,
            self.kek.as_ref(),
            &self.keyring_id,
            Tables::of(self.directory.as_ref()),
            data,
            first,
            |index, _, r| found(index, r),
        );
        if data.len() % unit != 0 {
            found(first + (data.len() / unit) as u32, Err("truncated"));
        }
        // Every entry of the directory's table must be where a lookup of its
        // email finds it: in its home sector, or past only spilled ones.
        if let Some(d) = &self.directory {
            let region = d.table;
            let spilled = |sector: u32| {
                let at = region.header_cell(sector) as usize * unit;
                table::parse_header_cell(bytes.get(at..).unwrap_or_default()) == Ok(true)
            };
            for (index, email) in entries {
                let home = table::visitor_hash(&d.key, &email);
                let reachable = region
                    .probe(home)
                    .take_while(|&s| s != region.sector_of(index))
                    .all(spilled);
                if !reachable {
                    check.damaged.push(SlotDamage {
                        index,
                        offset: u64::from(index) * unit as u64,
                        reason: "a directory entry that a lookup of its email cannot reach",
                    });
                }
            }
        }
        check
    }

    /// Whether lookups read the directory's table through a map of it.
    #[cfg(test)]
    pub(crate) fn table_is_mapped(&self) -> bool {
        self.view.read().is_mapped()
    }

    /// Looks up directory entries by email without the writer's lock.
    pub(crate) fn directory_reader(&self) -> DirectoryReader {
        DirectoryReader {
            slots: self.reader(),
            view: Arc::clone(&self.view),
        }
    }

    /// A handle that reads and decodes slots without the writer's lock (for
    /// the key cache, which loads keys when a transcript is read or written).
    pub(crate) fn reader(&self) -> SlotReader {
        SlotReader {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
            kek: self.kek.clone(),
            keyring_id: self.keyring_id,
            layout: self.layout,
        }
    }
}

/// Reads single slots of the keyring (see [`Keyring::reader`]).
#[derive(Clone)]
pub(crate) struct SlotReader {
    path: PathBuf,
    file: Arc<File>,
    kek: Option<Key>,
    keyring_id: [u8; 16],
    layout: Layout,
}

impl SlotReader {
    /// Reads and decodes slot `index` (`None`: a free slot).
    pub(crate) fn read(&self, index: u32) -> Result<Option<Slot>> {
        let bytes = self.read_cells(index)?;
        let offset = u64::from(index) * self.layout.unit() as u64;
        decode_at(
            self.layout,
            self.kek.as_ref(),
            &self.keyring_id,
            index,
            &bytes,
        )
        .map_err(|reason| {
            Error::corrupt(
                &self.path,
                offset,
                format!("keyring slot {index}: {reason}"),
            )
        })
    }

    /// The bytes from unit `index` to the end of its sector, or of the file.
    fn read_cells(&self, index: u32) -> Result<SecretVec> {
        let unit = self.layout.unit() as u64;
        let offset = u64::from(index) * unit;
        let end = (offset / SLOT_SIZE as u64 + 1) * SLOT_SIZE as u64;
        let mut buf = SecretVec::new(vec![0u8; (end - offset) as usize]);
        let mut got = 0;
        while got < buf.len() {
            match self.file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        buf.truncate(got);
        Ok(buf)
    }
}

/// Walks the slots of `data` (whole units from unit `base`, a sector's
/// first) in either layout: `each(index, units it takes, what is there)`
/// for every free unit, slot and damaged piece, which is skipped whole. A
/// trailing piece shorter than a unit is not looked at.
fn scan_slots(
    layout: Layout,
    kek: Option<&Key>,
    keyring_id: &[u8; 16],
    tables: Tables,
    data: &[u8],
    base: u32,
    mut each: impl FnMut(u32, u32, Result<Option<Slot>, &'static str>),
) {
    match layout {
        Layout::Slots => {
            for (index, chunk) in (base..).zip(data.chunks_exact(SLOT_SIZE)) {
                if let Ok(buf) = <&[u8; SLOT_SIZE]>::try_from(chunk) {
                    each(index, 1, decode_legacy(kek, keyring_id, index, buf));
                }
            }
        }
        Layout::Cells => cells::scan(data, base, base, |index, step, found| {
            if tables.retire.contains(index) {
                return;
            }
            let in_table = tables.table.contains(index);
            if tables.table.is_header_cell(index) {
                let at = (index - base) as usize * cells::CELL;
                if let Err(reason) = table::parse_header_cell(data.get(at..).unwrap_or_default()) {
                    each(index, step, Err(reason));
                }
                return;
            }
            let slot = found.and_then(|f| {
                f.map(|f| slot::open_payload(kek, keyring_id, index, f.kind, &f.payload))
                    .transpose()
            });
            let slot = match slot {
                Ok(Some(Slot::Visitor(_))) if !tables.table.is_none() && !in_table => {
                    Err("a directory entry outside the directory table")
                }
                Ok(Some(Slot::Transcript(_) | Slot::Pii(_))) if in_table => {
                    Err("a key slot inside the directory table")
                }
                other => other,
            };
            each(index, step, slot);
        }),
    }
}

/// How many of `bytes`' units (of `unit` bytes) come before its trailing
/// all-zero ones.
fn zero_tail(bytes: &[u8], unit: usize) -> u32 {
    // An OR of every byte (no early exit) compiles to vector instructions.
    let zero = |u: &[u8]| u.iter().fold(0u8, |a, &b| a | b) == 0;
    let used = bytes
        .chunks_exact(unit)
        .rposition(|u| !zero(u))
        .map_or(0, |i| i + 1);
    u32::try_from(used).unwrap_or(u32::MAX)
}

/// The buffer open reads the keyring into, a chunk at a time: wiped when
/// dropped, but only as far as any chunk held other bytes than zeros (a
/// keyring's tail is up to a MiB of zeros, and a wipe writes each byte
/// with a volatile store).
struct ReadBuf {
    bytes: Vec<u8>,
    /// Bytes from the start that held anything but zeros.
    dirty: usize,
}

impl ReadBuf {
    fn new(len: usize) -> ReadBuf {
        ReadBuf {
            bytes: vec![0u8; len],
            dirty: 0,
        }
    }
}

impl ReadBuf {
    /// Fills its first `len` bytes with `fill`, and returns them with the
    /// number of `unit`-byte units up to the last that is not zeros. What
    /// it must wipe grows to those units, or to all `len` bytes when `fill`
    /// fails (a read that fails part way may have filled any of them).
    fn fill(
        &mut self,
        len: usize,
        unit: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<()>,
    ) -> Result<(&mut [u8], u32)> {
        let before = self.dirty;
        let bytes = self
            .bytes
            .get_mut(..len)
            .ok_or_else(|| Error::Internal("keyring read buffer too small".into()))?;
        self.dirty = before.max(len);
        fill(bytes)?;
        let held = zero_tail(bytes, unit);
        self.dirty = before.max(held as usize * unit);
        Ok((bytes, held))
    }

    /// Zeroes the bytes that held anything.
    fn wipe(&mut self) {
        let dirty = self.dirty.min(self.bytes.len());
        if let Some(b) = self.bytes.get_mut(..dirty) {
            zeroize::Zeroize::zeroize(b);
        }
        self.dirty = 0;
    }
}

impl Drop for ReadBuf {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// Decodes the slot at `index` from `bytes` (that unit to the end of its
/// sector) in either layout.
fn decode_at(
    layout: Layout,
    kek: Option<&Key>,
    keyring_id: &[u8; 16],
    index: u32,
    bytes: &[u8],
) -> Result<Option<Slot>, &'static str> {
    match layout {
        Layout::Slots => {
            let buf = bytes
                .get(..SLOT_SIZE)
                .and_then(|b| <&[u8; SLOT_SIZE]>::try_from(b).ok())
                .ok_or("keyring slot cut short")?;
            decode_legacy(kek, keyring_id, index, buf)
        }
        Layout::Cells => match cells::unframe(index, bytes)? {
            None => Ok(None),
            Some(f) => slot::open_payload(kek, keyring_id, index, f.kind, &f.payload).map(Some),
        },
    }
}

/// Decodes a 512-byte slot of format 1 or 2; `Ok(None)` for a free slot.
fn decode_legacy(
    kek: Option<&Key>,
    keyring_id: &[u8; 16],
    index: u32,
    buf: &[u8; SLOT_SIZE],
) -> Result<Option<Slot>, &'static str> {
    match legacy::unframe(buf)? {
        None => Ok(None),
        Some((kind, payload)) => {
            slot::open_payload(kek, keyring_id, index, kind, payload).map(Some)
        }
    }
}

/// The cells of `slot` at cell `index` of the keyring `keyring_id`, wrapped
/// under `kek` when given (a fresh nonce each time).
pub(crate) fn encode_cells(
    kek: Option<&Key>,
    keyring_id: &[u8; 16],
    index: u32,
    slot: &Slot,
) -> Result<SecretVec> {
    let (kind, payload) = slot::seal_payload(kek, keyring_id, index, slot)?;
    cells::frame(kind, &payload).ok_or_else(|| Error::Limit("slot payload too large".into()))
}

fn is_zero(buf: &[u8]) -> bool {
    buf.iter().all(|&b| b == 0)
}

/// A format-4 header. With a key-encryption key, the directory's hash key
/// is what the KEK check seals (so it is never on disk in the clear);
/// without one it is stored as is, beside the emails it places.
fn build_header(
    keyring_id: [u8; 16],
    kek: Option<&Key>,
    state_pending: bool,
    directory: &Directory,
) -> Result<[u8; SLOT_SIZE]> {
    let mut h = [0u8; SLOT_SIZE];
    h[0..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&KEYRING_VERSION.to_le_bytes());
    h[10..12].copy_from_slice(&(cells::CELL as u16).to_le_bytes());
    h[STATE_PENDING_AT] = u8::from(state_pending);
    h[16..32].copy_from_slice(&keyring_id);
    if let Some(kek) = kek {
        h[12] = 1;
        let (nonce, ct) = kek.seal(&check_aad(&keyring_id), &directory.key[..])?;
        h[32..44].copy_from_slice(&nonce);
        h[44..92].copy_from_slice(&ct);
    } else {
        h[DIR_KEY_AT..DIR_KEY_AT + 32].copy_from_slice(&directory.key[..]);
    }
    h[DIR_TABLE_AT..DIR_TABLE_AT + table::REGION_BYTES].copy_from_slice(&directory.table.encode());
    h[DIR_RETIRE_AT..DIR_RETIRE_AT + table::REGION_BYTES]
        .copy_from_slice(&directory.retire.encode());
    let crc = crc32fast::hash(&h[..508]);
    h[508..].copy_from_slice(&crc.to_le_bytes());
    Ok(h)
}

/// A new directory: a fresh hash key, an empty table of the smallest size
/// at `start`.
fn new_directory(start: u32) -> Result<Directory> {
    Ok(Directory {
        key: Zeroizing::new(random_array()?),
        table: table::Region {
            start,
            sectors: table::MIN_SECTORS,
        },
        retire: table::Region::NONE,
    })
}

fn check_aad(keyring_id: &[u8; 16]) -> Vec<u8> {
    let mut aad = KEK_CHECK_AAD.to_vec();
    aad.extend_from_slice(keyring_id);
    aad
}

/// Checks the header; returns the keyring id and the format version.
fn check_header(path: &Path, h: &[u8; SLOT_SIZE], kek: Option<&Key>) -> Result<Header> {
    if &h[0..8] != MAGIC {
        return Err(Error::corrupt(
            path,
            0,
            "not a shredlog keyring (bad magic)",
        ));
    }
    let crc = u32::from_le_bytes([h[508], h[509], h[510], h[511]]);
    if crc32fast::hash(&h[..508]) != crc {
        return Err(Error::corrupt(path, 0, "keyring header checksum mismatch"));
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if !matches!(
        version,
        KEYRING_VERSION | KEYRING_VERSION_3 | KEYRING_VERSION_2 | KEYRING_VERSION_1
    ) {
        return Err(Error::UnsupportedVersion {
            path: path.to_owned(),
            version: u32::from(version),
        });
    }
    let unit = usize::from(u16::from_le_bytes([h[10], h[11]]));
    if unit != Layout::of(version).unit() {
        return Err(Error::corrupt(path, 10, "unsupported keyring slot size"));
    }
    let state_pending = match (version, h[STATE_PENDING_AT]) {
        (KEYRING_VERSION | KEYRING_VERSION_3, 1) => true,
        (_, 0) => false,
        _ => {
            return Err(Error::corrupt(
                path,
                STATE_PENDING_AT as u64,
                "unknown keyring state flag",
            ));
        }
    };
    let mut keyring_id = [0u8; 16];
    keyring_id.copy_from_slice(&h[16..32]);
    let region = |at: usize| {
        table::Region::decode(&h[at..at + table::REGION_BYTES])
            .map_err(|reason| Error::corrupt(path, at as u64, reason))
    };
    let mut header = Header {
        keyring_id,
        version,
        state_pending,
        directory: None,
    };
    let directory = |key: [u8; 32]| -> Result<Option<Directory>> {
        if version < KEYRING_VERSION {
            return Ok(None);
        }
        let table = region(DIR_TABLE_AT)?;
        if table.is_none() {
            return Err(Error::corrupt(
                path,
                DIR_TABLE_AT as u64,
                "keyring without its directory table",
            ));
        }
        Ok(Some(Directory {
            key: Zeroizing::new(key),
            table,
            retire: region(DIR_RETIRE_AT)?,
        }))
    };
    let plain_key = |h: &[u8; SLOT_SIZE]| {
        let mut k = [0u8; 32];
        k.copy_from_slice(&h[DIR_KEY_AT..DIR_KEY_AT + 32]);
        k
    };
    match (h[12], kek) {
        (0, None) => {
            header.directory = directory(plain_key(h))?;
            Ok(header)
        }
        (0, Some(_)) => Err(Error::Kek(
            "a key-encryption key was given but this keyring is not wrapped; open it without one".into(),
        )),
        (1, None) => Err(Error::Kek(
            "this keyring is wrapped under a key-encryption key; supply it (--key-file or SHREDLOG_KEK)".into(),
        )),
        (1, Some(kek)) => {
            let nonce: [u8; NONCE_LEN] = h[32..44].try_into().map_err(|_| Error::corrupt(path, 32, "bad nonce"))?;
            match kek.open(&nonce, &check_aad(&keyring_id), &h[44..92]) {
                Some(plain) => {
                    let plain = SecretVec::new(plain);
                    if version >= KEYRING_VERSION && plain_key(h) != [0u8; 32] {
                        return Err(Error::corrupt(path, DIR_KEY_AT as u64, "a wrapped keyring with a directory key in the clear"));
                    }
                    let key: [u8; 32] = plain[..].try_into().map_err(|_| Error::corrupt(path, 44, "bad directory key"))?;
                    header.directory = directory(key)?;
                    Ok(header)
                }
                None => Err(Error::Kek("the key-encryption key does not match this keyring".into())),
            }
        }
        _ => Err(Error::corrupt(path, 12, "unknown keyring wrapping flag")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_tail_counts_units_up_to_the_last_that_holds_anything() {
        let mut b = vec![0u8; 64 * 8];
        assert_eq!(super::zero_tail(&b, 64), 0);
        b[64 * 2 + 63] = 1;
        assert_eq!(super::zero_tail(&b, 64), 3);
        b[64 * 7] = 9;
        assert_eq!(super::zero_tail(&b, 64), 8);
    }

    #[test]
    fn a_read_buffer_counts_what_each_fill_left_in_it() {
        let mut r = super::ReadBuf::new(64 * 8);
        // Zeros only: nothing to wipe.
        let (_, held) = r
            .fill(64 * 8, 64, |b| {
                b.fill(0);
                Ok(())
            })
            .unwrap();
        assert_eq!((held, r.dirty), (0, 0));
        // Data in the third unit: the first three are to be wiped.
        r.fill(64 * 8, 64, |b| {
            b[64 * 2 + 5] = 7;
            Ok(())
        })
        .unwrap();
        assert_eq!(r.dirty, 64 * 3);
        // A shorter fill of zeros leaves the earlier bytes counted.
        r.fill(64, 64, |b| {
            b.fill(0);
            Ok(())
        })
        .unwrap();
        assert_eq!(r.dirty, 64 * 3);
        // A fill that fails counts all it was given.
        let failed = r.fill(64 * 5, 64, |_| Err(crate::Error::Internal("cut".into())));
        assert!(failed.is_err());
        assert_eq!(r.dirty, 64 * 5);
        r.wipe();
        assert!(r.bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn a_read_buffer_wipes_what_it_held() {
        let mut r = super::ReadBuf::new(1024);
        r.bytes.iter_mut().for_each(|b| *b = 0xAB);
        r.dirty = 1000;
        r.wipe();
        assert!(r.bytes[..1000].iter().all(|&b| b == 0));
        // Past `dirty` only zeros were ever read: left as they are.
        assert!(r.bytes[1000..].iter().all(|&b| b == 0xAB));
    }
    use super::*;
    use crate::keyring::directory::Sectors;

    /// Cells added by the first growth.
    const GROW: u32 = (GROW_BYTES / cells::CELL) as u32;
    /// The first cell of a new keyring's key slots: after the header, the
    /// state and the directory's first table.
    const HEAP: u32 = cells::FIRST_CELL + table::MIN_SECTORS * cells::SECTOR_CELLS;
    const MAX_GROW: u32 = (MAX_GROW_BYTES / cells::CELL) as u32;
    /// Cells made ready at a time.
    const READY: u32 = (READY_BYTES / cells::CELL) as u32;
    /// Where the first cells made ready end (on a 4 KiB boundary).
    const READY_END: u32 = (HEAP + READY).next_multiple_of(64);
    const CELL: u64 = cells::CELL as u64;

    const RW: OpenMode = OpenMode {
        create: true,
        read_only: false,
        salvage: false,
    };

    /// The plaintext keyring in `dir`, created if missing.
    fn plain(dir: &Path) -> Keyring {
        Keyring::open(dir, None, RW, |_, _| {}).unwrap().keyring
    }

    fn tslot(id: &str) -> Slot {
        Slot::Transcript(TranscriptSlot {
            tid: [1; 16],
            vid: [2; 16],
            content_key: Key::random().unwrap(),
            pii_slot: 7,
            rules_version: 1,
            created_millis: 1234,
            caller_id: id.into(),
        })
    }

    #[test]
    fn slots_roundtrip_plain_and_wrapped() {
        for kek in [None, Some(Key::random().unwrap())] {
            let dir = tempfile::tempdir().unwrap();
            let mut kr = Keyring::open(dir.path(), kek.as_ref(), RW, |_, _| {})
                .unwrap()
                .keyring;
            let slots = vec![
                tslot("t-1"),
                Slot::Pii(PiiSlot {
                    tid: [1; 16],
                    pii_key: Key::random().unwrap(),
                }),
                Slot::Visitor(VisitorSlot {
                    vid: [2; 16],
                    email: "ann@example.com".into(),
                    revision: 0,
                }),
            ];
            let mut written = Vec::new();
            for s in &slots {
                let i = kr.allocate(s).unwrap();
                kr.write(i, s).unwrap();
                written.push((i, s.clone()));
            }
            kr.wipe(written[1].0).unwrap();
            kr.sync().unwrap();
            drop(kr);
            let mut slots = Vec::new();
            let loaded =
                Keyring::open(dir.path(), kek.as_ref(), RW, |i, s| slots.push((i, s))).unwrap();
            assert!(loaded.damaged.is_empty());
            // The directory entry is in the table, which comes first.
            let table = loaded.keyring.directory.as_ref().unwrap().table;
            assert!(table.contains(written[2].0) && !table.contains(written[0].0));
            assert_eq!(slots, vec![written[2].clone(), written[0].clone()]);
            // The wiped slot's cells and the rest of the cells made ready,
            // still zero (the table's free cells are its own).
            let used = loaded.keyring.cells_for(&written[0].1).unwrap();
            assert_eq!(table.end(), HEAP);
            assert_eq!(
                loaded.keyring.free_count(),
                (READY_END - HEAP - used) as usize
            );
            assert_eq!(loaded.keyring.len(), READY_END);
            let raw = std::fs::read(dir.path().join("keyring")).unwrap();
            let has_email = raw.windows(15).any(|w| w == b"ann@example.com");
            assert_eq!(has_email, kek.is_none(), "email plaintext iff unwrapped");
        }
    }

    /// A caller id read for a listing comes from the transcript slot once,
    /// is kept among at most `capacity` ids, and leaves with the
    /// generation's keys.
    /// Writes the transcript slot of generation `[tid; 16]` with caller id
    /// `id`; returns its index.
    fn transcript_at(kr: &mut Keyring, tid: u8, id: &str) -> u32 {
        let Slot::Transcript(mut t) = tslot(id) else {
            unreachable!()
        };
        t.tid = [tid; 16];
        let slot = Slot::Transcript(t);
        let at = kr.allocate(&slot).unwrap();
        kr.write(at, &slot).unwrap();
        at
    }

    #[test]
    fn the_key_cache_keeps_the_caller_ids_it_reads_within_its_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = plain(dir.path());
        let slots: Vec<u32> = [(1u8, "t-1"), (3, "t-3")]
            .into_iter()
            .map(|(tid, id)| transcript_at(&mut kr, tid, id))
            .collect();
        let entry = |tid: u8, slot: u32| {
            crate::index::TranscriptEntry::new(
                [tid; 16],
                [2; 16],
                crate::index::CallerKey::random().hash("unused"),
                slot,
                None,
                1,
                0,
            )
        };
        let (one, three) = (entry(1, slots[0]), entry(3, slots[1]));
        let cache = KeyCache::new(Some(kr.reader()), 1);
        assert_eq!(&*cache.caller_id(&one).unwrap(), "t-1");
        // Wiped on disk, it is still answered from the cache...
        kr.wipe(slots[0]).unwrap();
        assert_eq!(&*cache.caller_id(&one).unwrap(), "t-1");
        // ...until a second id pushes it out (capacity 1), or it is forgotten.
        assert_eq!(&*cache.caller_id(&three).unwrap(), "t-3");
        assert!(
            cache.caller_id(&one).is_err(),
            "read again: the slot is wiped"
        );
        cache.forget(&[3; 16]);
        kr.wipe(slots[1]).unwrap();
        assert!(cache.caller_id(&three).is_err());
    }

    /// A visitor's list asks the caller ids of all its generations at once:
    /// answered in order, from held keys, held ids or the slots, and a slot
    /// that holds another generation is an error.
    #[test]
    fn caller_ids_of_several_generations_come_in_order_from_wherever_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = plain(dir.path());
        let slots: Vec<u32> = (1..=4u8)
            .map(|n| transcript_at(&mut kr, n, &format!("t-{n}")))
            .collect();
        let cache = KeyCache::new(Some(kr.reader()), 8);
        // Generation 2's keys are held (under another id, to tell them
        // apart), generation 3's id is held; 1 and 4 are read.
        cache.insert(
            [2; 16],
            super::cache::TranscriptKeys {
                content: Key::random().unwrap(),
                pii: None,
                caller_id: std::sync::Arc::from("held-2"),
            },
        );
        assert_eq!(&*cache.caller_id_at(&[3; 16], slots[2]).unwrap(), "t-3");
        let wanted: Vec<(crate::record::Tid, u32)> = (1..=4u8)
            .map(|n| ([n; 16], slots[n as usize - 1]))
            .collect();
        let ids = cache.caller_ids_at(&wanted).unwrap();
        let ids: Vec<&str> = ids.iter().map(|i| &**i).collect();
        assert_eq!(ids, ["t-1", "held-2", "t-3", "t-4"]);
        // Read ones are kept: answered with their slots wiped.
        kr.wipe(slots[0]).unwrap();
        kr.wipe(slots[3]).unwrap();
        assert_eq!(cache.caller_ids_at(&wanted).unwrap().len(), 4);
        let wrong = [([1; 16], slots[0]), ([9; 16], slots[1])];
        assert!(matches!(
            cache.caller_ids_at(&wrong),
            Err(Error::Internal(_))
        ));
    }

    /// The file grows by whole runs of cells, as a hole, and they are made
    /// ready (written with zeros, free) a step at a time; open reads the
    /// cells made ready, never the hole past them.
    #[test]
    fn the_file_grows_by_whole_runs_of_free_cells() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let mut kr = plain(dir.path());
        let size = || std::fs::metadata(&path).unwrap().len();
        let pii = pslot();
        assert_eq!(kr.cells_for(&pii).unwrap(), 1);
        let first = kr.allocate(&pii).unwrap();
        assert_eq!(first, HEAP, "lowest cell first");
        let grown = size();
        assert_eq!(grown, u64::from(HEAP + GROW) * CELL);
        assert_eq!(kr.len(), READY_END);
        // The rest of the step is taken without changing either length.
        for _ in HEAP + 1..READY_END {
            kr.allocate(&pii).unwrap();
        }
        assert_eq!((size(), kr.len(), kr.free_count()), (grown, READY_END, 0));
        // The next step does not fit in the file: it grows again first.
        let next = kr.allocate(&pii).unwrap();
        assert_eq!(next, READY_END);
        let end = READY_END + READY;
        assert_eq!(kr.len(), end);
        assert_eq!(size(), u64::from(READY_END + GROW) * CELL);
        // Unwritten cells read back as free, to the length the state
        // counted; a compaction's tail cut drops them and the hole.
        kr.write(first, &tslot("t-1")).unwrap();
        kr.sync().unwrap();
        drop(kr);
        let mut used = 0;
        let mut loaded = Keyring::open(dir.path(), None, RW, |_, _| used += 1).unwrap();
        assert_eq!(used, 1);
        assert_eq!(loaded.keyring.len(), end);
        assert_eq!(loaded.keyring.free_count(), (end - HEAP - 2) as usize);
        assert_eq!(u64::from(loaded.keyring.file_len) * CELL, size());
        // The hole: where open stops reading.
        let kr = &loaded.keyring;
        let tables = Tables::of(kr.directory.as_ref());
        assert_eq!(kr.hole_from(HEAP, kr.file_len, size(), tables), end);
        loaded.keyring.truncate_free_tail().unwrap();
        assert_eq!(size(), u64::from(HEAP + 2) * CELL);
    }

    /// What the file system reports as a hole is never read; a byte
    /// written into the hole (a flip, or a slot the state does not count)
    /// makes it data, read and checked at the next open.
    #[test]
    fn a_write_into_the_hole_is_read_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let mut kr = plain(dir.path());
        let i = kr.allocate(&tslot("t-1")).unwrap();
        kr.write(i, &tslot("t-1")).unwrap();
        kr.sync().unwrap();
        let (len, file_len) = (kr.len(), kr.file_len);
        assert!(file_len > len + 128, "a hole past the cells made ready");
        // A transcript slot written far into the hole, which no state counts
        // (as a batch cut short by a crash could leave one, were slots ever
        // written there), and a flipped byte further on.
        let far = (len + (file_len - len) / 2) / 8 * 8;
        kr.write_at(far, &kr.encode_slot(far, &tslot("t-far")).unwrap())
            .unwrap();
        drop(kr);
        let mut found = Vec::new();
        let loaded = Keyring::open(dir.path(), None, RW, |i, s| found.push((i, s))).unwrap();
        assert!(loaded.damaged.is_empty());
        assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), vec![i, far]);
        drop(loaded);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0x5A], u64::from(file_len - 3) * CELL + 7)
            .unwrap();
        drop(file);
        let loaded = Keyring::open(dir.path(), None, RW, |_, _| {}).unwrap();
        assert_eq!(loaded.damaged.len(), 1);
        assert_eq!(loaded.damaged[0].index, file_len - 3);
    }

    /// Slots take the cells they need, never cross a sector, and a wiped
    /// slot's cells are taken again by the next slot that fits them.
    #[test]
    fn slots_fill_sectors_and_reuse_wiped_cells() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = plain(dir.path());
        let long = tslot(&"x".repeat(150)); // 4 cells
        let short = tslot("t-1"); // 2 cells
        assert_eq!(kr.cells_for(&long).unwrap(), 4);
        assert_eq!(kr.cells_for(&short).unwrap(), 2);
        let a = kr.allocate(&short).unwrap(); // HEAP + 0-1
        let b = kr.allocate(&long).unwrap(); // HEAP + 2-5
        let c = kr.allocate(&long).unwrap(); // HEAP + 6-7 would cross: 8-11
        assert_eq!((a, b, c), (HEAP, HEAP + 2, HEAP + 8));
        for (i, s) in [(a, &short), (b, &long), (c, &long)] {
            kr.write(i, s).unwrap();
        }
        kr.wipe(b).unwrap();
        assert!(kr.read_slot(b).unwrap().is_none());
        assert!(kr.read_slot(b + 3).unwrap().is_none());
        assert!(matches!(
            kr.read_slot(a).unwrap(),
            Some(Slot::Transcript(_))
        ));
        // Cells HEAP + 6-7 and 12.. are after the cursor; wrap around to 2.
        let mut taken = Vec::new();
        for _ in 0..(GROW - 12) / 4 + 1 {
            taken.push(kr.allocate(&long).unwrap());
        }
        assert!(taken.contains(&b), "the wiped cells are reused");
        let raw = std::fs::read(dir.path().join("keyring")).unwrap();
        assert!(
            raw[b as usize * 64..(b as usize + 4) * 64]
                .iter()
                .all(|&x| x == 0)
        );
    }

    /// A directory entry rewritten with another address moves to where its
    /// hash puts it, with the next revision, and the old entry is wiped; one
    /// rewritten with a shorter spelling of the same address stays, its
    /// spare cells zeroed and free.
    #[test]
    fn a_visitor_entry_is_rewritten_in_place_or_moved() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = plain(dir.path());
        let vid = [4; 16];
        let entry = |email: &str| {
            Slot::Visitor(VisitorSlot {
                vid,
                email: email.into(),
                revision: 0,
            })
        };
        let short = format!("{}@example.com", "a".repeat(20));
        // An older entry's spelling of the same address (canonical: `short`).
        let spelled = format!("{}mailto:{short}", " ".repeat(40));
        let first = entry(&spelled);
        assert!(kr.reserve_visitors(8).unwrap().is_empty());
        let at = kr.allocate(&first).unwrap();
        assert!(kr.in_directory_table(at));
        kr.write(at, &first).unwrap();
        let n = kr.cells_for(&first).unwrap();
        assert!(n > kr.cells_for(&entry(&short)).unwrap());
        let used = kr.occupancy.used_cells();
        assert_eq!(kr.rewrite_visitor(at, vid, &short).unwrap(), (at, vec![]));
        let raw = std::fs::read(dir.path().join("keyring")).unwrap();
        let cells = &raw[at as usize * 64..(at + n) as usize * 64];
        assert!(cells[64..].iter().all(|&x| x == 0), "spare cells zeroed");
        assert!(!raw.windows(7).any(|w| w == b"mailto:"));
        assert_eq!(
            kr.occupancy.used_cells(),
            used - u64::from(n - 1),
            "and free"
        );
        let other = format!("{}@example.org", "b".repeat(30));
        let (moved, grown) = kr.rewrite_visitor(at, vid, &other).unwrap();
        assert!(grown.is_empty());
        assert_ne!(moved, at);
        assert!(kr.in_directory_table(moved));
        kr.sync().unwrap();
        match kr.read_slot(moved).unwrap() {
            Some(Slot::Visitor(v)) => assert_eq!((v.email, v.revision), (other, 1)),
            other => panic!("{other:?}"),
        }
        assert!(kr.read_slot(at).unwrap().is_none());
        assert!(newer_revision(0, REVISIONS - 1) && !newer_revision(REVISIONS - 1, 0));
        assert!(!newer_revision(5, 5) && newer_revision(6, 5) && !newer_revision(5, 6));
    }

    /// Lookups by email read the directory's table: every spelling of an
    /// address finds the entry placed under it, through growths of the
    /// table (which move every entry) and a reopen, plain and wrapped; a
    /// wiped entry is not found, and a damaged sector is an error naming
    /// its offset.
    /// Writes directory entry `slot` of visitor number `at.len()` (its vid
    /// starts with that number) after making room for it, keeping `at` (each
    /// visitor's cell) up to date through a growth's moves; returns whether
    /// the table grew.
    fn add_entry(kr: &mut Keyring, slot: &Slot, at: &mut Vec<u32>) -> bool {
        let moved = kr
            .reserve_visitors(u64::from(kr.cells_for(slot).unwrap()))
            .unwrap();
        let grew = !moved.is_empty();
        if grew {
            assert_eq!(moved.len(), at.len(), "a growth moves every entry");
        }
        for m in moved {
            let k = u32::from_le_bytes(m.vid[..4].try_into().unwrap()) as usize;
            assert_eq!(at[k], m.from);
            at[k] = m.to;
        }
        let i = kr.allocate(slot).unwrap();
        kr.write(i, slot).unwrap();
        at.push(i);
        grew
    }

    /// A table of many MiB grows a MiB at a time (it is never held whole):
    /// every entry is where the growth says, found by its email, and so
    /// after reopening.
    #[test]
    fn a_table_larger_than_the_growth_buffer_grows_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = Keyring::open(dir.path(), None, RW, |_, _| {})
            .unwrap()
            .keyring;
        let entry = |n: u32| {
            let mut vid = [0u8; 16];
            vid[..4].copy_from_slice(&n.to_le_bytes());
            VisitorSlot {
                vid,
                email: format!("visitor.number.{n}@example.com"),
                revision: 0,
            }
        };
        let mut at: Vec<u32> = Vec::new();
        let mut largest = 0;
        for n in 0..20_000u32 {
            add_entry(&mut kr, &Slot::Visitor(entry(n)), &mut at);
            largest = largest.max(kr.directory.as_ref().unwrap().table.sectors);
        }
        kr.sync().unwrap();
        assert!(
            u64::from(largest) * 512 > 3 << 20,
            "the table reached {largest} sectors only"
        );
        let check = |kr: &Keyring| {
            // Mapped up to the limit, read a sector at a time above it.
            let t = kr.directory.as_ref().unwrap().table;
            let bytes = u64::from(t.end() - t.start) * cells::CELL as u64;
            assert_eq!(kr.table_is_mapped(), bytes <= directory::MAP_LIMIT);
            let reader = kr.directory_reader();
            for how in [Sectors::Mapped, Sectors::Read] {
                for n in (0..20_000u32).step_by(7) {
                    let e = entry(n);
                    let found = reader.find(&directory::Query::new(&e.email), how).unwrap();
                    assert_eq!(found, vec![(at[n as usize], e)], "visitor {n}, {how:?}");
                }
            }
        };
        check(&kr);
        drop(kr);
        let loaded = Keyring::open(dir.path(), None, RW, |_, _| {}).unwrap();
        assert!(loaded.damaged.is_empty());
        check(&loaded.keyring);
    }

    #[test]
    fn lookups_find_entries_in_the_table_through_growth_and_reopen() {
        for kek in [None, Some(Key::random().unwrap())] {
            let dir = tempfile::tempdir().unwrap();
            let mut kr = Keyring::open(dir.path(), kek.as_ref(), RW, |_, _| {})
                .unwrap()
                .keyring;
            let entry = |n: u32, email: String| {
                let mut vid = [0u8; 16];
                vid[..4].copy_from_slice(&n.to_le_bytes());
                VisitorSlot {
                    vid,
                    email,
                    revision: 0,
                }
            };
            let mut at: Vec<u32> = Vec::new();
            let mut growths = 0;
            for n in 0..300u32 {
                let slot = Slot::Visitor(entry(n, format!("user{n}@example.com")));
                if add_entry(&mut kr, &slot, &mut at) {
                    growths += 1;
                }
            }
            kr.sync().unwrap();
            assert!(growths >= 3, "{growths} growths");
            let table = kr.directory.as_ref().unwrap().table;
            assert!(
                table.capacity()
                    >= 2 * 300
                        * u64::from(
                            kr.cells_for(&Slot::Visitor(entry(0, "user0@example.com".into())))
                                .unwrap()
                        )
            );
            // Through the map of the table (made anew at each growth, and
            // showing the wipe written into the file) and with positioned
            // reads: the same answers.
            let check = |kr: &Keyring, wiped: Option<u32>| {
                assert!(kr.table_is_mapped(), "lookups read a map of the table");
                let reader = kr.directory_reader();
                for how in [Sectors::Mapped, Sectors::Read] {
                    for n in 0..300u32 {
                        let found = reader
                            .find(
                                &directory::Query::new(&format!(" USER{n}@Example.COM ")),
                                how,
                            )
                            .unwrap();
                        if Some(n) == wiped {
                            assert!(found.is_empty(), "{how:?}");
                        } else {
                            assert_eq!(
                                found,
                                vec![(at[n as usize], entry(n, format!("user{n}@example.com")))],
                                "{how:?}"
                            );
                        }
                    }
                    assert!(
                        reader
                            .find(&directory::Query::new("nobody@example.com"), how)
                            .unwrap()
                            .is_empty()
                    );
                }
            };
            check(&kr, None);
            kr.wipe(at[7]).unwrap();
            kr.sync().unwrap();
            check(&kr, Some(7));
            drop(kr);
            let loaded = Keyring::open(dir.path(), kek.as_ref(), RW, |_, _| {}).unwrap();
            assert!(loaded.damaged.is_empty());
            check(&loaded.keyring, Some(7));
            // Two spellings of one address (stored before canonical emails):
            // both are found, and `choose` tells them apart.
            let mut kr = loaded.keyring;
            let twins = [
                entry(900, "ann@x.example".into()),
                entry(901, "ann@x.example.".into()),
            ];
            for t in &twins {
                let slot = Slot::Visitor(t.clone());
                let _ = kr.reserve_visitors(2).unwrap();
                let i = kr.allocate(&slot).unwrap();
                kr.write(i, &slot).unwrap();
            }
            let found = kr
                .directory_reader()
                .find(&directory::Query::new("ANN@x.example"), Sectors::Mapped)
                .unwrap();
            assert_eq!(found.len(), 2);
            let tagged: Vec<_> = found.iter().map(|(s, v)| (*s, v, v.vid)).collect();
            assert_eq!(
                directory::choose(&directory::Query::new("Ann@X.example"), &tagged),
                Some(twins[0].vid)
            );
            assert_eq!(
                directory::choose(&directory::Query::new("ann@x.example."), &tagged),
                Some(twins[1].vid)
            );
            kr.sync().unwrap();
            // A damaged sector header on a lookup's way is an error naming it.
            let probe = kr
                .directory_reader()
                .find(&directory::Query::new("user1@example.com"), Sectors::Mapped)
                .unwrap();
            let sector = table.sector_of(probe[0].0);
            let header = u64::from(table.header_cell(sector)) * CELL;
            drop(kr);
            let path = dir.path().join("keyring");
            let mut raw = std::fs::read(&path).unwrap();
            raw[header as usize + 7] ^= 1;
            std::fs::write(&path, &raw).unwrap();
            let loaded = Keyring::open(dir.path(), kek.as_ref(), RW, |_, _| {}).unwrap();
            assert_eq!(loaded.damaged.len(), 1);
            let err = loaded
                .keyring
                .directory_reader()
                .find(&directory::Query::new("user1@example.com"), Sectors::Mapped)
                .unwrap_err();
            match err {
                Error::Corrupt { offset, .. } => assert_eq!(offset, header),
                other => panic!("{other}"),
            }
        }
    }

    /// `verify`'s check of a copy finds a directory entry placed where a
    /// lookup of its email would not reach it (past its home sector, which
    /// never spilled), and says nothing of a well-placed one.
    #[test]
    fn a_directory_entry_out_of_its_probe_is_damage_to_verify() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = plain(dir.path());
        let slot = Slot::Visitor(VisitorSlot {
            vid: [5; 16],
            email: "ann@example.com".into(),
            revision: 0,
        });
        let good = kr.allocate(&slot).unwrap();
        kr.write(good, &slot).unwrap();
        kr.sync().unwrap();
        let path = dir.path().join("keyring");
        assert!(
            kr.check_copy(&std::fs::read(&path).unwrap())
                .damaged
                .is_empty()
        );
        let d = kr.directory.clone().unwrap();
        let home = d.table.sector_of(good);
        let wrong = d.table.header_cell((home + 1) % d.table.sectors) + 1;
        kr.wipe(good).unwrap();
        kr.write(wrong, &slot).unwrap();
        kr.sync().unwrap();
        let check = kr.check_copy(&std::fs::read(&path).unwrap());
        assert_eq!(check.damaged.len(), 1);
        assert_eq!(check.damaged[0].index, wrong);
        assert_eq!(
            check.damaged[0].reason,
            "a directory entry that a lookup of its email cannot reach"
        );
    }

    /// A write into the directory's table waits for the lookups reading it
    /// (they hold the lookups' lock for their whole probe), so that a lookup
    /// never reads a half-written cell; a write elsewhere does not wait.
    #[test]
    fn writes_into_the_table_wait_for_lookups() {
        use std::sync::mpsc::{RecvTimeoutError, channel};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let mut kr = plain(dir.path());
        let view = Arc::clone(&kr.view);
        let lookup = view.read();
        let (tx, rx) = channel();
        let writer = std::thread::spawn(move || {
            // Outside the table: not held up.
            let key_slot = tslot("t-1");
            let i = kr.allocate(&key_slot).unwrap();
            kr.write(i, &key_slot).unwrap();
            tx.send("key slot written").unwrap();
            let entry = Slot::Visitor(VisitorSlot {
                vid: [1; 16],
                email: "ann@example.com".into(),
                revision: 0,
            });
            let i = kr.allocate(&entry).unwrap();
            kr.write(i, &entry).unwrap();
            tx.send("entry written").unwrap();
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(30)),
            Ok("key slot written")
        );
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(300)),
            Err(RecvTimeoutError::Timeout),
            "the entry was written while a lookup held the table"
        );
        drop(lookup);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(30)),
            Ok("entry written")
        );
        writer.join().unwrap();
    }

    /// Staged slots land exactly as slot-by-slot writes would, in runs.
    #[test]
    fn staged_slots_are_written_in_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = plain(dir.path());
        let slots: Vec<u32> = (0..6)
            .map(|n| kr.allocate(&tslot(&format!("t-{n}"))).unwrap())
            .collect();
        let mut staged = StagedSlots::default();
        // Two runs: 0-2 and 4-5 (3 is left free).
        for (n, &i) in slots.iter().enumerate().filter(|(n, _)| *n != 3) {
            kr.stage(&mut staged, i, &tslot(&format!("t-{n}"))).unwrap();
        }
        kr.write_staged(staged).unwrap();
        kr.sync().unwrap();
        for (n, &i) in slots.iter().enumerate() {
            match kr.read_slot(i).unwrap() {
                Some(Slot::Transcript(t)) => assert_eq!(t.caller_id, format!("t-{n}")),
                None => assert_eq!(n, 3),
                _ => panic!("slot {i}"),
            }
        }
    }

    /// A large keyring's file grows by an eighth of the keyring (up to 1
    /// MiB), so the syncs that growth costs become rarer as the store
    /// grows; its cells are made ready a step at a time.
    #[test]
    fn a_large_keyring_grows_by_an_eighth() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = plain(dir.path());
        let mut growths = 0;
        let pii = pslot();
        for _ in 0..200_000 {
            let (len, file_len) = (kr.len(), kr.file_len);
            kr.allocate(&pii).unwrap();
            if kr.len() != len {
                assert_eq!(kr.len(), (len + READY).next_multiple_of(64));
            }
            if kr.file_len != file_len {
                assert_eq!(kr.file_len, len + (len / 8).clamp(GROW, MAX_GROW));
                growths += 1;
            }
            assert!(kr.len() <= kr.file_len && kr.file_len - kr.len() <= MAX_GROW);
        }
        assert!(growths < 200_000 / GROW as usize, "{growths} growths");
        let size = std::fs::metadata(dir.path().join("keyring")).unwrap().len();
        assert_eq!(size, u64::from(kr.file_len) * CELL);
    }

    #[test]
    fn wrong_or_missing_kek_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let kek = Key::random().unwrap();
        drop(Keyring::open(dir.path(), Some(&kek), RW, |_, _| {}).unwrap());
        assert!(matches!(
            Keyring::open(dir.path(), None, RW, |_, _| {}).err(),
            Some(Error::Kek(_))
        ));
        let other = Key::random().unwrap();
        assert!(matches!(
            Keyring::open(dir.path(), Some(&other), RW, |_, _| {}).err(),
            Some(Error::Kek(_))
        ));
    }

    #[test]
    fn damaged_slots_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = plain(dir.path());
        let i = kr.allocate(&tslot("t-1")).unwrap();
        kr.write(i, &tslot("t-1")).unwrap();
        kr.sync().unwrap();
        drop(kr);
        let path = dir.path().join("keyring");
        let mut raw = std::fs::read(&path).unwrap();
        raw[i as usize * 64 + 40] ^= 0x10;
        std::fs::write(&path, &raw).unwrap();
        let loaded = Keyring::open(dir.path(), None, RW, |_, _| {}).unwrap();
        assert_eq!(loaded.damaged.len(), 1);
        assert_eq!(loaded.damaged[0].index, i);
    }

    #[test]
    fn the_state_slot_holds_the_marks_and_a_short_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = plain(dir.path());
        for _ in 0..3 {
            let i = kr.allocate(&tslot("t-1")).unwrap();
            kr.write(i, &tslot("t-1")).unwrap();
        }
        kr.note_segment(4, 1234);
        kr.note_audit(7, 900, Some((5, 700)));
        kr.sync().unwrap();
        let marks = kr.marks();
        assert_eq!(marks.slots, READY_END);
        drop(kr);
        let loaded = Keyring::open(dir.path(), None, RW, |_, _| {}).unwrap();
        let m = loaded.marks.unwrap();
        assert_eq!(m, marks);
        assert_eq!(
            (m.segment, m.segment_len, m.audit_entries, m.audit_bytes),
            (4, 1234, 7, 900)
        );
        assert_eq!((m.audit_done_entries, m.audit_done_bytes), (5, 700));
        drop(loaded);
        // Cut inside the hole past the keyring's length, or at it: nothing
        // acknowledged is missing.
        let path = dir.path().join("keyring");
        let full = std::fs::read(&path).unwrap();
        let end = marks.slots as usize * 64;
        assert!(full.len() > end + 64);
        for cut in [full.len() - 64, end] {
            std::fs::write(&path, &full[..cut]).unwrap();
            let loaded = Keyring::open(dir.path(), None, RW, |_, _| {}).unwrap();
            assert!(loaded.damaged.is_empty());
        }
        // Cut at a slot boundary or inside a slot: the end is missing.
        for cut in [end - 64, end - 100, 3 * SLOT_SIZE] {
            std::fs::write(&path, &full[..cut]).unwrap();
            let err = Keyring::open(dir.path(), None, RW, |_, _| {})
                .err()
                .unwrap();
            assert!(err.to_string().contains("end is missing"), "{err}");
            let salvage = OpenMode {
                salvage: true,
                ..RW
            };
            let loaded = Keyring::open(dir.path(), None, salvage, |_, _| {}).unwrap();
            assert!(!loaded.damaged.is_empty());
        }
        // A flipped state slot is damage.
        let mut bad = full.clone();
        bad[SLOT_SIZE + 20] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let loaded = Keyring::open(dir.path(), None, RW, |_, _| {}).unwrap();
        assert_eq!(loaded.damaged[0].index, STATE_SLOT);
    }

    /// A keyring of format 1 or 2 (512-byte slots) as an older build wrote
    /// it, from the slots given.
    fn legacy_keyring(dir: &Path, version: u16, kek: Option<&Key>, slots: &[(u32, Slot)]) {
        let id = [3u8; 16];
        let none = Directory {
            key: Zeroizing::new([0; 32]),
            table: table::Region::NONE,
            retire: table::Region::NONE,
        };
        let mut h = build_header(id, kek, false, &none).unwrap();
        h[8..10].copy_from_slice(&version.to_le_bytes());
        h[10..12].copy_from_slice(&(SLOT_SIZE as u16).to_le_bytes());
        let crc = crc32fast::hash(&h[..508]);
        h[508..].copy_from_slice(&crc.to_le_bytes());
        let count = slots.iter().map(|s| s.0).max().unwrap_or(1) + 1;
        let mut raw = vec![0u8; count as usize * SLOT_SIZE];
        raw[..SLOT_SIZE].copy_from_slice(&h);
        if version == KEYRING_VERSION_2 {
            let marks = Marks {
                slots: count,
                segment: 9,
                writes: 3,
                ..Marks::default()
            };
            raw[SLOT_SIZE..2 * SLOT_SIZE].copy_from_slice(&encode_state(&marks));
        }
        for (i, slot) in slots {
            let (kind, payload) = slot::seal_payload(kek, &id, *i, slot).unwrap();
            let at = *i as usize * SLOT_SIZE;
            let b = &mut raw[at..at + SLOT_SIZE];
            b[4] = kind;
            b[5] = 1;
            b[6..8].copy_from_slice(&(payload.len() as u16).to_le_bytes());
            b[8..8 + payload.len()].copy_from_slice(&payload);
            let crc = crc32fast::hash(&b[4..]);
            b[..4].copy_from_slice(&crc.to_le_bytes());
        }
        std::fs::write(dir.join("keyring"), raw).unwrap();
    }

    fn pslot() -> Slot {
        Slot::Pii(PiiSlot {
            tid: [1; 16],
            pii_key: Key::random().unwrap(),
        })
    }

    /// Formats 1 and 2 are read as they are by a read-only open (which
    /// writes nothing), and rewritten in format 3 by a writing open: the
    /// same slots (PII slots renumbered where transcript slots name them),
    /// the same marks, the old file's bytes overwritten.
    #[test]
    fn older_keyrings_are_read_and_rewritten_by_a_writing_open() {
        for (version, kek) in [
            (KEYRING_VERSION_1, None),
            (KEYRING_VERSION_2, None),
            (KEYRING_VERSION_2, Some(Key::random().unwrap())),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let Slot::Pii(p) = pslot() else {
                unreachable!()
            };
            let Slot::Transcript(mut t) = tslot("t-1") else {
                unreachable!()
            };
            t.pii_slot = 5;
            t.tid = p.tid;
            let visitor = Slot::Visitor(VisitorSlot {
                vid: [2; 16],
                email: "ann@example.com".into(),
                revision: 0,
            });
            let slots = vec![
                (3, Slot::Transcript(t.clone())),
                (5, Slot::Pii(p.clone())),
                (9, visitor.clone()),
            ];
            legacy_keyring(dir.path(), version, kek.as_ref(), &slots);
            let path = dir.path().join("keyring");
            let raw = std::fs::read(&path).unwrap();
            let read_only = OpenMode {
                create: false,
                read_only: true,
                salvage: false,
            };
            let mut seen = Vec::new();
            let loaded = Keyring::open(dir.path(), kek.as_ref(), read_only, |i, s| {
                seen.push((i, s))
            })
            .unwrap();
            assert_eq!(seen, slots);
            assert_eq!(loaded.keyring.version, version);
            assert_eq!(loaded.marks.is_some(), version == KEYRING_VERSION_2);
            assert_eq!(loaded.keyring.read_slot(9).unwrap(), Some(visitor.clone()));
            drop(loaded);
            assert_eq!(
                std::fs::read(&path).unwrap(),
                raw,
                "a read-only open writes nothing"
            );

            let mut seen = Vec::new();
            let loaded =
                Keyring::open(dir.path(), kek.as_ref(), RW, |i, s| seen.push((i, s))).unwrap();
            assert!(loaded.damaged.is_empty());
            assert_eq!(loaded.keyring.version, KEYRING_VERSION);
            assert_eq!(loaded.marks.map(|m| m.segment), (version == 2).then_some(9));
            let pii_at = seen.iter().find(|s| matches!(s.1, Slot::Pii(_))).unwrap().0;
            t.pii_slot = pii_at;
            let mut want: Vec<Slot> = vec![
                Slot::Pii(p.clone()),
                Slot::Transcript(t.clone()),
                visitor.clone(),
            ];
            let mut got: Vec<Slot> = seen.into_iter().map(|s| s.1).collect();
            want.sort_by_key(|s| format!("{s:?}"));
            got.sort_by_key(|s| format!("{s:?}"));
            assert_eq!(got, want);
            let mut kr = loaded.keyring;
            // Key slots first, then the directory's table, sized for its
            // one entry, which holds the visitor.
            let table = kr.directory.as_ref().unwrap().table;
            assert_eq!(table.sectors, table::MIN_SECTORS);
            let visitor_at = (cells::FIRST_CELL..table.end())
                .find(|&i| matches!(kr.read_slot(i), Ok(Some(Slot::Visitor(_)))))
                .unwrap();
            assert!(table.contains(visitor_at));
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                u64::from(table.end()) * CELL
            );
            assert!(!dir.path().join("keyring.rekey").exists());
            // Writable: a new slot, then the state, which for a format-1
            // keyring clears the header's pending flag.
            let i = kr.allocate(&pslot()).unwrap();
            kr.write(i, &pslot()).unwrap();
            kr.sync().unwrap();
            drop(kr);
            let loaded = Keyring::open(dir.path(), kek.as_ref(), RW, |_, _| {}).unwrap();
            assert!(loaded.marks.is_some() && !loaded.keyring.state_pending);
        }
    }

    #[test]
    fn a_missing_keyring_is_not_created_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let no = OpenMode {
            create: false,
            ..RW
        };
        assert!(matches!(
            Keyring::open(dir.path(), None, no, |_, _| {}).err(),
            Some(Error::NotAStore(_))
        ));
        assert!(!dir.path().join("keyring").exists());
    }
}
