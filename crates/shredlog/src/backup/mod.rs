//! Backups that forget (docs/BACKUP.md): hot, incremental backups of a store
//! to a [`Target`] (a directory, or an object store through the
//! `shredlog-backup` crate), restores that re-apply every later erasure
//! before the restored store serves a read, and the upkeep of the points at
//! the destination: erasures applied to their keyring copies, retention,
//! rotation of the backup key.
//!
//! | file | what |
//! | --- | --- |
//! | `target.rs` | the destination: [`Target`], [`DirTarget`] |
//! | `manifest.rs` | a point's manifest, sealed objects, checksums |
//! | `journal.rs` | the erasure journal at the destination |
//! | `wipe.rs` | journal records applied to a keyring copy, in memory |
//! | `run.rs` | taking a backup, listing points, syncing the journal |
//! | `restore.rs` | restoring a point |
//! | `upkeep.rs` | apply-erasures, retention, backup-key rotation |
//!
//! The snapshot itself is `store/snapshot.rs`.

use std::path::Path;

use sha2::Digest;

use crate::config::KeyEncryptionKey;
use crate::error::{Error, Result};
use crate::seal::Key;

mod journal;
mod manifest;
mod restore;
mod run;
mod target;
mod upkeep;
mod wipe;

pub use restore::{Point, RestoreReport, restore};
pub use run::{BackupOptions, BackupReport, PointInfo, list_points};
pub use target::{DirTarget, Target, Versioning};
pub use upkeep::{ApplyReport, Keep, PruneReport, apply_erasures, prune, rotate_backup_key};

/// Segment files are stored in pieces of this size, each an object named by
/// its SHA-256: a piece already at the destination is not uploaded again.
pub(crate) const CHUNK: usize = 4 << 20;

/// The operator's backup key: seals the keyring (and audit log and policy)
/// copies of every backup point, and authenticates the manifests. 32 bytes,
/// like the key-encryption key, and kept as apart from the backups as that.
#[derive(Clone)]
pub struct BackupKey(pub(crate) Key);

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(…)")
    }
}

fn as_backup_key(r: Result<KeyEncryptionKey>) -> Result<BackupKey> {
    match r {
        Ok(k) => Ok(BackupKey(k.0)),
        Err(Error::Kek(m)) => Err(Error::BackupKey(
            m.replace("key-encryption key", "backup key"),
        )),
        Err(e) => Err(e),
    }
}

impl BackupKey {
    /// Parses 64 hexadecimal digits (surrounding whitespace ignored).
    ///
    /// ```
    /// assert!(shredlog::backup::BackupKey::from_hex(&"cd".repeat(32)).is_ok());
    /// assert!(shredlog::backup::BackupKey::from_hex("cd").is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::BackupKey`] if the text is not exactly 32 bytes of hex.
    pub fn from_hex(text: &str) -> Result<BackupKey> {
        as_backup_key(KeyEncryptionKey::from_hex(text))
    }

    /// Reads a key file: 64 hex digits, or exactly 32 raw bytes.
    ///
    /// # Errors
    /// [`Error::BackupKey`] if the file cannot be read or holds something else.
    pub fn from_file(path: &Path) -> Result<BackupKey> {
        as_backup_key(KeyEncryptionKey::from_file(path))
    }
}

pub(crate) use crate::ids::hex as hex_bytes;

/// Bytes of lower-case (or upper-case) hex text.
pub(crate) fn parse_hex_vec(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// SHA-256 of `b`, hex.
pub(crate) fn sha256_hex(b: &[u8]) -> String {
    hex_bytes(&sha2::Sha256::digest(b))
}

/// An object's error: it is missing, altered or otherwise unusable.
pub(crate) fn damaged(object: &str, reason: &str) -> Error {
    Error::BackupDamaged {
        object: object.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Splits an object of two lines, `BODY\nLAST\n` (manifests: the tag;
/// journal objects: the checksum), into the body and the last line.
pub(crate) fn split_last_line<'a>(name: &str, bytes: &'a [u8]) -> Result<(&'a [u8], &'a [u8])> {
    let text = bytes
        .strip_suffix(b"\n")
        .ok_or_else(|| damaged(name, "is cut short"))?;
    let split = text
        .iter()
        .rposition(|&b| b == b'\n')
        .ok_or_else(|| damaged(name, "is cut short"))?;
    Ok((&text[..split], &text[split + 1..]))
}
