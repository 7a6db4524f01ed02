//! Append-only segment files: creation, appending, rolling, reading (sealed
//! segments through a memory map, the active one with positioned reads) and the
//! recovery scan.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::Mmap;

use crate::error::{Error, IoContext, Result};
use crate::record::{self, DecodeError, FRAME_HEADER, KIND_MESSAGE, RECORD_VERSION, Record};

/// Bytes of segment file header.
pub(crate) const SEGMENT_HEADER: u64 = 32;
const MAGIC: &[u8; 8] = b"SHRDSEG1";
const SEGMENT_VERSION: u16 = 1;

/// File name of segment `id`.
pub(crate) fn file_name(id: u64) -> String {
    format!("{id:012}.seg")
}

/// Segment ids present in `dir`, ascending.
pub(crate) fn list(dir: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".seg")
            && stem.len() == 12
            && stem.bytes().all(|b| b.is_ascii_digit())
            && let Ok(id) = stem.parse()
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn header(id: u64) -> [u8; SEGMENT_HEADER as usize] {
    let mut h = [0u8; SEGMENT_HEADER as usize];
    h[0..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header; `Err` names what is wrong.
pub(crate) fn check_header(path: &Path, bytes: &[u8], id: u64) -> Result<()> {
    let h = bytes
        .get(..SEGMENT_HEADER as usize)
        .ok_or_else(|| Error::corrupt(path, 0, "segment header truncated"))?;
    if h.get(0..8) != Some(MAGIC.as_slice()) {
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
    if version != SEGMENT_VERSION {
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
    Ok(())
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

/// A segment readers can read from.
pub(crate) enum Segment {
    /// Sealed: immutable, memory-mapped.
    Sealed { path: PathBuf, map: Mmap },
    /// The active segment, read with positioned reads.
    Active { path: PathBuf, file: Arc<File> },
}

impl Segment {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Segment::Sealed { path, .. } | Segment::Active { path, .. } => path,
        }
    }

    /// Reads `len` bytes at `off`.
    pub(crate) fn read(&self, off: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        match self {
            Segment::Sealed { path, map } => {
                let start = usize::try_from(off)
                    .map_err(|_| Error::corrupt(path, off, "offset out of range"))?;
                map.get(start..start.saturating_add(len))
                    .map(Cow::Borrowed)
                    .ok_or_else(|| {
                        Error::corrupt(path, off, "record extends past the end of the segment")
                    })
            }
            Segment::Active { path, file } => {
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, off).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        Error::corrupt(path, off, "record extends past the end of the segment")
                    } else {
                        Error::io(path, e)
                    }
                })?;
                Ok(Cow::Owned(buf))
            }
        }
    }
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

/// The segment being appended to.
pub(crate) struct Active {
    pub id: u64,
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Next write offset (= bytes of data).
    pub len: u64,
    /// Length of the file: the data, then zeros written ahead of it.
    allocated: u64,
    /// `len` for syncs running outside the writer's lock.
    synced_len: Arc<AtomicU64>,
}

/// What a sync of the active segment needs, for use outside the writer's lock.
#[derive(Clone)]
pub(crate) struct SyncHandle {
    pub path: PathBuf,
    pub file: Arc<File>,
    len: Arc<AtomicU64>,
}

impl SyncHandle {
    /// Makes everything appended before the call durable.
    pub(crate) fn sync(&self) -> Result<()> {
        // Read before syncing: bytes appended during the sync may not be in it.
        let len = self.len.load(Ordering::Acquire);
        crate::failpoint::check("segment.sync").at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        crate::failpoint::synced_len(&self.path, len);
        Ok(())
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
        file.write_all_at(&header(id), 0).at(&path)?;
        file.sync_all().at(&path)?;
        crate::failpoint::synced(&path, &file);
        crate::fsutil::sync_dir(dir)?;
        Ok(Active {
            id,
            path,
            file: Arc::new(file),
            len: SEGMENT_HEADER,
            allocated: SEGMENT_HEADER,
            synced_len: Arc::new(AtomicU64::new(SEGMENT_HEADER)),
        })
    }

    /// Reopens an existing segment for appending at `len`, its data's end.
    /// Anything after `len` in the file is cut off.
    pub(crate) fn reopen(path: PathBuf, id: u64, len: u64) -> Result<Active> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        let file_len = file.metadata().at(&path)?.len();
        if file_len > len {
            file.set_len(len).at(&path)?;
            file.sync_all().at(&path)?;
        }
        Ok(Active {
            id,
            path,
            file: Arc::new(file),
            len,
            allocated: len,
            synced_len: Arc::new(AtomicU64::new(len)),
        })
    }

    /// Appends bytes at the end; returns the offset they start at.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<u64> {
        let off = self.len;
        crate::failpoint::check("segment.write").at(&self.path)?;
        if let Err(e) = crate::failpoint::check("segment.write.torn") {
            // Simulate a torn write: half the bytes reach the file.
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            let _ = self.file.write_all_at(half, off);
            return Err(Error::io(&self.path, e));
        }
        let end = off + bytes.len() as u64;
        if end > self.allocated {
            self.preallocate(end)?;
        }
        self.file.write_all_at(bytes, off).at(&self.path)?;
        self.len = end;
        self.synced_len.store(end, Ordering::Release);
        Ok(off)
    }

    /// Writes zeros from the end of the file to past `end` (see [`PREALLOCATE`]).
    fn preallocate(&mut self, end: u64) -> Result<()> {
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        let target = end.div_ceil(PREALLOCATE).saturating_add(1) * PREALLOCATE;
        let mut at = self.allocated;
        while at < target {
            let n = (target - at).min(ZEROS.len() as u64) as usize;
            self.file
                .write_all_at(ZEROS.get(..n).unwrap_or_default(), at)
                .at(&self.path)?;
            at += n as u64;
        }
        self.allocated = target;
        Ok(())
    }

    /// Cuts the zeros written ahead off the file (when sealing or closing).
    pub(crate) fn trim(&mut self) -> Result<()> {
        if self.allocated > self.len {
            self.file.set_len(self.len).at(&self.path)?;
            self.allocated = self.len;
        }
        Ok(())
    }

    /// What a sync outside the writer's lock needs.
    pub(crate) fn sync_handle(&self) -> SyncHandle {
        SyncHandle {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
            len: Arc::clone(&self.synced_len),
        }
    }

    /// A reader's view of this segment.
    pub(crate) fn reader(&self) -> Segment {
        Segment::Active {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
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

/// What scanning a segment found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Offset just past the last valid record.
    pub end: u64,
    /// Set when the segment's tail was torn (a half-written last record) and
    /// must be truncated to `end`.
    pub torn_at: Option<u64>,
    pub damage: Vec<Damage>,
}

/// Offset of the next plausible valid frame after `from`, if any.
fn resync(bytes: &[u8], from: usize) -> Option<usize> {
    let mut p = from;
    while p + FRAME_HEADER + record::RECORD_HEADER <= bytes.len() {
        if bytes.get(p + FRAME_HEADER) == Some(&RECORD_VERSION)
            && bytes.get(p + FRAME_HEADER + 1) == Some(&KIND_MESSAGE)
            && record::decode(bytes.get(p..)?).is_ok()
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

/// Page size assumed for write-back.
const PAGE: usize = 4096;

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
    let mut page = from.next_multiple_of(PAGE);
    while page + PAGE <= to {
        if bytes
            .get(page..page + PAGE)
            .is_some_and(|p| p.iter().all(|&b| b == 0))
        {
            return true;
        }
        page += PAGE;
    }
    false
}

/// Scans the records of a segment's bytes from `start`, calling `f` for each.
///
/// In the last segment a damaged record with nothing valid after it is a torn
/// tail (an unacknowledged write cut short): the scan reports where to truncate.
/// Any other damage is an error, or with `salvage` is skipped and reported.
pub(crate) fn scan(
    path: &Path,
    bytes: &[u8],
    start: u64,
    is_last: bool,
    salvage: bool,
    mut f: impl FnMut(u64, usize, &Record<'_>),
) -> Result<Scan> {
    let mut out = Scan::default();
    let mut off =
        usize::try_from(start).map_err(|_| Error::corrupt(path, start, "offset out of range"))?;
    loop {
        let rest = bytes.get(off..).unwrap_or_default();
        if rest.is_empty() {
            break;
        }
        let err = match record::decode(rest) {
            Ok((rec, size)) => {
                f(off as u64, size, &rec);
                off += size;
                continue;
            }
            Err(e) => e,
        };
        let next = resync(bytes, off + 1);
        if err == DecodeError::End && next.is_none() && rest.iter().all(|&b| b == 0) {
            // Zero-filled space after the data: a clean end.
            break;
        }
        let frame_len = rest
            .get(0..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .unwrap_or(usize::MAX);
        // A write cut short leaves a frame that runs past the end of the file,
        // or (after a power cut) zero-filled blocks inside it.
        let torn_shape = matches!(
            err,
            DecodeError::Truncated | DecodeError::TooLong | DecodeError::End
        ) || has_zero_run(
            rest.get(..FRAME_HEADER.saturating_add(frame_len).min(rest.len()))
                .unwrap_or_default(),
            32,
        );
        // Valid records after the damage are still a torn tail when the
        // damage holds a never-written page (see `has_zero_page`).
        let resume = next.unwrap_or(bytes.len());
        if is_last && torn_shape && (next.is_none() || has_zero_page(bytes, off, resume)) {
            out.torn_at = Some(off as u64);
            break;
        }
        let reason = err.describe();
        if !salvage {
            return Err(Error::corrupt(path, off as u64, reason));
        }
        out.damage.push(Damage {
            offset: off as u64,
            skipped: (resume - off) as u64,
            reason,
        });
        off = resume;
    }
    out.end = off as u64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{FLAG_PII, RecordHeader};

    fn frame(seq: u32) -> Vec<u8> {
        let h = RecordHeader {
            version: RECORD_VERSION,
            kind: KIND_MESSAGE,
            flags: FLAG_PII,
            tid: [seq as u8; 16],
            vid: [2; 16],
            seq,
            ts_millis: 1,
            content_len: 30,
            pii_len: 20,
            content_nonce: [3; 12],
            pii_nonce: [4; 12],
        };
        let mut out = Vec::new();
        record::encode(&h, &[5u8; 30], &[6u8; 20], &mut out);
        out
    }

    fn data(n: u32) -> Vec<u8> {
        let mut d = header(1).to_vec();
        for i in 0..n {
            d.extend(frame(i));
        }
        d
    }

    fn count(bytes: &[u8], last: bool, salvage: bool) -> Result<(usize, Scan)> {
        let mut n = 0;
        let s = scan(
            Path::new("x"),
            bytes,
            SEGMENT_HEADER,
            last,
            salvage,
            |_, _, _| n += 1,
        )?;
        Ok((n, s))
    }

    #[test]
    fn clean_and_zero_padded_ends() {
        let d = data(3);
        let (n, s) = count(&d, true, false).unwrap();
        assert_eq!((n, s.end, s.torn_at), (3, d.len() as u64, None));
        let mut padded = d.clone();
        padded.extend([0u8; 4096]);
        let (n, s) = count(&padded, true, false).unwrap();
        assert_eq!((n, s.end, s.torn_at), (3, d.len() as u64, None));
    }

    #[test]
    fn every_truncation_of_the_last_segment_is_a_torn_tail() {
        let d = data(3);
        let one = frame(0).len();
        for cut in SEGMENT_HEADER as usize..d.len() {
            let (n, s) = count(&d[..cut], true, false).unwrap();
            let whole = (cut - SEGMENT_HEADER as usize) / one;
            assert_eq!(n, whole, "cut at {cut}");
            let boundary = SEGMENT_HEADER as usize + whole * one;
            assert_eq!(s.end, boundary as u64);
            assert_eq!(s.torn_at.is_some(), cut != boundary);
        }
    }

    #[test]
    fn a_never_written_page_cuts_the_last_segment_even_with_records_after_it() {
        // Records over several pages; one page in the middle left as zeros
        // (written back out of order before a power cut), later pages intact.
        let d = data(200);
        let one = frame(0).len();
        assert!(d.len() > 4 * PAGE);
        let mut holed = d.clone();
        holed[PAGE..2 * PAGE].fill(0);
        let first_hit = (PAGE - SEGMENT_HEADER as usize) / one;
        let (n, s) = count(&holed, true, false).unwrap();
        assert_eq!(n, first_hit, "records before the hole kept");
        let cut = SEGMENT_HEADER as usize + first_hit * one;
        assert_eq!(s.torn_at, Some(cut as u64));
        assert_eq!(s.end, cut as u64);
        // In a sealed segment (synced whole when sealed) it is corruption.
        assert!(count(&holed, false, false).is_err());
        // Less than a whole page of zeros with records after it is damage,
        // not a torn tail.
        let mut short = d.clone();
        short[PAGE + 100..PAGE + 200].fill(0);
        assert!(count(&short, true, false).is_err());
    }

    #[test]
    fn appends_run_into_preallocated_zeros_and_trim_cuts_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Active::create(dir.path(), 7).unwrap();
        let f = frame(0);
        let off = a.append(&f).unwrap();
        assert_eq!(off, SEGMENT_HEADER);
        let seg_path = a.path.clone();
        let file_len = || std::fs::metadata(&seg_path).unwrap().len();
        let preallocated = file_len();
        assert!(preallocated >= PREALLOCATE, "zeros written ahead");
        // Appends inside the zeros leave the file's length alone.
        a.append(&f).unwrap();
        assert_eq!(file_len(), preallocated);
        let bytes = std::fs::read(&a.path).unwrap();
        let (n, s) = count(&bytes, true, false).unwrap();
        assert_eq!((n, s.end, s.torn_at), (2, a.len, None));
        a.trim().unwrap();
        assert_eq!(file_len(), a.len);
        // Reopening at the data's end cuts what follows it.
        a.append(&f).unwrap();
        let (path, len) = (a.path.clone(), a.len);
        drop(a);
        assert!(std::fs::metadata(&path).unwrap().len() > len);
        let b = Active::reopen(path.clone(), 7, len).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        assert_eq!(b.len, len);
    }

    #[test]
    fn damage_in_the_middle_is_reported_or_salvaged() {
        let d = data(3);
        let one = frame(0).len();
        let mut bad = d.clone();
        bad[SEGMENT_HEADER as usize + one + 50] ^= 0xff;
        for last in [false, true] {
            let err = count(&bad, last, false).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("offset {}", SEGMENT_HEADER as usize + one)),
                "{err}"
            );
            let (n, s) = count(&bad, last, true).unwrap();
            assert_eq!(n, 2);
            assert_eq!(s.damage.len(), 1);
            assert_eq!(s.damage[0].skipped, one as u64);
        }
        // A flip in the last record of a sealed segment is corruption too.
        let mut bad = d.clone();
        let at = d.len() - 10;
        bad[at] ^= 1;
        assert!(count(&bad, false, false).is_err());
        // In the last segment a complete-looking record with a bad checksum
        // and no sign of a torn write is reported, not silently dropped.
        assert!(count(&bad, true, false).is_err());
    }
}
