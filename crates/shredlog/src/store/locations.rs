//! Record-location files of sealed segments (docs/FORMAT.md §7a): built
//! from a segment's records when it is sealed, rewritten by compaction, or
//! at open when one is missing, stale or damaged.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::index::{Describes, Entry, Sidecar, SidecarBuilder, sidecar_file_name};
use crate::record::Record;
use crate::segment::{self, SEGMENT_HEADER, ScanRules};

/// Collects a segment's records as a scan finds them.
#[derive(Default)]
pub(crate) struct Collect(SidecarBuilder);

impl Collect {
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
        let bytes = self.0.finish(describes);
        if write {
            Sidecar::write(dir, &path, &bytes)
        } else {
            Sidecar::in_memory(&path, bytes)
        }
    }
}

/// Builds and writes the location file of a sealed segment file whose
/// every frame is sound (just sealed, or just written by compaction), read
/// through a map of its own that is dropped when done.
///
/// # Errors
/// [`Error::Corrupt`] if a frame fails its checks, [`Error::Io`] if a file
/// cannot be read or written.
pub(crate) fn build_sealed(dir: &Path, path: &Path, id: u64) -> Result<Arc<Sidecar>> {
    let map = segment::map_once(path)?;
    build_from(dir, path, &map, id)
}

fn build_from(dir: &Path, path: &Path, map: &[u8], id: u64) -> Result<Arc<Sidecar>> {
    let header = segment::check_header(path, map, id)?;
    let mut collect = Collect::default();
    let scan = segment::scan(
        path,
        map,
        SEGMENT_HEADER,
        ScanRules {
            id,
            header,
            last: false,
            salvage: false,
            acknowledged: map.len() as u64,
        },
        |off, size, rec| collect.add(off, size, rec),
    )?;
    if let Some(d) = scan.damage.first() {
        return Err(Error::corrupt(path, d.offset, d.reason.clone()));
    }
    let describes = Describes {
        segment: id,
        generation: header.generation,
        segment_len: map.len() as u64,
    };
    Ok(Arc::new(collect.finish(dir, describes, true)?))
}

/// Removes the location file of a segment that is gone, and leftovers of
/// location files cut short (a writing open only).
///
/// # Errors
/// [`Error::Io`] if a file cannot be removed.
pub(crate) fn remove_strays(dir: &Path, segments: &[u64]) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let stray = if name.ends_with(".idx.tmp") {
            true
        } else if let Some(stem) = name.strip_suffix(".idx") {
            stem.len() == 12
                && stem.bytes().all(|b| b.is_ascii_digit())
                && stem.parse::<u64>().is_ok_and(|id| !segments.contains(&id))
        } else {
            false
        };
        if stray {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}
