//! Append-only segment files: creation, appending, rolling, reading (sealed
//! segments through a memory map, the active one with positioned reads) and the
//! recovery scan.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// The segment being appended to.
pub(crate) struct Active {
    pub id: u64,
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Next write offset (= bytes of data).
    pub len: u64,
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
        })
    }

    /// Reopens an existing segment for appending at `len`.
    pub(crate) fn reopen(path: PathBuf, id: u64, len: u64) -> Result<Active> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        Ok(Active {
            id,
            path,
            file: Arc::new(file),
            len,
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
        self.file.write_all_at(bytes, off).at(&self.path)?;
        self.len += bytes.len() as u64;
        Ok(off)
    }

    /// A reader's view of this segment.
    pub(crate) fn reader(&self) -> Segment {
        Segment::Active {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
        }
    }
}

/// Makes a segment file's data durable.
pub(crate) fn sync(path: &Path, file: &File) -> Result<()> {
    crate::failpoint::check("segment.sync").at(path)?;
    file.sync_data().at(path)?;
    crate::failpoint::synced(path, file);
    Ok(())
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
        if is_last && next.is_none() && torn_shape {
            out.torn_at = Some(off as u64);
            break;
        }
        let reason = err.describe();
        if !salvage {
            return Err(Error::corrupt(path, off as u64, reason));
        }
        let resume = next.unwrap_or(bytes.len());
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
