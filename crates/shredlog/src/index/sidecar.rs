//! Record-location files (`NNNNNNNNNNNN.idx`): for one sealed segment file,
//! every record it holds (transcript generation, sequence number, time,
//! offset, lengths, message-id digest), sorted by generation, and one
//! summary per generation (docs/FORMAT.md §7a).
//!
//! A location file is derived data: a pure function of its segment file,
//! written after the segment is sealed (or rewritten by compaction), named
//! by the segment's id, generation and length, and rebuilt from the segment
//! whenever it is missing, stale or damaged. It holds random ids, offsets,
//! lengths and times: no key and no personal data.
//!
//! It is read with positioned reads, a 4 KiB block at a time, each block
//! checked by its own CRC when read: a first lookup reads the header and the
//! [`Finder`] the file holds after its summaries (version 2; of a version 1
//! file, every summary, to build it), a transcript read only the blocks that
//! hold its records. Nothing of it is held in memory but the header and the
//! finder (about 1.5 bytes per summary), which leads a lookup by generation
//! to the one summary block that can hold it (the page cache does the rest).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::blocks::BlockCache;
use super::finder::Finder;
use super::rows::RowCache;
use super::{Loc, RecordRef};
use crate::error::{Error, IoContext, Result};
use crate::record::{MsgIdDigest, Tid};

/// Size of a block: the header block, and each block of entries or summaries.
pub(crate) const BLOCK: usize = 4096;
/// Size of one entry or summary.
const ITEM: usize = 64;
/// Items per block (the block's last 64 bytes: CRC and zeros).
const PER_BLOCK: usize = 63;
const MAGIC: &[u8; 8] = b"SHRDIDX1";
/// Version written: 2 adds the finder's blocks after the summaries. Version
/// 1 files (without them) are still read.
const VERSION: u16 = 2;
/// Bytes of the finder in each of its blocks (as items: the block's last 64
/// bytes are its CRC and zeros).
const FINDER_PER_BLOCK: usize = PER_BLOCK * ITEM;

/// The name of segment `id`'s location file.
pub(crate) fn file_name(id: u64) -> String {
    format!("{id:012}.idx")
}

/// The segment id a location file's name gives (`None` for another name).
pub(crate) fn id_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".idx")?;
    (stem.len() == 12 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// One record of the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub tid: Tid,
    pub seq: u32,
    pub ts: i64,
    pub off: u64,
    /// Size of the whole frame.
    pub len: u32,
    pub pii_len: u32,
    pub msg_id: Option<MsgIdDigest>,
}

impl Entry {
    pub(crate) fn record_ref(&self, seg: u64) -> RecordRef {
        RecordRef {
            seq: self.seq,
            ts: self.ts,
            loc: Loc {
                seg,
                off: self.off,
                len: self.len,
            },
            pii_len: self.pii_len,
        }
    }

    fn encode(&self, out: &mut [u8]) {
        put(out, 0, &self.tid);
        put(out, 16, &self.seq.to_le_bytes());
        put(out, 20, &self.pii_len.to_le_bytes());
        put(out, 24, &self.ts.to_le_bytes());
        put(out, 32, &self.off.to_le_bytes());
        put(out, 40, &self.len.to_le_bytes());
        put(out, 44, &u32::from(self.msg_id.is_some()).to_le_bytes());
        put(out, 48, &self.msg_id.unwrap_or_default());
    }

    fn decode(b: &[u8]) -> Option<Entry> {
        let has_id = u32_at(b, 44)?;
        if has_id > 1 {
            return None;
        }
        Some(Entry {
            tid: b.get(0..16)?.try_into().ok()?,
            seq: u32_at(b, 16)?,
            pii_len: u32_at(b, 20)?,
            ts: i64::from_le_bytes(b.get(24..32)?.try_into().ok()?),
            off: u64_at(b, 32)?,
            len: u32_at(b, 40)?,
            msg_id: if has_id == 1 {
                Some(b.get(48..64)?.try_into().ok()?)
            } else {
                None
            },
        })
    }
}

/// The records of one generation in the segment: entries
/// `first .. first + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub tid: Tid,
    pub first: u32,
    pub count: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    /// Sum of the frames' lengths.
    pub bytes: u64,
    /// Sum of the PII parts' lengths.
    pub pii_bytes: u64,
    pub max_seq: u32,
}

impl Summary {
    fn encode(&self, out: &mut [u8]) {
        put(out, 0, &self.tid);
        put(out, 16, &self.first.to_le_bytes());
        put(out, 20, &self.count.to_le_bytes());
        put(out, 24, &self.min_ts.to_le_bytes());
        put(out, 32, &self.max_ts.to_le_bytes());
        put(out, 40, &self.bytes.to_le_bytes());
        put(out, 48, &self.pii_bytes.to_le_bytes());
        put(out, 56, &self.max_seq.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Option<Summary> {
        Some(Summary {
            tid: b.get(0..16)?.try_into().ok()?,
            first: u32_at(b, 16)?,
            count: u32_at(b, 20)?,
            min_ts: i64::from_le_bytes(b.get(24..32)?.try_into().ok()?),
            max_ts: i64::from_le_bytes(b.get(32..40)?.try_into().ok()?),
            bytes: u64_at(b, 40)?,
            pii_bytes: u64_at(b, 48)?,
            max_seq: u32_at(b, 56)?,
        })
    }
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Which segment file a location file describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Describes {
    pub segment: u64,
    pub generation: u32,
    /// The segment file's length.
    pub segment_len: u64,
}

/// The header of a location file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    /// 1, or 2 (the finder's blocks follow the summaries).
    version: u16,
    describes: Describes,
    entries: u64,
    summaries: u64,
    /// Sum of every record's frame length.
    record_bytes: u64,
}

impl Header {
    /// `magic[8] | version u16 | 0[6] | segment u64 | generation u32 | 0[4] |
    /// segment_len u64 | entries u64 | summaries u64 | record_bytes u64 |
    /// crc32 u32 (of bytes 0..64)`, at the start of the first block.
    fn encode(&self, out: &mut [u8]) {
        put(out, 0, MAGIC);
        put(out, 8, &self.version.to_le_bytes());
        put(out, 16, &self.describes.segment.to_le_bytes());
        put(out, 24, &self.describes.generation.to_le_bytes());
        put(out, 32, &self.describes.segment_len.to_le_bytes());
        put(out, 40, &self.entries.to_le_bytes());
        put(out, 48, &self.summaries.to_le_bytes());
        put(out, 56, &self.record_bytes.to_le_bytes());
        let crc = crc32fast::hash(out.get(0..64).unwrap_or_default());
        put(out, 64, &crc.to_le_bytes());
    }
}

fn blocks(items: u64) -> u64 {
    items.div_ceil(PER_BLOCK as u64)
}

/// Number of the finder's blocks (none in a version 1 file).
fn finder_blocks(header: &Header) -> u64 {
    if header.version < 2 {
        return 0;
    }
    Finder::encoded_len(header.summaries, PER_BLOCK).div_ceil(FINDER_PER_BLOCK as u64)
}

/// Number of blocks of the file `header` heads.
fn total_blocks(header: &Header) -> u64 {
    1 + blocks(header.entries) + blocks(header.summaries) + finder_blocks(header)
}

/// Builds a location file from a segment's records, in any order.
///
/// A segment holds up to a few hundred thousand records and the builder
/// holds them all until it sorts them, so it keeps each in 32 bytes, not
/// as an [`Entry`] of 64: the generation as a number into a table of the
/// segment's generations, and the message-id digest, which most records
/// lack, in a map beside, by the record's offset (one record per offset in
/// a segment: found again after the sort moves the records).
#[derive(Default)]
pub(crate) struct Builder {
    entries: Vec<Compact>,
    tids: Vec<Tid>,
    numbers: crate::ids::IdMap<u32>,
    msg_ids: std::collections::HashMap<u64, MsgIdDigest>,
}

/// An [`Entry`] without its generation id and message-id digest.
#[derive(Clone, Copy)]
struct Compact {
    /// The generation's place in `Builder::tids`.
    tid: u32,
    seq: u32,
    ts: i64,
    off: u64,
    len: u32,
    pii_len: u32,
}

impl Builder {
    /// Room for `n` records.
    pub(crate) fn with_capacity(n: usize) -> Builder {
        Builder {
            entries: Vec::with_capacity(n),
            ..Builder::default()
        }
    }

    pub(crate) fn add(&mut self, e: Entry) {
        let tid = match self.numbers.get(&e.tid) {
            Some(n) => *n,
            None => {
                let n = self.tids.len() as u32;
                self.tids.push(e.tid);
                self.numbers.insert(e.tid, n);
                n
            }
        };
        if let Some(d) = e.msg_id {
            self.msg_ids.insert(e.off, d);
        }
        self.entries.push(Compact {
            tid,
            seq: e.seq,
            ts: e.ts,
            off: e.off,
            len: e.len,
            pii_len: e.pii_len,
        });
    }

    /// The file's bytes.
    pub(crate) fn finish(self, describes: Describes) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing into a vector cannot fail; were it to, the bytes would be
        // short and `Sidecar::in_memory` would refuse them.
        let _ = self.write_to(describes, &mut out);
        out
    }

    /// Writes the file's bytes to `out` one block at a time (so that a
    /// segment's entries are held once, not also as the file's bytes) and
    /// returns its header.
    fn write_to(self, describes: Describes, out: &mut impl Write) -> std::io::Result<Header> {
        let Builder {
            mut entries,
            tids,
            numbers,
            msg_ids,
        } = self;
        drop(numbers);
        // Each generation's rank in id order (a few thousand generations,
        // sorted once): the records' sort compares integers, and moves the
        // records themselves rather than positions into them (a sort of
        // positions looks each record up at every comparison: most of its
        // time went to those cache misses).
        let mut by_id: Vec<u32> = (0..tids.len() as u32).collect();
        by_id.sort_unstable_by_key(|&n| tids[n as usize]);
        let mut rank = vec![0u32; tids.len()];
        for (r, &n) in by_id.iter().enumerate() {
            rank[n as usize] = r as u32;
        }
        drop(by_id);
        entries.sort_unstable_by_key(|e| (rank[e.tid as usize], e.seq, e.off));
        drop(rank);
        let entry = |e: &Compact| Entry {
            tid: tids[e.tid as usize],
            seq: e.seq,
            ts: e.ts,
            off: e.off,
            len: e.len,
            pii_len: e.pii_len,
            msg_id: msg_ids.get(&e.off).copied(),
        };
        let mut summaries: Vec<Summary> = Vec::new();
        for (i, c) in entries.iter().enumerate() {
            let e = entry(c);
            match summaries.last_mut() {
                Some(s) if s.tid == e.tid => {
                    s.count += 1;
                    s.min_ts = s.min_ts.min(e.ts);
                    s.max_ts = s.max_ts.max(e.ts);
                    s.bytes += u64::from(e.len);
                    s.pii_bytes += u64::from(e.pii_len);
                    s.max_seq = s.max_seq.max(e.seq);
                }
                _ => summaries.push(Summary {
                    tid: e.tid,
                    first: i as u32,
                    count: 1,
                    min_ts: e.ts,
                    max_ts: e.ts,
                    bytes: u64::from(e.len),
                    pii_bytes: u64::from(e.pii_len),
                    max_seq: e.seq,
                }),
            }
        }
        let header = Header {
            version: VERSION,
            describes,
            entries: entries.len() as u64,
            summaries: summaries.len() as u64,
            record_bytes: entries.iter().map(|e| u64::from(e.len)).sum(),
        };
        let mut block = vec![0u8; BLOCK];
        header.encode(&mut block);
        out.write_all(&block)?;
        for chunk in entries.chunks(PER_BLOCK) {
            block.fill(0);
            for (i, c) in chunk.iter().enumerate() {
                entry(c).encode(&mut block[ITEM * i..ITEM * (i + 1)]);
            }
            seal_block(&mut block);
            out.write_all(&block)?;
        }
        for chunk in summaries.chunks(PER_BLOCK) {
            block.fill(0);
            for (i, s) in chunk.iter().enumerate() {
                s.encode(&mut block[ITEM * i..ITEM * (i + 1)]);
            }
            seal_block(&mut block);
            out.write_all(&block)?;
        }
        let mut finder = Vec::new();
        Finder::new(summaries.iter().map(|s| s.tid), PER_BLOCK).encode(&mut finder);
        for chunk in finder.chunks(FINDER_PER_BLOCK) {
            block.fill(0);
            block[..chunk.len()].copy_from_slice(chunk);
            seal_block(&mut block);
            out.write_all(&block)?;
        }
        Ok(header)
    }
}

/// Writes a block's CRC (of its first 4092 bytes) into its last 4 bytes.
fn seal_block(block: &mut [u8]) {
    let crc = crc32fast::hash(block.get(..BLOCK - 4).unwrap_or_default());
    put(block, BLOCK - 4, &crc.to_le_bytes());
}

fn block_ok(block: &[u8]) -> bool {
    block.len() == BLOCK
        && u32_at(block, BLOCK - 4)
            == Some(crc32fast::hash(block.get(..BLOCK - 4).unwrap_or_default()))
}

/// Where a location file's bytes are: its file (read with positioned reads),
/// or memory (built by a read-only open, which writes nothing).
enum Source {
    File(File),
    Memory(Vec<u8>),
}

/// How a location file opened late is rebuilt when the file found is
/// missing, stale or its header damaged: from its segment (the store
/// supplies it; the index does not know segments).
pub(crate) type Rebuild = Box<dyn Fn() -> Result<Sidecar> + Send + Sync>;

/// A location file's bytes and checked header.
struct Opened {
    source: Source,
    header: Header,
}

/// A checked location file, or (opened late) one checked when first read.
pub(crate) struct Sidecar {
    path: PathBuf,
    /// The segment file it describes (its header must say the same).
    describes: Describes,
    /// Set when it is made, or when first read (opened late).
    opened: OnceLock<Opened>,
    /// Rebuilds it when opened late and the file does not do.
    rebuild: Option<Rebuild>,
    /// Held while it is opened late, so that one reader rebuilds it.
    opening: parking_lot::Mutex<()>,
    /// Built from the summaries the first time they are read.
    finder: OnceLock<Finder>,
    /// Where lookups keep the blocks they read (set by the index).
    cache: OnceLock<Arc<BlockCache>>,
    /// Where a transcript's read keeps the summaries and entries it found
    /// (set by the index).
    items: OnceLock<Arc<RowCache<ItemKey>>>,
}

/// A location file's answer in the item cache: (segment, file generation,
/// what, id): what 0 is a generation's summary (id: its tid), 1 a run of
/// entries (id: the first's number and the count, u32 LE each, then
/// zeros). The value is the items' bytes as the file holds them.
pub(crate) type ItemKey = (u64, u32, u8, [u8; 16]);

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidecar")
            .field("path", &self.path)
            .field("describes", &self.describes)
            .finish()
    }
}

impl Sidecar {
    /// Opens `path` if it is a location file of the segment `describes`
    /// names (header checked, length right). `Ok(None)` when it is missing,
    /// stale (another generation or length) or its header is damaged: the
    /// caller rebuilds it from the segment.
    pub(crate) fn open(path: &Path, describes: Describes) -> Result<Option<Sidecar>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let len = file.metadata().at(path)?.len();
        let mut first = vec![0u8; BLOCK];
        if len < BLOCK as u64 || file.read_exact_at(&mut first, 0).is_err() {
            return Ok(None);
        }
        let Some(header) = parse_header(&first) else {
            return Ok(None);
        };
        if header.describes != describes || len != BLOCK as u64 * total_blocks(&header) {
            return Ok(None);
        }
        Ok(Some(Sidecar::made(path, Source::File(file), header)))
    }

    fn made(path: &Path, source: Source, header: Header) -> Sidecar {
        Sidecar {
            path: path.to_owned(),
            describes: header.describes,
            opened: OnceLock::from(Opened { source, header }),
            rebuild: None,
            opening: parking_lot::Mutex::new(()),
            finder: OnceLock::new(),
            cache: OnceLock::new(),
            items: OnceLock::new(),
        }
    }

    /// The location file `path` of the segment `describes` names, opened
    /// and checked when first read (open then reads nothing of it); when it
    /// is missing, stale or its header damaged then, `rebuild` makes it
    /// again from the segment.
    pub(crate) fn unopened(path: &Path, describes: Describes, rebuild: Rebuild) -> Sidecar {
        Sidecar {
            path: path.to_owned(),
            describes,
            opened: OnceLock::new(),
            rebuild: Some(rebuild),
            opening: parking_lot::Mutex::new(()),
            finder: OnceLock::new(),
            cache: OnceLock::new(),
            items: OnceLock::new(),
        }
    }

    /// Its bytes and header, opening it first if it was opened late.
    fn opened(&self) -> Result<&Opened> {
        if let Some(o) = self.opened.get() {
            return Ok(o);
        }
        let _one = self.opening.lock();
        if let Some(o) = self.opened.get() {
            return Ok(o);
        }
        let made = match Sidecar::open(&self.path, self.describes)? {
            Some(found) => found,
            None => {
                let rebuild = self.rebuild.as_ref().ok_or_else(|| {
                    Error::Internal(
                        "a location file has neither bytes nor a way to open them".into(),
                    )
                })?;
                let built = rebuild()?;
                if built.describes != self.describes {
                    return Err(Error::Internal(
                        "a rebuilt location file describes another segment file".into(),
                    ));
                }
                built
            }
        };
        let opened = made
            .opened
            .into_inner()
            .ok_or_else(|| Error::Internal("a location file made has no bytes".into()))?;
        let _ = self.opened.set(opened);
        self.opened
            .get()
            .ok_or_else(|| Error::Internal("a location file's bytes were not kept".into()))
    }

    /// Opens it now if it was opened late and not read yet.
    pub(crate) fn open_now(&self) -> Result<()> {
        self.opened().map(|_| ())
    }

    fn header(&self) -> Result<Header> {
        Ok(self.opened()?.header)
    }

    /// A location file held in memory (`bytes` from [`Builder::finish`]).
    pub(crate) fn in_memory(path: &Path, bytes: Vec<u8>) -> Result<Sidecar> {
        let header = bytes
            .get(..BLOCK)
            .and_then(parse_header)
            .ok_or_else(|| Error::Internal("a location file built in memory is invalid".into()))?;
        Ok(Sidecar::made(path, Source::Memory(bytes), header))
    }

    /// Writes the file `builder` describes as `path`, streaming it block by
    /// block, through a synced temporary file and a rename (the directory is
    /// not synced: a location file lost by a crash is rebuilt), and opens it.
    pub(crate) fn write_built(
        dir: &Path,
        path: &Path,
        builder: Builder,
        describes: Describes,
    ) -> Result<Sidecar> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Internal("a location file has no name".into()))?;
        let tmp = dir.join(format!("{name}.tmp"));
        let header = {
            let f = File::create(&tmp).at(&tmp)?;
            crate::failpoint::check("locations.write").at(&tmp)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
            let header = builder.write_to(describes, &mut w).at(&tmp)?;
            let f = w
                .into_inner()
                .map_err(|e| Error::io(&tmp, e.into_error()))?;
            f.sync_all().at(&tmp)?;
            header
        };
        std::fs::rename(&tmp, path).at(path)?;
        let file = File::open(path).at(path)?;
        Ok(Sidecar::made(path, Source::File(file), header))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Which segment file it describes.
    pub(crate) fn describes(&self) -> Describes {
        self.describes
    }

    /// Sum of the frame lengths of every record in the segment.
    pub(crate) fn record_bytes(&self) -> Result<u64> {
        Ok(self.header()?.record_bytes)
    }

    /// Whether it is held in memory (not in its file).
    #[cfg(test)]
    pub(crate) fn is_in_memory(&self) -> bool {
        matches!(
            self.opened.get(),
            Some(Opened {
                source: Source::Memory(_),
                ..
            })
        )
    }

    fn block(&self, index: u64) -> Result<Vec<u8>> {
        let at = index * BLOCK as u64;
        let mut buf = vec![0u8; BLOCK];
        match &self.opened()?.source {
            Source::File(f) => f.read_exact_at(&mut buf, at).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    self.damaged(at, "the file is shorter than its header says")
                } else {
                    Error::io(&self.path, e)
                }
            })?,
            Source::Memory(m) => {
                let from = usize::try_from(at).unwrap_or(usize::MAX);
                let src = m
                    .get(from..from.saturating_add(BLOCK))
                    .ok_or_else(|| self.damaged(at, "block out of range"))?;
                buf.copy_from_slice(src);
            }
        }
        if !block_ok(&buf) {
            return Err(self.damaged(at, "block checksum mismatch"));
        }
        Ok(buf)
    }

    /// Makes lookups keep the blocks they read in `cache`, and the
    /// summaries and entries a read asks for in `items` (once; later calls
    /// change nothing).
    pub(crate) fn use_cache(&self, cache: Arc<BlockCache>, items: Arc<RowCache<ItemKey>>) {
        let _ = self.cache.set(cache);
        let _ = self.items.set(items);
    }

    fn item_key(&self, what: u8, id: [u8; 16]) -> ItemKey {
        (self.describes.segment, self.describes.generation, what, id)
    }

    /// The items kept under `key`.
    fn kept(&self, key: &ItemKey) -> Option<Arc<[u8]>> {
        self.items.get()?.get(key)
    }

    /// Keeps `bytes` under `key`.
    fn keep(&self, key: ItemKey, bytes: &[u8]) {
        if let Some(items) = self.items.get() {
            items.insert(key, Arc::from(bytes));
        }
    }

    /// Block `index` as a lookup reads it: from the cache when held there,
    /// else read, checked and kept.
    fn cached_block(&self, index: u64) -> Result<Arc<[u8]>> {
        let Some(cache) = self.cache.get() else {
            return Ok(Arc::from(self.block(index)?));
        };
        let d = self.describes;
        let key = (d.segment, d.generation, index);
        if let Some(b) = cache.get(&key) {
            return Ok(b);
        }
        let b: Arc<[u8]> = Arc::from(self.block(index)?);
        cache.insert(key, Arc::clone(&b));
        Ok(b)
    }

    fn damaged(&self, at: u64, why: &str) -> Error {
        Error::corrupt(
            &self.path,
            at,
            format!(
                "record-location file damaged ({why}); it is derived from segment {}: remove it and open the store writable to rebuild it",
                self.describes.segment
            ),
        )
    }

    /// Every summary, in generation order (reads and checks every summary
    /// block: one per 63 generations in the segment). The first full read
    /// also builds the file's [`Finder`].
    pub(crate) fn summaries(&self) -> Result<Vec<Summary>> {
        let header = self.header()?;
        let mut out = Vec::with_capacity(header.summaries as usize);
        for b in 0..blocks(header.summaries) {
            out.extend(self.summary_block(b)?);
        }
        if out.windows(2).any(|w| w[0].tid >= w[1].tid) {
            return Err(self.damaged(
                first_summary_block(&header) * BLOCK as u64,
                "summaries out of order",
            ));
        }
        if self.finder.get().is_none() {
            let _ = self
                .finder
                .set(Finder::new(out.iter().map(|s| s.tid), PER_BLOCK));
        }
        Ok(out)
    }

    /// The summaries of summary block `b` (counted from the first).
    fn summary_block(&self, b: u64) -> Result<Vec<Summary>> {
        let header = self.header()?;
        let at = first_summary_block(&header) + b;
        let block = self.block(at)?;
        let left = header.summaries.saturating_sub(b * PER_BLOCK as u64);
        let mut out = Vec::with_capacity(left.min(PER_BLOCK as u64) as usize);
        for item in block
            .chunks_exact(ITEM)
            .take(left.min(PER_BLOCK as u64) as usize)
        {
            let s = Summary::decode(item)
                .ok_or_else(|| self.damaged(at * BLOCK as u64, "bad summary"))?;
            if u64::from(s.first) + u64::from(s.count) > header.entries {
                return Err(self.damaged(at * BLOCK as u64, "summary out of range"));
            }
            out.push(s);
        }
        Ok(out)
    }

    /// The summary of generation `tid`, if the segment holds records of it:
    /// answered from memory when it certainly does not, else by one block.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a block it reads is damaged (or, the first
    /// time, any summary block).
    pub(crate) fn find(&self, tid: &Tid) -> Result<Option<Summary>> {
        self.find_kept(tid, false)
    }

    /// [`Sidecar::find`], answered from the item cache when it holds the
    /// summary; one read from the file is kept there if `keep`.
    pub(crate) fn find_kept(&self, tid: &Tid, keep: bool) -> Result<Option<Summary>> {
        let key = self.item_key(0, *tid);
        if let Some(item) = self.kept(&key) {
            return Summary::decode(&item)
                .map(Some)
                .ok_or_else(|| Error::Internal("a kept summary does not decode".into()));
        }
        let Some(b) = self.finder()?.block_of(tid) else {
            return Ok(None);
        };
        // Only the summary that names it is decoded (the block's checksum
        // is checked whole by the read).
        let header = self.header()?;
        let b = b as u64;
        let at = first_summary_block(&header) + b;
        let block = self.cached_block(at)?;
        let items = header
            .summaries
            .saturating_sub(b * PER_BLOCK as u64)
            .min(PER_BLOCK as u64) as usize;
        // Compared as one 128-bit word each (no `memcmp` call per item).
        let want = u128::from_le_bytes(*tid);
        let Some(item) = block
            .chunks_exact(ITEM)
            .take(items)
            .find(|item| item.first_chunk::<16>().map(|t| u128::from_le_bytes(*t)) == Some(want))
        else {
            return Ok(None);
        };
        let s =
            Summary::decode(item).ok_or_else(|| self.damaged(at * BLOCK as u64, "bad summary"))?;
        if u64::from(s.first) + u64::from(s.count) > header.entries {
            return Err(self.damaged(at * BLOCK as u64, "summary out of range"));
        }
        if keep {
            self.keep(key, item);
        }
        Ok(Some(s))
    }

    /// Entries `first .. first + count`.
    #[cfg(test)]
    pub(crate) fn entries(&self, first: u32, count: u32) -> Result<Vec<Entry>> {
        self.entries_kept(first, count, false)
    }

    /// [`Sidecar::entries`], answered from the item cache when it holds
    /// them; entries read from the file are kept there if `keep`.
    pub(crate) fn entries_kept(&self, first: u32, count: u32, keep: bool) -> Result<Vec<Entry>> {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&first.to_le_bytes());
        id[4..8].copy_from_slice(&count.to_le_bytes());
        let key = self.item_key(1, id);
        if let Some(items) = self.kept(&key) {
            return items
                .chunks_exact(ITEM)
                .map(|item| {
                    Entry::decode(item)
                        .ok_or_else(|| Error::Internal("a kept entry does not decode".into()))
                })
                .collect();
        }
        let end = u64::from(first) + u64::from(count);
        if end > self.header()?.entries {
            return Err(self.damaged(0, "entries out of range"));
        }
        let mut out = Vec::with_capacity(count as usize);
        let mut raw = Vec::with_capacity(if keep { count as usize * ITEM } else { 0 });
        let mut i = u64::from(first);
        while i < end {
            let b = i / PER_BLOCK as u64;
            let block = self.cached_block(1 + b)?;
            while i < end && i / PER_BLOCK as u64 == b {
                let at = ITEM * (i % PER_BLOCK as u64) as usize;
                let item = block.get(at..at + ITEM);
                let e = item
                    .and_then(Entry::decode)
                    .ok_or_else(|| self.damaged((1 + b) * BLOCK as u64, "bad entry"))?;
                if keep {
                    raw.extend_from_slice(item.unwrap_or_default());
                }
                out.push(e);
                i += 1;
            }
        }
        if keep {
            self.keep(key, &raw);
        }
        Ok(out)
    }

    /// Checks every block (for `verify`), and that the file's finder is
    /// the one its summaries make.
    pub(crate) fn check_all(&self) -> Result<()> {
        let header = self.header()?;
        for b in 1..total_blocks(&header) {
            self.block(b)?;
        }
        let summaries = self.summaries()?;
        if let Some(stored) = self.stored_finder(&header)?
            && stored != Finder::new(summaries.iter().map(|s| s.tid), PER_BLOCK)
        {
            return Err(self.damaged(
                first_finder_block(&header) * BLOCK as u64,
                "its finder does not match its summaries",
            ));
        }
        Ok(())
    }

    /// The file's finder: read from its blocks (version 2) or built from
    /// every summary (version 1), the first time it is asked for.
    fn finder(&self) -> Result<&Finder> {
        if let Some(f) = self.finder.get() {
            return Ok(f);
        }
        let header = self.header()?;
        match self.stored_finder(&header)? {
            Some(f) => {
                let _ = self.finder.set(f);
            }
            None => {
                self.summaries()?;
            }
        }
        self.finder
            .get()
            .ok_or_else(|| Error::Internal("a location file's finder was not built".into()))
    }

    /// The finder as the file holds it (`None` in a version 1 file).
    fn stored_finder(&self, header: &Header) -> Result<Option<Finder>> {
        let count = finder_blocks(header);
        if count == 0 {
            return Ok(None);
        }
        let first = first_finder_block(header);
        let mut bytes = Vec::with_capacity(count as usize * FINDER_PER_BLOCK);
        for b in first..first + count {
            let block = self.block(b)?;
            bytes.extend_from_slice(block.get(..FINDER_PER_BLOCK).unwrap_or_default());
        }
        let len = Finder::encoded_len(header.summaries, PER_BLOCK) as usize;
        if bytes[len.min(bytes.len())..].iter().any(|&b| b != 0) {
            return Err(self.damaged(first * BLOCK as u64, "bytes after its finder"));
        }
        bytes.truncate(len);
        Finder::decode(&bytes, header.summaries, PER_BLOCK)
            .map(Some)
            .ok_or_else(|| self.damaged(first * BLOCK as u64, "bad finder"))
    }
}

/// Where the summary blocks start.
fn first_summary_block(header: &Header) -> u64 {
    1 + blocks(header.entries)
}

/// Where the finder's blocks start (version 2).
fn first_finder_block(header: &Header) -> u64 {
    first_summary_block(header) + blocks(header.summaries)
}

fn parse_header(b: &[u8]) -> Option<Header> {
    let version = u16::from_le_bytes(b.get(8..10)?.try_into().ok()?);
    if b.get(0..8)? != MAGIC
        || !(1..=VERSION).contains(&version)
        || u32_at(b, 64)? != crc32fast::hash(b.get(0..64)?)
        || b.get(68..BLOCK)?.iter().any(|&x| x != 0)
    {
        return None;
    }
    Some(Header {
        version,
        describes: Describes {
            segment: u64_at(b, 16)?,
            generation: u32_at(b, 24)?,
            segment_len: u64_at(b, 32)?,
        },
        entries: u64_at(b, 40)?,
        summaries: u64_at(b, 48)?,
        record_bytes: u64_at(b, 56)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tid: u8, seq: u32, off: u64) -> Entry {
        Entry {
            tid: [tid; 16],
            seq,
            ts: 1000 + i64::from(seq),
            off,
            len: 100,
            pii_len: 20,
            msg_id: seq.is_multiple_of(2).then_some([seq as u8; 16]),
        }
    }

    const D: Describes = Describes {
        segment: 7,
        generation: 2,
        segment_len: 123_456,
    };

    fn builder(n: u32) -> Builder {
        let mut b = Builder::default();
        // Three generations, interleaved as appends interleave them.
        for i in 0..n {
            b.add(entry((i % 3) as u8 + 1, i / 3, 32 + 100 * u64::from(i)));
        }
        b
    }

    fn built(n: u32) -> Vec<u8> {
        builder(n).finish(D)
    }

    #[test]
    fn a_location_files_name_gives_its_segment() {
        assert_eq!(id_of(&file_name(42)), Some(42));
        for other in [
            "000000000042.idx.tmp",
            "42.idx",
            "00000000004x.idx",
            "000000000042.seg",
        ] {
            assert_eq!(id_of(other), None, "{other}");
        }
    }

    #[test]
    fn a_location_file_reads_back_its_entries_by_generation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(7));
        let s = Sidecar::write_built(dir.path(), &path, builder(500), D).unwrap();
        // Streamed block by block, it is the same file as built in memory.
        assert_eq!(std::fs::read(&path).unwrap(), built(500));
        assert!(!dir.path().join(format!("{}.tmp", file_name(7))).exists());
        let s = Sidecar::open(s.path(), D).unwrap().expect("valid");
        assert_eq!(s.record_bytes().unwrap(), 500 * 100);
        let sums = s.summaries().unwrap();
        assert_eq!(sums.len(), 3);
        let total: u32 = sums.iter().map(|x| x.count).sum();
        assert_eq!(total, 500);
        let two = sums.iter().find(|x| x.tid == [2; 16]).unwrap();
        let got = s.entries(two.first, two.count).unwrap();
        assert!(got.iter().all(|e| e.tid == [2; 16]));
        assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(got[0], entry(2, 0, 132));
        assert_eq!(two.max_seq, got.last().unwrap().seq);
        assert_eq!(two.pii_bytes, 20 * u64::from(two.count));
        // Another generation, another length or another segment: stale.
        for other in [
            Describes { generation: 3, ..D },
            Describes {
                segment_len: 1,
                ..D
            },
            Describes { segment: 8, ..D },
        ] {
            assert!(Sidecar::open(&path, other).unwrap().is_none());
        }
        assert!(
            Sidecar::open(&dir.path().join("none.idx"), D)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn entries_are_sorted_by_generation_id_whatever_order_they_came_in() {
        // Generations first seen in an order unlike their ids' (the sort
        // ranks them by id), each generation's records arriving newest
        // first, one record's copy at a second offset (a compaction cut
        // short): sorted by id, then sequence, then offset.
        let ids = [0xc0_u8, 0x07, 0xff, 0x41, 0x00, 0x80];
        let mut b = Builder::default();
        let mut off = 32;
        for seq in (0..20u32).rev() {
            for &g in &ids {
                b.add(entry(g, seq, off));
                off += 100;
            }
        }
        b.add(entry(0x41, 5, off));
        let s = Sidecar::in_memory(Path::new("x.idx"), b.finish(D)).unwrap();
        let sums = s.summaries().unwrap();
        let mut sorted = ids.map(|g| [g; 16]);
        sorted.sort_unstable();
        assert_eq!(sums.iter().map(|x| x.tid).collect::<Vec<_>>(), sorted);
        let mut first = 0;
        for sum in &sums {
            assert_eq!(sum.first, first, "generations follow each other");
            first += sum.count;
            let got = s.entries(sum.first, sum.count).unwrap();
            for e in &got {
                assert_eq!(e.tid, sum.tid);
                // Each record keeps its own message id through the sort.
                assert_eq!(*e, entry(e.tid[0], e.seq, e.off));
            }
            assert!(
                got.windows(2)
                    .all(|w| (w[0].seq, w[0].off) < (w[1].seq, w[1].off)),
                "{:?}",
                sum.tid
            );
        }
        let twice = sums.iter().find(|x| x.tid == [0x41; 16]).unwrap();
        assert_eq!(twice.count, 21);
    }

    /// A file of `n` generations of one record each (`n / 63` summary
    /// blocks and more), and their ids in order.
    fn many(n: u32) -> (Vec<u8>, Vec<Tid>) {
        let mut b = Builder::default();
        let mut tids = Vec::new();
        for g in 0..n {
            let mut t = [0u8; 16];
            t[..8].copy_from_slice(
                &u64::from(g)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .to_be_bytes(),
            );
            t[8..12].copy_from_slice(&g.to_le_bytes());
            tids.push(t);
            b.add(Entry {
                tid: t,
                ..entry(0, 0, 32 + 100 * u64::from(g))
            });
        }
        tids.sort_unstable();
        (b.finish(D), tids)
    }

    /// `bytes` as a version 1 file: without the finder's blocks.
    fn as_version_1(bytes: &[u8]) -> Vec<u8> {
        let header = parse_header(&bytes[..BLOCK]).unwrap();
        let mut old = bytes[..first_finder_block(&header) as usize * BLOCK].to_vec();
        put(&mut old, 8, &1u16.to_le_bytes());
        let crc = crc32fast::hash(&old[..64]);
        put(&mut old, 64, &crc.to_le_bytes());
        old
    }

    #[test]
    fn a_lookup_reads_the_files_finder_not_every_summary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(7));
        let (bytes, tids) = many(400);
        let header = parse_header(&bytes[..BLOCK]).unwrap();
        assert_eq!(header.version, 2);
        assert_eq!(blocks(header.summaries), 7);
        assert_eq!(finder_blocks(&header), 1);
        assert_eq!(bytes.len() as u64, total_blocks(&header) * BLOCK as u64);
        // The first summary block is damaged: a lookup of a generation in
        // another block reads the finder and that block only, and succeeds;
        // one in the damaged block, or reading every summary, is refused.
        let mut bad = bytes.clone();
        let first = first_summary_block(&header) as usize * BLOCK;
        bad[first + 5] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let s = Sidecar::open(&path, D).unwrap().expect("header intact");
        let last = tids.last().unwrap();
        assert_eq!(s.find(last).unwrap().map(|x| x.tid), Some(*last));
        let e = s.find(&tids[0]).unwrap_err().to_string();
        assert!(e.contains(&format!("offset {first}")), "{e}");
        assert!(s.summaries().is_err());
        // The same file as version 1 has no finder to read: the lookup
        // reads every summary, and meets the damage.
        std::fs::write(&path, as_version_1(&bad)).unwrap();
        let s = Sidecar::open(&path, D).unwrap().expect("version 1 is read");
        assert!(s.find(last).is_err());
    }

    #[test]
    fn a_version_1_file_is_read_as_before() {
        let (bytes, tids) = many(400);
        let s = Sidecar::in_memory(Path::new("x.idx"), as_version_1(&bytes)).unwrap();
        for t in &tids {
            assert_eq!(s.find(t).unwrap().map(|x| x.tid), Some(*t));
        }
        assert_eq!(s.find(&[0xEE; 16]).unwrap(), None);
        s.check_all().unwrap();
        let new = Sidecar::in_memory(Path::new("y.idx"), bytes).unwrap();
        assert_eq!(s.summaries().unwrap(), new.summaries().unwrap());
    }

    #[test]
    fn a_damaged_or_wrong_finder_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(7));
        let (bytes, tids) = many(400);
        let header = parse_header(&bytes[..BLOCK]).unwrap();
        let at = first_finder_block(&header) as usize * BLOCK;
        // A flipped byte: the block's checksum.
        let mut bad = bytes.clone();
        bad[at + 100] ^= 4;
        std::fs::write(&path, &bad).unwrap();
        let s = Sidecar::open(&path, D).unwrap().unwrap();
        let e = s.find(&tids[3]).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains(&format!("offset {at}")), "{e}");
        assert!(s.check_all().is_err());
        // A finder of other generations, checksum and all (a bug, or a
        // file made elsewhere): `verify` finds it does not fit.
        let (_, others) = many(800);
        let wrong = Finder::new(others.iter().step_by(2).copied(), PER_BLOCK);
        let mut enc = Vec::new();
        wrong.encode(&mut enc);
        let mut bad = bytes.clone();
        bad[at..at + enc.len()].copy_from_slice(&enc);
        seal_block(&mut bad[at..at + BLOCK]);
        std::fs::write(&path, &bad).unwrap();
        let s = Sidecar::open(&path, D).unwrap().unwrap();
        let e = s.check_all().unwrap_err().to_string();
        assert!(e.contains("finder does not match"), "{e}");
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(7));
        let bytes = built(200);
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            let caught = match Sidecar::open(&path, D).unwrap() {
                None => true,
                Some(s) => s.check_all().is_err(),
            };
            assert!(caught, "flip at {i} not caught");
        }
        for cut in [0, 1, BLOCK, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(Sidecar::open(&path, D).unwrap().is_none(), "cut at {cut}");
        }
        // A damaged entry block is an error naming the file, never data.
        let mut bad = bytes.clone();
        bad[BLOCK + 5] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let s = Sidecar::open(&path, D).unwrap().unwrap();
        let e = s.entries(0, 10).unwrap_err().to_string();
        assert!(e.contains("000000000007.idx"), "{e}");
    }

    #[test]
    fn a_generation_is_found_by_its_id_in_one_block() {
        // Enough generations for several summary blocks, with random-looking
        // ids (the finder takes its hashes from the id's bytes).
        let mut b = Builder::default();
        let tid = |i: u32| -> Tid {
            let x = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut t = [0u8; 16];
            t[..8].copy_from_slice(&x.to_be_bytes());
            t[8..].copy_from_slice(&x.rotate_left(31).to_le_bytes());
            t
        };
        for i in 0..400u32 {
            for seq in 0..2 {
                let mut e = entry(0, seq, 32 + 100 * u64::from(2 * i + seq));
                e.tid = tid(i);
                b.add(e);
            }
        }
        let s = Sidecar::in_memory(Path::new("7.idx"), b.finish(D)).unwrap();
        let all = s.summaries().unwrap();
        assert!(all.len() > 3 * PER_BLOCK);
        for i in 0..400 {
            let found = s.find(&tid(i)).unwrap().expect("held");
            assert_eq!(found, *all.iter().find(|x| x.tid == tid(i)).unwrap());
            assert_eq!(found.count, 2);
        }
        for i in 400..800 {
            assert_eq!(s.find(&tid(i)).unwrap(), None);
        }
        // Without a full read first, the first lookup reads the finder.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(7));
        let mut b = Builder::default();
        for i in 0..200u32 {
            let mut e = entry(0, 0, 32 + 100 * u64::from(i));
            e.tid = tid(i);
            b.add(e);
        }
        let bytes = b.finish(D);
        std::fs::write(&path, &bytes).unwrap();
        let s = Sidecar::open(&path, D).unwrap().unwrap();
        assert_eq!(s.find(&tid(150)).unwrap().unwrap().count, 1);
        // A damaged summary block is an error naming the file, never "not
        // there".
        let summary_block = (1 + blocks(200)) as usize * BLOCK;
        let mut bad = bytes.clone();
        bad[summary_block + 100] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let s = Sidecar::open(&path, D).unwrap().unwrap();
        // The generation with the lowest id is in the first summary block.
        let lowest = (0..200).map(tid).min().unwrap();
        let e = s.find(&lowest).unwrap_err().to_string();
        assert!(e.contains("000000000007.idx"), "{e}");
    }

    /// A location file of 200 generations, written to a fresh directory
    /// and opened, with its path and bytes.
    fn on_disk() -> (tempfile::TempDir, PathBuf, Vec<u8>, Sidecar) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(7));
        let bytes = built(200);
        std::fs::write(&path, &bytes).unwrap();
        let s = Sidecar::open(&path, D).unwrap().unwrap();
        (dir, path, bytes, s)
    }

    /// Writes `bytes` over `path` with every block after the header
    /// flipped (under the handle a sidecar holds open).
    fn spoil(path: &Path, bytes: &[u8]) {
        let mut bad = bytes.to_vec();
        for b in bad.iter_mut().skip(BLOCK) {
            *b ^= 0x55;
        }
        std::fs::write(path, &bad).unwrap();
    }

    #[test]
    fn lookups_keep_the_blocks_they_read_in_the_cache() {
        let (_dir, path, bytes, s) = on_disk();
        let cache = Arc::new(BlockCache::new(1 << 20));
        s.use_cache(Arc::clone(&cache), Arc::new(RowCache::new(1 << 20)));
        let sum = s.find(&[2; 16]).unwrap().unwrap();
        let entries = s.entries(sum.first, sum.count).unwrap();
        // The file goes bad under the open handle: what was read comes from
        // the cache (no read), what was not is read and caught.
        spoil(&path, &bytes);
        assert_eq!(s.find(&[2; 16]).unwrap().unwrap(), sum);
        assert_eq!(s.entries(sum.first, sum.count).unwrap(), entries);
        assert!(s.check_all().is_err(), "a full check reads the file");
        let other = Sidecar::open(&path, D).unwrap();
        assert!(other.is_none_or(|o| o.find(&[2; 16]).is_err()));
    }

    #[test]
    fn a_read_keeps_the_items_it_found_and_other_lookups_keep_none() {
        let (_dir, path, bytes, s) = on_disk();
        // No block cache to fall back on: what the item cache does not
        // hold is read from the file.
        let items = Arc::new(RowCache::new(1 << 20));
        s.use_cache(Arc::new(BlockCache::new(0)), Arc::clone(&items));
        let kept = s.find_kept(&[2; 16], true).unwrap().unwrap();
        let kept_entries = s.entries_kept(kept.first, kept.count, true).unwrap();
        let passed = s.find_kept(&[3; 16], false).unwrap().unwrap();
        s.entries_kept(passed.first, passed.count, false).unwrap();
        assert!(kept.count > 0 && passed.count > 0);
        spoil(&path, &bytes);
        // Kept: answered the same without the file, kept or not.
        assert_eq!(s.find(&[2; 16]).unwrap().unwrap(), kept);
        assert_eq!(
            s.entries_kept(kept.first, kept.count, false).unwrap(),
            kept_entries
        );
        // Not kept: read from the file, and found damaged.
        assert!(s.find(&[3; 16]).is_err());
        assert!(s.entries(passed.first, passed.count).is_err());
        // Kept under the file's segment and generation: a file written
        // again for the segment (another generation) does not see them.
        assert!(items.get(&(D.segment, D.generation, 0, [2; 16])).is_some());
        assert!(
            items
                .get(&(D.segment, D.generation + 1, 0, [2; 16]))
                .is_none()
        );
        assert!(items.get(&(D.segment, D.generation, 0, [3; 16])).is_none());
    }

    #[test]
    fn in_memory_and_empty() {
        let s = Sidecar::in_memory(Path::new("x.idx"), Builder::default().finish(D)).unwrap();
        assert!(s.is_in_memory());
        assert!(s.summaries().unwrap().is_empty());
        assert!(s.entries(0, 1).is_err());
        assert!(s.entries(0, 0).unwrap().is_empty());
    }
}
