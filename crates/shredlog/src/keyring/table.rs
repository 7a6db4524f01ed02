//! Keyring tables: slots placed by a keyed hash of what they are looked up
//! by, so that a lookup reads a sector or two instead of the whole keyring
//! (docs/FORMAT.md §6.12). In format 4 only the visitor directory was a
//! table; in format 5 every slot lives in the one table: a visitor's entry
//! where the keyed hash of its canonical email says, a generation's
//! transcript slot by its visitor id, its PII slot by its own id, and a
//! caller slot by the caller's transcript id ([`Hasher`]). An erasure still
//! wipes each in place.
//!
//! A table is a *region* of whole 512-byte sectors.
//! Cell 0 of each sector is the sector's header: tag [`TABLE_TAG`], a CRC,
//! and a *spilled* flag; cells 1–7 hold slots exactly as anywhere else in a
//! format-3 keyring ([`super::cells`]). A slot whose hash is `h` belongs in
//! sector `h mod sectors` (its *home*) or, when that has no room, in the
//! next one round the region that has; every sector passed over on the way
//! is marked spilled. A lookup reads the home sector and goes on only while
//! the sector it just read is spilled, so it never misses a slot placed
//! further on, and it stops at the first sector that never overflowed.
//! Flags are only ever set; a rebuilt (grown) table starts without them.
//!
//! The hash key is drawn when the table is made and kept in the keyring's
//! header (sealed under the key-encryption key when there is one), so the
//! placement of entries says nothing about which addresses exist to anyone
//! without it.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::Slot;
use super::cells::{CELL, FIRST_CELL, SECTOR_CELLS};
use crate::error::{Error, IoContext, Result};
use crate::record::{Tid, Vid};

/// Tag of a table sector's header cell.
pub(crate) const TABLE_TAG: u8 = 0x40;
/// Header flag: a slot whose probe passes this sector lives further on.
const SPILLED: u8 = 1;
/// Cells of a sector that hold slots (cell 0 is its header).
pub(crate) const SLOT_CELLS: u32 = SECTOR_CELLS - 1;
/// Fewest sectors of a table.
pub(crate) const MIN_SECTORS: u32 = 8;
/// Slot cells a sector holds, on average, in a table just built.
const BUILT_CELLS: u64 = 4;
/// Bytes of a region's description in the keyring header.
pub(crate) const REGION_BYTES: usize = 8;
/// Domain separation of the directory's hash.
const VISITOR_DOMAIN: &[u8] = b"shredlog visitor directory\0";
/// Domain separation of a transcript slot's hash (of its visitor id).
const TRANSCRIPT_DOMAIN: &[u8] = b"shredlog transcript keys\0";
/// Domain separation of a PII slot's hash (of its generation id).
const PII_DOMAIN: &[u8] = b"shredlog pii key\0";
/// Domain separation of a caller slot's hash (of the caller's transcript id).
const CALLER_DOMAIN: &[u8] = b"shredlog caller id\0";

/// Where a table lives: `sectors` sectors from cell `start` (a sector's
/// first cell). `sectors == 0`: no table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Region {
    pub start: u32,
    pub sectors: u32,
}

impl Region {
    /// No region.
    pub(crate) const NONE: Region = Region {
        start: 0,
        sectors: 0,
    };

    pub(crate) fn is_none(&self) -> bool {
        self.sectors == 0
    }

    /// One past its last cell.
    pub(crate) fn end(&self) -> u32 {
        self.start + self.sectors * SECTOR_CELLS
    }

    pub(crate) fn contains(&self, cell: u32) -> bool {
        !self.is_none() && (self.start..self.end()).contains(&cell)
    }

    /// Whether `cell` is the header cell of one of its sectors.
    pub(crate) fn is_header_cell(&self, cell: u32) -> bool {
        self.contains(cell) && (cell - self.start).is_multiple_of(SECTOR_CELLS)
    }

    /// The sector (numbered from 0 in the region) holding `cell`.
    pub(crate) fn sector_of(&self, cell: u32) -> u32 {
        (cell - self.start) / SECTOR_CELLS
    }

    /// The header cell of sector `sector`.
    pub(crate) fn header_cell(&self, sector: u32) -> u32 {
        self.start + sector * SECTOR_CELLS
    }

    /// Cells that can hold slots.
    pub(crate) fn capacity(&self) -> u64 {
        u64::from(self.sectors) * u64::from(SLOT_CELLS)
    }

    /// The sectors a lookup of `hash` may read, in order: its home first
    /// (`⌊hash × sectors / 2⁶⁴⌋`), then round the region once.
    pub(crate) fn probe(&self, hash: u64) -> impl Iterator<Item = u32> + use<> {
        let n = u64::from(self.sectors.max(1));
        let home = ((u128::from(hash) * u128::from(n)) >> 64) as u64;
        (0..n).map(move |i| ((home + i) % n) as u32)
    }

    /// The sectors a table is built with to hold `cells` slot cells: the
    /// fewest (at least [`MIN_SECTORS`]) that hold them at most 4/7 full,
    /// 4 slot cells a sector (a rebuild that merges the young area, and
    /// compaction's of a table at most 3/7 full).
    pub(crate) fn sectors_to_hold(cells: u64) -> Option<u32> {
        u32::try_from(cells.div_ceil(BUILT_CELLS).max(u64::from(MIN_SECTORS))).ok()
    }

    pub(crate) fn encode(&self) -> [u8; REGION_BYTES] {
        let mut b = [0u8; REGION_BYTES];
        b[..4].copy_from_slice(&self.start.to_le_bytes());
        b[4..].copy_from_slice(&self.sectors.to_le_bytes());
        b
    }

    /// Reads a region's description; checks that it is one a keyring can
    /// hold (none, or whole sectors after the header and state).
    pub(crate) fn decode(b: &[u8]) -> Result<Region, &'static str> {
        let b: &[u8; REGION_BYTES] = b.try_into().map_err(|_| "table region cut short")?;
        let start = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let sectors = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let r = Region { start, sectors };
        if sectors == 0 {
            return if start == 0 {
                Ok(r)
            } else {
                Err("table region without sectors")
            };
        }
        if start < FIRST_CELL || !start.is_multiple_of(SECTOR_CELLS) {
            return Err("table region misplaced");
        }
        start
            .checked_add(
                sectors
                    .checked_mul(SECTOR_CELLS)
                    .ok_or("table region too large")?,
            )
            .ok_or("table region too large")?;
        Ok(r)
    }
}

/// Bytes of a sector header's filter (header cell bytes 6..64).
const FILTER_BYTES: usize = CELL - 6;

/// What a table sector's header cell says: whether a slot whose probe
/// passes the sector lives further on (*spilled*), and which hashes such
/// slots have (a filter of 464 bits, bit `h mod 464` for each), so that a
/// lookup goes on past the sector only for a hash whose bit is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SectorHeader {
    filter: [u8; FILTER_BYTES],
}

impl SectorHeader {
    /// A sector no slot's probe passed.
    pub(crate) const CLEAR: SectorHeader = SectorHeader {
        filter: [0; FILTER_BYTES],
    };

    fn bit(hash: u64) -> (usize, u8) {
        let b = (hash % (FILTER_BYTES as u64 * 8)) as usize;
        (b / 8, 1 << (b % 8))
    }

    pub(crate) fn spilled(&self) -> bool {
        self.filter.iter().any(|&b| b != 0)
    }

    /// Whether a lookup of `hash` must read on past this sector.
    pub(crate) fn passes(&self, hash: u64) -> bool {
        let (byte, mask) = SectorHeader::bit(hash);
        self.filter[byte] & mask != 0
    }

    /// Notes that a slot of hash `hash` was placed past this sector.
    pub(crate) fn pass(&mut self, hash: u64) {
        let (byte, mask) = SectorHeader::bit(hash);
        self.filter[byte] |= mask;
    }

    /// The header cell.
    pub(crate) fn cell(&self) -> [u8; CELL] {
        let mut c = [0u8; CELL];
        c[0] = TABLE_TAG;
        c[5] = if self.spilled() { SPILLED } else { 0 };
        c[6..].copy_from_slice(&self.filter);
        let crc = header_crc(&c);
        c[1..5].copy_from_slice(&crc.to_le_bytes());
        c
    }
}

/// The header cell of a sector no slot's probe passed.
pub(crate) fn header_cell() -> [u8; CELL] {
    SectorHeader::CLEAR.cell()
}

fn header_crc(c: &[u8; CELL]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&c[..1]);
    h.update(&c[5..]);
    h.finalize()
}

/// What a table sector's header cell says.
pub(crate) fn parse_header_cell(cell: &[u8]) -> Result<SectorHeader, &'static str> {
    let c: &[u8; CELL] = cell
        .get(..CELL)
        .and_then(|c| c.try_into().ok())
        .ok_or("table sector cut short")?;
    if c[0] != TABLE_TAG {
        return Err("table sector without its header");
    }
    let crc = u32::from_le_bytes([c[1], c[2], c[3], c[4]]);
    if header_crc(c) != crc {
        return Err("table sector header checksum mismatch");
    }
    let mut h = SectorHeader::CLEAR;
    h.filter.copy_from_slice(&c[6..]);
    if c[5] & !SPILLED != 0 || (c[5] & SPILLED != 0) != h.spilled() {
        // (A format-4 directory table's spilled flag comes without a filter:
        // such a sector is read as passing every hash.)
        if c[5] == SPILLED && !h.spilled() {
            h.filter = [0xff; FILTER_BYTES];
            return Ok(h);
        }
        return Err("unknown table sector flags");
    }
    Ok(h)
}

/// The first cell (1–7) of a run of `n` free cells in a sector whose used
/// cells are the bits of `used` (bit `i`: cell `i`; bit 0, the header, is
/// ignored).
pub(crate) fn free_run(used: u8, n: u32) -> Option<u32> {
    if n == 0 || n > SLOT_CELLS {
        return None;
    }
    let run = ((1u16 << n) - 1) as u8;
    (1..=SECTOR_CELLS - n).find(|&first| used & (run << first) == 0)
}

/// The bits of cells `first .. first + n` of a sector.
pub(crate) fn cell_bits(first: u32, n: u32) -> u8 {
    ((((1u16 << n) - 1) << first) & 0xff) as u8
}

/// The keyed hashes that place slots in a table (docs/FORMAT.md §6.12),
/// under the table's key: HMAC-SHA256 of a domain label and what the slot
/// is looked up by, its first 8 bytes as a little-endian `u64`.
#[derive(Clone)]
pub(crate) struct Hasher {
    mac: Hmac<Sha256>,
}

impl Hasher {
    pub(crate) fn new(key: &[u8; 32]) -> Hasher {
        Hasher {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length")),
        }
    }

    fn hash(&self, domain: &[u8], what: &[u8]) -> u64 {
        let mut mac = self.mac.clone();
        mac.update(domain);
        mac.update(what);
        let full = mac.finalize().into_bytes();
        let mut h = [0u8; 8];
        h.copy_from_slice(&full[..8]);
        u64::from_le_bytes(h)
    }

    /// A directory entry's: of its email's placement.
    pub(crate) fn visitor(&self, email: &str) -> u64 {
        self.placed(&super::directory::placement(email))
    }

    /// A directory entry's, of an email already in its placement form.
    pub(crate) fn placed(&self, placed: &str) -> u64 {
        self.hash(VISITOR_DOMAIN, placed.as_bytes())
    }

    /// A transcript slot's: of its visitor id, so that a visitor's
    /// generations are found together.
    pub(crate) fn transcript(&self, vid: &Vid) -> u64 {
        self.hash(TRANSCRIPT_DOMAIN, vid)
    }

    /// A PII slot's: of its generation id.
    pub(crate) fn pii(&self, tid: &Tid) -> u64 {
        self.hash(PII_DOMAIN, tid)
    }

    /// A caller slot's: of the caller's transcript id.
    pub(crate) fn caller(&self, caller_id: &str) -> u64 {
        self.hash(CALLER_DOMAIN, caller_id.as_bytes())
    }

    /// Where `slot` is placed (a caller slot holds the hash of its caller
    /// id, [`Hasher::caller`]); a PII slot that its generation's transcript
    /// slot names goes by that generation's visitor instead
    /// ([`Hasher::transcript`]), this is for one that none names.
    pub(crate) fn slot(&self, slot: &Slot) -> u64 {
        match slot {
            Slot::Visitor(v) => self.visitor(&v.email),
            Slot::Transcript(t) => self.transcript(&t.vid),
            Slot::Pii(p) => self.pii(&p.tid),
            Slot::Caller(c) => c.hash,
        }
    }
}

/// Which cells of a table are used, and which sectors spilled: one byte a
/// sector (bit `i` for cell `i` in 1–7, bit 0 for the spilled flag), so
/// that placing a slot reads nothing from the file.
#[derive(Clone, Debug, Default)]
pub(crate) struct Occupancy {
    sectors: Vec<u8>,
}

/// A place for a slot in a table: its first cell, and the sectors its
/// probe passed over on the way, whose header cells must note its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    pub cell: u32,
    pub passed: Vec<u32>,
}

impl Occupancy {
    /// A table with nothing in it.
    pub(crate) fn empty(region: Region) -> Occupancy {
        Occupancy {
            sectors: vec![0; region.sectors as usize],
        }
    }

    /// Cells in use.
    pub(crate) fn used_cells(&self) -> u64 {
        self.sectors
            .iter()
            .map(|&b| u64::from((b & !SPILLED).count_ones()))
            .sum()
    }

    #[cfg(test)]
    pub(crate) fn is_spilled(&self, sector: u32) -> bool {
        self.sectors
            .get(sector as usize)
            .is_some_and(|&b| b & SPILLED != 0)
    }

    pub(crate) fn set_spilled(&mut self, sector: u32) {
        if let Some(b) = self.sectors.get_mut(sector as usize) {
            *b |= SPILLED;
        }
    }

    /// Marks cells `cell .. cell + n` of `region` used (or free).
    pub(crate) fn mark(&mut self, region: Region, cell: u32, n: u32, used: bool) {
        let sector = region.sector_of(cell);
        let first = (cell - region.start) % SECTOR_CELLS;
        if let Some(b) = self.sectors.get_mut(sector as usize) {
            let bits = cell_bits(first, n) & !SPILLED;
            if used {
                *b |= bits;
            } else {
                *b &= !bits;
            }
        }
    }

    /// Notes the sectors of `region` in `bytes` (whole sectors, the first
    /// at cell `start`): a cell is in use when its tag is not zero (a
    /// damaged one too, so that it is never written over), and a sector
    /// spilled when its header cell says so.
    pub(crate) fn read_sectors(&mut self, region: Region, start: u32, bytes: &[u8]) {
        let sector_bytes = SECTOR_CELLS as usize * CELL;
        for (i, sector) in bytes.chunks_exact(sector_bytes).enumerate() {
            let cell = start + i as u32 * SECTOR_CELLS;
            if !region.contains(cell) {
                continue;
            }
            let s = region.sector_of(cell);
            let Some(b) = self.sectors.get_mut(s as usize) else {
                continue;
            };
            *b = 0;
            for c in 1..SECTOR_CELLS as usize {
                if sector[c * CELL] != 0 {
                    *b |= 1 << c;
                }
            }
            if parse_header_cell(sector).is_ok_and(|h| h.spilled()) {
                *b |= SPILLED;
            }
        }
    }

    /// Finds room for a slot of `n` cells whose hash is `hash`, and takes
    /// it; the sectors passed over are noted spilled here, and returned for
    /// their header cells to note the hash. `None`: no sector has room.
    pub(crate) fn place(&mut self, region: Region, hash: u64, n: u32) -> Option<Placement> {
        let mut passed = Vec::new();
        for sector in region.probe(hash) {
            let used = *self.sectors.get(sector as usize)?;
            if let Some(first) = free_run(used, n) {
                let cell = region.header_cell(sector) + first;
                self.mark(region, cell, n, true);
                for &s in &passed {
                    self.set_spilled(s);
                }
                return Some(Placement { cell, passed });
            }
            passed.push(sector);
        }
        None
    }
}

/// A new table written whole (a rebuilt table, or an upgraded or re-keyed
/// keyring's): slots placed as they are added, header cells written at the
/// end; in memory (wiped when dropped), or straight into a file, so that a
/// table of any size is rebuilt in bounded memory.
pub(crate) struct Builder {
    region: Region,
    occupancy: Occupancy,
    out: Out,
}

enum Out {
    Memory(Zeroizing<Vec<u8>>),
    /// The region's bytes from offset 0 of `file`, written through one
    /// chunk held in memory: slots are placed in roughly rising order when
    /// an older table is read in order (a home is `⌊h × sectors / 2⁶⁴⌋`, so
    /// it keeps its place relative to the others), so each chunk is read
    /// and written about once.
    File {
        file: File,
        path: PathBuf,
        chunk: Chunk,
    },
}

/// The chunk of a table's file held in memory.
struct Chunk {
    /// Its first byte in the file.
    at: u64,
    bytes: Zeroizing<Vec<u8>>,
    /// Bytes of it that are in the file (the last chunk is shorter); 0
    /// before the first is read.
    len: usize,
    dirty: bool,
}

impl Chunk {
    /// Makes the chunk holding byte `offset` of a file of `total` bytes
    /// the one in memory.
    fn hold(&mut self, file: &File, path: &Path, offset: u64, total: u64) -> Result<()> {
        let at = offset - offset % CHUNK as u64;
        if at == self.at && self.len > 0 {
            return Ok(());
        }
        self.flush(file, path)?;
        let len = (total - at).min(CHUNK as u64) as usize;
        file.read_exact_at(&mut self.bytes[..len], at).at(path)?;
        self.at = at;
        self.len = len;
        Ok(())
    }

    fn flush(&mut self, file: &File, path: &Path) -> Result<()> {
        if self.dirty {
            file.write_all_at(&self.bytes[..self.len], self.at)
                .at(path)?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Bytes written at a time when a table is laid out in a file.
const CHUNK: usize = 2 << 20;

impl Builder {
    /// A table built in memory.
    pub(crate) fn new(region: Region) -> Builder {
        let sector = SECTOR_CELLS as usize * CELL;
        let mut bytes = Zeroizing::new(vec![0u8; region.sectors as usize * sector]);
        for at in (0..bytes.len()).step_by(sector) {
            bytes[at..at + CELL].copy_from_slice(&header_cell());
        }
        Builder {
            region,
            occupancy: Occupancy::empty(region),
            out: Out::Memory(bytes),
        }
    }

    /// A table built in `file` (empty; it becomes exactly the region's
    /// bytes): every sector written first with a header cell and no slot.
    pub(crate) fn in_file(region: Region, file: File, path: &Path) -> Result<Builder> {
        let sector = SECTOR_CELLS as usize * CELL;
        let mut chunk = vec![0u8; CHUNK];
        for at in (0..CHUNK).step_by(sector) {
            chunk[at..at + CELL].copy_from_slice(&header_cell());
        }
        let total = region.sectors as usize * sector;
        let mut done = 0;
        while done < total {
            let n = (total - done).min(CHUNK);
            file.write_all_at(&chunk[..n], done as u64).at(path)?;
            done += n;
        }
        Ok(Builder {
            region,
            occupancy: Occupancy::empty(region),
            out: Out::File {
                file,
                path: path.to_owned(),
                chunk: Chunk {
                    at: 0,
                    bytes: Zeroizing::new(vec![0u8; CHUNK]),
                    len: 0,
                    dirty: false,
                },
            },
        })
    }

    fn total(&self) -> usize {
        self.region.sectors as usize * SECTOR_CELLS as usize * CELL
    }

    /// The bytes from offset `from` of the table (whole cells inside one
    /// sector), to change.
    fn bytes_at(&mut self, from: usize, len: usize) -> Result<&mut [u8]> {
        let total = self.total();
        match &mut self.out {
            Out::Memory(bytes) => Ok(&mut bytes[from..from + len]),
            Out::File { file, path, chunk } => {
                // A slot never crosses a sector, and so never a chunk.
                chunk.hold(file, path, from as u64, total as u64)?;
                chunk.dirty = true;
                let i = from - chunk.at as usize;
                Ok(&mut chunk.bytes[i..i + len])
            }
        }
    }

    /// Finds room for a slot of `n` cells with hash `hash` (noting the hash
    /// in the sectors passed over); `None` when the table is full.
    pub(crate) fn place(&mut self, hash: u64, n: u32) -> Result<Option<u32>> {
        let Some(p) = self.occupancy.place(self.region, hash, n) else {
            return Ok(None);
        };
        for sector in p.passed {
            let at = (sector * SECTOR_CELLS) as usize * CELL;
            let cell = self.bytes_at(at, CELL)?;
            let mut h = parse_header_cell(cell)
                .map_err(|r| Error::Internal(format!("a new table's header cell: {r}")))?;
            h.pass(hash);
            cell.copy_from_slice(&h.cell());
        }
        Ok(Some(p.cell))
    }

    /// Puts the cells of a slot placed at `cell`.
    pub(crate) fn put(&mut self, cell: u32, cells: &[u8]) -> Result<()> {
        let total = self.total();
        let from = cell
            .checked_sub(self.region.start)
            .map(|c| c as usize * CELL)
            .filter(|f| f + cells.len() <= total)
            .ok_or_else(|| Error::Internal(format!("table slot {cell} out of its region")))?;
        self.bytes_at(from, cells.len())?.copy_from_slice(cells);
        Ok(())
    }

    /// The region's bytes (empty when built in a file, which is written
    /// but not synced here) and what is in use.
    pub(crate) fn finish(self) -> Result<(Zeroizing<Vec<u8>>, Occupancy)> {
        let Builder { occupancy, out, .. } = self;
        match out {
            Out::Memory(bytes) => Ok((bytes, occupancy)),
            Out::File {
                file,
                path,
                mut chunk,
            } => {
                chunk.flush(&file, &path)?;
                Ok((Zeroizing::new(Vec::new()), occupancy))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(sectors: u32) -> Region {
        Region {
            start: FIRST_CELL,
            sectors,
        }
    }

    #[test]
    fn regions_round_trip_and_bad_ones_are_refused() {
        let r = Region {
            start: 64,
            sectors: 16,
        };
        assert_eq!(Region::decode(&r.encode()), Ok(r));
        assert_eq!(Region::decode(&Region::NONE.encode()), Ok(Region::NONE));
        assert_eq!(
            Region::decode(
                &Region {
                    start: 64,
                    sectors: 12,
                }
                .encode()
            )
            .map(|r| r.sectors),
            Ok(12)
        );
        for bad in [
            Region {
                start: 68,
                sectors: 16,
            },
            Region {
                start: 8,
                sectors: 16,
            },
            Region {
                start: 64,
                sectors: 0,
            },
            Region {
                start: u32::MAX - 7,
                sectors: 1 << 20,
            },
        ] {
            assert!(Region::decode(&bad.encode()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tables_are_built_at_their_fill() {
        let built = BUILT_CELLS;
        assert!(built < u64::from(SLOT_CELLS));
        assert_eq!(Region::sectors_to_hold(0), Some(MIN_SECTORS));
        assert_eq!(Region::sectors_to_hold(8 * built), Some(8));
        assert_eq!(Region::sectors_to_hold(8 * built + 1), Some(9));
        assert_eq!(
            Region::sectors_to_hold(100_000),
            u32::try_from(100_000u64.div_ceil(built)).ok()
        );
        assert_eq!(Region::sectors_to_hold(u64::MAX), None);
    }

    #[test]
    fn header_cells_round_trip_and_every_flipped_bit_is_found() {
        let mut passed = SectorHeader::CLEAR;
        passed.pass(12345);
        for h in [SectorHeader::CLEAR, passed] {
            let c = h.cell();
            assert_eq!(parse_header_cell(&c), Ok(h));
            assert_eq!(h.spilled(), h == passed);
            for bit in 0..CELL * 8 {
                let mut bad = c;
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(parse_header_cell(&bad).is_err(), "bit {bit} went unnoticed");
            }
        }
        // The filter passes on the hashes noted, and few others.
        assert!(passed.passes(12345) && passed.passes(12345 + 464));
        let others = (0..10_000u64).filter(|h| passed.passes(*h * 7919)).count();
        assert!(others < 100, "{others}");
        // A format-4 sector's spilled flag without a filter passes all.
        let mut old = header_cell();
        old[5] = SPILLED;
        let crc = header_crc(&old);
        old[1..5].copy_from_slice(&crc.to_le_bytes());
        let h = parse_header_cell(&old).unwrap();
        assert!(h.passes(1) && h.passes(u64::MAX));
    }

    #[test]
    fn runs_are_found_inside_the_slot_cells() {
        assert_eq!(free_run(0, 1), Some(1));
        assert_eq!(free_run(0, 7), Some(1));
        assert_eq!(free_run(0, 8), None);
        assert_eq!(free_run(0b0000_0110, 2), Some(3));
        assert_eq!(free_run(0b1111_1110, 1), None);
        assert_eq!(free_run(0b0101_0100, 2), None);
        assert_eq!(free_run(0b0101_0100, 1), Some(1));
        assert_eq!(cell_bits(3, 2), 0b0001_1000);
    }

    #[test]
    fn a_full_home_spills_to_the_next_sector_and_lookups_follow() {
        let r = region(8);
        let mut occ = Occupancy::empty(r);
        let h = 5 << 61; // home sector 5 of 8
        for i in 0..7 {
            let p = occ.place(r, h, 1).unwrap();
            assert_eq!(
                p,
                Placement {
                    cell: r.header_cell(5) + 1 + i,
                    passed: vec![]
                }
            );
        }
        let p = occ.place(r, h, 1).unwrap();
        assert_eq!(
            p,
            Placement {
                cell: r.header_cell(6) + 1,
                passed: vec![5]
            }
        );
        assert!(occ.is_spilled(5) && !occ.is_spilled(6));
        // A second spill past sector 5 passes it (and 6) too: each header
        // the probe passed notes the hash.
        let p = occ.place(r, h, 7).unwrap();
        assert_eq!(
            p,
            Placement {
                cell: r.header_cell(7) + 1,
                passed: vec![5, 6]
            }
        );
        // Round the region's end.
        let p = occ.place(r, 7 << 61, 7).unwrap();
        assert_eq!(
            p,
            Placement {
                cell: r.header_cell(0) + 1,
                passed: vec![7]
            }
        );
        assert_eq!(occ.used_cells(), 7 + 1 + 7 + 7);
        occ.mark(r, r.header_cell(5) + 2, 1, false);
        assert_eq!(occ.used_cells(), 21);
        assert!(occ.is_spilled(5), "freeing a cell keeps the flag");
    }

    #[test]
    fn a_full_table_places_nothing() {
        let r = region(8);
        let mut occ = Occupancy::empty(r);
        for s in 0..8u64 {
            assert!(occ.place(r, s << 61, 7).is_some());
        }
        assert_eq!(occ.place(r, 3 << 61, 1), None);
        assert!(
            (0..8).all(|s| !occ.is_spilled(s)),
            "a failed placement sets no flag"
        );
    }

    #[test]
    fn probes_visit_every_sector_once_from_home() {
        let r = region(8);
        // Home ⌊h × 8 / 2⁶⁴⌋: the top three bits of h.
        assert_eq!(
            r.probe(5 << 61 | 13).collect::<Vec<_>>(),
            vec![5, 6, 7, 0, 1, 2, 3, 4]
        );
        let r = region(13);
        let p: Vec<u32> = r.probe(u64::MAX).collect();
        assert_eq!(p[0], 12);
        assert_eq!(p.len(), 13);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..13).collect::<Vec<_>>());
    }

    #[test]
    fn a_built_table_has_every_header_and_its_slots() {
        let r = region(8);
        let mut b = Builder::new(r);
        let cell = b.place(2, 2).unwrap().unwrap();
        b.put(cell, &[9u8; 2 * CELL]).unwrap();
        assert!(b.put(r.end(), &[9u8; CELL]).is_err());
        // Sector 0 full: the next slot of its hash passes it, noted there.
        for _ in 0..2 {
            let c = b.place(2, 2).unwrap().unwrap();
            b.put(c, &[8u8; 2 * CELL]).unwrap();
        }
        let passed = b.place(2, 2).unwrap().unwrap();
        assert_eq!(r.sector_of(passed), 1);
        let (bytes, occ) = b.finish().unwrap();
        assert_eq!(bytes.len(), 8 * 512);
        let h0 = parse_header_cell(&bytes[..]).unwrap();
        assert!(h0.passes(2) && h0.spilled());
        for s in 1..8 {
            assert_eq!(
                parse_header_cell(&bytes[s * 512..]),
                Ok(SectorHeader::CLEAR)
            );
        }
        let at = (cell - r.start) as usize * CELL;
        assert_eq!(&bytes[at..at + 2 * CELL], &[9u8; 2 * CELL][..]);
        assert_eq!(occ.used_cells(), 8);
    }

    #[test]
    fn the_hash_follows_the_canonical_email_and_the_key() {
        let k = Hasher::new(&[7u8; 32]);
        assert_eq!(k.visitor("Ann@Example.COM "), k.visitor("ann@example.com"));
        assert_eq!(k.visitor("Ann@Example.COM "), k.placed("ann@example.com"));
        assert_ne!(
            k.visitor("ann@example.com"),
            Hasher::new(&[8u8; 32]).visitor("ann@example.com")
        );
        assert_ne!(k.visitor("ann@example.com"), k.visitor("bob@example.com"));
    }

    #[test]
    fn each_kind_of_slot_has_its_own_hash() {
        let k = Hasher::new(&[7u8; 32]);
        let id = [3u8; 16];
        let all = [
            k.transcript(&id),
            k.pii(&id),
            k.caller(std::str::from_utf8(&[b'a'; 16]).unwrap()),
            k.visitor("a@example.com"),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(k.transcript(&id), k.transcript(&[3u8; 16]));
        assert_ne!(k.transcript(&id), Hasher::new(&[8u8; 32]).transcript(&id));
    }
}
