//! A hot, consistent snapshot of a running store, for backups
//! (docs/BACKUP.md, "What a backup point holds").
//!
//! Taken in two steps. Under the writer's lock — held only while the small
//! files are read, so appends and erasures wait a few milliseconds — the
//! snapshot notes the segments and the active segment's length, and copies
//! the keyring, the audit log (its whole entries) and the policy into memory:
//! no append or privacy operation is half done while the writer's lock is
//! held, so these agree with each other and with the segments' prefixes.
//! Then, with the writer's lock released, the segments are read while the
//! snapshot holds the compaction lock: no compaction rewrites or removes a
//! segment until the snapshot is dropped. Sealed segments never change; the
//! active one is append-only, and only its prefix up to the noted length is
//! read.

use crate::secret::SecretVec;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use parking_lot::MutexGuard;

use super::Engine;
use crate::error::{Error, IoContext, Result};
use crate::policy::POLICY_FILE;
use crate::segment;
use crate::shred::AUDIT_FILE;

/// One segment of a snapshot: its file and how many of its bytes belong to it.
pub(crate) struct SnapshotSegment {
    pub name: String,
    pub path: PathBuf,
    pub len: u64,
    file: File,
}

impl SnapshotSegment {
    /// Reads `buf.len()` bytes at `off` (within `len`).
    pub(crate) fn read_at(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        if off + buf.len() as u64 > self.len {
            return Err(Error::Internal(
                "snapshot read past the noted length".into(),
            ));
        }
        self.file.read_exact_at(buf, off).at(&self.path)
    }
}

/// What a backup copies, consistent as of one moment.
pub(crate) struct Snapshot<'a> {
    /// Keeps compaction out while the segments are read.
    _compaction: MutexGuard<'a, ()>,
    /// The keyring file (keys in plaintext unless it is wrapped).
    pub keyring: SecretVec,
    /// The audit log's whole entries.
    pub audit: Vec<u8>,
    /// The last audit entry in `audit` (0: none).
    pub audit_seq: u64,
    /// `policy.json`, if the store has one.
    pub policy: Option<Vec<u8>>,
    /// The segments, oldest first, the active one last.
    pub segments: Vec<SnapshotSegment>,
}

impl Engine {
    /// Takes a snapshot (see the module documentation). Works on a
    /// read-only store too, and writes nothing.
    pub(crate) fn snapshot(&self) -> Result<Snapshot<'_>> {
        let compaction = self.compaction.lock();
        let w = self.writer.lock();
        self.commit.check()?;
        let (active, active_len) = w.last_segment();
        let keyring_path = w.keyring.path().to_owned();
        let keyring_file = w.keyring.file();
        let klen = keyring_file.metadata().at(&keyring_path)?.len();
        let mut keyring = SecretVec::new(vec![0u8; klen as usize]);
        keyring_file
            .read_exact_at(&mut keyring, 0)
            .at(&keyring_path)?;
        let (audit_seq, audit_len) = self.audit.lock().marks();
        let audit_path = self.dir.join(AUDIT_FILE);
        let audit = if audit_len == 0 {
            Vec::new()
        } else {
            let mut buf = vec![0u8; audit_len as usize];
            File::open(&audit_path)
                .and_then(|f| f.read_exact_at(&mut buf, 0))
                .at(&audit_path)?;
            buf
        };
        let policy_path = self.dir.join(POLICY_FILE);
        let policy = match std::fs::read(&policy_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&policy_path, e)),
        };
        // Sealed segments open left unopened are opened and checked now
        // (length, header, footer), so that a backup never copies one that
        // an open that checked every segment would have refused.
        for seg in self.segments.read().values() {
            seg.file()?;
        }
        let mut segments = Vec::new();
        for id in segment::list(&self.dir)? {
            if id > active {
                continue;
            }
            let name = segment::file_name(id);
            let path = self.dir.join(&name);
            let file = File::open(&path).at(&path)?;
            let len = if id == active {
                active_len
            } else {
                file.metadata().at(&path)?.len()
            };
            segments.push(SnapshotSegment {
                name,
                path,
                len,
                file,
            });
        }
        drop(w);
        Ok(Snapshot {
            _compaction: compaction,
            keyring,
            audit,
            audit_seq,
            policy,
            segments,
        })
    }
}
