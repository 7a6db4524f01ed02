//! Append-only segment files: creation, appending, rolling, reading (sealed
//! segments through a memory map, the active one with positioned reads) and the
//! recovery scan.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use memmap2::Mmap;

use crate::error::{Error, IoContext, Result};
use crate::record::{
    self, DecodeError, FOOTER_FRAME, FRAME_HEADER, Footer, Frame, KIND_FOOTER, KIND_MESSAGE,
    RECORD_VERSION, RECORD_VERSION_1, Record,
};

/// Bytes of segment file header.
pub(crate) const SEGMENT_HEADER: u64 = 32;
const MAGIC: &[u8; 8] = b"SHRDSEG1";
/// Segment format version written now: a generation in the header, a footer
/// at the end of every sealed segment (since 2), and every append batch
/// whole in one segment with its last record marked (since 3).
const SEGMENT_VERSION: u16 = 3;
/// Version 2: generation and footer, batches not marked; still read.
const SEGMENT_VERSION_2: u16 = 2;
/// The first segment format (no generation, no footer); still read.
const SEGMENT_VERSION_1: u16 = 1;
/// Page size assumed for write-back; file lengths a crash can leave in the
/// active segment are multiples of it (see [`Active::preallocate`]).
pub(crate) const PAGE: u64 = 4096;

/// File name of segment `id`.
pub(crate) fn file_name(id: u64) -> String {
    format!("{id:012}.seg")
}

/// Segment ids present in `dir`, ascending.
pub(crate) fn list(dir: &Path) -> Result<Vec<u64>> {
    Ok(ids_in(&crate::fsutil::names(dir)?))
}

/// The segment ids among a directory's file names, ascending.
pub(crate) fn ids_in(names: &[String]) -> Vec<u64> {
    let mut ids: Vec<u64> = names.iter().filter_map(|name| id_of(name)).collect();
    ids.sort_unstable();
    ids
}

/// The id of the segment file named `name` (`None`: not a segment's name).
pub(crate) fn id_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".seg")?;
    if stem.len() == 12 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// What a segment's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Format version (1 or 2).
    pub version: u16,
    /// Which write of this segment id the file is: 1 when created, one more
    /// with every compaction that rewrites it (0 in a version-1 header).
    pub generation: u32,
}

impl SegmentHeader {
    /// Whether a sealed segment of this version ends with a footer.
    pub(crate) fn has_footer(self) -> bool {
        self.version >= SEGMENT_VERSION_2
    }

    /// Whether every append batch in the segment ends with a record flagged
    /// [`record::FLAG_BATCH_END`].
    pub(crate) fn batches_marked(self) -> bool {
        self.version >= SEGMENT_VERSION
    }
}

/// A header of the current version for segment `id`, write `generation`.
pub(crate) fn header(id: u64, generation: u32) -> [u8; SEGMENT_HEADER as usize] {
    let mut h = [0u8; SEGMENT_HEADER as usize];
    h[0..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&id.to_le_bytes());
    h[24..28].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header; `Err` names what is wrong.
pub(crate) fn check_header(path: &Path, bytes: &[u8], id: u64) -> Result<SegmentHeader> {
    let h: &[u8; SEGMENT_HEADER as usize] = bytes
        .get(..SEGMENT_HEADER as usize)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| Error::corrupt(path, 0, "segment header truncated"))?;
    if &h[0..8] != MAGIC {
        return Err(Error::corrupt(
            path,
            0,
            "not a shredlog segment (bad magic)",
        ));
    }
    let crc = u32::from_le_bytes([h[28], h[29], h[30], h[31]]);
    if crc32fast::hash(&h[..28]) != crc {
        return Err(Error::corrupt(path, 0, "segment header checksum mismatch"));
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if !(SEGMENT_VERSION_1..=SEGMENT_VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion {
            path: path.to_owned(),
            version: u32::from(version),
        });
    }
    let found = u64::from_le_bytes([h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23]]);
    if found != id {
        return Err(Error::corrupt(
            path,
            16,
            "segment id does not match its file name",
        ));
    }
    let generation = u32::from_le_bytes([h[24], h[25], h[26], h[27]]);
    if (version >= SEGMENT_VERSION_2) != (generation != 0) {
        return Err(Error::corrupt(path, 24, "segment generation out of range"));
    }
    Ok(SegmentHeader {
        version,
        generation,
    })
}

/// Checks that a sealed version-2 segment of `len` bytes ends with its own
/// footer, without reading the rest (open does this for segments the
/// checkpoint covers). Returns the offset where its records end.
pub(crate) fn check_footer(
    path: &Path,
    tail: &[u8],
    len: u64,
    id: u64,
    generation: u32,
) -> Result<u64> {
    let at = len.saturating_sub(FOOTER_FRAME as u64);
    let missing = || {
        Error::corrupt(
            path,
            at,
            "a sealed segment does not end with its footer: its end is missing (cut short?)",
        )
    };
    if len < SEGMENT_HEADER + FOOTER_FRAME as u64 {
        return Err(missing());
    }
    match record::decode_any(tail) {
        Ok((Frame::Footer(f), FOOTER_FRAME))
            if f.data_len == at && f.segment == id && f.generation == generation =>
        {
            Ok(at)
        }
        _ => Err(missing()),
    }
}

/// Maps a file read-only.
pub(crate) fn map(path: &Path, file: &File) -> Result<Mmap> {
    crate::failpoint::check("segment.mmap").at(path)?;
    #[expect(unsafe_code, reason = "memory-mapping a sealed segment")]
    // SAFETY: the store only maps segments that are sealed (never written or
    // truncated again by shredlog) or, during open, files nobody else writes
    // while the directory lock is held. Files are replaced by rename and removed
    // by unlink, which leave existing maps valid. Concurrent modification by
    // another program is outside the contract (see docs/FORMAT.md).
    let map = unsafe { Mmap::map(file) };
    map.at(path)
}

/// Maps a sealed file read-only for one pass over it (building its
/// record-location file), without the `segment.mmap` failpoint: the caller
/// drops the map right after, so that the pages it touched stop counting
/// as this process's resident memory (the long-lived map of the segment is
/// touched only where records are read).
pub(crate) fn map_once(path: &Path) -> Result<Mmap> {
    let file = File::open(path).at(path)?;
    #[expect(unsafe_code, reason = "memory-mapping a sealed segment for one scan")]
    // SAFETY: as for `map`: the file is sealed (or compaction output that
    // nothing else writes), replaced only by rename; the map lives for one
    // scan.
    let map = unsafe { Mmap::map(&file) };
    map.at(path)
}

/// A segment readers can read from.
pub(crate) enum Segment {
    /// Sealed: immutable. Records are read with positioned reads (through
    /// the page cache, which is not this process's resident memory); a
    /// whole-file pass (compaction) maps the file for itself, so that open
    /// maps nothing.
    Sealed {
        path: PathBuf,
        generation: u32,
        file: SealedFile,
    },
    /// The active segment (or, read-only, the last one), read with
    /// positioned reads.
    Active {
        path: PathBuf,
        file: Arc<File>,
        generation: u32,
    },
}

/// A sealed segment's open file: opened by whoever made the segment (a
/// roll, a compaction, an open that checked it), or, for a segment open
/// found unchanged since the index checkpoint recorded it (docs/FORMAT.md
/// §7.3), opened and checked when first read.
pub(crate) struct SealedFile {
    file: OnceLock<Arc<File>>,
    /// What the file must be when it is opened late: its id and length.
    expect: Option<(u64, u64)>,
}

impl Segment {
    /// A sealed segment whose file is open.
    pub(crate) fn sealed(path: PathBuf, file: Arc<File>, generation: u32) -> Segment {
        Segment::Sealed {
            path,
            generation,
            file: SealedFile {
                file: OnceLock::from(file),
                expect: None,
            },
        }
    }

    /// Sealed segment `id`, `len` bytes of write `generation`, opened when
    /// first read: its header, length and footer are checked then.
    pub(crate) fn sealed_unopened(path: PathBuf, id: u64, generation: u32, len: u64) -> Segment {
        Segment::Sealed {
            path,
            generation,
            file: SealedFile {
                file: OnceLock::new(),
                expect: Some((id, len)),
            },
        }
    }

    pub(crate) fn path(&self) -> &Path {
        match self {
            Segment::Sealed { path, .. } | Segment::Active { path, .. } => path,
        }
    }

    /// Which write of its segment id the file is (see [`SegmentHeader`]).
    pub(crate) fn generation(&self) -> u32 {
        match self {
            Segment::Sealed { generation, .. } | Segment::Active { generation, .. } => *generation,
        }
    }

    /// The open file (a sealed segment not yet read is opened and checked
    /// now).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a segment opened now is not the file the index
    /// checkpoint recorded (another length, header or generation, or no
    /// footer), [`Error::Io`] if it cannot be opened or read.
    pub(crate) fn file(&self) -> Result<&Arc<File>> {
        match self {
            Segment::Active { file, .. } => Ok(file),
            Segment::Sealed {
                path,
                generation,
                file,
            } => {
                if let Some(f) = file.file.get() {
                    return Ok(f);
                }
                let (id, len) = file.expect.ok_or_else(|| {
                    Error::Internal(
                        "a sealed segment has neither a file nor a way to open it".into(),
                    )
                })?;
                let opened = open_sealed(path, id, *generation, len)?;
                // Two readers may open it at once: one file is kept.
                let _ = file.file.set(Arc::new(opened));
                file.file
                    .get()
                    .ok_or_else(|| Error::Internal("a sealed segment's file was not kept".into()))
            }
        }
    }

    /// Reads `len` bytes at `off`.
    pub(crate) fn read(&self, off: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        let file = self.file()?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, off).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupt(
                    self.path(),
                    off,
                    "record extends past the end of the segment",
                )
            } else {
                Error::io(self.path(), e)
            }
        })?;
        Ok(Cow::Owned(buf))
    }
}

/// Opens sealed segment `id`, which must be `len` bytes of write
/// `generation` ending with its footer (version 2 and later).
fn open_sealed(path: &Path, id: u64, generation: u32, len: u64) -> Result<File> {
    let file = File::open(path).at(path)?;
    let found = file.metadata().at(path)?.len();
    if found != len {
        return Err(Error::corrupt(
            path,
            found.min(len),
            format!(
                "the sealed segment is {found} bytes, but {len} when the index checkpoint recorded it: acknowledged data is missing or the file was changed"
            ),
        ));
    }
    let mut head = [0u8; SEGMENT_HEADER as usize];
    read_up_to(&file, &mut head, 0).at(path)?;
    let header = check_header(path, &head, id)?;
    if header.generation != generation {
        return Err(Error::corrupt(
            path,
            24,
            format!(
                "the segment is generation {}, but {generation} when the index checkpoint recorded it",
                header.generation
            ),
        ));
    }
    if header.has_footer() {
        let mut tail = [0u8; FOOTER_FRAME];
        let at = len.saturating_sub(FOOTER_FRAME as u64);
        let got = read_up_to(&file, &mut tail, at).at(path)?;
        check_footer(path, &tail[..got], len, id, generation)?;
    }
    Ok(file)
}

/// Reads into `buf` from `offset` until it is full or the file ends;
/// returns how many bytes it read.
pub(crate) fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Zeros written ahead of the data of the active segment, at a time.
///
/// An fdatasync of a file that grew must also write its inode (the new size);
/// appends into space that is already part of the file change no size, so
/// their syncs write the data alone (on ext4 without a journal the inode write
/// was a fifth of a lone writer's CPU and a second device round trip). The
/// space is written, not `fallocate`d: unwritten extents would need a
/// metadata update on first write, which is the cost being avoided.
pub(crate) const PREALLOCATE: u64 = 1 << 20;
/// The zeros are written in pieces of this size, each ending at a multiple of
/// it, so that the file's length is always a multiple of [`PAGE`] while the
/// segment is active (a write cut short by a kill stops at a page boundary).
const PREALLOCATE_PIECE: u64 = 64 << 10;

/// The segment being appended to.
pub(crate) struct Active {
    pub id: u64,
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Next write offset (= bytes of data).
    pub len: u64,
    /// Which write of this segment id the file is (see [`SegmentHeader`]).
    pub generation: u32,
    /// Length of the file: the data, then zeros written ahead of it.
    allocated: u64,
    /// `len` for syncs running outside the writer's lock.
    written: Arc<AtomicU64>,
    /// Bytes known to be on stable storage.
    durable: Arc<AtomicU64>,
}

/// What a sync of the active segment needs, for use outside the writer's lock.
#[derive(Clone)]
pub(crate) struct SyncHandle {
    pub path: PathBuf,
    pub file: Arc<File>,
    written: Arc<AtomicU64>,
    durable: Arc<AtomicU64>,
}

impl SyncHandle {
    /// Makes everything appended before the call durable.
    pub(crate) fn sync(&self) -> Result<()> {
        // Read before syncing: bytes appended during the sync may not be in it.
        let len = self.written.load(Ordering::Acquire);
        crate::failpoint::check("segment.sync").at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        crate::failpoint::synced_len(&self.path, len);
        self.durable.fetch_max(len, Ordering::AcqRel);
        Ok(())
    }

    /// Whether a sync made everything appended so far durable.
    pub(crate) fn is_durable(&self) -> bool {
        self.durable.load(Ordering::Acquire) >= self.written.load(Ordering::Acquire)
    }
}

impl Active {
    /// Creates segment `id` in `dir`: header written and synced, directory synced.
    pub(crate) fn create(dir: &Path, id: u64) -> Result<Active> {
        let path = dir.join(file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        crate::failpoint::check("segment.create").at(&path)?;
        file.write_all_at(&header(id, 1), 0).at(&path)?;
        file.sync_all().at(&path)?;
        crate::failpoint::synced(&path, &file);
        crate::fsutil::sync_dir(dir)?;
        Ok(Active {
            id,
            path,
            file: Arc::new(file),
            len: SEGMENT_HEADER,
            generation: 1,
            allocated: SEGMENT_HEADER,
            written: Arc::new(AtomicU64::new(SEGMENT_HEADER)),
            durable: Arc::new(AtomicU64::new(SEGMENT_HEADER)),
        })
    }

    /// Reopens an existing segment for appending at `len`, its data's end.
    /// Anything after `len` in the file (zeros written ahead, a torn tail the
    /// caller decided to cut) is cut off.
    ///
    /// `durable` is how much of it is known to have been synced (what was
    /// acknowledged): a file that holds no more than that needs no sync.
    pub(crate) fn reopen(
        path: PathBuf,
        id: u64,
        len: u64,
        generation: u32,
        durable: u64,
    ) -> Result<Active> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        let file_len = file.metadata().at(&path)?.len();
        if file_len > len {
            file.set_len(len).at(&path)?;
        }
        // What the file holds now may have been written by a process that was
        // killed before syncing it: make it durable before anything records
        // these bytes as acknowledged (a cleanly closed segment, all of it
        // acknowledged, holds none).
        if file_len != len || len > durable {
            crate::failpoint::check("segment.reopen.sync").at(&path)?;
            file.sync_all().at(&path)?;
        }
        Ok(Active {
            id,
            path,
            file: Arc::new(file),
            len,
            generation,
            allocated: len,
            written: Arc::new(AtomicU64::new(len)),
            durable: Arc::new(AtomicU64::new(len)),
        })
    }

    /// Appends bytes at the end; returns the offset they start at.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<u64> {
        let off = self.len;
        crate::failpoint::check("segment.write").at(&self.path)?;
        let end = off + bytes.len() as u64;
        if end > self.allocated {
            self.preallocate(end)?;
        }
        if let Err(e) = crate::failpoint::check("segment.write.torn") {
            // Simulate a torn write: half the bytes reach the file.
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            let _ = self.file.write_all_at(half, off);
            return Err(Error::io(&self.path, e));
        }
        self.file.write_all_at(bytes, off).at(&self.path)?;
        self.len = end;
        self.written.store(end, Ordering::Release);
        Ok(off)
    }

    /// Writes zeros from the end of the file to past `end`, in pieces that
    /// end on [`PREALLOCATE_PIECE`] boundaries (see [`PREALLOCATE`]).
    fn preallocate(&mut self, end: u64) -> Result<()> {
        static ZEROS: [u8; PREALLOCATE_PIECE as usize] = [0; PREALLOCATE_PIECE as usize];
        let target = end.div_ceil(PREALLOCATE).saturating_add(1) * PREALLOCATE;
        let mut at = self.allocated;
        while at < target {
            let piece_end = (at / PREALLOCATE_PIECE + 1) * PREALLOCATE_PIECE;
            let n = (piece_end.min(target) - at) as usize;
            crate::failpoint::check("segment.preallocate").at(&self.path)?;
            self.file
                .write_all_at(ZEROS.get(..n).unwrap_or_default(), at)
                .at(&self.path)?;
            at += n as u64;
            self.allocated = at;
        }
        Ok(())
    }

    /// Cuts the zeros written ahead off the file (when closing).
    pub(crate) fn trim(&mut self) -> Result<()> {
        if self.allocated > self.len {
            self.file.set_len(self.len).at(&self.path)?;
            self.allocated = self.len;
        }
        Ok(())
    }

    /// Seals the segment: cuts the zeros written ahead, appends the footer
    /// that states the segment's length, and syncs. Nothing is appended after.
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.trim()?;
        let footer = record::encode_footer(&Footer {
            generation: self.generation,
            data_len: self.len,
            segment: self.id,
        });
        crate::failpoint::check("segment.seal").at(&self.path)?;
        self.file.write_all_at(&footer, self.len).at(&self.path)?;
        self.len += footer.len() as u64;
        self.allocated = self.len;
        self.written.store(self.len, Ordering::Release);
        self.file.sync_all().at(&self.path)?;
        crate::failpoint::synced(&self.path, &self.file);
        self.durable.store(self.len, Ordering::Release);
        Ok(())
    }

    /// Bytes of this segment known to be on stable storage.
    pub(crate) fn durable_len(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// What a sync outside the writer's lock needs.
    pub(crate) fn sync_handle(&self) -> SyncHandle {
        SyncHandle {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
            written: Arc::clone(&self.written),
            durable: Arc::clone(&self.durable),
        }
    }

    /// A reader's view of this segment.
    pub(crate) fn reader(&self) -> Segment {
        Segment::Active {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
            generation: self.generation,
        }
    }
}

/// One damaged stretch found by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Damage {
    pub offset: u64,
    /// Bytes skipped (to the next valid record or the end).
    pub skipped: u64,
    pub reason: String,
}

/// What a scan may accept in a segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanRules {
    /// The segment's id and header.
    pub id: u64,
    pub header: SegmentHeader,
    /// The last segment: the only one whose tail may hold writes that were
    /// never acknowledged (torn, or zeros written ahead).
    pub last: bool,
    /// Skip and report damage instead of failing.
    pub salvage: bool,
    /// Bytes of this segment that were acknowledged durable (the keyring's
    /// durable mark or the checkpoint): data that ends before this offset, or
    /// damage before it, is lost acknowledged data, never a torn tail.
    pub acknowledged: u64,
}

/// What scanning a segment found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Offset just past the last valid frame (the footer, if any).
    pub end: u64,
    /// Offset just past the last record (the footer's offset when sealed).
    pub data_end: u64,
    /// The segment's footer, when it is sealed.
    pub footer: Option<Footer>,
    /// Set when the last segment's tail was torn (an unacknowledged write
    /// cut short): the offset to cut the file at, which is `end`.
    pub torn_at: Option<u64>,
    pub damage: Vec<Damage>,
}

/// Offset of the next plausible valid frame after `from`, if any.
fn resync(bytes: &[u8], from: usize) -> Option<usize> {
    let mut p = from;
    while p + FRAME_HEADER + 2 <= bytes.len() {
        let version = bytes.get(p + FRAME_HEADER).copied();
        let kind = bytes.get(p + FRAME_HEADER + 1).copied();
        if matches!(version, Some(RECORD_VERSION_1 | RECORD_VERSION))
            && matches!(kind, Some(KIND_MESSAGE | KIND_FOOTER))
            && record::decode_any(bytes.get(p..)?).is_ok()
        {
            return Some(p);
        }
        p += 1;
    }
    None
}

fn has_zero_run(bytes: &[u8], run: usize) -> bool {
    let mut n = 0;
    for &b in bytes {
        n = if b == 0 { n + 1 } else { 0 };
        if n >= run {
            return true;
        }
    }
    false
}

/// Whether everything from a page boundary inside the frame at
/// `off..frame_end` to the end of the file is zero: a write of the frame that
/// a kill stopped at that page boundary (a write to the page cache stops
/// between pages), leaving the zeros written ahead after it.
fn zeros_from_a_page_on(bytes: &[u8], off: usize, frame_end: usize) -> bool {
    let data_end = bytes
        .get(off..)
        .and_then(|rest| rest.iter().rposition(|&b| b != 0))
        .map_or(off, |i| off + i + 1);
    let page = data_end.next_multiple_of(PAGE as usize);
    page > off && page < frame_end && page <= bytes.len()
}

/// Whether `bytes[from..to]` holds a whole file page of zeros.
///
/// The active segment's file runs ahead of its data with zeros
/// ([`PREALLOCATE`]), and the kernel writes dirty pages back in any order. A
/// power cut can thus leave a page of unsynced appends as zeros while a later
/// page of them reached the disk. Such a hole proves that no sync completed
/// after the hole's bytes were written (a sync writes every dirty page of the
/// file), so every record after it was written later and never acknowledged
/// as durable: recovery cuts the segment at the hole. Record bytes are
/// ciphertext, nonces, random ids and checksums: a page of zeros is never
/// data.
fn has_zero_page(bytes: &[u8], from: usize, to: usize) -> bool {
    let page_size = PAGE as usize;
    let mut page = from.next_multiple_of(page_size);
    while page + page_size <= to {
        if bytes
            .get(page..page + page_size)
            .is_some_and(|p| p.iter().all(|&b| b == 0))
        {
            return true;
        }
        page += page_size;
    }
    false
}

/// Scans the frames of a segment's bytes from `start`, calling `f` for each
/// record.
///
/// Only the last segment may end in something other than its data: zeros
/// written ahead of it (a clean end), or a write cut short by a crash (a torn
/// tail, reported for the caller to cut). A torn tail must have the shape a
/// crash leaves — a frame that runs past the end of the file or holds a run of
/// zeros, with nothing valid after it but across a never-written page — and
/// lie after every acknowledged byte in a file whose length is a multiple of
/// [`PAGE`] (a crash never leaves another length while the segment is active;
/// a closed or sealed segment ends exactly with its data or footer). A sealed
/// version-2 segment must end with its footer. Anything else is damage: an
/// error, or with `salvage` skipped and reported.
pub(crate) fn scan(
    path: &Path,
    bytes: &[u8],
    start: u64,
    rules: ScanRules,
    mut f: impl FnMut(u64, usize, &Record<'_>),
) -> Result<Scan> {
    let mut out = Scan::default();
    let damage = |out: &mut Scan, offset: u64, skipped: u64, reason: String| -> Result<()> {
        if !rules.salvage {
            return Err(Error::corrupt(path, offset, reason));
        }
        out.damage.push(Damage {
            offset,
            skipped,
            reason,
        });
        Ok(())
    };
    let mut off =
        usize::try_from(start).map_err(|_| Error::corrupt(path, start, "offset out of range"))?;
    let page_aligned = (bytes.len() as u64).is_multiple_of(PAGE);
    // In the last segment of a version that marks batches, the records of a
    // batch are held back until its last record is seen: those of a batch a
    // crash cut short are not given to `f` (see the end of the scan).
    let marked = rules.last && rules.header.batches_marked();
    let mut batch: Vec<(u64, usize, Record<'_>)> = Vec::new();
    loop {
        let rest = bytes.get(off..).unwrap_or_default();
        if rest.is_empty() {
            break;
        }
        let err = match record::decode_any(rest) {
            Ok((Frame::Record(rec), size)) if marked => {
                let end = rec.header.flags & record::FLAG_BATCH_END != 0;
                batch.push((off as u64, size, rec));
                if end {
                    for (o, s, r) in batch.drain(..) {
                        f(o, s, &r);
                    }
                }
                off += size;
                continue;
            }
            Ok((Frame::Record(rec), size)) => {
                f(off as u64, size, &rec);
                off += size;
                continue;
            }
            Ok((Frame::Footer(footer), size)) => {
                let fits = footer.data_len == off as u64
                    && footer.segment == rules.id
                    && footer.generation == rules.header.generation
                    && rules.header.has_footer()
                    && off + size == bytes.len();
                if fits {
                    // A sealed segment ends with whole batches.
                    for (o, s, r) in batch.drain(..) {
                        f(o, s, &r);
                    }
                    out.footer = Some(footer);
                    out.data_end = off as u64;
                    off += size;
                    out.end = off as u64;
                    return Ok(out);
                }
                let resume = resync(bytes, off + 1).unwrap_or(bytes.len());
                damage(
                    &mut out,
                    off as u64,
                    (resume - off) as u64,
                    "a segment footer that does not end this segment".into(),
                )?;
                off = resume;
                continue;
            }
            Err(e) => e,
        };
        let next = resync(bytes, off + 1);
        if err == DecodeError::End && next.is_none() && rest.iter().all(|&b| b == 0) {
            // Zero-filled space after the data: the end of the data.
            break;
        }
        let frame_len = rest
            .get(0..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .unwrap_or(usize::MAX);
        // A write cut short leaves a frame that runs past the end of the file,
        // a frame whose rest is the zeros written ahead (a write stopped at a
        // page boundary by a kill), or (after a power cut) zero-filled blocks
        // inside it.
        let frame_end = off.saturating_add(FRAME_HEADER).saturating_add(frame_len);
        let torn_shape = matches!(
            err,
            DecodeError::Truncated | DecodeError::TooLong | DecodeError::End
        ) || zeros_from_a_page_on(bytes, off, frame_end)
            || has_zero_run(
                rest.get(..FRAME_HEADER.saturating_add(frame_len).min(rest.len()))
                    .unwrap_or_default(),
                32,
            );
        // Valid records after the damage are still a torn tail when the
        // damage holds a never-written page (see `has_zero_page`).
        let resume = next.unwrap_or(bytes.len());
        let crash_like = torn_shape && (next.is_none() || has_zero_page(bytes, off, resume));
        if rules.last && crash_like && page_aligned && off as u64 >= rules.acknowledged {
            out.torn_at = Some(off as u64);
            break;
        }
        let mut reason = err.describe();
        if rules.last && crash_like && (off as u64) < rules.acknowledged {
            reason.push_str(&format!(
                " before the end of acknowledged data (offset {}): acknowledged writes are damaged",
                rules.acknowledged
            ));
        } else if rules.last && crash_like {
            reason.push_str(
                " at the end of a segment whose length a crash cannot leave (not a torn write: the file was cut or damaged)",
            );
        }
        damage(&mut out, off as u64, (resume - off) as u64, reason)?;
        off = resume;
    }
    out.end = off as u64;
    out.data_end = off as u64;
    if let Some(&(first, _, _)) = batch.first() {
        // A batch without its last record: one a crash cut short (never
        // acknowledged) when it lies after the acknowledged bytes of a file
        // whose length a crash can leave; it is cut off with whatever torn
        // bytes follow it. Anything else is damage.
        if page_aligned && first >= rules.acknowledged {
            batch.clear();
            out.torn_at = Some(first);
            out.end = first;
            out.data_end = first;
        } else {
            let reason = if first < rules.acknowledged {
                format!(
                    "an append batch whose last record is missing, before the end of acknowledged data (offset {}): acknowledged writes are damaged",
                    rules.acknowledged
                )
            } else {
                "an append batch whose last record is missing, at the end of a segment whose length a crash cannot leave (the file was cut or damaged)".to_owned()
            };
            damage(&mut out, first, 0, reason)?;
            // Salvage reads what is there.
            for (o, s, r) in batch.drain(..) {
                f(o, s, &r);
            }
        }
    }
    if !rules.last && rules.header.has_footer() {
        damage(
            &mut out,
            off as u64,
            0,
            "a sealed segment does not end with its footer: its end is missing (cut short?)".into(),
        )?;
    }
    let data_end = out.data_end;
    if data_end < rules.acknowledged && out.damage.is_empty() {
        damage(
            &mut out,
            data_end,
            0,
            format!(
                "the segment's data ends at offset {data_end} but {} bytes of it were acknowledged durable: acknowledged writes are missing (cut short?)",
                rules.acknowledged
            ),
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{FLAG_BATCH_END, FLAG_PII, RecordHeader};

    /// A record that is a batch of its own.
    fn frame(seq: u32) -> Vec<u8> {
        frame_in_batch(seq, true)
    }

    /// A record of a batch: `last` marks the batch's last record.
    fn frame_in_batch(seq: u32, last: bool) -> Vec<u8> {
        let h = RecordHeader {
            version: RECORD_VERSION,
            kind: KIND_MESSAGE,
            flags: FLAG_PII | if last { FLAG_BATCH_END } else { 0 },
            tid: [seq as u8; 16],
            vid: [2; 16],
            seq,
            ts_millis: 1,
            content_len: 30,
            pii_len: 20,
            content_nonce: [3; 12],
            pii_nonce: [4; 12],
            msg_id: None,
        };
        let mut out = Vec::new();
        record::encode(&h, &[5u8; 30], &[6u8; 20], &mut out);
        out
    }

    const V2: SegmentHeader = SegmentHeader {
        version: SEGMENT_VERSION,
        generation: 1,
    };

    fn data(n: u32) -> Vec<u8> {
        let mut d = header(1, 1).to_vec();
        for i in 0..n {
            d.extend(frame(i));
        }
        d
    }

    /// `data(n)` sealed: its footer appended.
    fn sealed(n: u32) -> Vec<u8> {
        let mut d = data(n);
        d.extend(record::encode_footer(&Footer {
            generation: 1,
            data_len: d.len() as u64,
            segment: 1,
        }));
        d
    }

    /// The active segment as a crash leaves it: data, then zeros to a page boundary.
    fn padded(mut d: Vec<u8>) -> Vec<u8> {
        let to = (d.len() as u64).next_multiple_of(PAGE) as usize;
        d.resize(to.max(PAGE as usize), 0);
        d
    }

    fn rules(last: bool, salvage: bool, acknowledged: u64) -> ScanRules {
        ScanRules {
            id: 1,
            header: V2,
            last,
            salvage,
            acknowledged,
        }
    }

    fn count(bytes: &[u8], r: ScanRules) -> Result<(usize, Scan)> {
        let mut n = 0;
        let s = scan(Path::new("x"), bytes, SEGMENT_HEADER, r, |_, _, _| n += 1)?;
        Ok((n, s))
    }

    #[test]
    fn clean_zero_padded_and_sealed_ends() {
        let d = data(3);
        let (n, s) = count(&d, rules(true, false, 0)).unwrap();
        assert_eq!((n, s.end, s.torn_at), (3, d.len() as u64, None));
        let p = padded(d.clone());
        let (n, s) = count(&p, rules(true, false, 0)).unwrap();
        assert_eq!((n, s.end, s.torn_at), (3, d.len() as u64, None));
        let sd = sealed(3);
        for last in [false, true] {
            let (n, s) = count(&sd, rules(last, false, sd.len() as u64)).unwrap();
            assert_eq!((n, s.end, s.data_end), (3, sd.len() as u64, d.len() as u64));
            assert!(s.footer.is_some());
        }
        // A sealed segment without its footer is missing its end.
        let err = count(&d, rules(false, false, 0)).unwrap_err();
        assert!(err.to_string().contains("footer"), "{err}");
        // Version-1 sealed segments have none.
        let v1 = ScanRules {
            header: SegmentHeader {
                version: SEGMENT_VERSION_1,
                generation: 0,
            },
            ..rules(false, false, 0)
        };
        assert_eq!(count(&d, v1).unwrap().0, 3);
    }

    #[test]
    fn footers_must_end_their_own_segment() {
        let sd = sealed(2);
        // Of another generation (a stale copy of a compacted segment).
        let other = ScanRules {
            header: SegmentHeader {
                version: SEGMENT_VERSION,
                generation: 2,
            },
            ..rules(false, false, 0)
        };
        assert!(count(&sd, other).is_err());
        // With bytes after it.
        let mut more = sd.clone();
        more.extend(frame(9));
        assert!(count(&more, rules(true, false, 0)).is_err());
    }

    #[test]
    fn a_write_stopped_at_a_page_boundary_is_a_torn_tail() {
        // A kill stops a write to the page cache between pages: the file holds
        // the records up to a page boundary, then the zeros written ahead.
        let d = padded(data(200));
        let one = frame(0).len();
        let page = PAGE as usize;
        for cut in (page..d.len()).step_by(page) {
            let mut crashed = d.clone();
            crashed[cut..].fill(0);
            let (n, s) = count(&crashed, rules(true, false, SEGMENT_HEADER)).unwrap();
            let whole = (cut - SEGMENT_HEADER as usize) / one;
            assert_eq!(n, whole, "cut at {cut}");
            let boundary = SEGMENT_HEADER as usize + whole * one;
            assert_eq!(s.end, boundary as u64);
            assert_eq!(s.torn_at.is_some(), cut != boundary);
        }
        // A frame cut anywhere and followed by nothing but zeros to a page-
        // aligned end (a power cut) is torn as well.
        let d = data(3);
        for cut in SEGMENT_HEADER as usize..d.len() {
            let crashed = padded(d[..cut].to_vec());
            let whole = (cut - SEGMENT_HEADER as usize) / one;
            let boundary = SEGMENT_HEADER as usize + whole * one;
            match count(&crashed, rules(true, false, SEGMENT_HEADER)) {
                Ok((n, s)) => {
                    assert_eq!((n, s.end), (whole, boundary as u64), "cut at {cut}");
                    assert_eq!(s.torn_at.is_some(), cut != boundary);
                }
                // Only a cut in the last 32 bytes of a frame that happens to
                // look like a flipped complete frame (its tail intact) may be
                // reported instead: never silently dropped.
                Err(e) => assert!(boundary + one - cut < 32, "cut at {cut}: {e}"),
            }
        }
    }

    #[test]
    fn a_cut_a_crash_cannot_make_is_an_error() {
        let d = data(3);
        let one = frame(0).len();
        for cut in SEGMENT_HEADER as usize + 1..d.len() {
            if (cut - SEGMENT_HEADER as usize).is_multiple_of(one) {
                continue;
            }
            // Not page aligned: the file was cut, not crashed.
            let err = count(&d[..cut], rules(true, false, SEGMENT_HEADER)).unwrap_err();
            assert!(err.to_string().contains("crash cannot leave"), "{err}");
            // Page aligned, but before what was acknowledged.
            let crashed = padded(d[..cut].to_vec());
            assert!(count(&crashed, rules(true, false, d.len() as u64)).is_err());
        }
        // Cut at a frame boundary below the acknowledged length: data missing.
        let cut = SEGMENT_HEADER as usize + one;
        let err = count(&d[..cut], rules(true, false, d.len() as u64)).unwrap_err();
        assert!(
            err.to_string().contains("acknowledged writes are missing"),
            "{err}"
        );
        // In salvage mode the same is reported and the records kept.
        let (n, s) = count(&d[..cut], rules(true, true, d.len() as u64)).unwrap();
        assert_eq!((n, s.damage.len()), (1, 1));
    }

    #[test]
    fn a_never_written_page_cuts_the_last_segment_even_with_records_after_it() {
        // Records over several pages; one page in the middle left as zeros
        // (written back out of order before a power cut), later pages intact.
        let d = padded(data(200));
        let one = frame(0).len();
        let page = PAGE as usize;
        assert!(d.len() > 4 * page);
        let mut holed = d.clone();
        holed[page..2 * page].fill(0);
        let first_hit = (page - SEGMENT_HEADER as usize) / one;
        let (n, s) = count(&holed, rules(true, false, SEGMENT_HEADER)).unwrap();
        assert_eq!(n, first_hit, "records before the hole kept");
        let cut = SEGMENT_HEADER as usize + first_hit * one;
        assert_eq!(s.torn_at, Some(cut as u64));
        assert_eq!(s.end, cut as u64);
        // In a sealed segment (synced whole when sealed) it is corruption.
        assert!(count(&holed, rules(false, false, 0)).is_err());
        // So is a hole in bytes that were acknowledged.
        assert!(count(&holed, rules(true, false, 3 * PAGE)).is_err());
        // Less than a whole page of zeros with records after it is damage,
        // not a torn tail.
        let mut short = d.clone();
        short[page + 100..page + 200].fill(0);
        assert!(count(&short, rules(true, false, SEGMENT_HEADER)).is_err());
    }

    #[test]
    fn appends_run_into_preallocated_zeros_and_seal_ends_with_a_footer() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Active::create(dir.path(), 1).unwrap();
        let f = frame(0);
        let off = a.append(&f).unwrap();
        assert_eq!(off, SEGMENT_HEADER);
        let seg_path = a.path.clone();
        let file_len = || std::fs::metadata(&seg_path).unwrap().len();
        let preallocated = file_len();
        assert!(preallocated >= PREALLOCATE, "zeros written ahead");
        assert!(preallocated.is_multiple_of(PAGE));
        // Appends inside the zeros leave the file's length alone.
        a.append(&f).unwrap();
        assert_eq!(file_len(), preallocated);
        let bytes = std::fs::read(&a.path).unwrap();
        let (n, s) = count(&bytes, rules(true, false, 0)).unwrap();
        assert_eq!((n, s.end, s.torn_at), (2, a.len, None));
        assert_eq!(a.durable_len(), SEGMENT_HEADER);
        assert!(!a.sync_handle().is_durable(), "appended, not synced");
        a.sync_handle().sync().unwrap();
        assert_eq!(a.durable_len(), a.len);
        assert!(a.sync_handle().is_durable());
        a.seal().unwrap();
        assert_eq!(file_len(), a.len);
        let bytes = std::fs::read(&a.path).unwrap();
        let (n, s) = count(&bytes, rules(false, false, 0)).unwrap();
        assert_eq!((n, s.end), (2, a.len));
        assert_eq!(
            s.footer.map(|f| f.data_len),
            Some(a.len - FOOTER_FRAME as u64)
        );
        assert_eq!(
            check_footer(&a.path, &bytes[bytes.len() - FOOTER_FRAME..], a.len, 1, 1).unwrap(),
            a.len - FOOTER_FRAME as u64
        );
        assert!(check_footer(&a.path, &bytes[..FOOTER_FRAME], a.len, 1, 2).is_err());
    }

    #[test]
    fn reopen_cuts_what_follows_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Active::create(dir.path(), 7).unwrap();
        a.append(&frame(0)).unwrap();
        let (path, len) = (a.path.clone(), a.len);
        drop(a);
        assert!(std::fs::metadata(&path).unwrap().len() > len);
        let b = Active::reopen(path.clone(), 7, len, 1, 0).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        assert_eq!((b.len, b.durable_len()), (len, len));
    }

    #[test]
    fn damage_in_the_middle_is_reported_or_salvaged() {
        let d = data(3);
        let one = frame(0).len();
        let mut bad = d.clone();
        bad[SEGMENT_HEADER as usize + one + 50] ^= 0xff;
        for last in [false, true] {
            let err = count(&bad, rules(last, false, 0)).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("offset {}", SEGMENT_HEADER as usize + one)),
                "{err}"
            );
            let (n, s) = count(&bad, rules(last, true, 0)).unwrap();
            assert_eq!(n, 2);
            assert_eq!(s.damage[0].skipped, one as u64);
        }
        // A flip in the last record of the last segment, with no sign of a
        // torn write, is reported, not silently dropped.
        let mut bad = d.clone();
        let at = d.len() - 10;
        bad[at] ^= 1;
        assert!(count(&bad, rules(true, false, 0)).is_err());
        assert!(count(&padded(bad), rules(true, false, 0)).is_err());
    }

    /// In the last segment, a batch whose last record never reached the disk
    /// (a crash cut it short: never acknowledged) is dropped whole; elsewhere
    /// its absence is damage.
    #[test]
    fn a_batch_cut_short_is_dropped_whole() {
        let mut d = header(1, 1).to_vec();
        for (i, last) in [(0, false), (1, false), (2, true)] {
            d.extend(frame_in_batch(i, last));
        }
        let whole = d.len() as u64;
        d.extend(frame_in_batch(3, false));
        d.extend(frame_in_batch(4, false));
        let seen = |d: &[u8], r: ScanRules| -> Result<(Vec<u32>, Scan)> {
            let mut seqs = Vec::new();
            let scan = scan(Path::new("x"), d, SEGMENT_HEADER, r, |_, _, rec| {
                seqs.push(rec.header.seq);
            })?;
            Ok((seqs, scan))
        };
        // As a crash leaves it (the file runs into preallocated zeros).
        let (seqs, s) = seen(&padded(d.clone()), rules(true, false, whole)).unwrap();
        assert_eq!(seqs, [0, 1, 2], "the cut batch is not indexed");
        assert_eq!((s.torn_at, s.data_end), (Some(whole), whole));
        // Its records before the acknowledged end: damage, not a torn tail.
        let err = seen(&padded(d.clone()), rules(true, false, whole + 10)).unwrap_err();
        assert!(err.to_string().contains("acknowledged"), "{err}");
        // A length no crash leaves: damage.
        assert!(seen(&d, rules(true, false, whole)).is_err());
        // Salvage reports it and reads every record.
        let (seqs, s) = seen(&d, rules(true, true, whole)).unwrap();
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        assert_eq!(s.damage.len(), 1);
        // Not the last segment: records are read as they come.
        let (seqs, _) = seen(&d, rules(false, true, 0)).unwrap();
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        // A version-2 segment does not mark batches: the prefix is kept.
        let v2 = ScanRules {
            header: SegmentHeader {
                version: SEGMENT_VERSION_2,
                generation: 1,
            },
            ..rules(true, false, whole)
        };
        let (seqs, s) = seen(&padded(d.clone()), v2).unwrap();
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        assert_eq!(s.torn_at, None);
    }

    #[test]
    fn headers_of_every_version() {
        let v3 = header(5, 3);
        assert_eq!(
            check_header(Path::new("x"), &v3, 5).unwrap(),
            SegmentHeader {
                version: SEGMENT_VERSION,
                generation: 3
            }
        );
        assert!(check_header(Path::new("x"), &v3, 6).is_err());
        let mut v2 = v3;
        v2[8] = 2;
        let crc = crc32fast::hash(&v2[..28]);
        v2[28..].copy_from_slice(&crc.to_le_bytes());
        let h2 = check_header(Path::new("x"), &v2, 5).unwrap();
        assert!(h2.has_footer() && !h2.batches_marked());
        let mut v1 = [0u8; 32];
        v1[0..8].copy_from_slice(MAGIC);
        v1[8] = 1;
        v1[16] = 5;
        let crc = crc32fast::hash(&v1[..28]);
        v1[28..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            check_header(Path::new("x"), &v1, 5).unwrap(),
            SegmentHeader {
                version: 1,
                generation: 0
            }
        );
        for i in 0..32 {
            let mut bad = v3;
            bad[i] ^= 4;
            assert!(
                check_header(Path::new("x"), &bad, 5).is_err(),
                "flip at {i}"
            );
        }
    }

    /// A sealed segment left unopened is checked when first read: its
    /// length, header (id, generation) and footer must be what was recorded;
    /// a failed check is retried by the next read.
    #[test]
    fn a_sealed_segment_opened_late_is_checked_at_its_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(5));
        let mut bytes = header(5, 2).to_vec();
        bytes.extend(frame(0));
        let data_len = bytes.len() as u64;
        bytes.extend(record::encode_footer(&Footer {
            generation: 2,
            data_len,
            segment: 5,
        }));
        let len = bytes.len() as u64;
        std::fs::write(&path, &bytes).unwrap();
        let unopened =
            |id, generation, len| Segment::sealed_unopened(path.clone(), id, generation, len);
        let reason = |seg: &Segment| match seg.read(SEGMENT_HEADER, 8) {
            Err(Error::Corrupt {
                path: p,
                offset,
                reason,
            }) => {
                assert_eq!(p, path);
                (offset, reason)
            }
            other => panic!("expected corruption, got {other:?}"),
        };
        // As recorded: reads.
        let seg = unopened(5, 2, len);
        assert_eq!(&*seg.read(SEGMENT_HEADER, 8).unwrap(), &bytes[32..40]);
        // Another generation, length or id than recorded.
        assert!(
            reason(&unopened(5, 3, len))
                .1
                .contains("generation 2, but 3")
        );
        assert!(reason(&unopened(5, 2, len + 1)).1.contains("bytes"));
        assert_eq!(reason(&unopened(6, 2, len)).0, 16);
        // A damaged header or footer.
        let seg = unopened(5, 2, len);
        let mut bad = bytes.clone();
        bad[3] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(reason(&seg).0, 0);
        let mut bad = bytes.clone();
        bad[len as usize - 3] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(reason(&seg).0, data_len);
        // Whole again: the same segment reads.
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(&*seg.read(SEGMENT_HEADER, 8).unwrap(), &bytes[32..40]);
    }
}
