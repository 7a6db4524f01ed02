//! Keyring tables: slots placed by a keyed hash of what they are looked up
//! by, so that a lookup reads a sector or two instead of the whole keyring
//! (docs/FORMAT.md §6.12). The visitor directory is the first table: a
//! visitor's entry lives where the keyed hash of its canonical email says,
//! and an erasure still wipes it in place.
//!
//! A table is a *region* of whole 512-byte sectors, a power of two of them.
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

use crate::secret::SecretVec;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::cells::{CELL, FIRST_CELL, SECTOR_CELLS};

/// Tag of a table sector's header cell.
pub(crate) const TABLE_TAG: u8 = 0x40;
/// Header flag: a slot whose probe passes this sector lives further on.
const SPILLED: u8 = 1;
/// Cells of a sector that hold slots (cell 0 is its header).
pub(crate) const SLOT_CELLS: u32 = SECTOR_CELLS - 1;
/// Fewest sectors of a table.
pub(crate) const MIN_SECTORS: u32 = 8;
/// Bytes of a region's description in the keyring header.
pub(crate) const REGION_BYTES: usize = 8;
/// Domain separation of the directory's hash.
const VISITOR_DOMAIN: &[u8] = b"shredlog visitor directory\0";

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

    /// The sectors a lookup of `hash` may read, in order: its home first,
    /// then round the region once.
    pub(crate) fn probe(&self, hash: u64) -> impl Iterator<Item = u32> + use<> {
        let mask = u64::from(self.sectors.max(1) - 1);
        let home = hash & mask;
        (0..u64::from(self.sectors)).map(move |i| ((home + i) & mask) as u32)
    }

    /// The sectors a table needs to hold `cells` slot cells at most half
    /// full: a power of two, at least [`MIN_SECTORS`].
    pub(crate) fn sectors_for(cells: u64) -> Option<u32> {
        let needed = (cells * 2).div_ceil(u64::from(SLOT_CELLS));
        let n = needed
            .max(u64::from(MIN_SECTORS))
            .checked_next_power_of_two()?;
        u32::try_from(n).ok()
    }

    pub(crate) fn encode(&self) -> [u8; REGION_BYTES] {
        let mut b = [0u8; REGION_BYTES];
        b[..4].copy_from_slice(&self.start.to_le_bytes());
        b[4..].copy_from_slice(&self.sectors.to_le_bytes());
        b
    }

    /// Reads a region's description; checks that it is one a keyring can
    /// hold (none, or a power of two of whole sectors after the header and
    /// state).
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
        if !sectors.is_power_of_two() || start < FIRST_CELL || !start.is_multiple_of(SECTOR_CELLS) {
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

/// The header cell of a table sector.
pub(crate) fn header_cell(spilled: bool) -> [u8; CELL] {
    let mut c = [0u8; CELL];
    c[0] = TABLE_TAG;
    c[5] = if spilled { SPILLED } else { 0 };
    let crc = header_crc(&c);
    c[1..5].copy_from_slice(&crc.to_le_bytes());
    c
}

fn header_crc(c: &[u8; CELL]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&c[..1]);
    h.update(&c[5..]);
    h.finalize()
}

/// Whether a table sector's header cell says it spilled.
pub(crate) fn parse_header_cell(cell: &[u8]) -> Result<bool, &'static str> {
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
    if c[5] & !SPILLED != 0 || c[6..].iter().any(|&b| b != 0) {
        return Err("unknown table sector flags");
    }
    Ok(c[5] & SPILLED != 0)
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

/// Where a directory entry for an email belongs: the hash of its
/// [`placement`](super::directory::placement) (its canonical form, or for
/// an entry stored before emails were checked its trimmed, lower-case
/// spelling) under the table's key.
pub(crate) fn visitor_hash(key: &[u8; 32], email: &str) -> u64 {
    placed_hash(key, &super::directory::placement(email))
}

/// [`visitor_hash`] of an email already in its placement form.
pub(crate) fn placed_hash(key: &[u8; 32], placed: &str) -> u64 {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(VISITOR_DOMAIN);
    mac.update(placed.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut h = [0u8; 8];
    h.copy_from_slice(&full[..8]);
    u64::from_le_bytes(h)
}

/// Which cells of a table are used, and which sectors spilled: one byte a
/// sector (bit `i` for cell `i` in 1–7, bit 0 for the spilled flag), so
/// that placing a slot reads nothing from the file.
#[derive(Clone, Debug, Default)]
pub(crate) struct Occupancy {
    sectors: Vec<u8>,
}

/// A place for a slot in a table: its first cell, and the sectors whose
/// spilled flag must be set with it (their header cells rewritten).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    pub cell: u32,
    pub spilled: Vec<u32>,
}

impl Occupancy {
    /// A table with nothing in it.
    pub(crate) fn empty(region: Region) -> Occupancy {
        Occupancy {
            sectors: vec![0; region.sectors as usize],
        }
    }

    /// Taken from [`Occupancy::to_bytes`] of a table of the same region
    /// (`None`: another size).
    pub(crate) fn from_bytes(region: Region, bytes: Vec<u8>) -> Option<Occupancy> {
        (bytes.len() == region.sectors as usize).then_some(Occupancy { sectors: bytes })
    }

    /// One byte a sector (bits 1–7 its cells, bit 0 its spilled flag).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        self.sectors.clone()
    }

    /// Cells in use.
    pub(crate) fn used_cells(&self) -> u64 {
        self.sectors
            .iter()
            .map(|&b| u64::from((b & !SPILLED).count_ones()))
            .sum()
    }

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

    /// Finds room for a slot of `n` cells whose hash is `hash`, and takes
    /// it (the spilled flags of the sectors passed over are set too).
    /// `None`: no sector has room.
    pub(crate) fn place(&mut self, region: Region, hash: u64, n: u32) -> Option<Placement> {
        let mut spilled = Vec::new();
        for sector in region.probe(hash) {
            let used = *self.sectors.get(sector as usize)?;
            if let Some(first) = free_run(used, n) {
                let cell = region.header_cell(sector) + first;
                self.mark(region, cell, n, true);
                return Some(Placement { cell, spilled });
            }
            if used & SPILLED == 0 {
                self.set_spilled(sector);
                spilled.push(sector);
            }
        }
        // The table is full: nothing was placed, so no flag is set.
        for sector in spilled {
            if let Some(b) = self.sectors.get_mut(sector as usize) {
                *b &= !SPILLED;
            }
        }
        None
    }
}

/// A new table written whole in memory (a grown table, or an upgraded or
/// re-keyed keyring's): slots placed as they are added, header cells
/// written at the end. Its bytes are wiped when dropped.
pub(crate) struct Builder {
    region: Region,
    occupancy: Occupancy,
    bytes: SecretVec,
}

impl Builder {
    pub(crate) fn new(region: Region) -> Builder {
        Builder {
            region,
            occupancy: Occupancy::empty(region),
            bytes: SecretVec::new(vec![
                0u8;
                region.sectors as usize * SECTOR_CELLS as usize * CELL
            ]),
        }
    }

    /// Finds room for a slot of `n` cells with hash `hash`; `None` when
    /// the table is full.
    pub(crate) fn place(&mut self, hash: u64, n: u32) -> Option<u32> {
        self.occupancy.place(self.region, hash, n).map(|p| p.cell)
    }

    /// Puts the cells of a slot placed at `cell`.
    pub(crate) fn put(&mut self, cell: u32, cells: &[u8]) -> Option<()> {
        let from = (cell.checked_sub(self.region.start)?) as usize * CELL;
        self.bytes
            .get_mut(from..from + cells.len())?
            .copy_from_slice(cells);
        Some(())
    }

    /// The region's bytes, header cells written, and what is in use.
    pub(crate) fn finish(mut self) -> (SecretVec, Occupancy) {
        for sector in 0..self.region.sectors {
            let at = (sector * SECTOR_CELLS) as usize * CELL;
            let cell = header_cell(self.occupancy.is_spilled(sector));
            self.bytes[at..at + CELL].copy_from_slice(&cell);
        }
        (std::mem::take(&mut self.bytes), self.occupancy)
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
        for bad in [
            Region {
                start: 64,
                sectors: 12,
            },
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
    fn sizes_are_powers_of_two_at_most_half_full() {
        assert_eq!(Region::sectors_for(0), Some(MIN_SECTORS));
        assert_eq!(Region::sectors_for(28), Some(8));
        assert_eq!(Region::sectors_for(29), Some(16));
        let s = Region::sectors_for(100_000).unwrap();
        assert!(s.is_power_of_two() && u64::from(s) * 7 >= 200_000 && u64::from(s) * 7 < 400_000);
    }

    #[test]
    fn header_cells_round_trip_and_every_flipped_bit_is_found() {
        for spilled in [false, true] {
            let c = header_cell(spilled);
            assert_eq!(parse_header_cell(&c), Ok(spilled));
            for bit in 0..CELL * 8 {
                let mut bad = c;
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(parse_header_cell(&bad).is_err(), "bit {bit} went unnoticed");
            }
        }
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
        let h = 5; // home sector 5
        for i in 0..7 {
            let p = occ.place(r, h, 1).unwrap();
            assert_eq!(
                p,
                Placement {
                    cell: r.header_cell(5) + 1 + i,
                    spilled: vec![]
                }
            );
        }
        let p = occ.place(r, h, 1).unwrap();
        assert_eq!(
            p,
            Placement {
                cell: r.header_cell(6) + 1,
                spilled: vec![5]
            }
        );
        assert!(occ.is_spilled(5) && !occ.is_spilled(6));
        // A second spill past sector 5 does not set its flag again.
        let p = occ.place(r, h, 7).unwrap();
        assert_eq!(
            p,
            Placement {
                cell: r.header_cell(7) + 1,
                spilled: vec![6]
            }
        );
        // Round the region's end.
        let p = occ.place(r, 7, 7).unwrap();
        assert_eq!(
            p,
            Placement {
                cell: r.header_cell(0) + 1,
                spilled: vec![7]
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
        for s in 0..8 {
            assert!(occ.place(r, s, 7).is_some());
        }
        assert_eq!(occ.place(r, 3, 1), None);
        assert!(
            (0..8).all(|s| !occ.is_spilled(s)),
            "a failed placement sets no flag"
        );
    }

    #[test]
    fn probes_visit_every_sector_once_from_home() {
        let r = region(8);
        assert_eq!(
            r.probe(13).collect::<Vec<_>>(),
            vec![5, 6, 7, 0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn a_built_table_has_every_header_and_its_slots() {
        let r = region(8);
        let mut b = Builder::new(r);
        let cell = b.place(2, 2).unwrap();
        b.put(cell, &[9u8; 2 * CELL]).unwrap();
        let (bytes, occ) = b.finish();
        assert_eq!(bytes.len(), 8 * 512);
        for s in 0..8 {
            assert_eq!(parse_header_cell(&bytes[s * 512..]), Ok(false));
        }
        let at = (cell - r.start) as usize * CELL;
        assert_eq!(&bytes[at..at + 2 * CELL], &[9u8; 2 * CELL][..]);
        assert_eq!(occ.used_cells(), 2);
    }

    #[test]
    fn the_hash_follows_the_canonical_email_and_the_key() {
        let k = [7u8; 32];
        assert_eq!(
            visitor_hash(&k, "Ann@Example.COM "),
            visitor_hash(&k, "ann@example.com")
        );
        assert_ne!(
            visitor_hash(&k, "ann@example.com"),
            visitor_hash(&[8u8; 32], "ann@example.com")
        );
        assert_ne!(
            visitor_hash(&k, "ann@example.com"),
            visitor_hash(&k, "bob@example.com")
        );
    }
}
