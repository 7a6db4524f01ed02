//! Key rotation: wrapping a plaintext keyring under a key-encryption key,
//! rotating to a new one, or unwrapping, crash-safely and in place
//! (docs/BACKUP.md, "Key management"; docs/SECURITY.md §4).
//!
//! The keyring is re-encoded in memory ([`Image`]) and written whole to
//! `keyring.rekey` (mode `0600`), synced, renamed over `keyring`, and the
//! directory synced: a crash leaves either the old keyring (the old key is in
//! force) or the new one (the new key is), never a mix. The old file's bytes
//! are then overwritten with zeros through a handle opened before the rename,
//! so that its blocks are not freed still holding the keys under the old key.
//!
//! [`Image`] is also what backups use: a keyring copy decoded and wiped in
//! memory, never written to a temporary file.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use super::{
    FIRST_DATA_SLOT, KEYRING_VERSION_1, SLOT_SIZE, Slot, build_header, check_header, decode_slot,
    encode_slot_with,
};
use crate::config::KeyEncryptionKey;
use crate::error::{Error, IoContext, Result};
use crate::seal::Key;

/// Name of the new keyring while a rekey writes it.
const REKEY_TMP: &str = "keyring.rekey";

/// A keyring file held in memory: header checked, slots decoded on demand,
/// wiped in place. The bytes are zeroed when it is dropped.
pub(crate) struct Image {
    bytes: Zeroizing<Vec<u8>>,
    kek: Option<Key>,
    keyring_id: [u8; 16],
    version: u16,
}

impl Image {
    /// Checks the header of `bytes` (a keyring file) against `kek`; `what`
    /// names the copy in errors.
    pub(crate) fn parse(
        bytes: Zeroizing<Vec<u8>>,
        kek: Option<&Key>,
        what: &Path,
    ) -> Result<Image> {
        let header: &[u8; SLOT_SIZE] = bytes
            .get(..SLOT_SIZE)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| Error::corrupt(what, 0, "keyring header truncated"))?;
        let (keyring_id, version) = check_header(what, header, kek)?;
        Ok(Image {
            bytes,
            kek: kek.cloned(),
            keyring_id,
            version,
        })
    }

    /// Whether the slots are wrapped under a key-encryption key (header flag).
    pub(crate) fn is_wrapped(bytes: &[u8]) -> bool {
        bytes.get(12) == Some(&1)
    }

    /// The keyring's random id.
    pub(crate) fn keyring_id(&self) -> [u8; 16] {
        self.keyring_id
    }

    /// Number of whole slots.
    fn count(&self) -> u32 {
        u32::try_from(self.bytes.len() / SLOT_SIZE).unwrap_or(u32::MAX)
    }

    fn slot_bytes(&self, index: u32) -> Option<&[u8; SLOT_SIZE]> {
        let at = index as usize * SLOT_SIZE;
        self.bytes.get(at..at + SLOT_SIZE)?.try_into().ok()
    }

    /// Every data slot in use, decoded; a damaged slot is an error naming
    /// `what` and its offset.
    pub(crate) fn slots(&self, what: &Path) -> Result<Vec<(u32, Slot)>> {
        let mut out = Vec::new();
        for index in FIRST_DATA_SLOT..self.count() {
            let Some(buf) = self.slot_bytes(index) else {
                break;
            };
            match decode_slot(self.kek.as_ref(), &self.keyring_id, index, buf) {
                Ok(None) => {}
                Ok(Some(slot)) => out.push((index, slot)),
                Err(reason) => {
                    return Err(Error::corrupt(
                        what,
                        u64::from(index) * SLOT_SIZE as u64,
                        reason,
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Overwrites a data slot with zeros.
    pub(crate) fn wipe(&mut self, index: u32) {
        if index < FIRST_DATA_SLOT {
            return;
        }
        let at = index as usize * SLOT_SIZE;
        if let Some(slot) = self.bytes.get_mut(at..at + SLOT_SIZE) {
            slot.fill(0);
        }
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The same keyring with every slot re-encoded under `new` (or in
    /// plaintext): same id, same slot indices, same state slot.
    pub(crate) fn rewrap(&self, new: Option<&Key>, what: &Path) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.count() as usize * SLOT_SIZE]);
        let mut header = build_header(self.keyring_id, new)?;
        if self.version == KEYRING_VERSION_1 {
            // The state slot is all zero in a version-1 keyring: keep saying so.
            header[8..10].copy_from_slice(&KEYRING_VERSION_1.to_le_bytes());
            let crc = crc32fast::hash(&header[..508]);
            header[508..].copy_from_slice(&crc.to_le_bytes());
        }
        out[..SLOT_SIZE].copy_from_slice(&header);
        if let Some(state) = self.slot_bytes(super::STATE_SLOT) {
            out[SLOT_SIZE..2 * SLOT_SIZE].copy_from_slice(state);
        }
        for (index, slot) in self.slots(what)? {
            let enc = Zeroizing::new(encode_slot_with(new, &self.keyring_id, index, &slot)?);
            let at = index as usize * SLOT_SIZE;
            out.get_mut(at..at + SLOT_SIZE)
                .ok_or_else(|| Error::Internal("rekey: slot out of range".into()))?
                .copy_from_slice(&enc[..]);
        }
        Ok(out)
    }
}

/// What [`rekey`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RekeyReport {
    /// Keyring slots re-encoded (keys and directory entries).
    pub slots: usize,
    /// Whether the keyring was wrapped before.
    pub was_wrapped: bool,
    /// Whether it is wrapped now.
    pub wrapped: bool,
}

/// Re-encodes the keyring of the store in `dir`: from `old` (its current
/// key-encryption key, `None` for a plaintext keyring) to `new` (`None` to
/// unwrap). Wraps, rotates or unwraps in place and crash-safely: a crash
/// leaves the keyring under either the old or the new key, whole. The store
/// must be closed (its lock is taken for the duration).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # drop(shredlog::Store::open(dir.path(), shredlog::Options::default())?);
/// let kek = shredlog::KeyEncryptionKey::from_hex(&"ab".repeat(32))?;
/// let report = shredlog::rekey(dir.path(), None, Some(&kek))?;
/// assert!(report.wrapped && !report.was_wrapped);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Locked`] if the store is open; [`Error::NotAStore`];
/// [`Error::Kek`] if `old` does not match the keyring; [`Error::Invalid`] if
/// nothing would change; [`Error::Corrupt`] for a damaged slot;
/// [`Error::Io`].
pub fn rekey(
    dir: &Path,
    old: Option<&KeyEncryptionKey>,
    new: Option<&KeyEncryptionKey>,
) -> Result<RekeyReport> {
    if old.is_none() && new.is_none() {
        return Err(Error::invalid(
            "the keyring is in plaintext and no new key-encryption key was given: nothing to do",
        ));
    }
    let path = dir.join("keyring");
    if !path.exists() {
        return Err(Error::NotAStore(dir.to_owned()));
    }
    let _lock = lock(dir)?;
    let tmp = dir.join(REKEY_TMP);
    // A rekey cut short leaves its output: wipe it before anything else.
    wipe_file(&tmp)?;
    let old_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .at(&path)?;
    let len = old_file.metadata().at(&path)?.len();
    let mut bytes = Zeroizing::new(vec![0u8; len as usize]);
    old_file.read_exact_at(&mut bytes, 0).at(&path)?;
    let image = Image::parse(bytes, old.map(|k| &k.0), &path)?;
    let slots = image.slots(&path)?.len();
    let out = image.rewrap(new.map(|k| &k.0), &path)?;
    {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .at(&tmp)?;
        crate::failpoint::check("rekey.write").at(&tmp)?;
        f.write_all_at(&out, 0).at(&tmp)?;
        crate::failpoint::check("rekey.sync").at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    crate::failpoint::check("rekey.rename").at(&path)?;
    std::fs::rename(&tmp, &path).at(&path)?;
    crate::fsutil::sync_dir(dir)?;
    // The new keyring is in force. Overwrite the old file's bytes (its keys
    // under the old key, or in plaintext) before its blocks are freed.
    crate::failpoint::check("rekey.wipe-old").at(&path)?;
    let zeros = vec![0u8; SLOT_SIZE * 64];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        old_file
            .write_all_at(zeros.get(..n).unwrap_or(&[]), at)
            .at(&path)?;
        at += n as u64;
    }
    old_file.sync_all().at(&path)?;
    Ok(RekeyReport {
        slots,
        was_wrapped: old.is_some(),
        wrapped: new.is_some(),
    })
}

/// Takes the store's lock as a writing open does (exclusive `flock` on `LOCK`).
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .at(&path)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Overwrites a file with zeros, syncs and removes it (nothing if missing).
fn wipe_file(path: &Path) -> Result<()> {
    let f = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let len = f.metadata().at(path)?.len();
    f.write_all_at(&vec![0u8; len as usize], 0).at(path)?;
    f.sync_all().at(path)?;
    std::fs::remove_file(path).at(path)?;
    Ok(())
}
