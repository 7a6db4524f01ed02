//! The index manifest (`index.manifest`): which run file holds the index's
//! rows ([`super::disk`]) and what the run covers, so that open reads the
//! run instead of every keyring slot and location-file summary, and
//! replays only what came after (docs/FORMAT.md §7b).
//!
//! `magic "SHRDIMF1" | version u32 | len u64 | crc32 u32 (of payload) | payload`,
//! the payload a [`Manifest`] in the crate's codec (bincode 2, standard
//! configuration). Written through a synced temporary file, a rename and a
//! directory sync: a crash leaves the old manifest or the new one. It holds
//! random ids, counts, slot and segment numbers, never a key or personal
//! data.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::SegmentUsage;
use crate::error::Result;

pub(crate) const MANIFEST_FILE: &str = "index.manifest";
const MAGIC: &[u8; 8] = b"SHRDIMF1";
/// Version 2 adds `held`; a version-1 manifest (written by an earlier
/// build of this format) is not used: the index is rebuilt once.
const VERSION: u32 = 2;

/// What the run covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// The keyring it was written for.
    pub keyring_id: [u8; 16],
    /// [`super::CallerKey::check`] of the key its caller-id hashes are under.
    pub caller_check: [u8; 8],
    /// The run file's number (`index-<number>.run`).
    pub run: u64,
    /// Live generations, and visitors with a directory entry, in the run.
    pub transcripts: u64,
    pub directory: u64,
    /// The keyring's length in cells when the run was written: every slot
    /// the run names is below it, and every slot written since is at or
    /// above it ([`crate::keyring::Keyring::set_floor`]).
    pub keyring_cells: u32,
    /// Audit entries whose effects the run holds, and the bytes of the log
    /// they take.
    pub audit_entries: u64,
    pub audit_bytes: u64,
    /// The directory table's occupancy (one byte a sector, see
    /// `keyring::table::Occupancy`) and the keyring's free cells below
    /// `keyring_cells`, when the run was written: open reads neither the
    /// table nor the cells below. (Read as one byte string: the same bytes
    /// as a sequence of bytes, decoded at once.)
    #[serde(
        serialize_with = "crate::codec::as_bytes",
        deserialize_with = "crate::codec::byte_buf"
    )]
    pub occupancy: Vec<u8>,
    pub stranded: u64,
    /// Directory entries that share their address with another visitor's
    /// (counted when the index was last rebuilt; entries written since are
    /// in canonical form and never twins).
    pub twins: u64,
    /// Byte accounting of the sealed segments: (segment, generation of its
    /// file, usage). A segment whose file has another generation now, or
    /// that is not here, is counted again from its location file.
    pub usage: Vec<(u64, u32, SegmentUsage)>,
    /// The rows of the generations held in memory when the run was
    /// written (those with records in the active segment): `tid ‖ row`,
    /// 76 bytes each, ascending tid, each equal to the run's row of that
    /// generation. Open takes the generations the checkpoint names from
    /// here (`super::disk::HeldRows`).
    #[serde(
        serialize_with = "crate::codec::as_bytes",
        deserialize_with = "crate::codec::byte_buf"
    )]
    pub held: Vec<u8>,
}

impl Manifest {
    /// Whether `other` describes the same run, covering the same (rows of
    /// held generations aside).
    pub(crate) fn same_coverage(&self, other: &Manifest) -> bool {
        let strip = |m: &Manifest| Manifest {
            held: Vec::new(),
            ..m.clone()
        };
        strip(self) == strip(other)
    }
}

/// The run file of number `n`.
pub(crate) fn run_file_name(n: u64) -> String {
    format!("index-{n:06}.run")
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        crate::codec::framed(MAGIC, VERSION, self)
    }

    /// `None` if the bytes are not a valid manifest.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Manifest> {
        crate::codec::unframed(bytes, MAGIC, |v| v == VERSION)
    }

    /// The manifest in `dir`: `Ok(None)` when there is none, `Err` naming
    /// the file when it is there but damaged.
    pub(crate) fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(crate::Error::io(&path, e)),
        };
        match Manifest::decode(&bytes) {
            Some(m) => Ok(Some(m)),
            None => Err(crate::Error::corrupt(
                &path,
                0,
                "the index manifest is damaged",
            )),
        }
    }

    /// Writes it durably (synced file, rename, synced directory).
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        crate::fsutil::write_atomic(dir, MANIFEST_FILE, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            keyring_id: [1; 16],
            caller_check: [2; 8],
            run: 7,
            transcripts: 30,
            directory: 10,
            keyring_cells: 4096,
            audit_entries: 3,
            audit_bytes: 300,
            occupancy: vec![1, 2, 3],
            stranded: 4,
            twins: 0,
            held: vec![9; 76],
            usage: vec![(
                1,
                2,
                SegmentUsage {
                    live: 5,
                    dead: 6,
                    dead_since: Some(7),
                },
            )],
        }
    }

    #[test]
    fn a_manifest_roundtrips_and_any_damage_is_refused() {
        let m = sample();
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes), Some(m));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert_eq!(Manifest::decode(&b), None, "byte {i} flipped");
        }
        for cut in 0..bytes.len() {
            assert_eq!(Manifest::decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    /// Earlier builds wrote `occupancy` as a sequence of bytes; read as
    /// one byte string now, it is the same bytes either way.
    #[test]
    fn occupancy_is_written_as_earlier_builds_wrote_it() {
        #[derive(Serialize)]
        struct Earlier {
            keyring_id: [u8; 16],
            caller_check: [u8; 8],
            run: u64,
            transcripts: u64,
            directory: u64,
            keyring_cells: u32,
            audit_entries: u64,
            audit_bytes: u64,
            occupancy: Vec<u8>,
            stranded: u64,
            twins: u64,
            usage: Vec<(u64, u32, SegmentUsage)>,
            #[serde(serialize_with = "crate::codec::as_bytes")]
            held: Vec<u8>,
        }
        let mut m = sample();
        m.occupancy = (0..=255).cycle().take(3000).collect();
        let earlier = Earlier {
            keyring_id: m.keyring_id,
            caller_check: m.caller_check,
            run: m.run,
            transcripts: m.transcripts,
            directory: m.directory,
            keyring_cells: m.keyring_cells,
            audit_entries: m.audit_entries,
            audit_bytes: m.audit_bytes,
            occupancy: m.occupancy.clone(),
            stranded: m.stranded,
            twins: m.twins,
            usage: m.usage.clone(),
            held: m.held.clone(),
        };
        let bytes = crate::codec::framed(MAGIC, VERSION, &earlier);
        assert!(bytes == m.encode());
        assert_eq!(Manifest::decode(&bytes), Some(m));
    }

    #[test]
    fn load_tells_a_missing_manifest_from_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), None);
        sample().save(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(sample()));
        std::fs::write(dir.path().join(MANIFEST_FILE), b"SHRDIMF1 garbage").unwrap();
        let e = Manifest::load(dir.path()).unwrap_err();
        assert!(matches!(e, crate::Error::Corrupt { .. }), "{e}");
    }
}
