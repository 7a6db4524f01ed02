//! Record-location files of sealed segments (docs/FORMAT.md §7a): built
//! from a segment's records when it is sealed, rewritten by compaction, or
//! at open when one is missing, stale or damaged.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::index::{Describes, Entry, Sidecar, SidecarBuilder, sidecar_file_name, sidecar_id_of};
use crate::record::{self, FRAME_HEADER, Frame, Record};
use crate::segment::{self, SEGMENT_HEADER};

/// Collects a segment's records as a scan finds them.
#[derive(Default)]
pub(crate) struct Collect(SidecarBuilder);

impl Collect {
    /// Room for `n` records (a hint: more may come).
    pub(crate) fn with_capacity(n: usize) -> Collect {
        Collect(SidecarBuilder::with_capacity(n))
    }

    /// Takes the record at `off` (`size` bytes of frame).
    pub(crate) fn add(&mut self, off: u64, size: usize, rec: &Record<'_>) {
        self.0.add(Entry {
            tid: rec.header.tid,
            seq: rec.header.seq,
            ts: rec.header.ts_millis,
            off,
            len: size as u32,
            pii_len: rec.header.pii_len,
            msg_id: rec.header.msg_id,
        });
    }

    /// The location file of the segment `describes` names: written to
    /// `dir` (through a synced temporary file) when `write`, else held in
    /// memory (a read-only open writes nothing).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be written.
    pub(crate) fn finish(self, dir: &Path, describes: Describes, write: bool) -> Result<Sidecar> {
        let path = dir.join(sidecar_file_name(describes.segment));
        if write {
            Sidecar::write_built(dir, &path, self.0, describes)
        } else {
            Sidecar::in_memory(&path, self.0.finish(describes))
        }
    }
}

/// Builds and writes the location file of a sealed segment file whose
/// every frame is sound (just sealed, or just written by compaction), read
/// sequentially through a buffer: its pages stay out of this process's
/// resident memory (a map would keep the whole segment there while built).
///
/// # Errors
/// [`Error::Corrupt`] if a frame fails its checks or the file does not end
/// with its footer (or, version 1, its last frame), [`Error::Io`] if a file
/// cannot be read or written.
/// `expected` is how many records the caller expects (0: unknown), so that
/// they are held without room to spare; `write`: written to `dir`, else held
/// in memory (a read-only store writes nothing).
pub(crate) fn build_sealed(
    dir: &Path,
    path: &Path,
    id: u64,
    expected: usize,
    write: bool,
) -> Result<Sidecar> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut head = [0u8; SEGMENT_HEADER as usize];
    read(&mut reader, &mut head, path, 0)?;
    let header = segment::check_header(path, &head, id)?;
    let mut collect = Collect::with_capacity(expected);
    let mut frame = Vec::new();
    let mut off = SEGMENT_HEADER;
    let mut footer = false;
    while off < len {
        frame.resize(FRAME_HEADER, 0);
        read(&mut reader, &mut frame, path, off)?;
        let body = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        if body == 0 || body > record::MAX_BODY {
            return Err(Error::corrupt(
                path,
                off,
                "bad frame length in a sealed segment",
            ));
        }
        frame.resize(FRAME_HEADER + body, 0);
        read(&mut reader, &mut frame[FRAME_HEADER..], path, off)?;
        match record::decode_any(&frame) {
            Ok((Frame::Record(rec), size)) => collect.add(off, size, &rec),
            Ok((Frame::Footer(f), size)) => {
                if f.segment != id
                    || f.generation != header.generation
                    || f.data_len != off
                    || off + size as u64 != len
                {
                    return Err(Error::corrupt(path, off, "footer does not end the segment"));
                }
                footer = true;
            }
            Err(e) => return Err(Error::corrupt(path, off, e.describe())),
        }
        off += frame.len() as u64;
    }
    if header.has_footer() && !footer {
        return Err(Error::corrupt(
            path,
            len,
            "sealed segment without its footer",
        ));
    }
    let describes = Describes {
        segment: id,
        generation: header.generation,
        segment_len: len,
    };
    collect.finish(dir, describes, write)
}

fn read(reader: &mut impl Read, buf: &mut [u8], path: &Path, off: u64) -> Result<()> {
    reader.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::corrupt(path, off, "frame runs past the end of the segment")
        } else {
            Error::io(path, e)
        }
    })
}

/// Removes the location file of a segment that is gone, and leftovers of
/// location files cut short (a writing open only).
///
/// # Errors
/// [`Error::Io`] if a file cannot be removed.
pub(crate) fn remove_strays(dir: &Path, names: &[String], segments: &[u64]) -> Result<()> {
    for name in names {
        let stray = name.ends_with(".idx.tmp")
            || sidecar_id_of(name).is_some_and(|id| !segments.contains(&id));
        if stray {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                // Listed earlier in this open, and gone since: nothing to do.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                r => r.map_err(|e| Error::io(&path, e))?,
            }
        }
    }
    Ok(())
}
