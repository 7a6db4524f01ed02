//! The index checkpoint (`index.ckpt`): the locations of the records held in
//! memory (those of the active segment) up to a position in the log, so
//! that open need not scan it, and dead bytes per segment (docs/FORMAT.md
//! §7). No keys, no personal data.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::RecordRef;
use crate::error::Result;
use crate::fsutil::Stamp;
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
    /// Sealed segments' files as they were when it was written, ascending
    /// by id (version 6): a segment file with the same stamp and length is
    /// the file recorded, so open need not open it (docs/FORMAT.md §7.3).
    #[serde(skip)]
    pub files: Vec<(u64, Stamp)>,
}

const CKPT_MAGIC: &[u8; 8] = b"SHRDCKP1";
/// Version 6: version 5's payload followed by the sealed segments' file
/// stamps. Version 5 (read): the payload is fixed-width little-endian
/// fields, read without a decoder (docs/FORMAT.md §7.2); versions 3 and 4
/// (read) are bincode. Version 4 holds only the records of segments without
/// a record-location file (the active segment); version 3 held every
/// record. A shredlog that knows only version 3 or 4 ignores a version-5
/// file and scans, so it never takes the missing records for dead ones.
const CKPT_VERSION: u32 = 6;
const CKPT_VERSION_5: u32 = 5;
const CKPT_VERSION_4: u32 = 4;
const CKPT_VERSION_3: u32 = 3;
const CKPT_FILE: &str = "index.ckpt";
/// Bytes of one record in a version-5 payload.
const RECORD_BYTES: usize = 36;
/// Bytes of one file stamp in a version-6 payload.
const STAMP_BYTES: usize = 36;

impl Checkpoint {
    /// `magic[8] | version u32 | len u64 | crc32 u32 (of payload) | payload`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        crate::codec::frame(CKPT_MAGIC, CKPT_VERSION, &self.encode_payload())
    }

    /// The version-6 payload: version 5's, then the file stamps.
    fn encode_payload(&self) -> Vec<u8> {
        let mut out = self.encode_payload_5();
        out.reserve_exact(4 + self.files.len() * STAMP_BYTES);
        out.extend_from_slice(
            &u32::try_from(self.files.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        for (id, s) in &self.files {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&s.dev.to_le_bytes());
            out.extend_from_slice(&s.ino.to_le_bytes());
            out.extend_from_slice(&s.ctime.to_le_bytes());
            out.extend_from_slice(&s.ctime_nsec.to_le_bytes());
        }
        out
    }

    /// The version-5 payload: counts as u32, every field at its full width.
    fn encode_payload_5(&self) -> Vec<u8> {
        let records: usize = self
            .transcripts
            .iter()
            .map(|(_, r, i)| 24 + r.len() * RECORD_BYTES + i.len() * 16)
            .sum();
        let mut out =
            Vec::with_capacity(12 + self.segments.len() * 20 + self.dead.len() * 25 + records);
        let count = |out: &mut Vec<u8>, n: usize| {
            out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
        };
        count(&mut out, self.segments.len());
        for (id, generation, len) in &self.segments {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&generation.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        count(&mut out, self.dead.len());
        for (id, bytes, since) in &self.dead {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&bytes.to_le_bytes());
            out.push(u8::from(since.is_some()));
            out.extend_from_slice(&since.unwrap_or(0).to_le_bytes());
        }
        count(&mut out, self.transcripts.len());
        for (tid, recs, ids) in &self.transcripts {
            out.extend_from_slice(tid);
            count(&mut out, recs.len());
            count(&mut out, ids.len());
            for r in recs {
                out.extend_from_slice(&r.seq.to_le_bytes());
                out.extend_from_slice(&r.ts.to_le_bytes());
                out.extend_from_slice(&r.loc.seg.to_le_bytes());
                out.extend_from_slice(&r.loc.off.to_le_bytes());
                out.extend_from_slice(&r.loc.len.to_le_bytes());
                out.extend_from_slice(&r.pii_len.to_le_bytes());
            }
            for d in ids {
                out.extend_from_slice(d);
            }
        }
        out
    }

    /// `None` if the bytes are not a valid checkpoint (the store then scans).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        let (version, payload) = crate::codec::unframe(bytes, CKPT_MAGIC, |v| {
            v == CKPT_VERSION || v == CKPT_VERSION_5 || v == CKPT_VERSION_4 || v == CKPT_VERSION_3
        })?;
        match version {
            CKPT_VERSION => Checkpoint::decode_payload(payload, true),
            CKPT_VERSION_5 => Checkpoint::decode_payload(payload, false),
            _ => crate::codec::decode(payload),
        }
    }

    /// A version-6 payload (`stamps`) or a version-5 one, which it must
    /// fill exactly.
    fn decode_payload(payload: &[u8], stamps: bool) -> Option<Checkpoint> {
        let mut r = Reader(payload);
        let mut c = Checkpoint::default();
        let n = r.count(20)?;
        c.segments.reserve_exact(n);
        for _ in 0..n {
            c.segments.push((r.u64()?, r.u32()?, r.u64()?));
        }
        let n = r.count(25)?;
        c.dead.reserve_exact(n);
        for _ in 0..n {
            let (id, bytes, has, since) = (r.u64()?, r.u64()?, r.take::<1>()?[0], r.i64()?);
            let since = match has {
                0 if since == 0 => None,
                1 => Some(since),
                _ => return None,
            };
            c.dead.push((id, bytes, since));
        }
        let n = r.count(24)?;
        c.transcripts.reserve_exact(n);
        for _ in 0..n {
            let tid = r.take::<16>()?;
            let records = usize::try_from(r.u32()?).ok()?;
            let digests = usize::try_from(r.u32()?).ok()?;
            if records
                .checked_mul(RECORD_BYTES)?
                .checked_add(digests.checked_mul(16)?)?
                > r.0.len()
            {
                return None;
            }
            let mut recs = Vec::with_capacity(records);
            for _ in 0..records {
                recs.push(RecordRef {
                    seq: r.u32()?,
                    ts: r.i64()?,
                    loc: super::Loc {
                        seg: r.u64()?,
                        off: r.u64()?,
                        len: r.u32()?,
                    },
                    pii_len: r.u32()?,
                });
            }
            let mut ids = Vec::with_capacity(digests);
            for _ in 0..digests {
                ids.push(r.take::<16>()?);
            }
            c.transcripts.push((tid, recs, ids));
        }
        if stamps {
            let n = r.count(STAMP_BYTES)?;
            c.files.reserve_exact(n);
            for _ in 0..n {
                let id = r.u64()?;
                let stamp = Stamp {
                    dev: r.u64()?,
                    ino: r.u64()?,
                    ctime: r.i64()?,
                    ctime_nsec: r.u32()?,
                };
                c.files.push((id, stamp));
            }
        }
        r.0.is_empty().then_some(c)
    }

    pub(crate) fn load(dir: &Path) -> Option<Checkpoint> {
        let bytes = std::fs::read(dir.join(CKPT_FILE)).ok()?;
        Checkpoint::decode(&bytes)
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        crate::fsutil::write_atomic(dir, CKPT_FILE, &self.encode())
    }
}

/// Reads a version-5 payload front to back; `None` past its end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }

    /// A count of items of at least `each` bytes (more than what is left
    /// cannot be whole).
    fn count(&mut self, each: usize) -> Option<usize> {
        let n = usize::try_from(self.u32()?).ok()?;
        (n.checked_mul(each)? <= self.0.len()).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Loc;
    use proptest::prelude::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            segments: vec![(1, 1, 100), (2, 1, 50)],
            dead: vec![(1, 10, Some(5)), (2, 0, None)],
            transcripts: vec![
                (
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
                ),
                ([8; 16], Vec::new(), Vec::new()),
            ],
            files: vec![(
                1,
                Stamp {
                    dev: 2049,
                    ino: 77,
                    ctime: 1_765_000_000,
                    ctime_nsec: 123_456_789,
                },
            )],
        }
    }

    #[test]
    fn checkpoint_roundtrip_and_damage() {
        let c = sample();
        let bytes = c.encode();
        assert_eq!(bytes[8..12], 6u32.to_le_bytes());
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), c);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(Checkpoint::decode(&bad).is_none(), "flip at {i}");
        }
        for cut in 0..bytes.len() {
            assert!(Checkpoint::decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn older_versions_are_read_and_the_oldest_are_not() {
        // Version 5: version 6 without the stamps (read with none).
        let c = sample();
        let v5 = crate::codec::frame(CKPT_MAGIC, 5, &c.encode_payload_5());
        let read = Checkpoint::decode(&v5).unwrap();
        assert!(read.files.is_empty());
        assert_eq!(
            (read.segments, read.dead, read.transcripts),
            (c.segments.clone(), c.dead.clone(), c.transcripts.clone())
        );
        // Version 6's bytes under version 5 have bytes left over.
        let mut as5 = c.encode();
        as5[8..12].copy_from_slice(&5u32.to_le_bytes());
        assert!(Checkpoint::decode(&as5).is_none());
        // Versions 3 and 4 are bincode (and had no stamps).
        let c = Checkpoint {
            files: Vec::new(),
            ..sample()
        };
        for v in [3, 4] {
            let old = crate::codec::framed(CKPT_MAGIC, v, &c);
            assert_eq!(Checkpoint::decode(&old).unwrap(), c, "version {v}");
        }
        // Version 6's bytes under an older version number are not bincode
        // of a checkpoint; versions 1 and 2 are not read at all.
        let mut v4 = c.encode();
        v4[8..12].copy_from_slice(&4u32.to_le_bytes());
        assert!(Checkpoint::decode(&v4).is_none());
        let v2 = crate::codec::framed(CKPT_MAGIC, 2, &c);
        assert!(Checkpoint::decode(&v2).is_none());
    }

    #[test]
    fn a_payload_that_is_not_canonical_is_refused() {
        // `since` absent must be written as zero.
        let mut c = sample();
        c.transcripts.clear();
        c.dead = vec![(1, 0, None)];
        let mut payload = c.encode_payload();
        assert!(Checkpoint::decode_payload(&payload, true).is_some());
        let since = 4 + 2 * 20 + 4 + 17;
        payload[since] = 1;
        assert!(Checkpoint::decode_payload(&payload, true).is_none());
        // A flag other than 0 or 1.
        let mut payload = c.encode_payload();
        payload[since - 1] = 2;
        assert!(Checkpoint::decode_payload(&payload, true).is_none());
        // Trailing bytes.
        let mut payload = c.encode_payload();
        payload.push(0);
        assert!(Checkpoint::decode_payload(&payload, true).is_none());
        // A stamp count larger than the stamps there.
        let mut payload = c.encode_payload();
        let count = payload.len() - STAMP_BYTES - 4;
        payload[count] = 2;
        assert!(Checkpoint::decode_payload(&payload, true).is_none());
    }

    fn checkpoints() -> impl Strategy<Value = Checkpoint> {
        let record = (
            any::<u32>(),
            any::<i64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(|(seq, ts, seg, off, len, pii_len)| RecordRef {
                seq,
                ts,
                loc: Loc { seg, off, len },
                pii_len,
            });
        let transcript = (
            any::<[u8; 16]>(),
            prop::collection::vec(record, 0..6),
            prop::collection::vec(any::<[u8; 16]>(), 0..4),
        );
        let stamp = (any::<u64>(), any::<u64>(), any::<i64>(), any::<u32>()).prop_map(
            |(dev, ino, ctime, ctime_nsec)| Stamp {
                dev,
                ino,
                ctime,
                ctime_nsec,
            },
        );
        (
            prop::collection::vec((any::<u64>(), any::<u32>(), any::<u64>()), 0..4),
            prop::collection::vec((any::<u64>(), any::<u64>(), any::<Option<i64>>()), 0..4),
            prop::collection::vec(transcript, 0..5),
            prop::collection::vec((any::<u64>(), stamp), 0..4),
        )
            .prop_map(|(segments, dead, transcripts, files)| Checkpoint {
                segments,
                dead,
                transcripts,
                files,
            })
    }

    proptest! {
        #[test]
        fn any_checkpoint_roundtrips(c in checkpoints()) {
            prop_assert_eq!(Checkpoint::decode(&c.encode()), Some(c));
        }

        #[test]
        fn any_payload_decodes_or_is_refused_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Some(c) = Checkpoint::decode_payload(&bytes, true) {
                prop_assert_eq!(c.encode_payload(), bytes.clone());
            }
            if let Some(c) = Checkpoint::decode_payload(&bytes, false) {
                prop_assert_eq!(c.encode_payload_5(), bytes);
            }
        }
    }
}
