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

use crate::secret::SecretVec;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::{
    Directory, KEYRING_VERSION_1, Layout, Marks, SLOT_SIZE, STATE_SLOT, Slot, Tables, build_header,
    cells, check_header, decode_state, encode_cells, encode_state, new_directory, scan_slots,
    table,
};
use crate::config::KeyEncryptionKey;
use crate::error::{Error, IoContext, Result};
use crate::seal::Key;

/// Cells `slot` takes in format 3 and later, wrapped or not.
fn cells_for(slot: &Slot, wrapped: bool) -> Result<u32> {
    cells::cells_for(slot.payload_len(wrapped)?)
        .ok_or_else(|| Error::Internal("slot larger than a sector".into()))
}

/// Name of the new keyring while a rekey or an upgrade writes it.
const REKEY_TMP: &str = "keyring.rekey";

/// A keyring file held in memory: header checked, slots decoded on demand,
/// wiped in place. The bytes are zeroed when it is dropped.
pub(crate) struct Image {
    bytes: SecretVec,
    kek: Option<Key>,
    keyring_id: [u8; 16],
    version: u16,
    layout: Layout,
    state_pending: bool,
    directory: Option<Directory>,
}

impl Image {
    /// Checks the header of `bytes` (a keyring file) against `kek`; `what`
    /// names the copy in errors.
    pub(crate) fn parse(bytes: SecretVec, kek: Option<&Key>, what: &Path) -> Result<Image> {
        let header: &[u8; SLOT_SIZE] = bytes
            .get(..SLOT_SIZE)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| Error::corrupt(what, 0, "keyring header truncated"))?;
        let header = check_header(what, header, kek)?;
        Ok(Image {
            bytes,
            kek: kek.cloned(),
            keyring_id: header.keyring_id,
            version: header.version,
            layout: Layout::of(header.version),
            state_pending: header.state_pending,
            directory: header.directory,
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

    /// Every data slot in use, decoded; a damaged slot is an error naming
    /// `what` and its offset.
    pub(crate) fn slots(&self, what: &Path) -> Result<Vec<(u32, Slot)>> {
        let unit = self.layout.unit();
        let first = self.layout.first_data();
        let data = self.bytes.get(first as usize * unit..).unwrap_or_default();
        let mut out = Vec::new();
        let mut damage = None;
        scan_slots(
            self.layout,
            self.kek.as_ref(),
            &self.keyring_id,
            Tables::of(self.directory.as_ref()),
            data,
            first,
            |index, _, found| match found {
                _ if damage.is_some() => {}
                Ok(None) => {}
                Ok(Some(slot)) => out.push((index, slot)),
                Err(reason) => damage = Some((index, reason)),
            },
        );
        match damage {
            Some((index, reason)) => {
                Err(Error::corrupt(what, u64::from(index) * unit as u64, reason))
            }
            None => Ok(out),
        }
    }

    /// Overwrites a data slot with zeros.
    pub(crate) fn wipe(&mut self, index: u32) {
        if index < self.layout.first_data() {
            return;
        }
        let unit = self.layout.unit();
        let at = index as usize * unit;
        let n = match self.layout {
            Layout::Slots => 1,
            Layout::Cells => {
                let end = ((at / SLOT_SIZE + 1) * SLOT_SIZE).min(self.bytes.len());
                cells::extent(self.bytes.get(at..end).unwrap_or_default())
            }
        };
        if let Some(slot) = self.bytes.get_mut(at..at + n as usize * unit) {
            slot.fill(0);
        }
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The same keyring in format 3 with every slot re-encoded under `new`
    /// (or in plaintext): same id, same marks, the slots packed from the
    /// start in their order (PII slots renumbered in the transcript slots
    /// that name them).
    pub(crate) fn reencode(&self, new: Option<&Key>, what: &Path) -> Result<SecretVec> {
        let slots = self.slots(what)?;
        let pending = self.version == KEYRING_VERSION_1 || self.state_pending;
        let marks: Option<Marks> = if pending {
            None
        } else {
            let state: &[u8; SLOT_SIZE] = self
                .bytes
                .get(SLOT_SIZE..2 * SLOT_SIZE)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| {
                    Error::corrupt(
                        what,
                        SLOT_SIZE as u64,
                        "the keyring's state slot is missing",
                    )
                })?;
            Some(decode_state(state).map_err(|r| Error::corrupt(what, SLOT_SIZE as u64, r))?)
        };
        // Where each slot goes: PII slots first, so that the transcript
        // slots can name their new places.
        let wrapped = new.is_some();
        let mut next = cells::FIRST_CELL;
        let mut place = |slot: &Slot| -> Result<u32> {
            let n = cells::cells_for(slot.payload_len(wrapped)?)
                .ok_or_else(|| Error::Internal("slot larger than a sector".into()))?;
            if next % cells::SECTOR_CELLS + n > cells::SECTOR_CELLS {
                next = next.next_multiple_of(cells::SECTOR_CELLS);
            }
            let at = next;
            next += n;
            Ok(at)
        };
        let mut placed: Vec<(u32, Slot)> = Vec::with_capacity(slots.len());
        let mut visitors: Vec<&Slot> = Vec::new();
        let mut pii_at = std::collections::HashMap::new();
        for (index, slot) in &slots {
            if let Slot::Pii(p) = slot {
                let at = place(slot)?;
                pii_at.insert(*index, (at, p.tid));
                placed.push((at, slot.clone()));
            }
        }
        for (_, slot) in &slots {
            let slot = match slot {
                Slot::Pii(_) => continue,
                Slot::Transcript(t) => {
                    let mut t = t.clone();
                    t.pii_slot = match pii_at.get(&t.pii_slot) {
                        Some(&(at, tid)) if tid == t.tid => at,
                        _ => 0,
                    };
                    Slot::Transcript(t)
                }
                Slot::Visitor(_) => {
                    visitors.push(slot);
                    continue;
                }
                // The entries are placed anew (under a new key): the
                // index's run, and the links to entries it may lack, are
                // not used with this keyring.
                Slot::Link(_) => continue,
            };
            let at = place(&slot)?;
            placed.push((at, slot));
        }
        // The directory's table after them, sized for its entries, under a
        // new hash key.
        let mut visitor_cells = 0u64;
        for v in &visitors {
            visitor_cells += u64::from(cells_for(v, wrapped)?);
        }
        let start = next.next_multiple_of(cells::SECTOR_CELLS);
        let sectors = table::Region::sectors_for(visitor_cells)
            .ok_or_else(|| Error::Limit("keyring is full".into()))?;
        let mut directory = new_directory(start)?;
        directory.table.sectors = sectors;
        let mut builder = table::Builder::new(directory.table);
        for v in visitors {
            let Slot::Visitor(entry) = v else { continue };
            let n = cells_for(v, wrapped)?;
            let at = builder
                .place(table::visitor_hash(&directory.key, &entry.email), n)
                .ok_or_else(|| Error::Internal("keyring rewrite: directory table full".into()))?;
            let enc = encode_cells(new, &self.keyring_id, at, v)?;
            builder
                .put(at, &enc)
                .ok_or_else(|| Error::Internal("keyring rewrite: entry out of range".into()))?;
        }
        let (table_bytes, _) = builder.finish();
        let len = directory.table.end();
        let mut out = SecretVec::new(vec![0u8; len as usize * cells::CELL]);
        out[..SLOT_SIZE].copy_from_slice(&build_header(self.keyring_id, new, pending, &directory)?);
        let at = start as usize * cells::CELL;
        out[at..at + table_bytes.len()].copy_from_slice(&table_bytes);
        if let Some(mut m) = marks {
            m.slots = len;
            let at = STATE_SLOT as usize * SLOT_SIZE;
            out[at..at + SLOT_SIZE].copy_from_slice(&encode_state(&m));
        }
        for (at, slot) in &placed {
            let enc = encode_cells(new, &self.keyring_id, *at, slot)?;
            let from = *at as usize * cells::CELL;
            out.get_mut(from..from + enc.len())
                .ok_or_else(|| Error::Internal("keyring rewrite: slot out of range".into()))?
                .copy_from_slice(&enc);
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
    wipe_leftover(dir)?;
    let (old_file, image) = read_image(&path, old.map(|k| &k.0))?;
    let slots = image.slots(&path)?.len();
    let out = image.reencode(new.map(|k| &k.0), &path)?;
    drop(image);
    replace(dir, &path, &old_file, &out)?;
    Ok(RekeyReport {
        slots,
        was_wrapped: old.is_some(),
        wrapped: new.is_some(),
    })
}

/// Rewrites the keyring of the store in `dir` (whose lock the caller
/// holds) in format 3, under the same key-encryption key: what a writing
/// open does to a format-1 or format-2 keyring. Crash-safe as [`rekey`] is.
pub(crate) fn upgrade(dir: &Path, kek: Option<&Key>) -> Result<()> {
    let path = dir.join("keyring");
    let (old_file, image) = read_image(&path, kek)?;
    let out = image.reencode(kek, &path)?;
    drop(image);
    replace(dir, &path, &old_file, &out)
}

/// Wipes and removes what a rekey or upgrade cut short left behind.
pub(crate) fn wipe_leftover(dir: &Path) -> Result<()> {
    wipe_file(&dir.join(REKEY_TMP))
}

/// Opens the keyring for writing and reads it whole.
fn read_image(path: &Path, kek: Option<&Key>) -> Result<(File, Image)> {
    let old_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path)?;
    let len = old_file.metadata().at(path)?.len();
    let mut bytes = SecretVec::new(vec![0u8; len as usize]);
    old_file.read_exact_at(&mut bytes, 0).at(path)?;
    let image = Image::parse(bytes, kek, path)?;
    Ok((old_file, image))
}

/// Writes `out` to `keyring.rekey` (mode `0600`), syncs it, renames it over
/// `keyring` and syncs the directory: a crash leaves one keyring or the
/// other, whole. Then overwrites the old file's bytes with zeros through
/// `old_file` (opened before the rename), so that its blocks are not freed
/// still holding its keys.
fn replace(dir: &Path, path: &Path, old_file: &File, out: &[u8]) -> Result<()> {
    let tmp = dir.join(REKEY_TMP);
    {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .at(&tmp)?;
        crate::failpoint::check("rekey.write").at(&tmp)?;
        f.write_all_at(out, 0).at(&tmp)?;
        crate::failpoint::check("rekey.sync").at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    crate::failpoint::check("rekey.rename").at(path)?;
    std::fs::rename(&tmp, path).at(path)?;
    crate::fsutil::sync_dir(dir)?;
    crate::failpoint::check("rekey.wipe-old").at(path)?;
    let len = old_file.metadata().at(path)?.len();
    let zeros = vec![0u8; 64 << 10];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        old_file
            .write_all_at(zeros.get(..n).unwrap_or(&[]), at)
            .at(path)?;
        at += n as u64;
    }
    old_file.sync_all().at(path)?;
    Ok(())
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
