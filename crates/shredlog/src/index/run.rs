//! Run files: immutable tables of fixed-size rows sorted by a fixed-size
//! byte key, the on-disk building block of a disk-resident index (an
//! LSM-like design: runs are written once, in key order, and merged into
//! new runs over time; a run is never changed in place).
//!
//! A run holds one or more *sections*. Each section is its own table, with
//! its own key length and value length; each of its rows is either a value
//! (of exactly the section's value length, possibly 0 bytes) or a tombstone
//! (the key was deleted: a newer run's tombstone hides an older run's row).
//! It holds random ids, numbers and keyed hashes: never a key of the
//! keyring and never personal data.
//!
//! It is read with positioned reads, a 4 KiB block at a time, each block
//! checked by its own CRC when read. Open reads only the header; a
//! section's fence blocks are read at its first lookup (in one read); a
//! lookup reads at most one data block, found by a binary search over the
//! fences, which are the only thing a [`Run`] keeps in
//! memory (`key_len` bytes per data block). Data blocks read are kept, after
//! their checks, in the shared [`BlockCache`], under
//! `(cache_id, u32::MAX, block number)`: the generation `u32::MAX` keeps
//! them apart from the record-location files' blocks, whose generations
//! are small, and `cache_id` (chosen by the caller, one per run file) from
//! other runs' blocks.
//!
//! # Layout
//!
//! All integers are little-endian. The file is a sequence of 4096-byte
//! blocks numbered from 0 (block `n` is at byte offset `n × 4096`). Every
//! block ends with a CRC-32 (IEEE, as `crc32fast` computes it) of its first
//! 4092 bytes, in bytes 4092..4096. Any difference from what follows is
//! damage ([`Error::Corrupt`], naming the file and the offset of the block).
//!
//! **Block 0, the header:**
//!
//! | bytes                      | field                                    |
//! |----------------------------|------------------------------------------|
//! | 0..8                       | magic `SHRDRUN1`                         |
//! | 8..12                      | format version, u32 = 1                  |
//! | 12..16                     | section count `S`, u32, at most 92       |
//! | 16 + 44·i .. 16 + 44·(i+1) | section `i`'s entry, for `i` in `0..S`   |
//! | 16 + 44·S .. 4092          | zeros                                    |
//! | 4092..4096                 | CRC-32 of bytes 0..4092                  |
//!
//! A section entry (offsets within its 44 bytes):
//!
//! | bytes  | field                                      |
//! |--------|--------------------------------------------|
//! | 0..2   | `key_len`, u16, at least 1                 |
//! | 2..4   | `val_len`, u16                             |
//! | 4..12  | `rows`, u64                                |
//! | 12..20 | first data block, u64                      |
//! | 20..28 | data block count, u64                      |
//! | 28..36 | first fence block, u64                     |
//! | 36..44 | fence block count, u64                     |
//!
//! A row takes `R = key_len + 1 + val_len` bytes, at most 4090. A data
//! block holds `P = 4090 / R` rows (integer division), a fence block
//! `F = 4090 / key_len` fences. Everything but `key_len`, `val_len` and
//! `rows` follows from them, and a reader checks that it does:
//!
//! - data block count `D = ⌈rows / P⌉`, fence block count `⌈D / F⌉`;
//! - the data blocks of all sections come first, in section order:
//!   section 0's first data block is block 1, each later section's is right
//!   after the previous section's data blocks; then the fence blocks of all
//!   sections, in section order, the first right after the last data block
//!   of any section. An empty section (`rows` = 0) has no blocks, and its
//!   first blocks are where its blocks would have started;
//! - the file's length is exactly `(1 + all data and fence blocks) × 4096`.
//!
//! **Data block** `k` of a section (`k` from 0):
//!
//! | bytes          | field                                           |
//! |----------------|-------------------------------------------------|
//! | 0..2           | row count `n`, u16                              |
//! | 2 .. 2 + n·R   | rows, back to back                              |
//! | 2 + n·R .. 4092| zeros                                           |
//! | 4092..4096     | CRC-32 of bytes 0..4092                         |
//!
//! A row is `key (key_len bytes) | tag u8 | value (val_len bytes)`, the tag
//! 1 for a value and 0 for a tombstone (whose value bytes are zeros). Every
//! data block but the section's last holds exactly `P` rows, the last one
//! the rest (`rows − (D−1)·P`, at least 1). Keys are strictly ascending,
//! compared as bytes, across the whole section.
//!
//! **Fence block** `j` of a section (`j` from 0):
//!
//! | bytes                | field                                       |
//! |----------------------|---------------------------------------------|
//! | 0..2                 | fence count `m`, u16                        |
//! | 2 .. 2 + m·key_len   | fences, back to back, `key_len` bytes each  |
//! | 2 + m·key_len .. 4092| zeros                                       |
//! | 4092..4096           | CRC-32 of bytes 0..4092                     |
//!
//! Fence `j·F + i` (the `i`-th of block `j`) is the first key of the
//! section's data block `j·F + i`. Every fence block but the section's last
//! holds exactly `F` fences, the last one the rest; so the fences are
//! strictly ascending too.
//!
//! # Writing
//!
//! [`RunWriter`] streams the data blocks to `<path>.tmp` as rows come,
//! holding only the fences and the block being filled; [`RunWriter::finish`]
//! appends the fence blocks, writes the header into block 0, syncs the file
//! and renames it to `path`. It does not sync the directory: the caller
//! does, once for all the files it wrote. A writer dropped unfinished
//! removes its temporary file.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::blocks::BlockCache;
use super::sidecar::BLOCK;
use crate::error::{Error, IoContext, Result};

/// Bytes of a block covered by its CRC (the CRC is in the last 4).
const PAYLOAD: usize = BLOCK - 4;
/// Room for rows or fences in a block, after its u16 count.
const ROOM: usize = PAYLOAD - 2;
const MAGIC: &[u8; 8] = b"SHRDRUN1";
const VERSION: u32 = 1;
/// Bytes of the header before the section entries.
const HEADER_FIXED: usize = 16;
/// Bytes of one section entry in the header.
const ENTRY: usize = 44;
/// Most sections a run holds (as many entries as fit in the header block).
pub(crate) const MAX_SECTIONS: usize = (PAYLOAD - HEADER_FIXED) / ENTRY;
/// The generation a run's blocks are cached under ([`BlockCache`] keys).
const CACHE_GENERATION: u32 = u32::MAX;
/// Tag of a row holding a value.
const TAG_VALUE: u8 = 1;
/// Tag of a tombstone.
const TAG_TOMBSTONE: u8 = 0;

/// The shape of a section's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SectionSpec {
    /// Bytes of every key (at least 1).
    pub key_len: u16,
    /// Bytes of every value (0 for a set of keys).
    pub val_len: u16,
}

impl SectionSpec {
    /// Whether a row fits a block (and a key has at least one byte).
    fn is_valid(self) -> bool {
        self.key_len >= 1 && self.row_len() <= ROOM
    }

    /// Bytes of a row: key, tag, value.
    fn row_len(self) -> usize {
        usize::from(self.key_len) + 1 + usize::from(self.val_len)
    }

    /// Rows per data block (`P`); at least 1 for a valid spec.
    fn rows_per_block(self) -> usize {
        ROOM / self.row_len()
    }

    /// Fences per fence block (`F`); at least 1 for a valid spec.
    fn fences_per_block(self) -> usize {
        ROOM / usize::from(self.key_len).max(1)
    }
}

/// Where a section's blocks are: its header entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Placement {
    spec: SectionSpec,
    rows: u64,
    first_data: u64,
    data_blocks: u64,
    first_fence: u64,
    fence_blocks: u64,
}

impl Placement {
    fn encode(&self, out: &mut [u8]) {
        put(out, 0, &self.spec.key_len.to_le_bytes());
        put(out, 2, &self.spec.val_len.to_le_bytes());
        put(out, 4, &self.rows.to_le_bytes());
        put(out, 12, &self.first_data.to_le_bytes());
        put(out, 20, &self.data_blocks.to_le_bytes());
        put(out, 28, &self.first_fence.to_le_bytes());
        put(out, 36, &self.fence_blocks.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Option<Placement> {
        Some(Placement {
            spec: SectionSpec {
                key_len: u16_at(b, 0)?,
                val_len: u16_at(b, 2)?,
            },
            rows: u64_at(b, 4)?,
            first_data: u64_at(b, 12)?,
            data_blocks: u64_at(b, 20)?,
            first_fence: u64_at(b, 28)?,
            fence_blocks: u64_at(b, 36)?,
        })
    }
}

/// The placement of sections of these shapes and row counts, as the layout
/// prescribes, and the number of blocks of the file (the header included);
/// `None` if a spec is invalid or the numbers overflow.
fn place(sections: &[(SectionSpec, u64)]) -> Option<(Vec<Placement>, u64)> {
    let mut out = Vec::with_capacity(sections.len());
    let mut next = 1u64;
    for &(spec, rows) in sections {
        if !spec.is_valid() {
            return None;
        }
        let data_blocks = rows.div_ceil(spec.rows_per_block() as u64);
        out.push(Placement {
            spec,
            rows,
            first_data: next,
            data_blocks,
            first_fence: 0,
            fence_blocks: data_blocks.div_ceil(spec.fences_per_block() as u64),
        });
        next = next.checked_add(data_blocks)?;
    }
    for p in &mut out {
        p.first_fence = next;
        next = next.checked_add(p.fence_blocks)?;
    }
    Some((out, next))
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Writes a block's CRC (of its first 4092 bytes) into its last 4 bytes.
fn seal_block(block: &mut [u8]) {
    let crc = crc32fast::hash(block.get(..PAYLOAD).unwrap_or_default());
    put(block, PAYLOAD, &crc.to_le_bytes());
}

fn block_ok(block: &[u8]) -> bool {
    block.len() == BLOCK
        && u32_at(block, PAYLOAD) == Some(crc32fast::hash(block.get(..PAYLOAD).unwrap_or_default()))
}

/// Whether `bytes` (absent counts as not) are all zero.
fn zeros(bytes: Option<&[u8]>) -> bool {
    bytes.is_some_and(|b| b.iter().all(|&x| x == 0))
}

/// Row `j` of a data block: key, tag, value.
fn row(block: &[u8], spec: SectionSpec, j: usize) -> Option<(&[u8], u8, &[u8])> {
    let k = usize::from(spec.key_len);
    let at = j.checked_mul(spec.row_len())?.checked_add(2)?;
    let key = block.get(at..at.checked_add(k)?)?;
    let tag = *block.get(at + k)?;
    let value = block.get(at + k + 1..at + spec.row_len())?;
    Some((key, tag, value))
}

/// The path a run is written to before its rename: `<path>.tmp`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// A section as the writer fills it.
struct Filling {
    spec: SectionSpec,
    rows: u64,
    /// First key of each data block written or being filled.
    fences: Vec<u8>,
}

/// Writes a run file: rows in key order, section after section.
pub(crate) struct RunWriter {
    path: PathBuf,
    tmp: PathBuf,
    /// `None` once [`RunWriter::finish`] took it.
    out: Option<BufWriter<File>>,
    sections: Vec<Filling>,
    /// The section rows go to; earlier ones are complete.
    current: usize,
    /// The data block being filled (`BLOCK` bytes).
    block: Vec<u8>,
    /// Rows in `block`.
    in_block: usize,
    /// The last key pushed to `current` (when it has rows).
    last_key: Vec<u8>,
    /// A write failed: the temporary file's contents are unknown.
    failed: bool,
    /// Renamed into place: nothing to remove on drop.
    done: bool,
}

impl std::fmt::Debug for RunWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunWriter")
            .field("path", &self.path)
            .field("current", &self.current)
            .finish()
    }
}

impl RunWriter {
    /// Starts writing a run with these sections to `<path>.tmp` (replacing
    /// any such file a crash left).
    ///
    /// # Errors
    /// [`Error::Internal`] for more than [`MAX_SECTIONS`] sections or a
    /// section whose key is empty or whose row does not fit a block
    /// (`key_len + 1 + val_len > 4090`); [`Error::Io`] if the file cannot be
    /// created.
    pub(crate) fn create(path: &Path, sections: &[SectionSpec]) -> Result<RunWriter> {
        if sections.len() > MAX_SECTIONS {
            return Err(Error::Internal(format!(
                "a run holds at most {MAX_SECTIONS} sections, not {}",
                sections.len()
            )));
        }
        if let Some((i, s)) = sections.iter().enumerate().find(|(_, s)| !s.is_valid()) {
            return Err(Error::Internal(format!(
                "run section {i} has an invalid shape (key {} bytes, value {} bytes)",
                s.key_len, s.val_len
            )));
        }
        let tmp = temp_path(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .at(&tmp)?;
        let mut writer = RunWriter {
            path: path.to_owned(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 16, file)),
            sections: sections
                .iter()
                .map(|&spec| Filling {
                    spec,
                    rows: 0,
                    fences: Vec::new(),
                })
                .collect(),
            current: 0,
            block: vec![0u8; BLOCK],
            in_block: 0,
            last_key: Vec::new(),
            failed: false,
            done: false,
        };
        // Block 0 is written last (it names the counts); hold its place.
        let placeholder = vec![0u8; BLOCK];
        writer.write(&placeholder)?;
        Ok(writer)
    }

    /// Appends a row to section `section`: `Some(value)` a value, `None` a
    /// tombstone. Sections are written in order (0, then 1, ...); moving
    /// to a later section ends the earlier ones.
    ///
    /// # Errors
    /// [`Error::Internal`] (and nothing is written) if the section does not
    /// exist or an earlier section is written after a later one, if the key
    /// or the value has the wrong length, or if the key is not strictly
    /// greater than the section's previous key; [`Error::Io`] if a write
    /// fails (the writer then refuses everything).
    pub(crate) fn push(&mut self, section: usize, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.usable()?;
        let n = self.sections.len();
        let Some(spec) = self.sections.get(section).map(|s| s.spec) else {
            return Err(Error::Internal(format!(
                "run section {section} does not exist (the run has {n})"
            )));
        };
        if section < self.current {
            return Err(Error::Internal(format!(
                "run section {section} written after section {}",
                self.current
            )));
        }
        if key.len() != usize::from(spec.key_len) {
            return Err(Error::Internal(format!(
                "a key of {} bytes for run section {section}, whose keys have {}",
                key.len(),
                spec.key_len
            )));
        }
        if let Some(v) = value
            && v.len() != usize::from(spec.val_len)
        {
            return Err(Error::Internal(format!(
                "a value of {} bytes for run section {section}, whose values have {}",
                v.len(),
                spec.val_len
            )));
        }
        if section == self.current
            && self.sections.get(section).is_some_and(|s| s.rows > 0)
            && key <= self.last_key.as_slice()
        {
            return Err(Error::Internal(format!(
                "keys pushed to run section {section} out of order (not strictly ascending)"
            )));
        }
        if section > self.current {
            self.flush_block()?;
            self.current = section;
        }
        if self.in_block == spec.rows_per_block() {
            self.flush_block()?;
        }
        let Some(s) = self.sections.get_mut(section) else {
            return Err(Error::Internal("run section vanished".into()));
        };
        if self.in_block == 0 {
            s.fences.extend_from_slice(key);
        }
        let at = 2 + self.in_block * spec.row_len();
        let k = usize::from(spec.key_len);
        put(&mut self.block, at, key);
        match value {
            Some(v) => {
                put(&mut self.block, at + k, &[TAG_VALUE]);
                put(&mut self.block, at + k + 1, v);
            }
            None => {
                // The block is zeroed after each flush: the tag and the value
                // of a tombstone are zeros already; written anyway.
                put(&mut self.block, at + k, &[TAG_TOMBSTONE]);
                if let Some(dst) = self.block.get_mut(at + k + 1..at + spec.row_len()) {
                    dst.fill(0);
                }
            }
        }
        self.in_block += 1;
        s.rows += 1;
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        Ok(())
    }

    /// Writes the fences and the header, syncs the temporary file and
    /// renames it to its path (the directory is not synced: the caller
    /// does), and returns the run, read through `cache` under `cache_id`.
    ///
    /// # Errors
    /// [`Error::Io`] if a write, the sync or the rename fails (the
    /// temporary file is then removed); [`Error::Internal`] after an earlier
    /// failed write.
    pub(crate) fn finish(mut self, cache: Arc<BlockCache>, cache_id: u64) -> Result<Run> {
        self.usable()?;
        self.flush_block()?;
        let sections = std::mem::take(&mut self.sections);
        let shapes: Vec<(SectionSpec, u64)> = sections.iter().map(|s| (s.spec, s.rows)).collect();
        let (placements, _) = place(&shapes)
            .ok_or_else(|| Error::Internal("a run's layout does not fit u64".into()))?;
        // Fence blocks, section after section.
        let mut block = vec![0u8; BLOCK];
        for s in &sections {
            let k = usize::from(s.spec.key_len);
            for chunk in s.fences.chunks(s.spec.fences_per_block() * k) {
                block.fill(0);
                let count = u16::try_from(chunk.len() / k)
                    .map_err(|_| Error::Internal("a fence block overflows".into()))?;
                put(&mut block, 0, &count.to_le_bytes());
                put(&mut block, 2, chunk);
                seal_block(&mut block);
                self.write(&block)?;
            }
        }
        // The header, into its place.
        block.fill(0);
        put(&mut block, 0, MAGIC);
        put(&mut block, 8, &VERSION.to_le_bytes());
        put(&mut block, 12, &(placements.len() as u32).to_le_bytes());
        for (i, p) in placements.iter().enumerate() {
            let at = HEADER_FIXED + ENTRY * i;
            if let Some(entry) = block.get_mut(at..at + ENTRY) {
                p.encode(entry);
            }
        }
        seal_block(&mut block);
        let out = self
            .out
            .take()
            .ok_or_else(|| Error::Internal("a run writer was finished twice".into()))?;
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.write_all_at(&block, 0).at(&self.tmp)?;
        file.sync_all().at(&self.tmp)?;
        std::fs::rename(&self.tmp, &self.path).at(&self.path)?;
        self.done = true;
        let sections = sections
            .into_iter()
            .zip(placements)
            .map(|(s, p)| Section::new(p, Some(s.fences)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Run {
            path: std::mem::take(&mut self.path),
            file,
            sections,
            cache,
            cache_id,
        })
    }

    fn usable(&self) -> Result<()> {
        if self.failed || self.out.is_none() {
            return Err(Error::Internal(
                "a run writer was used after a failed write".into(),
            ));
        }
        Ok(())
    }

    /// Writes the data block being filled, if it has rows.
    fn flush_block(&mut self) -> Result<()> {
        if self.in_block == 0 {
            return Ok(());
        }
        let count = u16::try_from(self.in_block)
            .map_err(|_| Error::Internal("a data block overflows".into()))?;
        let mut block = std::mem::take(&mut self.block);
        put(&mut block, 0, &count.to_le_bytes());
        seal_block(&mut block);
        let written = self.write(&block);
        block.fill(0);
        self.block = block;
        self.in_block = 0;
        written
    }

    fn write(&mut self, block: &[u8]) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(Error::Internal("a run writer was finished twice".into()));
        };
        out.write_all(block).map_err(|e| {
            self.failed = true;
            Error::io(&self.tmp, e)
        })
    }
}

impl Drop for RunWriter {
    /// An unfinished (or failed) writer removes its temporary file.
    fn drop(&mut self) {
        if !self.done {
            drop(self.out.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A section of an open run: its placement and its fences.
struct Section {
    spec: SectionSpec,
    rows: u64,
    first_data: u64,
    /// Data blocks (`D`), as fences are counted.
    blocks: usize,
    placement: Placement,
    /// The first key of each data block, `key_len` bytes each: read and
    /// checked at the section's first lookup (open reads no fence block,
    /// so that it does not grow with the run).
    fences: OnceLock<Vec<u8>>,
}

impl Section {
    /// A section from its placement and, when known, its fences (as many as
    /// data blocks).
    fn new(p: Placement, fences: Option<Vec<u8>>) -> Result<Section> {
        let blocks = usize::try_from(p.data_blocks)
            .ok()
            .filter(|b| b.checked_mul(usize::from(p.spec.key_len)).is_some())
            .ok_or_else(|| Error::Internal("a run section is larger than memory".into()))?;
        if fences
            .as_ref()
            .is_some_and(|f| f.len() != blocks * usize::from(p.spec.key_len))
        {
            return Err(Error::Internal(
                "a run section's fences do not match".into(),
            ));
        }
        Ok(Section {
            spec: p.spec,
            rows: p.rows,
            first_data: p.first_data,
            blocks,
            placement: p,
            fences: fences.map_or_else(OnceLock::new, OnceLock::from),
        })
    }

    /// Its fences, read from `file` and checked the first time.
    fn fences(&self, file: &File, path: &Path) -> Result<&[u8]> {
        if let Some(f) = self.fences.get() {
            return Ok(f);
        }
        let f = read_fences(file, path, &self.placement)?;
        if f.len() != self.blocks * usize::from(self.spec.key_len) {
            return Err(damaged(
                path,
                self.placement.first_fence * BLOCK as u64,
                "fence count mismatch",
            ));
        }
        // Two first lookups may read them at once: one copy is kept.
        let _ = self.fences.set(f);
        self.fences
            .get()
            .map(Vec::as_slice)
            .ok_or_else(|| Error::Internal("a run section's fences were not kept".into()))
    }

    /// The first key of data block `k`, of `fences` (this section's).
    fn fence<'a>(&self, fences: &'a [u8], k: usize) -> &'a [u8] {
        let n = usize::from(self.spec.key_len);
        fences.get(k * n..(k + 1) * n).unwrap_or_default()
    }

    /// Rows in data block `k` (`k < blocks`).
    fn rows_in(&self, k: usize) -> usize {
        let p = self.spec.rows_per_block() as u64;
        let before = (k as u64).saturating_mul(p);
        self.rows.saturating_sub(before).min(p) as usize
    }

    /// The data block that would hold `key`: the last whose first key is
    /// not greater; `None` when every block's is.
    fn block_for(&self, fences: &[u8], key: &[u8]) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.blocks);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if compare(self.fence(fences, mid), key).is_le() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }
}

/// An open run file.
pub(crate) struct Run {
    path: PathBuf,
    file: File,
    sections: Vec<Section>,
    cache: Arc<BlockCache>,
    cache_id: u64,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("path", &self.path)
            .field("sections", &self.sections.len())
            .field("cache_id", &self.cache_id)
            .finish()
    }
}

impl Run {
    /// Opens the run at `path`: checks its header and its length (reads
    /// only the header: a section's fence blocks are read and checked at its
    /// first lookup, a data block when a lookup reads it). Its data blocks
    /// are cached in `cache` under `cache_id`, which must be this file's
    /// alone.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the path and the offset of the bad block
    /// if the header is damaged or the file too short or too long;
    /// [`Error::UnsupportedVersion`] for another format version;
    /// [`Error::Io`] if it cannot be read.
    pub(crate) fn open(path: &Path, cache: Arc<BlockCache>, cache_id: u64) -> Result<Run> {
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        let head = read_block(&file, path, 0)?;
        if head.get(..8) != Some(&MAGIC[..]) {
            return Err(damaged(path, 0, "not a run file (bad magic)"));
        }
        let version = u32_at(&head, 8).unwrap_or_default();
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_owned(),
                version,
            });
        }
        let count = u32_at(&head, 12)
            .and_then(|c| usize::try_from(c).ok())
            .filter(|&c| c <= MAX_SECTIONS)
            .ok_or_else(|| damaged(path, 0, "bad section count"))?;
        let mut stored = Vec::with_capacity(count);
        for i in 0..count {
            let at = HEADER_FIXED + ENTRY * i;
            let p = head
                .get(at..at + ENTRY)
                .and_then(Placement::decode)
                .ok_or_else(|| damaged(path, 0, "bad section entry"))?;
            stored.push(p);
        }
        if !zeros(head.get(HEADER_FIXED + ENTRY * count..PAYLOAD)) {
            return Err(damaged(path, 0, "bytes after the section entries"));
        }
        let shapes: Vec<(SectionSpec, u64)> = stored.iter().map(|p| (p.spec, p.rows)).collect();
        let (expected, blocks) =
            place(&shapes).ok_or_else(|| damaged(path, 0, "impossible section shape or size"))?;
        if expected != stored {
            return Err(damaged(
                path,
                0,
                "section placement does not follow the layout",
            ));
        }
        let want = blocks
            .checked_mul(BLOCK as u64)
            .ok_or_else(|| damaged(path, 0, "impossible section size"))?;
        if len != want {
            // The first block that is cut short or should not be there.
            let at = len.min(want) / BLOCK as u64 * BLOCK as u64;
            return Err(damaged(
                path,
                at,
                &format!("the file is {len} bytes long, its header says {want}"),
            ));
        }
        // Every count is now bounded by the file's length: the fences
        // (`key_len` bytes per data block) take less than the file. They
        // are read at each section's first lookup.
        let mut sections = Vec::with_capacity(count);
        for p in stored {
            sections.push(Section::new(p, None).map_err(|_| {
                damaged(
                    path,
                    p.first_fence * BLOCK as u64,
                    "impossible section size",
                )
            })?);
        }
        Ok(Run {
            path: path.to_owned(),
            file,
            sections,
            cache,
            cache_id,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The key and value lengths of every section, in order.
    pub(crate) fn specs(&self) -> Vec<SectionSpec> {
        self.sections.iter().map(|s| s.spec).collect()
    }

    /// Rows (values and tombstones) of section `section`; 0 for a section
    /// the run does not have.
    pub(crate) fn rows(&self, section: usize) -> u64 {
        self.sections.get(section).map_or(0, |s| s.rows)
    }

    /// The row of `key` in section `section`: `Ok(None)` when there is none,
    /// `Ok(Some(None))` for a tombstone, `Ok(Some(Some(value)))` for a
    /// value. Reads at most one data block (found by a binary search over
    /// the fences), from the cache when held there.
    ///
    /// # Errors
    /// [`Error::Internal`] for a section the run does not have or a key of
    /// the wrong length; [`Error::Corrupt`] if the data block is damaged;
    /// [`Error::Io`] if it cannot be read.
    pub(crate) fn get(&self, section: usize, key: &[u8]) -> Result<Option<Option<Vec<u8>>>> {
        let s = self.section(section)?;
        if key.len() != usize::from(s.spec.key_len) {
            return Err(Error::Internal(format!(
                "a key of {} bytes looked up in run section {section}, whose keys have {}",
                key.len(),
                s.spec.key_len
            )));
        }
        let fences = s.fences(&self.file, &self.path)?;
        let Some(k) = s.block_for(fences, key) else {
            return Ok(None);
        };
        let block = self.data_block(s, k)?;
        let (mut lo, mut hi) = (0, s.rows_in(k));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (rk, tag, value) = row(&block, s.spec, mid)
                .ok_or_else(|| self.damaged_data(s, k, "row out of the block"))?;
            match compare(rk, key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return self.value(s, k, tag, value).map(Some);
                }
            }
        }
        Ok(None)
    }

    /// The rows of section `section` with `from <= key < to` (`to` = `None`:
    /// to the end), in key order. Bounds are compared with keys as bytes
    /// and may have any length (a prefix of a key bounds the keys that
    /// start with it). Reads data blocks one at a time as it goes, from the
    /// one the fences point `from` to.
    ///
    /// The iterator yields an error once and then ends: [`Error::Internal`]
    /// for a section the run does not have, [`Error::Corrupt`] for a
    /// damaged data block, [`Error::Io`] if one cannot be read.
    pub(crate) fn range(&self, section: usize, from: &[u8], to: Option<&[u8]>) -> RunIter<'_> {
        match self
            .section(section)
            .and_then(|s| Ok((s, s.fences(&self.file, &self.path)?)))
        {
            Ok((s, fences)) => RunIter {
                run: self,
                section: Some(s),
                error: None,
                from: from.to_vec(),
                to: to.map(<[u8]>::to_vec),
                next_block: s.block_for(fences, from).unwrap_or(0),
                block: None,
                pos: 0,
                rows: 0,
            },
            Err(e) => RunIter {
                run: self,
                section: None,
                error: Some(e),
                from: Vec::new(),
                to: None,
                next_block: 0,
                block: None,
                pos: 0,
                rows: 0,
            },
        }
    }

    /// Calls `f` with every row of `section` from key `from` on, in key
    /// order (`None`: a tombstone): a pass over the whole section, as
    /// writing the next run makes. Blocks not in the cache are read and
    /// checked as a lookup's are, but not kept (the pass would push out
    /// what lookups use). Stops at the first error, `f`'s included.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a damaged block, [`Error::Io`] if the file
    /// cannot be read.
    pub(crate) fn scan(
        &self,
        section: usize,
        from: &[u8],
        mut f: impl FnMut(&[u8], Option<&[u8]>) -> Result<()>,
    ) -> Result<()> {
        let s = self.section(section)?;
        let fences = s.fences(&self.file, &self.path)?;
        for k in s.block_for(fences, from).unwrap_or(0)..s.blocks {
            let number = s.first_data.saturating_add(k as u64);
            let cached = self.cache.get(&(self.cache_id, CACHE_GENERATION, number));
            let read;
            let block: &[u8] = match &cached {
                Some(b) => b,
                None => {
                    read = read_block(&self.file, &self.path, number)?;
                    self.check_data_block(s, k, &read)?;
                    &read
                }
            };
            for j in 0..s.rows_in(k) {
                let Some((key, tag, value)) = row(block, s.spec, j) else {
                    return Err(self.damaged_data(s, k, "row out of the block"));
                };
                if key < from {
                    continue;
                }
                match tag {
                    TAG_VALUE => f(key, Some(value))?,
                    TAG_TOMBSTONE => f(key, None)?,
                    _ => return Err(self.damaged_data(s, k, "bad row tag")),
                }
            }
        }
        Ok(())
    }

    fn section(&self, section: usize) -> Result<&Section> {
        self.sections.get(section).ok_or_else(|| {
            Error::Internal(format!(
                "run section {section} does not exist (the run has {})",
                self.sections.len()
            ))
        })
    }

    /// The value of a row whose tag and value bytes were checked.
    fn value(&self, s: &Section, k: usize, tag: u8, value: &[u8]) -> Result<Option<Vec<u8>>> {
        match tag {
            TAG_VALUE => Ok(Some(value.to_vec())),
            TAG_TOMBSTONE => Ok(None),
            _ => Err(self.damaged_data(s, k, "bad row tag")),
        }
    }

    /// Data block `k` of section `s`: from the cache when held there, else
    /// read, checked and kept.
    fn data_block(&self, s: &Section, k: usize) -> Result<Arc<[u8]>> {
        let number = s.first_data.saturating_add(k as u64);
        let key = (self.cache_id, CACHE_GENERATION, number);
        if let Some(b) = self.cache.get(&key) {
            return Ok(b);
        }
        let b = read_block(&self.file, &self.path, number)?;
        self.check_data_block(s, k, &b)?;
        let b: Arc<[u8]> = Arc::from(b);
        self.cache.insert(key, Arc::clone(&b));
        Ok(b)
    }

    /// Checks a data block whose CRC matched: its row count, tags,
    /// tombstones' values, padding, and that its keys ascend from its fence
    /// to below the next block's.
    fn check_data_block(&self, s: &Section, k: usize, b: &[u8]) -> Result<()> {
        let fences = s.fences(&self.file, &self.path)?;
        let n = s.rows_in(k);
        if u16_at(b, 0).map(usize::from) != Some(n) {
            return Err(self.damaged_data(s, k, "bad row count"));
        }
        let mut previous: Option<&[u8]> = None;
        for j in 0..n {
            let (key, tag, value) =
                row(b, s.spec, j).ok_or_else(|| self.damaged_data(s, k, "row out of the block"))?;
            match tag {
                TAG_VALUE => {}
                TAG_TOMBSTONE if value.iter().all(|&x| x == 0) => {}
                TAG_TOMBSTONE => return Err(self.damaged_data(s, k, "a tombstone with a value")),
                _ => return Err(self.damaged_data(s, k, "bad row tag")),
            }
            match previous {
                None if key != s.fence(fences, k) => {
                    return Err(self.damaged_data(s, k, "first key differs from its fence"));
                }
                Some(p) if p >= key => {
                    return Err(self.damaged_data(s, k, "keys out of order"));
                }
                _ => {}
            }
            previous = Some(key);
        }
        if k + 1 < s.blocks && previous.is_some_and(|p| p >= s.fence(fences, k + 1)) {
            return Err(self.damaged_data(s, k, "keys reach into the next block"));
        }
        let end = n
            .checked_mul(s.spec.row_len())
            .and_then(|x| x.checked_add(2))
            .unwrap_or(usize::MAX);
        if !zeros(b.get(end..PAYLOAD)) {
            return Err(self.damaged_data(s, k, "bytes after the rows"));
        }
        Ok(())
    }

    fn damaged_data(&self, s: &Section, k: usize, why: &str) -> Error {
        let at = s
            .first_data
            .saturating_add(k as u64)
            .saturating_mul(BLOCK as u64);
        damaged(&self.path, at, why)
    }
}

/// A damaged run file (derived data: the message says how to rebuild it).
fn damaged(path: &Path, at: u64, why: &str) -> Error {
    Error::corrupt(
        path,
        at,
        format!(
            "run file damaged ({why}); it is derived from the keyring and the segments: \
             remove index.manifest and open the store writable to rebuild it"
        ),
    )
}

/// Block `number` of a run file, its CRC checked.
fn read_block(file: &File, path: &Path, number: u64) -> Result<Vec<u8>> {
    read_blocks(file, path, number, 1)
}

/// Whether `a < b` (as byte strings): [`compare`].
fn ascending(a: &[u8], b: &[u8]) -> bool {
    compare(a, b) == std::cmp::Ordering::Less
}

/// `a` against `b` as byte strings. The keys are mostly random ids, whose
/// first eight bytes decide without a call to `memcmp` (open checks every
/// fence of a run; every lookup searches fences and rows).
fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    if let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.cmp(b)
}

/// Reads `count` blocks from block `first` in one read, and checks each
/// block's CRC.
fn read_blocks(file: &File, path: &Path, first: u64, count: u64) -> Result<Vec<u8>> {
    let at = first
        .checked_mul(BLOCK as u64)
        .ok_or_else(|| damaged(path, u64::MAX, "block out of range"))?;
    let len = count
        .checked_mul(BLOCK as u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| damaged(path, at, "impossible block count"))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, at).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            damaged(path, at, "the file ends inside the blocks read")
        } else {
            Error::io(path, e)
        }
    })?;
    for (j, block) in buf.chunks_exact(BLOCK).enumerate() {
        if !block_ok(block) {
            return Err(damaged(
                path,
                at + (j * BLOCK) as u64,
                "block checksum mismatch",
            ));
        }
    }
    Ok(buf)
}

/// Reads and checks a section's fence blocks (placement already checked
/// against the file's length; read in one read, as open needs all of
/// them); the fences, `key_len` bytes each.
fn read_fences(file: &File, path: &Path, p: &Placement) -> Result<Vec<u8>> {
    let k = usize::from(p.spec.key_len);
    let per = p.spec.fences_per_block();
    let data_blocks =
        usize::try_from(p.data_blocks).map_err(|_| damaged(path, 0, "impossible section size"))?;
    let mut fences = Vec::with_capacity(data_blocks.saturating_mul(k));
    let blocks = read_blocks(file, path, p.first_fence, p.fence_blocks)?;
    for (j, b) in (0u64..).zip(blocks.chunks_exact(BLOCK)) {
        let number = p.first_fence.saturating_add(j);
        let at = number.saturating_mul(BLOCK as u64);
        let m = data_blocks.saturating_sub(fences.len() / k).min(per);
        if u16_at(b, 0).map(usize::from) != Some(m) {
            return Err(damaged(path, at, "bad fence count"));
        }
        let end = 2 + m * k;
        let keys = b
            .get(2..end)
            .ok_or_else(|| damaged(path, at, "fences out of the block"))?;
        if !zeros(b.get(end..PAYLOAD)) {
            return Err(damaged(path, at, "bytes after the fences"));
        }
        let last = fences
            .len()
            .checked_sub(k)
            .and_then(|from| fences.get(from..));
        let mut prev = last;
        for key in keys.chunks_exact(k) {
            if prev.is_some_and(|prev| !ascending(prev, key)) {
                return Err(damaged(path, at, "fences out of order"));
            }
            prev = Some(key);
        }
        fences.extend_from_slice(keys);
    }
    Ok(fences)
}

/// The rows of a run's section in a key range ([`Run::range`]), read one
/// data block at a time.
pub(crate) struct RunIter<'a> {
    run: &'a Run,
    /// `None` once ended.
    section: Option<&'a Section>,
    /// An error to yield before ending.
    error: Option<Error>,
    from: Vec<u8>,
    to: Option<Vec<u8>>,
    /// The section's data block to read next.
    next_block: usize,
    /// The block being read.
    block: Option<Arc<[u8]>>,
    /// The next row of `block` and its row count.
    pos: usize,
    rows: usize,
}

impl std::fmt::Debug for RunIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunIter")
            .field("run", &self.run.path)
            .field("next_block", &self.next_block)
            .field("pos", &self.pos)
            .finish()
    }
}

impl RunIter<'_> {
    /// Ends the iteration, yielding `e` if an error.
    fn end<T>(&mut self, e: Option<Error>) -> Option<Result<T>> {
        self.section = None;
        self.block = None;
        e.map(Err)
    }
}

impl Iterator for RunIter<'_> {
    type Item = Result<(Vec<u8>, Option<Vec<u8>>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return self.end(Some(e));
        }
        let s = self.section?;
        loop {
            if self.pos < self.rows
                && let Some(block) = self.block.clone()
            {
                let k = self.next_block - 1;
                let Some((key, tag, value)) = row(&block, s.spec, self.pos) else {
                    let e = self.run.damaged_data(s, k, "row out of the block");
                    return self.end(Some(e));
                };
                self.pos += 1;
                if key < self.from.as_slice() {
                    continue;
                }
                if self.to.as_deref().is_some_and(|to| key >= to) {
                    return self.end(None);
                }
                let key = key.to_vec();
                return match self.run.value(s, k, tag, value) {
                    Ok(v) => Some(Ok((key, v))),
                    Err(e) => self.end(Some(e)),
                };
            }
            let k = self.next_block;
            // Read when the iterator was made.
            let fences = s.fences.get().map_or(&[][..], Vec::as_slice);
            if k >= s.blocks
                || self
                    .to
                    .as_deref()
                    .is_some_and(|to| s.fence(fences, k) >= to)
            {
                return self.end(None);
            }
            match self.run.data_block(s, k) {
                Ok(b) => {
                    self.block = Some(b);
                    self.rows = s.rows_in(k);
                    self.pos = 0;
                    self.next_block = k + 1;
                }
                Err(e) => return self.end(Some(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    type Rows = BTreeMap<Vec<u8>, Option<Vec<u8>>>;
    /// A row as a range yields it.
    type Row = (Vec<u8>, Option<Vec<u8>>);
    /// Per section: its rows by a full range, and its lookups.
    type ReadBack = Vec<(Vec<Row>, Vec<Option<Option<Vec<u8>>>>)>;

    fn cache() -> Arc<BlockCache> {
        Arc::new(BlockCache::new(1 << 20))
    }

    /// Writes `models` (one per section, of shape `specs`) as a run.
    fn write(path: &Path, specs: &[SectionSpec], models: &[Rows], cache_id: u64) -> Run {
        let mut w = RunWriter::create(path, specs).unwrap();
        for (i, m) in models.iter().enumerate() {
            for (k, v) in m {
                w.push(i, k, v.as_deref()).unwrap();
            }
        }
        w.finish(cache(), cache_id).unwrap()
    }

    /// Every row of a section, by a full range.
    fn all(run: &Run, section: usize) -> Result<Vec<Row>> {
        run.range(section, &[], None).collect()
    }

    fn listed(m: &Rows) -> Vec<Row> {
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The model's rows with `from <= key < to`.
    fn model_range(m: &Rows, from: &[u8], to: Option<&[u8]>) -> Vec<Row> {
        m.range(from.to_vec()..)
            .take_while(|(k, _)| to.is_none_or(|t| k.as_slice() < t))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A section of `n` rows with even keys (`2·i` big-endian, in
    /// `key_len` bytes), a tombstone every 7th row.
    fn model(spec: SectionSpec, n: u64, salt: u8) -> Rows {
        (0..n)
            .map(|i| {
                let v = (i % 7 != 3).then(|| {
                    (0..spec.val_len)
                        .map(|j| (i as u8).wrapping_mul(31) ^ (j as u8) ^ salt)
                        .collect()
                });
                (key(spec, 2 * i + 2), v)
            })
            .collect()
    }

    fn key(spec: SectionSpec, x: u64) -> Vec<u8> {
        let mut k = vec![0u8; usize::from(spec.key_len)];
        let be = x.to_be_bytes();
        let n = k.len().min(8);
        k[usize::from(spec.key_len) - n..].copy_from_slice(&be[8 - n..]);
        k
    }

    const SPECS: [SectionSpec; 5] = [
        SectionSpec {
            key_len: 16,
            val_len: 0,
        },
        SectionSpec {
            key_len: 8,
            val_len: 24,
        },
        SectionSpec {
            key_len: 4,
            val_len: 4,
        },
        SectionSpec {
            key_len: 32,
            val_len: 100,
        },
        SectionSpec {
            key_len: 2,
            val_len: 1,
        },
    ];

    #[test]
    fn ascending_compares_as_byte_strings() {
        let cases: [(&[u8], &[u8]); 7] = [
            (&[1, 2, 3, 4, 5, 6, 7, 8, 9], &[1, 2, 3, 4, 5, 6, 7, 8, 10]),
            (&[0, 0, 0, 0, 0, 0, 0, 1, 0], &[0, 0, 0, 0, 0, 0, 1, 0, 0]),
            (
                &[0xff, 0, 0, 0, 0, 0, 0, 0],
                &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (&[1, 2], &[1, 3]),
            (&[5; 16], &[5; 16]),
            (&[9, 9, 9, 9, 9, 9, 9, 9, 0], &[9, 9, 9, 9, 9, 9, 9, 9, 0]),
            (&[], &[0]),
        ];
        for (a, b) in cases {
            assert_eq!(ascending(a, b), a < b, "{a:?} {b:?}");
            assert_eq!(ascending(b, a), b < a, "{b:?} {a:?}");
        }
    }

    /// Fences out of order in a block whose checksum is right (a writer's
    /// bug, not a flipped bit) are refused at the section's first lookup
    /// (open reads no fence block), naming the block, at every lookup.
    #[test]
    fn fences_out_of_order_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.run");
        let spec = SPECS[1];
        write(&path, &[spec], &[model(spec, 3000, 2)], 1);
        // 25 data blocks (123 rows each), then the one fence block.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = 26 * BLOCK;
        let block = &mut bytes[at..at + BLOCK];
        assert_eq!(u16::from_le_bytes([block[0], block[1]]), 25);
        let (first, second) = (block[2..10].to_vec(), block[10..18].to_vec());
        block[2..10].copy_from_slice(&second);
        block[10..18].copy_from_slice(&first);
        let crc = crc32fast::hash(&block[..BLOCK - 4]);
        block[BLOCK - 4..].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let run = Run::open(&path, cache(), 1).unwrap();
        let key = model(spec, 3000, 2).keys().nth(500).unwrap().clone();
        for _ in 0..2 {
            for e in [run.get(0, &key).unwrap_err(), all(&run, 0).unwrap_err()] {
                match e {
                    Error::Corrupt { offset, reason, .. } => {
                        assert_eq!(offset, at as u64);
                        assert!(reason.contains("fences out of order"), "{reason}");
                    }
                    e => panic!("expected corruption, got {e}"),
                }
            }
        }
    }

    #[test]
    fn a_run_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.run");
        let models = [
            model(SPECS[0], 5000, 1),
            model(SPECS[1], 3000, 2),
            Rows::new(), // empty, between full ones
            model(SPECS[3], 1000, 3),
            model(SPECS[4], 1, 4),
        ];
        let written = write(&path, &SPECS, &models, 1);
        assert!(!dir.path().join("a.run.tmp").exists());
        let reopened = Run::open(&path, cache(), 2).unwrap();
        // Blocks: 5000/240 + 3000/123 + 0 + 1000/30 + 1 data, and fences.
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len, 4096 * (1 + 21 + 25 + 34 + 1 + 4));
        for run in [&written, &reopened] {
            assert_eq!(run.path(), path);
            for (i, m) in models.iter().enumerate() {
                let spec = SPECS[i];
                assert_eq!(run.rows(i), m.len() as u64);
                assert_eq!(all(run, i).unwrap(), listed(m), "section {i}");
                for (k, v) in m {
                    assert_eq!(run.get(i, k).unwrap(), Some(v.clone()));
                }
                // Before the first, between every two, after the last.
                for x in (0..=2 * m.len() as u64 + 3).step_by(if m.len() > 100 { 13 } else { 1 }) {
                    let k = key(spec, 2 * x + 1);
                    assert_eq!(run.get(i, &k).unwrap(), None);
                }
                assert_eq!(run.get(i, &key(spec, 0)).unwrap(), None);
                assert_eq!(
                    run.get(i, &vec![0xff; usize::from(spec.key_len)]).unwrap(),
                    None
                );
                // Ranges: bounds on keys, between keys, at every block's
                // first key and just around it, and outside.
                let per = spec.rows_per_block() as u64;
                let mut bounds: Vec<Vec<u8>> = vec![Vec::new(), vec![0xff; 40]];
                for b in 0..=m.len() as u64 / per + 1 {
                    let first = 2 * (b * per) + 2;
                    for x in [first - 1, first, first + 1, first + 2 * (per / 2) + 1] {
                        bounds.push(key(spec, x));
                    }
                }
                bounds.sort();
                for (a, from) in bounds.iter().enumerate() {
                    for to in bounds.iter().skip(a).take(12) {
                        let got: Vec<_> =
                            run.range(i, from, Some(to)).collect::<Result<_>>().unwrap();
                        assert_eq!(got, model_range(m, from, Some(to)));
                    }
                    let got: Vec<_> = run.range(i, from, None).collect::<Result<_>>().unwrap();
                    assert_eq!(got, model_range(m, from, None));
                }
            }
            // Prefixes bound the keys that start with them.
            let prefix = &key(SPECS[1], 2 * 300)[..7];
            let mut upper = prefix.to_vec();
            *upper.last_mut().unwrap() += 1;
            let got: Vec<_> = run
                .range(1, prefix, Some(&upper))
                .collect::<Result<_>>()
                .unwrap();
            assert_eq!(got, model_range(&models[1], prefix, Some(&upper)));
            assert_eq!(got.len(), 128);
            // A section the run does not have.
            assert_eq!(run.rows(9), 0);
            assert!(matches!(run.get(9, &[0]), Err(Error::Internal(_))));
            let mut it = run.range(9, &[], None);
            assert!(matches!(it.next(), Some(Err(Error::Internal(_)))));
            assert!(it.next().is_none());
            assert!(matches!(run.get(0, &[0; 15]), Err(Error::Internal(_))));
        }
    }

    #[test]
    fn an_empty_run_opens_and_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for specs in [&SPECS[..], &[]] {
            let path = dir.path().join(format!("e{}.run", specs.len()));
            let models = vec![Rows::new(); specs.len()];
            let run = write(&path, specs, &models, 1);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
            let run2 = Run::open(&path, cache(), 1).unwrap();
            for r in [&run, &run2] {
                for (i, s) in specs.iter().enumerate() {
                    assert_eq!(r.rows(i), 0);
                    assert_eq!(r.get(i, &key(*s, 5)).unwrap(), None);
                    assert!(all(r, i).unwrap().is_empty());
                }
            }
        }
    }

    #[test]
    fn the_writer_refuses_what_breaks_the_order_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.run");
        let tmp = dir.path().join("w.run.tmp");
        let specs = [SPECS[2], SPECS[4]];
        let internal = |r: Result<()>| assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
        let mut w = RunWriter::create(&path, &specs).unwrap();
        assert!(tmp.exists());
        w.push(0, &[0, 0, 0, 5], Some(&[1; 4])).unwrap();
        internal(w.push(0, &[0, 0, 0, 5], Some(&[1; 4]))); // equal
        internal(w.push(0, &[0, 0, 0, 4], None)); // lower
        internal(w.push(0, &[0, 0, 6], None)); // short key
        internal(w.push(0, &[0, 0, 0, 0, 6], None)); // long key
        internal(w.push(0, &[0, 0, 0, 6], Some(&[1; 3]))); // short value
        internal(w.push(2, &[0, 6], None)); // no such section
        w.push(1, &[0, 1], None).unwrap();
        internal(w.push(0, &[0, 0, 0, 7], None)); // after a later one
        internal(w.push(1, &[0, 1], Some(&[1])));
        drop(w);
        assert!(!path.exists() && !tmp.exists());
        // Refused rows change nothing: the rest is written as pushed.
        let mut w = RunWriter::create(&path, &specs).unwrap();
        w.push(0, &[0, 0, 0, 5], Some(&[1; 4])).unwrap();
        internal(w.push(0, &[0, 0, 0, 4], Some(&[2; 4])));
        w.push(1, &[0, 1], None).unwrap();
        let run = w.finish(cache(), 1).unwrap();
        assert_eq!(
            all(&run, 0).unwrap(),
            [(vec![0, 0, 0, 5], Some(vec![1; 4]))]
        );
        assert_eq!(all(&run, 1).unwrap(), [(vec![0, 1], None)]);
        assert!(!tmp.exists());
        // Shapes a block cannot hold, and too many sections.
        for bad in [
            SectionSpec {
                key_len: 0,
                val_len: 4,
            },
            SectionSpec {
                key_len: 100,
                val_len: 3990,
            },
        ] {
            let e = RunWriter::create(&dir.path().join("x.run"), &[bad]).unwrap_err();
            assert!(matches!(e, Error::Internal(_)));
        }
        let many = vec![SPECS[0]; MAX_SECTIONS + 1];
        assert!(matches!(
            RunWriter::create(&dir.path().join("x.run"), &many),
            Err(Error::Internal(_))
        ));
        let most = vec![SPECS[0]; MAX_SECTIONS];
        let run = write(
            &dir.path().join("m.run"),
            &most,
            &vec![Rows::new(); MAX_SECTIONS],
            1,
        );
        assert_eq!(run.rows(MAX_SECTIONS - 1), 0);
        Run::open(&dir.path().join("m.run"), cache(), 1).unwrap();
        // The largest row fits one to a block.
        let big = SectionSpec {
            key_len: 90,
            val_len: 3999,
        };
        let m = model(big, 3, 0);
        let run = write(
            &dir.path().join("b.run"),
            &[big],
            std::slice::from_ref(&m),
            1,
        );
        assert_eq!(all(&run, 0).unwrap(), listed(&m));
        assert_eq!(
            std::fs::metadata(dir.path().join("b.run")).unwrap().len(),
            4096 * 5
        );
    }

    /// A small run: a header, two data blocks and a fence block of section
    /// 0, and an empty section 1.
    fn small(dir: &Path) -> (PathBuf, [Rows; 2], Vec<u8>) {
        let path = dir.join("s.run");
        let spec = SectionSpec {
            key_len: 8,
            val_len: 8,
        };
        let m = model(spec, 300, 9); // 240 rows per block
        let models = [m, Rows::new()];
        write(&path, &[spec, SPECS[2]], &models, 1);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4 * BLOCK);
        (path, models, bytes)
    }

    /// Opens the run and reads everything back: every row by a full range
    /// and every key of the model (and one absent key) by `get`.
    fn read_back(path: &Path, models: &[Rows]) -> Result<ReadBack> {
        let run = Run::open(path, cache(), 7)?;
        let mut out = Vec::new();
        for (i, m) in models.iter().enumerate() {
            // A scan first (it reads the blocks itself: nothing is cached
            // yet), then a range over the same rows.
            let mut scanned = Vec::new();
            run.scan(i, &[], |k, v| {
                scanned.push((k.to_vec(), v.map(<[u8]>::to_vec)));
                Ok(())
            })?;
            let rows = all(&run, i)?;
            if scanned != rows {
                return Err(Error::Internal(
                    "a scan read other rows than a range".into(),
                ));
            }
            let mut gets = Vec::new();
            for k in m.keys() {
                gets.push(run.get(i, k)?);
            }
            let k = run
                .sections
                .get(i)
                .map_or(1, |s| usize::from(s.spec.key_len));
            gets.push(run.get(i, &vec![0x01; k])?);
            out.push((rows, gets));
        }
        Ok(out)
    }

    fn expected(models: &[Rows]) -> ReadBack {
        models
            .iter()
            .map(|m| {
                let mut gets: Vec<_> = m.values().map(|v| Some(v.clone())).collect();
                gets.push(None);
                (listed(m), gets)
            })
            .collect()
    }

    #[test]
    fn every_flipped_byte_is_caught_and_never_yields_other_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (path, models, bytes) = small(dir.path());
        let want = expected(&models);
        assert_eq!(read_back(&path, &models).unwrap(), want);
        let mut caught = 0;
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << (i % 8);
            std::fs::write(&path, &bad).unwrap();
            match read_back(&path, &models) {
                Ok(got) => assert_eq!(got, want, "flip at {i}"),
                Err(Error::Corrupt { offset, .. }) => {
                    assert_eq!(offset, i as u64 / 4096 * 4096, "flip at {i}");
                    caught += 1;
                }
                Err(e) => panic!("flip at {i}: {e}"),
            }
        }
        // One CRC per block catches every single-byte change.
        assert_eq!(caught, bytes.len());
    }

    /// Rewrites a block's CRC after a change, so that the checks beyond the
    /// CRC are what must catch it.
    fn reseal(bytes: &mut [u8], block: usize) {
        seal_block(&mut bytes[block * BLOCK..(block + 1) * BLOCK]);
    }

    #[test]
    fn changes_under_a_valid_checksum_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (path, models, bytes) = small(dir.path());
        for i in 0..bytes.len() {
            if i % BLOCK >= PAYLOAD {
                continue;
            }
            {
                let flip = if i % 2 == 0 { 0xff } else { 1u8 << (i % 8) };
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                reseal(&mut bad, i / BLOCK);
                std::fs::write(&path, &bad).unwrap();
                match read_back(&path, &models) {
                    Ok(_) | Err(Error::Corrupt { .. } | Error::UnsupportedVersion { .. }) => {}
                    Err(e) => panic!("change at {i}: {e}"),
                }
            }
        }
    }

    #[test]
    fn damage_under_a_valid_checksum_is_caught_by_the_structure() {
        let dir = tempfile::tempdir().unwrap();
        let (path, models, bytes) = small(dir.path());
        let corrupt_at = |bad: &[u8], at: u64| {
            std::fs::write(&path, bad).unwrap();
            match read_back(&path, &models) {
                Err(Error::Corrupt {
                    offset, path: p, ..
                }) => {
                    assert_eq!(offset, at);
                    assert_eq!(p, path);
                }
                other => panic!("not caught: {other:?}"),
            }
        };
        let b = BLOCK;
        let row = 17; // key 8, tag, value 8
        let edit = |f: &dyn Fn(&mut Vec<u8>), block: usize| {
            let mut bad = bytes.clone();
            f(&mut bad);
            reseal(&mut bad, block);
            bad
        };
        // Data block 1 (the first): row counts.
        for n in [0u16, 239, 241, 0xffff] {
            let bad = edit(&|x| x[b..b + 2].copy_from_slice(&n.to_le_bytes()), 1);
            corrupt_at(&bad, b as u64);
        }
        // Data block 2 (60 rows): a count within the block's room.
        let bad = edit(
            &|x| x[2 * b..2 * b + 2].copy_from_slice(&61u16.to_le_bytes()),
            2,
        );
        corrupt_at(&bad, 2 * b as u64);
        // A tag other than 0/1; a tombstone with a value (row 3 is one).
        let bad = edit(&|x| x[b + 2 + 8] = 2, 1);
        corrupt_at(&bad, b as u64);
        let bad = edit(&|x| x[b + 2 + 3 * row + 9] = 1, 1);
        corrupt_at(&bad, b as u64);
        // Two rows swapped; a key equal to the next.
        let bad = edit(
            &|x| {
                let (r1, r2) = (b + 2 + 5 * row, b + 2 + 6 * row);
                let first: Vec<u8> = x[r1..r1 + row].to_vec();
                x.copy_within(r2..r2 + row, r1);
                x[r2..r2 + row].copy_from_slice(&first);
            },
            1,
        );
        corrupt_at(&bad, b as u64);
        let bad = edit(
            &|x| x.copy_within(b + 2 + 6 * row..b + 2 + 6 * row + 8, b + 2 + 5 * row),
            1,
        );
        corrupt_at(&bad, b as u64);
        // The first key differs from its fence; the last reaches the next block.
        let bad = edit(&|x| x[b + 2 + 7] ^= 1, 1);
        corrupt_at(&bad, b as u64);
        let bad = edit(&|x| x[b + 2 + 239 * row + 6] = 0xff, 1);
        corrupt_at(&bad, b as u64);
        // Bytes after the rows.
        let bad = edit(&|x| x[2 * b + 2 + 60 * row] = 1, 2);
        corrupt_at(&bad, 2 * b as u64);
        // Fences: count, order, padding.
        let f = 3 * b;
        let bad = edit(&|x| x[f..f + 2].copy_from_slice(&3u16.to_le_bytes()), 3);
        corrupt_at(&bad, f as u64);
        let bad = edit(&|x| x.copy_within(f + 2..f + 10, f + 10), 3);
        corrupt_at(&bad, f as u64);
        let bad = edit(&|x| x[f + 100] = 1, 3);
        corrupt_at(&bad, f as u64);
        // Row counts that keep the placement: the last data block's count
        // then differs, caught when it is read.
        for rows in [299u64, 301] {
            let at = HEADER_FIXED + 4;
            let bad = edit(&|x| x[at..at + 8].copy_from_slice(&rows.to_le_bytes()), 0);
            corrupt_at(&bad, 2 * b as u64);
        }
        // Header: magic, section count, shapes, sizes, placement, padding.
        let section = |i: usize, field: usize| HEADER_FIXED + ENTRY * i + field;
        type Edit = Box<dyn Fn(&mut Vec<u8>)>;
        let header_edits: Vec<Edit> = vec![
            Box::new(|x| x[0] = b'X'),
            Box::new(|x| x[12..16].copy_from_slice(&93u32.to_le_bytes())),
            Box::new(|x| x[12..16].copy_from_slice(&u32::MAX.to_le_bytes())),
            Box::new(|x| x[12..16].copy_from_slice(&1u32.to_le_bytes())),
            Box::new(|x| x[12..16].copy_from_slice(&3u32.to_le_bytes())),
            Box::new(move |x| x[section(0, 0)..section(0, 2)].copy_from_slice(&0u16.to_le_bytes())),
            Box::new(move |x| {
                x[section(0, 2)..section(0, 4)].copy_from_slice(&5000u16.to_le_bytes())
            }),
            Box::new(move |x| {
                x[section(0, 4)..section(0, 12)].copy_from_slice(&u64::MAX.to_le_bytes())
            }),
            Box::new(move |x| {
                x[section(0, 4)..section(0, 12)].copy_from_slice(&(1u64 << 40).to_le_bytes())
            }),
            Box::new(move |x| {
                x[section(0, 20)..section(0, 28)].copy_from_slice(&u64::MAX.to_le_bytes())
            }),
            Box::new(move |x| {
                x[section(0, 28)..section(0, 36)].copy_from_slice(&2u64.to_le_bytes())
            }),
            Box::new(move |x| {
                x[section(1, 12)..section(1, 20)].copy_from_slice(&4u64.to_le_bytes())
            }),
            Box::new(move |x| {
                x[section(1, 36)..section(1, 44)].copy_from_slice(&1u64.to_le_bytes())
            }),
            Box::new(|x| x[4000] = 1),
        ];
        for (n, e) in header_edits.iter().enumerate() {
            let bad = edit(&|x| e(x), 0);
            std::fs::write(&path, &bad).unwrap();
            match Run::open(&path, cache(), 1) {
                Err(Error::Corrupt { offset, .. }) => assert_eq!(offset, 0, "edit {n}"),
                other => panic!("edit {n} not caught: {other:?}"),
            }
        }
        // Another version, under a valid checksum, is not damage.
        let bad = edit(&|x| x[8..12].copy_from_slice(&2u32.to_le_bytes()), 0);
        std::fs::write(&path, &bad).unwrap();
        assert!(matches!(
            Run::open(&path, cache(), 1),
            Err(Error::UnsupportedVersion { version: 2, .. })
        ));
    }

    #[test]
    fn a_cut_or_grown_file_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (path, models, bytes) = small(dir.path());
        let n = bytes.len();
        for cut in [
            0,
            1,
            100,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            2 * BLOCK,
            n - BLOCK,
            n - 1,
        ] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let e = Run::open(&path, cache(), 1).unwrap_err();
            assert!(matches!(e, Error::Corrupt { .. }), "cut at {cut}: {e}");
            assert!(e.to_string().contains("s.run"), "{e}");
        }
        for extra in [1, BLOCK] {
            let mut grown = bytes.clone();
            grown.resize(n + extra, 0);
            std::fs::write(&path, &grown).unwrap();
            let e = Run::open(&path, cache(), 1).unwrap_err();
            assert!(
                matches!(e, Error::Corrupt { offset, .. } if offset == n as u64),
                "{e}"
            );
        }
        // Cut under an open run (whose fences a first lookup read): reading
        // past the end is damage.
        std::fs::write(&path, &bytes).unwrap();
        let run = Run::open(&path, cache(), 1).unwrap();
        let first = models[0].keys().next().unwrap();
        assert!(run.get(0, first).unwrap().is_some());
        std::fs::write(&path, &bytes[..BLOCK + 100]).unwrap();
        let last = models[0].keys().last().unwrap();
        let e = run.get(0, last).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { offset, .. } if offset == 2 * BLOCK as u64),
            "{e}"
        );
        // (Block 1 is cached since the first lookup: block 2 is past the end.)
        let e = all(&run, 0).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { offset, .. } if offset == 2 * BLOCK as u64),
            "{e}"
        );
        // A missing file is an I/O error, not damage.
        let e = Run::open(&dir.path().join("none.run"), cache(), 1).unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
    }

    #[test]
    fn lookups_keep_the_blocks_they_read_in_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (path, models, bytes) = small(dir.path());
        let c = cache();
        let run = Run::open(&path, Arc::clone(&c), 42).unwrap();
        assert_eq!(c.held_bytes(), 0, "open reads no data block");
        let first = models[0].keys().next().unwrap();
        let value = run.get(0, first).unwrap();
        assert_eq!(c.held_bytes(), BLOCK);
        assert!(c.get(&(42, u32::MAX, 1)).is_some());
        assert_eq!(run.get(0, first).unwrap(), value);
        assert_eq!(c.held_bytes(), BLOCK, "read from the cache");
        // The file goes bad under the open handle: the cached block is
        // still answered from the cache, the other one is read and caught.
        let mut bad = bytes.clone();
        for x in bad.iter_mut().skip(BLOCK).take(2 * BLOCK) {
            *x ^= 0x55;
        }
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(run.get(0, first).unwrap(), value);
        let last = models[0].keys().last().unwrap();
        assert!(matches!(run.get(0, last), Err(Error::Corrupt { .. })));
        // Damaged data blocks do not stop an open, which reads none.
        let other = Run::open(&path, cache(), 43).unwrap();
        assert!(matches!(other.get(0, first), Err(Error::Corrupt { .. })));
        // A range reads through the same cache, a block at a time.
        std::fs::write(&path, &bytes).unwrap();
        let c = cache();
        let run = Run::open(&path, Arc::clone(&c), 1).unwrap();
        let mut it = run.range(0, &[], None);
        it.next().unwrap().unwrap();
        assert_eq!(c.held_bytes(), BLOCK, "one block read so far");
        assert_eq!(it.count(), 299);
        assert_eq!(c.held_bytes(), 2 * BLOCK);
        // No cache at all still reads.
        let run = Run::open(&path, Arc::new(BlockCache::new(0)), 1).unwrap();
        assert_eq!(run.get(0, first).unwrap(), value);
    }

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64)
    }

    /// A key of `key_len` bytes from a number's top bytes (so that number
    /// order is key order).
    fn top_bytes(x: u64, key_len: usize) -> Vec<u8> {
        let mut k = x.to_be_bytes().to_vec();
        k.resize(key_len, 0);
        k
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        #[test]
        fn a_run_answers_like_a_sorted_map(
            key_len in prop::sample::select(vec![1usize, 2, 3, 8, 12]),
            val_len in prop_oneof![Just(0u16), 1u16..300],
            rows in prop::collection::vec((any::<u64>(), prop::option::of(any::<u8>())), 0..1500),
            probes in prop::collection::vec(any::<u64>(), 0..50),
            ranges in prop::collection::vec(
                (any::<u64>(), 0usize..13, prop::option::of(any::<u64>())),
                0..12,
            ),
        ) {
            let spec = SectionSpec { key_len: key_len as u16, val_len };
            let m: Rows = rows
                .iter()
                .map(|(x, v)| {
                    let value = v.map(|seed| {
                        (0..val_len).map(|j| seed.wrapping_add(j as u8)).collect()
                    });
                    (top_bytes(*x, key_len), value)
                })
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.run");
            let models = [Rows::new(), m.clone(), model(SPECS[2], 50, 1)];
            let specs = [SPECS[0], spec, SPECS[2]];
            let written = write(&path, &specs, &models, 1);
            let run = Run::open(&path, cache(), 2).unwrap();
            for r in [&written, &run] {
                prop_assert_eq!(r.rows(1), m.len() as u64);
                prop_assert_eq!(all(r, 1).unwrap(), listed(&m));
                prop_assert_eq!(all(r, 2).unwrap(), listed(&models[2]));
                for k in m.keys().step_by(7) {
                    prop_assert_eq!(r.get(1, k).unwrap(), Some(m[k].clone()));
                }
                for x in &probes {
                    let k = top_bytes(*x, key_len);
                    prop_assert_eq!(r.get(1, &k).unwrap(), m.get(&k).cloned());
                }
                for (a, cut, b) in &ranges {
                    let from = &top_bytes(*a, key_len)[..(*cut).min(key_len)];
                    let to = b.map(|b| top_bytes(b, key_len));
                    let got: Vec<_> = r.range(1, from, to.as_deref()).collect::<Result<_>>().unwrap();
                    prop_assert_eq!(got, model_range(&m, from, to.as_deref()));
                    // A scan from there gives what a range to the end does.
                    let mut scanned = Vec::new();
                    r.scan(1, from, |k, v| {
                        scanned.push((k.to_vec(), v.map(<[u8]>::to_vec)));
                        Ok(())
                    })
                    .unwrap();
                    prop_assert_eq!(scanned, model_range(&m, from, None));
                }
            }
        }
    }
}
