//! Keyring format 3: slots sized to what they hold (docs/FORMAT.md §6.2).
//!
//! The file is an array of 64-byte cells. The first 512 bytes (cells 0–7)
//! are the header, the next 512 (cells 8–15) the state slot; from cell 16 on,
//! every slot takes 1–8 whole cells inside one 512-byte sector, so that
//! writing or wiping a slot is one write inside one sector, as a 512-byte
//! slot of formats 1 and 2 was. A slot's index is its first cell.
//!
//! Byte 0 of every cell says what it is: `0` a free cell (all 64 bytes
//! zero), `n` in 1..=8 the first cell of an `n`-cell slot, `0x80` one of its
//! other cells. The other 63 bytes of the slot's cells, in order, are its
//! *stream*: `crc32 (4) ‖ kind (1) ‖ version (1) ‖ payload length (2) ‖
//! payload ‖ zeros`, the CRC covering `n` and the stream after itself. A
//! damaged first cell is found by its CRC; a damaged tag by the next cell's.

use crate::secret::SecretVec;

use super::slot::KIND_STATE;

/// Bytes of a cell.
pub(crate) const CELL: usize = 64;
/// Cells of a 512-byte sector; no slot crosses a sector's end.
pub(super) const SECTOR_CELLS: u32 = 8;
/// The first cell that holds a slot (after the header and state sectors).
pub(crate) const FIRST_CELL: u32 = 16;
/// Tag of a slot's cells after its first.
const CONT: u8 = 0x80;
/// Stream bytes per cell.
const DATA: usize = CELL - 1;
/// Stream bytes before the payload.
const HEAD: usize = 8;
/// Framing version of a slot's stream.
const STREAM_VERSION: u8 = 1;

/// Cells a slot with a payload of `len` bytes takes (`None`: more than a sector).
pub(super) fn cells_for(len: usize) -> Option<u32> {
    let n = u32::try_from((HEAD + len).div_ceil(DATA)).ok()?;
    (n <= SECTOR_CELLS).then_some(n)
}

/// The cells of a slot of `kind` holding `payload` (`n × 64` bytes).
pub(super) fn frame(kind: u8, payload: &[u8]) -> Option<SecretVec> {
    let n = cells_for(payload.len())?;
    let mut stream = SecretVec::new(vec![0u8; n as usize * DATA]);
    stream[4] = kind;
    stream[5] = STREAM_VERSION;
    stream[6..8].copy_from_slice(&u16::try_from(payload.len()).ok()?.to_le_bytes());
    stream[HEAD..HEAD + payload.len()].copy_from_slice(payload);
    let crc = stream_crc(n as u8, &stream);
    stream[0..4].copy_from_slice(&crc.to_le_bytes());
    let mut out = SecretVec::new(vec![0u8; n as usize * CELL]);
    for (i, (cell, data)) in out
        .chunks_exact_mut(CELL)
        .zip(stream.chunks_exact(DATA))
        .enumerate()
    {
        cell[0] = if i == 0 { n as u8 } else { CONT };
        cell[1..].copy_from_slice(data);
    }
    Some(out)
}

fn stream_crc(n: u8, stream: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[n]);
    h.update(stream.get(4..).unwrap_or_default());
    h.finalize()
}

/// A slot's kind and payload, read from its cells.
pub(super) struct Framed {
    /// Cells it takes.
    pub cells: u32,
    pub kind: u8,
    pub payload: SecretVec,
}

/// Reads the slot at cell `index` from `bytes`, which start at that cell and
/// run to the end of its sector (or of the file). `Ok(None)`: a free cell.
pub(super) fn unframe(index: u32, bytes: &[u8]) -> Result<Option<Framed>, &'static str> {
    let cell = bytes.get(..CELL).ok_or("keyring cell cut short")?;
    let tag = cell[0];
    if tag == 0 {
        return if cell.iter().all(|&b| b == 0) {
            Ok(None)
        } else {
            Err("non-zero free cell")
        };
    }
    if tag == CONT {
        return Err("a slot's later cell without its first cell");
    }
    let n = u32::from(tag);
    if n > SECTOR_CELLS {
        return Err("unknown cell tag");
    }
    if index % SECTOR_CELLS + n > SECTOR_CELLS {
        return Err("slot crosses the end of its sector");
    }
    let cells = bytes
        .get(..n as usize * CELL)
        .ok_or("slot cut short (the file ends inside it)")?;
    if cells.chunks_exact(CELL).skip(1).any(|c| c[0] != CONT) {
        return Err("slot's later cell is not marked as one");
    }
    // The stream is read where it lies, the cells' bytes after their tags
    // (stream byte `k` is byte `1 + k % 63` of cell `k / 63`), and only the
    // payload copied out: a lookup reads every slot of the sectors it
    // probes.
    let at = |k: usize| cells[k / DATA * CELL + 1 + k % DATA];
    let crc = u32::from_le_bytes([at(0), at(1), at(2), at(3)]);
    let mut h = crc32fast::Hasher::new();
    h.update(&[tag]);
    h.update(&cells[5..CELL]);
    for c in cells.chunks_exact(CELL).skip(1) {
        h.update(&c[1..]);
    }
    if h.finalize() != crc {
        return Err("slot checksum mismatch");
    }
    if at(5) != STREAM_VERSION {
        return Err("unknown slot version");
    }
    let kind = at(4);
    if kind == KIND_STATE {
        return Err("state slot among the data slots");
    }
    let len = usize::from(u16::from_le_bytes([at(6), at(7)]));
    if HEAD + len > n as usize * DATA {
        return Err("slot payload length out of range");
    }
    let mut payload = SecretVec::new(Vec::with_capacity(len));
    let mut k = HEAD;
    while k < HEAD + len {
        let (cell, off) = (k / DATA, k % DATA);
        let take = (DATA - off).min(HEAD + len - k);
        let from = cell * CELL + 1 + off;
        payload.extend_from_slice(&cells[from..from + take]);
        k += take;
    }
    Ok(Some(Framed {
        cells: n,
        kind,
        payload,
    }))
}

/// How many cells from the start of `bytes` (a cell, to the end of its
/// sector) belong to what starts there, even when it is damaged: the cell
/// and the later-cell-tagged cells that follow it.
pub(super) fn extent(bytes: &[u8]) -> u32 {
    1 + bytes
        .chunks_exact(CELL)
        .skip(1)
        .take_while(|c| c[0] == CONT)
        .count() as u32
}

/// The bytes of cell `index` to the end of its sector, out of `bytes`, which
/// hold the cells from `base` on.
pub(super) fn to_sector_end(bytes: &[u8], base: u32, index: u32) -> &[u8] {
    let from = (index - base) as usize * CELL;
    let end_cell = (index / SECTOR_CELLS + 1) * SECTOR_CELLS;
    let to = ((end_cell - base) as usize * CELL).min(bytes.len());
    bytes.get(from..to).unwrap_or_default()
}

/// Walks the cells of `bytes` (cells `base ..`, `base` a sector's first),
/// starting at `first`: `each(index, found)` for every free cell, slot and
/// damaged piece, which is skipped whole (see [`extent`]). A trailing piece
/// shorter than a cell is not looked at.
pub(super) fn scan(
    bytes: &[u8],
    base: u32,
    first: u32,
    mut each: impl FnMut(u32, u32, Result<Option<Framed>, &'static str>),
) {
    let count = (bytes.len() / CELL) as u32;
    let mut i = first.max(base);
    while i < base + count {
        let here = to_sector_end(bytes, base, i);
        let found = unframe(i, here);
        let step = match &found {
            Ok(Some(f)) => f.cells,
            Ok(None) => 1,
            Err(_) => extent(here),
        };
        each(i, step, found);
        i += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_at_every_size() {
        for len in [0usize, 1, 47, 48, 55, 56, 110, 111, 300, 496] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            let cells = frame(2, &payload).unwrap();
            let n = cells_for(len).unwrap();
            assert_eq!(cells.len(), n as usize * CELL);
            let f = unframe(FIRST_CELL, &cells).unwrap().unwrap();
            assert_eq!((f.cells, f.kind, &f.payload[..]), (n, 2, &payload[..]));
        }
        assert_eq!(cells_for(55), Some(1));
        assert_eq!(cells_for(56), Some(2));
        assert_eq!(cells_for(497), None);
    }

    #[test]
    fn every_flipped_bit_of_a_slot_is_found() {
        let cells = frame(1, &[7u8; 120]).unwrap();
        for bit in 0..cells.len() * 8 {
            let mut bad = cells.to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            let found = unframe(FIRST_CELL, &bad);
            assert!(found.is_err(), "bit {bit} went unnoticed");
        }
    }

    #[test]
    fn a_slot_may_not_cross_its_sector() {
        let cells = frame(1, &[7u8; 120]).unwrap();
        assert_eq!(cells.len(), 3 * CELL);
        assert!(unframe(FIRST_CELL + 5, &cells).is_ok());
        assert!(unframe(FIRST_CELL + 6, &cells).is_err());
    }

    #[test]
    fn a_scan_skips_damaged_slots_whole() {
        let mut bytes = vec![0u8; 2 * 512];
        let a = frame(1, &[1u8; 100]).unwrap(); // 2 cells
        let b = frame(2, &[2u8; 40]).unwrap(); // 1 cell
        bytes[..a.len()].copy_from_slice(&a);
        bytes[2 * CELL..3 * CELL].copy_from_slice(&b);
        bytes[8 * CELL..8 * CELL + a.len()].copy_from_slice(&a);
        bytes[8 * CELL + 5] ^= 1; // damage the second copy of `a`
        let mut seen = Vec::new();
        scan(&bytes, 16, 16, |i, step, f| {
            seen.push((i, step, f.map(|f| f.map(|f| f.kind))));
        });
        let slots: Vec<_> = seen.iter().filter(|s| s.2 != Ok(None)).collect();
        assert_eq!(
            slots,
            vec![
                &(16, 2, Ok(Some(1))),
                &(18, 1, Ok(Some(2))),
                &(24, 2, Err("slot checksum mismatch"))
            ]
        );
        let free: u32 = seen.iter().filter(|s| s.2 == Ok(None)).map(|s| s.1).sum();
        assert_eq!(free, 16 - 5);
    }
}
