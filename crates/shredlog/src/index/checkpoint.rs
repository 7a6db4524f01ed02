//! The index checkpoint (`index.ckpt`): the locations of the records held in
//! memory (those of the active segment) up to a position in the log, so
//! that open need not scan it, and dead bytes per segment (docs/FORMAT.md
//! §7). No keys, no personal data.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::RecordRef;
use crate::error::Result;
use crate::record::{MsgIdDigest, Tid};

/// A transcript in the checkpoint: its records in sequence order and the
/// digests of its message ids.
pub(crate) type CheckpointTranscript = (Tid, Vec<RecordRef>, Vec<MsgIdDigest>);

/// The checkpoint: record locations up to a position in the log.
#[derive(Serialize, Deserialize, Default, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// Segments covered, ascending: (id, generation of the file, its length
    /// at checkpoint time). A segment whose generation differs was rewritten
    /// since (the checkpoint is stale); one of the same generation that is
    /// shorter lost acknowledged data.
    pub segments: Vec<(u64, u32, u64)>,
    /// Dead bytes per segment at checkpoint time, and since when (Unix ms).
    pub dead: Vec<(u64, u64, Option<i64>)>,
    /// Live transcripts' records.
    pub transcripts: Vec<CheckpointTranscript>,
}

const CKPT_MAGIC: &[u8; 8] = b"SHRDCKP1";
/// Version 4: `transcripts` holds only the records of segments without a
/// record-location file (the active segment); version 3 (read) held every
/// record. A shredlog that knows only version 3 ignores a version-4 file
/// and scans, so it never takes the missing records for dead ones.
const CKPT_VERSION: u32 = 4;
const CKPT_VERSION_3: u32 = 3;
const CKPT_FILE: &str = "index.ckpt";

impl Checkpoint {
    /// `magic[8] | version u32 | len u64 | crc32 u32 (of payload) | payload`
    /// ([`crate::codec::framed`]).
    pub(crate) fn encode(&self) -> Vec<u8> {
        crate::codec::framed(CKPT_MAGIC, CKPT_VERSION, self)
    }

    /// `None` if the bytes are not a valid checkpoint (the store then scans).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        crate::codec::unframed(bytes, CKPT_MAGIC, |v| {
            v == CKPT_VERSION || v == CKPT_VERSION_3
        })
    }

    pub(crate) fn load(dir: &Path) -> Option<Checkpoint> {
        let bytes = std::fs::read(dir.join(CKPT_FILE)).ok()?;
        Checkpoint::decode(&bytes)
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        crate::fsutil::write_atomic(dir, CKPT_FILE, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Loc;

    #[test]
    fn checkpoint_roundtrip_and_damage() {
        let c = Checkpoint {
            segments: vec![(1, 1, 100), (2, 1, 50)],
            dead: vec![(1, 10, Some(5))],
            transcripts: vec![(
                [7; 16],
                vec![RecordRef {
                    seq: 0,
                    ts: 5,
                    loc: Loc {
                        seg: 1,
                        off: 32,
                        len: 68,
                    },
                    pii_len: 0,
                }],
                vec![[3; 16]],
            )],
        };
        let bytes = c.encode();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), c);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(Checkpoint::decode(&bad).is_none(), "flip at {i}");
        }
        assert!(Checkpoint::decode(&bytes[..bytes.len() - 1]).is_none());
        // Version 3 (every record, written before location files) is read;
        // older versions are not.
        let mut v3 = bytes.clone();
        v3[8..12].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(Checkpoint::decode(&v3).unwrap(), c);
        let mut v2 = bytes.clone();
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert!(Checkpoint::decode(&v2).is_none());
    }
}
