//! The state slot (bytes 512..1024): the durable marks of every file (docs/FORMAT.md
//! §6.10).

use super::slot::KIND_STATE;
use super::{SLOT_SIZE, SLOT_VERSION};

/// Bytes of the state slot's payload.
const STATE_LEN: usize = 4 + 8 * 8;
/// Bytes of the payload before the index run's number (read).
const STATE_LEN_7: usize = 4 + 7 * 8;

/// The durable marks kept in the state slot: how much of each file was on
/// stable storage when the keyring was last synced. Open compares the files
/// with them: less than a mark says is lost acknowledged data (an error, never
/// a torn tail). Every mark only ever names bytes that were synced before the
/// state itself was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    /// Slots in the keyring file (header and state included).
    pub slots: u32,
    /// The active segment's id, and how many of its bytes were durable.
    pub segment: u64,
    pub segment_len: u64,
    /// Audit entries, and bytes of `audit.log`, that were durable.
    pub audit_entries: u64,
    pub audit_bytes: u64,
    /// Audit entries (and bytes) whose effects are all on disk: open reads
    /// the log for unfinished operations only after this point.
    pub audit_done_entries: u64,
    pub audit_done_bytes: u64,
    /// How many times the state was written.
    pub writes: u64,
    /// The number of the index run whose manifest open may use (0: none):
    /// set once the manifest is written, and back to 0 before anything
    /// moves the slots a run names (a keyring compaction). A manifest
    /// naming another run, an older copy included, is not used.
    pub run: u64,
}

impl Marks {
    pub(super) fn encode(&self) -> [u8; STATE_LEN] {
        let mut out = [0u8; STATE_LEN];
        out[0..4].copy_from_slice(&self.slots.to_le_bytes());
        let words = [
            self.segment,
            self.segment_len,
            self.audit_entries,
            self.audit_bytes,
            self.audit_done_entries,
            self.audit_done_bytes,
            self.writes,
            self.run,
        ];
        for (i, w) in words.iter().enumerate() {
            out[4 + 8 * i..12 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    pub(super) fn decode(b: &[u8]) -> Option<Marks> {
        if b.len() != STATE_LEN && b.len() != STATE_LEN_7 {
            return None;
        }
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(
                b.get(4 + 8 * i..12 + 8 * i)?.try_into().ok()?,
            ))
        };
        Some(Marks {
            slots: u32::from_le_bytes(b.get(0..4)?.try_into().ok()?),
            segment: word(0)?,
            segment_len: word(1)?,
            audit_entries: word(2)?,
            audit_bytes: word(3)?,
            audit_done_entries: word(4)?,
            audit_done_bytes: word(5)?,
            writes: word(6)?,
            run: if b.len() == STATE_LEN { word(7)? } else { 0 },
        })
    }
}

/// The state slot: the same framing as a data slot (CRC, kind, version,
/// length), never wrapped (it holds no secret).
pub(super) fn encode_state(marks: &Marks) -> [u8; SLOT_SIZE] {
    let mut out = [0u8; SLOT_SIZE];
    out[4] = KIND_STATE;
    out[5] = SLOT_VERSION;
    out[6..8].copy_from_slice(&(STATE_LEN as u16).to_le_bytes());
    out[8..8 + STATE_LEN].copy_from_slice(&marks.encode());
    let crc = crc32fast::hash(&out[4..]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes the state slot.
pub(crate) fn decode_state(buf: &[u8; SLOT_SIZE]) -> Result<Marks, &'static str> {
    let crc = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if crc32fast::hash(&buf[4..]) != crc {
        return Err("state slot checksum mismatch");
    }
    if buf[4] != KIND_STATE || buf[5] != SLOT_VERSION {
        return Err("state slot of unknown kind or version");
    }
    let len = usize::from(u16::from_le_bytes([buf[6], buf[7]]));
    buf.get(8..8 + len)
        .and_then(Marks::decode)
        .ok_or("state slot malformed")
}
