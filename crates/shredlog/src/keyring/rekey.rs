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
    CallerSlot, Directory, KEYRING_VERSION_1, Layout, Marks, SLOT_SIZE, STATE_SLOT, Slot,
    SlotDamage, Tables, build_header, cells, check_header, decode_state, encode_cells,
    encode_state, new_directory, scan_slots, table,
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
    bytes: Zeroizing<Vec<u8>>,
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
    pub(crate) fn parse(
        bytes: Zeroizing<Vec<u8>>,
        kek: Option<&Key>,
        what: &Path,
    ) -> Result<Image> {
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
        let scanned = self.scan();
        match scanned.damaged.first() {
            Some(d) => Err(Error::corrupt(what, d.offset, d.reason)),
            None => Ok(scanned.slots),
        }
    }

    /// Every data slot: those in use, decoded, and the damaged ones; and
    /// what the keyring's `stats` line counts of the file as it is.
    pub(crate) fn scan(&self) -> Scanned {
        let unit = self.layout.unit();
        let first = self.layout.first_data();
        let data = self.bytes.get(first as usize * unit..).unwrap_or_default();
        let tables = Tables::of(self.version, self.directory.as_ref());
        let mut out = Scanned {
            slots: Vec::new(),
            damaged: Vec::new(),
            counts: (0, 0),
        };
        let (mut heap_free, mut table_used) = (0u64, 0u64);
        scan_slots(
            self.layout,
            self.kek.as_ref(),
            &self.keyring_id,
            tables,
            data,
            first,
            |index, step, found| {
                let in_table = tables.table.contains(index);
                if in_table && !matches!(found, Ok(None)) {
                    table_used += u64::from(step);
                }
                match found {
                    Ok(None) if in_table => {}
                    Ok(None) => heap_free += 1,
                    Ok(Some(slot)) => out.slots.push((index, slot)),
                    Err(reason) => out.damaged.push(SlotDamage {
                        index,
                        offset: u64::from(index) * unit as u64,
                        reason,
                    }),
                }
            },
        );
        let len = (self.bytes.len() / unit) as u64;
        let all = len.saturating_sub(u64::from(first));
        out.counts = match &self.directory {
            None => (all.saturating_sub(heap_free), heap_free),
            Some(d) => {
                let table_free = d.table.capacity().saturating_sub(table_used);
                let retire = u64::from(
                    d.retire
                        .end()
                        .min(len as u32)
                        .saturating_sub(d.retire.start),
                );
                let used = all
                    .saturating_sub(heap_free + table_free + u64::from(d.table.sectors) + retire);
                (used, heap_free + table_free)
            }
        };
        out
    }

    /// The marks of the state slot: `None` for one never written (format 1,
    /// or the state-pending flag); an error naming `what` for a damaged or
    /// missing one.
    pub(crate) fn marks(&self, what: &Path) -> Result<Option<Marks>> {
        if self.version == KEYRING_VERSION_1 || self.state_pending {
            return Ok(None);
        }
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
        Ok(Some(
            decode_state(state).map_err(|r| Error::corrupt(what, SLOT_SIZE as u64, r))?,
        ))
    }

    /// Bytes of the unit slot indices count in.
    pub(crate) fn unit(&self) -> usize {
        self.layout.unit()
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
    pub(crate) fn reencode(&self, new: Option<&Key>, what: &Path) -> Result<Zeroizing<Vec<u8>>> {
        let slots = self.slots(what)?;
        let pending = self.version == KEYRING_VERSION_1 || self.state_pending;
        let marks = self.marks(what)?;
        self.reencode_slots(&slots, new, pending, marks)
    }

    /// [`Image::reencode`] of the slots given, with the marks given (`None`
    /// with `pending`: the state still to be written; `None` without it: an
    /// all-zero state slot).
    pub(crate) fn reencode_slots(
        &self,
        slots: &[(u32, Slot)],
        new: Option<&Key>,
        pending: bool,
        marks: Option<Marks>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        // Everything goes into one table (format 5), sized for it, under a
        // new hash key: each transcript slot with the PII slot it names and
        // a caller slot made for it (those of a format-5 keyring are made
        // anew); then the PII slots no transcript slot names; then the
        // directory entries; each kind in its old order.
        let wrapped = new.is_some();
        let mut needed = 0u64;
        for (_, slot) in slots {
            needed += match slot {
                Slot::Caller(_) => 0,
                Slot::Transcript(t) => {
                    u64::from(cells_for(slot, wrapped)?)
                        + u64::from(cells_for(
                            &Slot::Caller(CallerSlot {
                                tid: t.tid,
                                vid: t.vid,
                                hash: 0,
                            }),
                            wrapped,
                        )?)
                }
                _ => u64::from(cells_for(slot, wrapped)?),
            };
        }
        let sectors = table::Region::sectors_to_hold(needed)
            .ok_or_else(|| Error::Limit("keyring is full".into()))?;
        let mut directory = new_directory(cells::FIRST_CELL)?;
        directory.table.sectors = sectors;
        let hasher = table::Hasher::new(&directory.key);
        let mut builder = table::Builder::new(directory.table);
        let put = |builder: &mut table::Builder, slot: &Slot, hash: u64| -> Result<u32> {
            let n = cells_for(slot, wrapped)?;
            let at = builder
                .place(hash, n)?
                .ok_or_else(|| Error::Internal("keyring rewrite: table full".into()))?;
            builder.put(at, &encode_cells(new, &self.keyring_id, at, slot)?)?;
            Ok(at)
        };
        // Each transcript slot with the PII slot it names (by the visitor's
        // hash), then the PII slots none names (by their own).
        let pii_of: std::collections::HashMap<u32, &Slot> = slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Pii(_)))
            .map(|(i, s)| (*i, s))
            .collect();
        let mut named = std::collections::HashSet::new();
        for (_, slot) in slots {
            let Slot::Transcript(t) = slot else { continue };
            let mut t = t.clone();
            let near = hasher.transcript(&t.vid);
            t.pii_slot = match pii_of.get(&t.pii_slot) {
                Some(p @ Slot::Pii(x)) if x.tid == t.tid => {
                    named.insert(t.pii_slot);
                    put(&mut builder, p, near)?
                }
                _ => 0,
            };
            let caller = Slot::Caller(CallerSlot {
                tid: t.tid,
                vid: t.vid,
                hash: hasher.caller(&t.caller_id),
            });
            put(&mut builder, &Slot::Transcript(t), near)?;
            put(&mut builder, &caller, hasher.slot(&caller))?;
        }
        for (index, slot) in slots {
            if matches!(slot, Slot::Pii(_)) && !named.contains(index) {
                put(&mut builder, slot, hasher.slot(slot))?;
            }
        }
        for (_, slot) in slots {
            if let Slot::Visitor(v) = slot {
                put(&mut builder, slot, hasher.visitor(&v.email))?;
            }
        }
        let (table_bytes, _) = builder.finish()?;
        let len = directory.table.end();
        let mut out = Zeroizing::new(vec![0u8; len as usize * cells::CELL]);
        out[..SLOT_SIZE].copy_from_slice(&build_header(self.keyring_id, new, pending, &directory)?);
        let at = directory.table.start as usize * cells::CELL;
        out[at..at + table_bytes.len()].copy_from_slice(&table_bytes);
        if let Some(mut m) = marks {
            m.slots = len;
            let at = STATE_SLOT as usize * SLOT_SIZE;
            out[at..at + SLOT_SIZE].copy_from_slice(&encode_state(&m));
        }
        Ok(out)
    }
}

/// What [`Image::scan`] found.
pub(crate) struct Scanned {
    pub slots: Vec<(u32, Slot)>,
    pub damaged: Vec<SlotDamage>,
    /// Units holding slots (damaged ones included) and units free for
    /// them, as the keyring's `stats` line counts them.
    pub counts: (u64, u64),
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
    let (old_file, image) = read_image(&path, old.map(|k| &k.0))?;
    if image
        .directory
        .as_ref()
        .is_some_and(|d| !d.growing.is_none())
    {
        return Err(Error::corrupt(
            &path,
            super::GROW_TARGET_AT as u64,
            "a rebuild of the keyring's table was cut short; open the store for writing once to finish it, then rekey",
        ));
    }
    wipe_leftover(dir, true)?;
    let slots = image
        .slots(&path)?
        .iter()
        .filter(|(_, s)| !matches!(s, Slot::Caller(_)))
        .count();
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

/// Wipes and removes what a rekey or upgrade cut short left behind, and
/// with `grown` what a rebuild of the table cut short before its commit
/// point left (after it, the file is the table being moved in).
pub(crate) fn wipe_leftover(dir: &Path, grown: bool) -> Result<()> {
    wipe_file(&dir.join(REKEY_TMP))?;
    if grown {
        wipe_file(&dir.join(super::grow::GROW_TMP))?;
    }
    Ok(())
}

/// Opens the keyring for writing and reads it whole.
fn read_image(path: &Path, kek: Option<&Key>) -> Result<(File, Image)> {
    let old_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path)?;
    let len = old_file.metadata().at(path)?.len();
    let mut bytes = Zeroizing::new(vec![0u8; len as usize]);
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
pub(super) fn wipe_file(path: &Path) -> Result<()> {
    let f = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let len = f.metadata().at(path)?.len();
    let zeros = vec![0u8; (len as usize).min(1 << 20)];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        f.write_all_at(&zeros[..n], at).at(path)?;
        at += n as u64;
    }
    f.sync_all().at(path)?;
    std::fs::remove_file(path).at(path)?;
    Ok(())
}
