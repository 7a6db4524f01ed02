//! Keyring formats 1 and 2: one 512-byte slot per key or directory entry
//! (docs/FORMAT.md §6.11). Read-only: a writing open rewrites such a
//! keyring in format 3 first ([`super::rekey::upgrade`]).

use super::SLOT_SIZE;

/// Slot 1 of a format-2 keyring holds its state; data slots start at 2.
pub(super) const FIRST_SLOT: u32 = 2;

/// The kind and payload of a 512-byte slot; `Ok(None)` for a free
/// (all-zero) slot.
pub(super) fn unframe(buf: &[u8; SLOT_SIZE]) -> Result<Option<(u8, &[u8])>, &'static str> {
    if super::is_zero(buf) {
        return Ok(None);
    }
    let crc = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if crc32fast::hash(&buf[4..]) != crc {
        return Err("slot checksum mismatch");
    }
    if buf[5] != 1 {
        return Err("unknown slot version");
    }
    let len = usize::from(u16::from_le_bytes([buf[6], buf[7]]));
    let payload = buf
        .get(8..8 + len)
        .ok_or("slot payload length out of range")?;
    Ok(Some((buf[4], payload)))
}
