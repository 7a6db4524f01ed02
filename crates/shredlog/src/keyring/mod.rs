//! The keyring: fixed-size slots holding data keys and the visitor directory,
//! overwritten in place to shred. Optionally every slot is wrapped under an
//! operator-supplied key-encryption key (KEK).
//!
//! Layout (docs/FORMAT.md has every byte): slot 0 is the file header, slot 1
//! holds the keyring's state ([`Marks`]: what was durable in every file when
//! the keyring was last synced), slots 2.. hold keys and directory entries.
//! Every slot is [`SLOT_SIZE`] bytes at offset `index * SLOT_SIZE`, so each one
//! lives in its own disk sector and a rewrite is a single aligned write.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::record::{Tid, Vid};
use crate::seal::{KEY_LEN, Key, NONCE_LEN, TAG_LEN, random_array};

/// Size of every slot, header included.
pub(crate) const SLOT_SIZE: usize = 512;
const MAGIC: &[u8; 8] = b"SHRDKEYR";
/// Keyring format written now: version 1 with a state slot.
const KEYRING_VERSION: u16 = 2;
/// The first keyring format (slot 1 all zero); read, and upgraded in place by
/// the first write of the state.
const KEYRING_VERSION_1: u16 = 1;
const SLOT_VERSION: u8 = 1;
/// The slot holding the keyring's state.
pub(crate) const STATE_SLOT: u32 = 1;
/// First slot that holds keys.
pub(crate) const FIRST_DATA_SLOT: u32 = 2;
/// Fewest free slots added at a time when the keyring runs out (128 KiB).
const GROW: u32 = 256;
/// Most free slots added at a time (4 MiB).
const MAX_GROW: u32 = 8192;
/// Longest caller transcript id, in bytes.
pub(crate) const MAX_TRANSCRIPT_ID: usize = 200;
/// Longest email, in bytes.
pub(crate) const MAX_EMAIL: usize = 320;
const KEK_CHECK_AAD: &[u8] = b"shredlog-kek-check";

const KIND_FREE: u8 = 0;
const KIND_TRANSCRIPT: u8 = 1;
const KIND_PII: u8 = 2;
const KIND_VISITOR: u8 = 3;
const KIND_STATE: u8 = 4;

mod cache;
mod compact;
pub(crate) mod rekey;
mod state;
pub(crate) use cache::{KeyCache, TranscriptKeys};
pub(crate) use compact::{LiveSlots, Moved, relocate};
use state::encode_state;
pub(crate) use state::{Marks, decode_state};
/// A transcript's content key and identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TranscriptSlot {
    pub tid: Tid,
    pub vid: Vid,
    pub content_key: Key,
    /// Slot of the PII key, 0 when there is none.
    pub pii_slot: u32,
    pub rules_version: u16,
    pub created_millis: i64,
    pub caller_id: String,
}

/// A transcript's PII key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PiiSlot {
    pub tid: Tid,
    pub pii_key: Key,
}

/// A visitor directory entry: normalised email → visitor id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VisitorSlot {
    pub vid: Vid,
    pub email: String,
}

/// The decoded content of one slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Transcript(TranscriptSlot),
    Pii(PiiSlot),
    Visitor(VisitorSlot),
}

/// The open keyring file.
pub(crate) struct Keyring {
    path: PathBuf,
    file: Arc<File>,
    kek: Option<Key>,
    keyring_id: [u8; 16],
    /// Format version of the file's header (1 until the state is first written).
    version: u16,
    /// Number of slots the file holds (header and state slot included).
    len: u32,
    free: BTreeSet<u32>,
    /// The marks as they will be written with the next sync.
    marks: Marks,
    /// The marks in the state slot on disk (`None`: a version-1 keyring).
    written: Option<Marks>,
}

/// Slots written together (a batch's new keys and directory entries):
/// encoded as they are staged, then written by [`Keyring::write_staged`] in
/// runs of neighbouring slots, one positioned write per run. The encoded
/// bytes (keys, emails) are wiped when the batch is dropped.
#[derive(Default)]
pub(crate) struct StagedSlots {
    slots: BTreeMap<u32, zeroize::Zeroizing<[u8; SLOT_SIZE]>>,
}

/// A slot that failed its checks at open.
#[derive(Clone, Debug)]
pub(crate) struct SlotDamage {
    pub index: u32,
    pub reason: &'static str,
}

/// What `open` found.
pub(crate) struct Loaded {
    pub keyring: Keyring,
    pub damaged: Vec<SlotDamage>,
    /// The durable marks of the state slot (`None` for a version-1 keyring,
    /// or when the state slot is damaged and salvage ignored it).
    pub marks: Option<Marks>,
}

/// How to open the keyring.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenMode {
    /// Create the keyring if the file is missing or empty.
    pub create: bool,
    /// Open the file read-only: nothing is ever written.
    pub read_only: bool,
    /// Report a damaged state slot or a short file instead of failing.
    pub salvage: bool,
}

impl Keyring {
    /// The keyring's random id (the store's identity at a backup destination).
    pub(crate) fn id(&self) -> [u8; 16] {
        self.keyring_id
    }

    /// Opens (or with `mode.create` creates) `dir/keyring`, handing each slot
    /// in use to `each` (in slot order) as it is decoded.
    pub(crate) fn open(
        dir: &Path,
        kek: Option<&Key>,
        mode: OpenMode,
        each: impl FnMut(u32, Slot),
    ) -> Result<Loaded> {
        let path = dir.join("keyring");
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::io(&path, e)),
        };
        if size == 0 {
            if !mode.create || mode.read_only {
                return Err(Error::NotAStore(dir.to_owned()));
            }
            return Keyring::create(dir, path, kek);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(!mode.read_only)
            .open(&path)
            .at(&path)?;
        let mut header = [0u8; SLOT_SIZE];
        file.read_exact_at(&mut header, 0)
            .map_err(|_| Error::corrupt(&path, 0, "keyring header truncated"))?;
        let (keyring_id, version) = check_header(&path, &header, kek)?;
        let mut keyring = Keyring {
            path,
            file: Arc::new(file),
            kek: kek.cloned(),
            keyring_id,
            version,
            len: FIRST_DATA_SLOT,
            free: BTreeSet::new(),
            marks: Marks::default(),
            written: None,
        };
        let (mut damaged, marks) = keyring.load_slots(size, each)?;
        if let Some(m) = marks {
            let needed = u64::from(m.slots) * SLOT_SIZE as u64;
            if size < needed {
                let reason = "the keyring is shorter than the slots it held durably: its end is missing (cut short?)";
                if !mode.salvage {
                    return Err(Error::corrupt(
                        &keyring.path,
                        size,
                        format!("{reason}; {needed} bytes were acknowledged"),
                    ));
                }
                damaged.push(SlotDamage {
                    index: (size / SLOT_SIZE as u64) as u32,
                    reason,
                });
            }
            keyring.marks = m;
        }
        keyring.marks.slots = keyring.len;
        keyring.written = marks;
        Ok(Loaded {
            keyring,
            damaged,
            marks,
        })
    }

    /// Creates a new keyring: header and state slot, synced, directory synced.
    fn create(dir: &Path, path: PathBuf, kek: Option<&Key>) -> Result<Loaded> {
        // Owner-only: without a key-encryption key the keyring holds data keys.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .at(&path)?;
        let keyring_id = random_array()?;
        let header = build_header(keyring_id, kek)?;
        file.write_all_at(&header, 0).at(&path)?;
        let marks = Marks {
            slots: FIRST_DATA_SLOT,
            writes: 1,
            ..Marks::default()
        };
        file.write_all_at(&encode_state(&marks), SLOT_SIZE as u64)
            .at(&path)?;
        file.sync_all().at(&path)?;
        crate::failpoint::synced(&path, &file);
        crate::fsutil::sync_dir(dir)?;
        let keyring = Keyring {
            path,
            file: Arc::new(file),
            kek: kek.cloned(),
            keyring_id,
            version: KEYRING_VERSION,
            len: FIRST_DATA_SLOT,
            free: BTreeSet::new(),
            marks,
            written: Some(marks),
        };
        Ok(Loaded {
            keyring,
            damaged: Vec::new(),
            marks: Some(marks),
        })
    }

    /// Decodes the state slot and every data slot, read a few thousand slots
    /// at a time with positioned reads: open reads the whole keyring, and a
    /// map of it would leave all of it in the process's resident memory.
    fn load_slots(
        &mut self,
        size: u64,
        mut each: impl FnMut(u32, Slot),
    ) -> Result<(Vec<SlotDamage>, Option<Marks>)> {
        /// Slots read at a time (2 MiB).
        const CHUNK: u32 = 4096;
        let count = size / SLOT_SIZE as u64;
        let count =
            u32::try_from(count).map_err(|_| Error::corrupt(&self.path, 0, "keyring too large"))?;
        let mut damaged = Vec::new();
        let mut marks = None;
        let mut buf = vec![0u8; SLOT_SIZE * CHUNK.min(count.max(1)) as usize];
        let mut state = [0u8; SLOT_SIZE];
        let has_state = count > STATE_SLOT;
        if has_state {
            self.file
                .read_exact_at(&mut state, u64::from(STATE_SLOT) * SLOT_SIZE as u64)
                .at(&self.path)?;
        }
        match (has_state.then_some(&state), self.version) {
            (Some(buf), _) if is_zero(buf) && self.version == KEYRING_VERSION_1 => {}
            (Some(buf), _) => match decode_state(buf) {
                Ok(m) => marks = Some(m),
                Err(reason) => damaged.push(SlotDamage {
                    index: STATE_SLOT,
                    reason,
                }),
            },
            (None, KEYRING_VERSION_1) => {}
            (None, _) => damaged.push(SlotDamage {
                index: STATE_SLOT,
                reason: "the keyring's state slot is missing (cut short?)",
            }),
        }
        let mut start = FIRST_DATA_SLOT;
        while start < count {
            let n = CHUNK.min(count - start);
            let chunk = buf
                .get_mut(..n as usize * SLOT_SIZE)
                .ok_or_else(|| Error::Internal("keyring read buffer too small".into()))?;
            self.file
                .read_exact_at(chunk, u64::from(start) * SLOT_SIZE as u64)
                .at(&self.path)?;
            for (index, bytes) in (start..).zip(chunk.chunks_exact(SLOT_SIZE)) {
                let Ok(slot) = <&[u8; SLOT_SIZE]>::try_from(bytes) else {
                    continue;
                };
                match self.decode_slot(index, slot) {
                    Ok(None) => {
                        self.free.insert(index);
                    }
                    Ok(Some(slot)) => each(index, slot),
                    Err(reason) => damaged.push(SlotDamage { index, reason }),
                }
            }
            start += n;
        }
        self.len = count.max(FIRST_DATA_SLOT);
        Ok((damaged, marks))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file handle, for syncing outside the writer's lock.
    pub(crate) fn file(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// Number of slots in the file (header and reserved slot included).
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Number of free slots.
    pub(crate) fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Takes a free slot (lowest first), extending the file by [`GROW`] free
    /// slots when there is none.
    pub(crate) fn allocate(&mut self) -> Result<u32> {
        if self.free.is_empty() {
            self.grow()?;
        }
        self.free
            .pop_first()
            .ok_or_else(|| Error::Limit("keyring is full".into()))
    }

    /// Appends free (all-zero) slots in one write: [`GROW`], or an eighth of
    /// the keyring up to [`MAX_GROW`], so that the keyring's length (and the
    /// sync that makes it durable) changes once per many new transcripts, and
    /// ever more rarely as the store grows.
    fn grow(&mut self) -> Result<()> {
        let by = (self.len / 8).clamp(GROW, MAX_GROW);
        let len = self
            .len
            .checked_add(by)
            .ok_or_else(|| Error::Limit("keyring is full".into()))?;
        crate::failpoint::check("keyring.write").at(&self.path)?;
        let zeros = vec![0u8; by as usize * SLOT_SIZE];
        self.file
            .write_all_at(&zeros, u64::from(self.len) * SLOT_SIZE as u64)
            .at(&self.path)?;
        // The new length is made durable before the state may record it.
        crate::failpoint::check("keyring.sync").at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        crate::failpoint::synced(&self.path, &self.file);
        self.free.extend(self.len..len);
        self.len = len;
        self.marks.slots = len;
        Ok(())
    }

    /// Reads and decodes slot `index` from the file (`None`: a free slot).
    pub(crate) fn read_slot(&self, index: u32) -> Result<Option<Slot>> {
        let mut buf = [0u8; SLOT_SIZE];
        let offset = u64::from(index) * SLOT_SIZE as u64;
        self.file.read_exact_at(&mut buf, offset).at(&self.path)?;
        let slot = self.decode_slot(index, &buf).map_err(|reason| {
            Error::corrupt(
                &self.path,
                offset,
                format!("keyring slot {index}: {reason}"),
            )
        });
        zeroize::Zeroize::zeroize(&mut buf);
        slot
    }

    /// Writes a slot in place (not synced).
    pub(crate) fn write(&mut self, index: u32, slot: &Slot) -> Result<()> {
        let bytes = self.encode_slot(index, slot)?;
        self.write_raw(index, &bytes)
    }

    /// Encodes `slot` for index `index` into `staged` (nothing is written).
    pub(crate) fn stage(&self, staged: &mut StagedSlots, index: u32, slot: &Slot) -> Result<()> {
        let bytes = self.encode_slot(index, slot)?;
        staged.slots.insert(index, zeroize::Zeroizing::new(bytes));
        Ok(())
    }

    /// Writes the staged slots (not synced): each run of neighbouring slots
    /// with one positioned write.
    pub(crate) fn write_staged(&mut self, staged: StagedSlots) -> Result<()> {
        let mut run: zeroize::Zeroizing<Vec<u8>> = zeroize::Zeroizing::new(Vec::new());
        let mut first = None;
        let mut next = 0;
        for (&index, bytes) in &staged.slots {
            if first.is_some() && index != next {
                self.write_run(first.unwrap_or(0), &run)?;
                run.clear();
                first = None;
            }
            first.get_or_insert(index);
            run.extend_from_slice(bytes.as_ref());
            next = index + 1;
        }
        if let Some(first) = first {
            self.write_run(first, &run)?;
        }
        Ok(())
    }

    fn write_run(&mut self, first: u32, bytes: &[u8]) -> Result<()> {
        let offset = u64::from(first) * SLOT_SIZE as u64;
        // A failpoint counts slots, as slot-by-slot writes would: one that
        // fires at the k-th slot of a run leaves the slots before it written.
        for k in 0..bytes.len() / SLOT_SIZE {
            if let Err(e) = crate::failpoint::check("keyring.write") {
                let done = bytes.get(..k * SLOT_SIZE).unwrap_or_default();
                self.file.write_all_at(done, offset).at(&self.path)?;
                return Err(e).at(&self.path);
            }
        }
        self.file.write_all_at(bytes, offset).at(&self.path)?;
        let end = first + (bytes.len() / SLOT_SIZE) as u32;
        if end > self.len {
            self.len = end;
        }
        Ok(())
    }

    /// Overwrites a slot with zeros in place (not synced) and frees it.
    pub(crate) fn wipe(&mut self, index: u32) -> Result<()> {
        self.write_raw(index, &[0u8; SLOT_SIZE])?;
        if index >= FIRST_DATA_SLOT {
            self.free.insert(index);
        }
        Ok(())
    }

    fn write_raw(&mut self, index: u32, bytes: &[u8; SLOT_SIZE]) -> Result<()> {
        let offset = u64::from(index) * SLOT_SIZE as u64;
        crate::failpoint::check("keyring.write").at(&self.path)?;
        self.file.write_all_at(bytes, offset).at(&self.path)?;
        if index >= self.len {
            self.len = index + 1;
        }
        Ok(())
    }

    /// The marks the next sync will write.
    #[cfg(test)]
    pub(crate) fn marks(&self) -> Marks {
        self.marks
    }

    /// Records the active segment's durable length in the state (written
    /// with the next sync). `len` must already be on stable storage.
    pub(crate) fn note_segment(&mut self, segment: u64, len: u64) {
        if (segment, len) > (self.marks.segment, self.marks.segment_len) {
            self.marks.segment = segment;
            self.marks.segment_len = len;
        }
    }

    /// Records how much of the audit log is durable (entries, bytes), and how
    /// much of it has all its effects on disk.
    pub(crate) fn note_audit(&mut self, entries: u64, bytes: u64, done: Option<(u64, u64)>) {
        self.marks.audit_entries = self.marks.audit_entries.max(entries);
        self.marks.audit_bytes = self.marks.audit_bytes.max(bytes);
        if let Some((e, b)) = done {
            self.marks.audit_done_entries = self.marks.audit_done_entries.max(e);
            self.marks.audit_done_bytes = self.marks.audit_done_bytes.max(b);
        }
    }

    /// Writes the state slot if the marks changed since it was last written
    /// (not synced). A version-1 keyring's header becomes version 2 first.
    pub(crate) fn flush_state(&mut self) -> Result<()> {
        let mut next = self.marks;
        next.writes = self.written.map_or(0, |m| m.writes);
        if self.written == Some(next) && self.version == KEYRING_VERSION {
            return Ok(());
        }
        if self.version != KEYRING_VERSION {
            let mut header = [0u8; SLOT_SIZE];
            self.file.read_exact_at(&mut header, 0).at(&self.path)?;
            header[8..10].copy_from_slice(&KEYRING_VERSION.to_le_bytes());
            let crc = crc32fast::hash(&header[..508]);
            header[508..].copy_from_slice(&crc.to_le_bytes());
            self.write_raw(0, &header)?;
            self.version = KEYRING_VERSION;
        }
        next.writes += 1;
        self.write_raw(STATE_SLOT, &encode_state(&next))?;
        self.marks = next;
        self.written = Some(next);
        Ok(())
    }

    /// Cuts free slots off the end of the file (durably).
    pub(crate) fn truncate_free_tail(&mut self) -> Result<()> {
        let mut len = self.len;
        while len > FIRST_DATA_SLOT && self.free.contains(&(len - 1)) {
            len -= 1;
        }
        if len == self.len {
            return Ok(());
        }
        // The state first: a crash between the two leaves a file longer than
        // the state says, never shorter.
        self.marks.slots = len;
        self.sync()?;
        self.file
            .set_len(u64::from(len) * SLOT_SIZE as u64)
            .at(&self.path)?;
        self.file.sync_all().at(&self.path)?;
        self.free.retain(|&i| i < len);
        self.len = len;
        Ok(())
    }

    /// Writes the state (if it changed) and makes every write so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.flush_state()?;
        crate::failpoint::check("keyring.sync").at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        crate::failpoint::synced(&self.path, &self.file);
        Ok(())
    }

    fn encode_slot(&self, index: u32, slot: &Slot) -> Result<[u8; SLOT_SIZE]> {
        encode_slot_with(self.kek.as_ref(), &self.keyring_id, index, slot)
    }

    /// Encodes a slot without writing it (for the fuzzers).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn encode_for_test(&self, index: u32, slot: &Slot) -> [u8; SLOT_SIZE] {
        self.encode_slot(index, slot).unwrap_or([0; SLOT_SIZE])
    }

    /// Decodes a slot; `Ok(None)` for a free (all-zero) slot.
    pub(crate) fn decode_slot(
        &self,
        index: u32,
        buf: &[u8; SLOT_SIZE],
    ) -> Result<Option<Slot>, &'static str> {
        decode_slot(self.kek.as_ref(), &self.keyring_id, index, buf)
    }

    /// A handle that reads and decodes slots without the writer's lock (for
    /// the key cache, which loads keys when a transcript is read or written).
    pub(crate) fn reader(&self) -> SlotReader {
        SlotReader {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
            kek: self.kek.clone(),
            keyring_id: self.keyring_id,
        }
    }
}

/// Reads single slots of the keyring (see [`Keyring::reader`]).
#[derive(Clone)]
pub(crate) struct SlotReader {
    path: PathBuf,
    file: Arc<File>,
    kek: Option<Key>,
    keyring_id: [u8; 16],
}

impl SlotReader {
    /// Reads and decodes slot `index` (`None`: a free slot).
    pub(crate) fn read(&self, index: u32) -> Result<Option<Slot>> {
        let mut buf = zeroize::Zeroizing::new([0u8; SLOT_SIZE]);
        let offset = u64::from(index) * SLOT_SIZE as u64;
        self.file.read_exact_at(&mut *buf, offset).at(&self.path)?;
        decode_slot(self.kek.as_ref(), &self.keyring_id, index, &buf).map_err(|reason| {
            Error::corrupt(
                &self.path,
                offset,
                format!("keyring slot {index}: {reason}"),
            )
        })
    }
}

fn slot_aad(keyring_id: &[u8; 16], index: u32, kind: u8) -> [u8; 21] {
    let mut aad = [0u8; 21];
    aad[..16].copy_from_slice(keyring_id);
    aad[16..20].copy_from_slice(&index.to_le_bytes());
    aad[20] = kind;
    aad
}

/// Decodes a slot; `Ok(None)` for a free (all-zero) slot.
fn decode_slot(
    kek: Option<&Key>,
    keyring_id: &[u8; 16],
    index: u32,
    buf: &[u8; SLOT_SIZE],
) -> Result<Option<Slot>, &'static str> {
    if is_zero(buf) {
        return Ok(None);
    }
    let crc = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if crc32fast::hash(&buf[4..]) != crc {
        return Err("slot checksum mismatch");
    }
    let kind = buf[4];
    if buf[5] != SLOT_VERSION {
        return Err("unknown slot version");
    }
    let len = usize::from(u16::from_le_bytes([buf[6], buf[7]]));
    let payload = buf
        .get(8..8 + len)
        .ok_or("slot payload length out of range")?;
    let body: std::borrow::Cow<'_, [u8]> = match kek {
        Some(kek) => {
            let nonce: [u8; NONCE_LEN] = payload
                .get(..NONCE_LEN)
                .and_then(|n| n.try_into().ok())
                .ok_or("wrapped slot too short")?;
            let ct = payload.get(NONCE_LEN..).ok_or("wrapped slot too short")?;
            if ct.len() < TAG_LEN {
                return Err("wrapped slot too short");
            }
            kek.open(&nonce, &slot_aad(keyring_id, index, kind), ct)
                .ok_or("slot does not authenticate under the key-encryption key")?
                .into()
        }
        None => payload.into(),
    };
    let slot = decode_body(kind, &body);
    // An unwrapped body holds key bytes: wipe them.
    if let std::borrow::Cow::Owned(mut body) = body {
        zeroize::Zeroize::zeroize(&mut body);
    }
    slot
}

/// Encodes a slot for `index` of the keyring `keyring_id`, wrapped under
/// `kek` when given (a fresh nonce each time).
pub(crate) fn encode_slot_with(
    kek: Option<&Key>,
    keyring_id: &[u8; 16],
    index: u32,
    slot: &Slot,
) -> Result<[u8; SLOT_SIZE]> {
    let (kind, body) = match slot {
        Slot::Transcript(t) => {
            let id = t.caller_id.as_bytes();
            if id.len() > MAX_TRANSCRIPT_ID {
                return Err(Error::invalid(format!(
                    "transcript id longer than {MAX_TRANSCRIPT_ID} bytes"
                )));
            }
            let mut b = Vec::with_capacity(79 + id.len());
            b.extend_from_slice(&t.tid);
            b.extend_from_slice(&t.vid);
            b.extend_from_slice(t.content_key.as_bytes());
            b.extend_from_slice(&t.pii_slot.to_le_bytes());
            b.extend_from_slice(&t.rules_version.to_le_bytes());
            b.extend_from_slice(&t.created_millis.to_le_bytes());
            b.push(id.len() as u8);
            b.extend_from_slice(id);
            (KIND_TRANSCRIPT, b)
        }
        Slot::Pii(p) => {
            let mut b = Vec::with_capacity(48);
            b.extend_from_slice(&p.tid);
            b.extend_from_slice(p.pii_key.as_bytes());
            (KIND_PII, b)
        }
        Slot::Visitor(v) => {
            let email = v.email.as_bytes();
            if email.len() > MAX_EMAIL {
                return Err(Error::invalid(format!(
                    "email longer than {MAX_EMAIL} bytes"
                )));
            }
            let mut b = Vec::with_capacity(18 + email.len());
            b.extend_from_slice(&v.vid);
            b.extend_from_slice(&(email.len() as u16).to_le_bytes());
            b.extend_from_slice(email);
            (KIND_VISITOR, b)
        }
    };
    let payload = match kek {
        Some(kek) => {
            let (nonce, ct) = kek.seal(&slot_aad(keyring_id, index, kind), &body)?;
            let mut p = nonce.to_vec();
            p.extend_from_slice(&ct);
            p
        }
        None => body,
    };
    let mut out = [0u8; SLOT_SIZE];
    out[4] = kind;
    out[5] = SLOT_VERSION;
    out[6..8].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    out.get_mut(8..8 + payload.len())
        .ok_or_else(|| Error::Limit("slot payload too large".into()))?
        .copy_from_slice(&payload);
    let crc = crc32fast::hash(&out[4..]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn is_zero(buf: &[u8; SLOT_SIZE]) -> bool {
    buf.chunks_exact(8).all(|w| w == [0u8; 8])
}

fn arr16(b: &[u8], at: usize) -> Option<[u8; 16]> {
    b.get(at..at + 16)?.try_into().ok()
}

fn decode_body(kind: u8, b: &[u8]) -> Result<Option<Slot>, &'static str> {
    const BAD: &str = "slot body malformed";
    let key_at = |at: usize| -> Option<Key> {
        Some(Key::from_bytes(b.get(at..at + KEY_LEN)?.try_into().ok()?))
    };
    match kind {
        KIND_FREE => Err("non-zero free slot"),
        KIND_TRANSCRIPT => {
            let id_len = usize::from(*b.get(78).ok_or(BAD)?);
            if b.len() != 79 + id_len {
                return Err(BAD);
            }
            let caller_id = std::str::from_utf8(b.get(79..).ok_or(BAD)?)
                .map_err(|_| BAD)?
                .to_owned();
            Ok(Some(Slot::Transcript(TranscriptSlot {
                tid: arr16(b, 0).ok_or(BAD)?,
                vid: arr16(b, 16).ok_or(BAD)?,
                content_key: key_at(32).ok_or(BAD)?,
                pii_slot: u32::from_le_bytes(
                    b.get(64..68).ok_or(BAD)?.try_into().map_err(|_| BAD)?,
                ),
                rules_version: u16::from_le_bytes(
                    b.get(68..70).ok_or(BAD)?.try_into().map_err(|_| BAD)?,
                ),
                created_millis: i64::from_le_bytes(
                    b.get(70..78).ok_or(BAD)?.try_into().map_err(|_| BAD)?,
                ),
                caller_id,
            })))
        }
        KIND_PII => {
            if b.len() != 48 {
                return Err(BAD);
            }
            Ok(Some(Slot::Pii(PiiSlot {
                tid: arr16(b, 0).ok_or(BAD)?,
                pii_key: key_at(16).ok_or(BAD)?,
            })))
        }
        KIND_VISITOR => {
            let n = usize::from(u16::from_le_bytes(
                b.get(16..18).ok_or(BAD)?.try_into().map_err(|_| BAD)?,
            ));
            if b.len() != 18 + n {
                return Err(BAD);
            }
            let email = std::str::from_utf8(b.get(18..).ok_or(BAD)?)
                .map_err(|_| BAD)?
                .to_owned();
            Ok(Some(Slot::Visitor(VisitorSlot {
                vid: arr16(b, 0).ok_or(BAD)?,
                email,
            })))
        }
        _ => Err("unknown slot kind"),
    }
}

fn build_header(keyring_id: [u8; 16], kek: Option<&Key>) -> Result<[u8; SLOT_SIZE]> {
    let mut h = [0u8; SLOT_SIZE];
    h[0..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&KEYRING_VERSION.to_le_bytes());
    h[10..12].copy_from_slice(&(SLOT_SIZE as u16).to_le_bytes());
    h[16..32].copy_from_slice(&keyring_id);
    if let Some(kek) = kek {
        h[12] = 1;
        let (nonce, ct) = kek.seal(&check_aad(&keyring_id), &[0u8; 32])?;
        h[32..44].copy_from_slice(&nonce);
        h[44..92].copy_from_slice(&ct);
    }
    let crc = crc32fast::hash(&h[..508]);
    h[508..].copy_from_slice(&crc.to_le_bytes());
    Ok(h)
}

fn check_aad(keyring_id: &[u8; 16]) -> Vec<u8> {
    let mut aad = KEK_CHECK_AAD.to_vec();
    aad.extend_from_slice(keyring_id);
    aad
}

/// Checks the header; returns the keyring id and the format version.
fn check_header(path: &Path, h: &[u8; SLOT_SIZE], kek: Option<&Key>) -> Result<([u8; 16], u16)> {
    if &h[0..8] != MAGIC {
        return Err(Error::corrupt(
            path,
            0,
            "not a shredlog keyring (bad magic)",
        ));
    }
    let crc = u32::from_le_bytes([h[508], h[509], h[510], h[511]]);
    if crc32fast::hash(&h[..508]) != crc {
        return Err(Error::corrupt(path, 0, "keyring header checksum mismatch"));
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != KEYRING_VERSION && version != KEYRING_VERSION_1 {
        return Err(Error::UnsupportedVersion {
            path: path.to_owned(),
            version: u32::from(version),
        });
    }
    if usize::from(u16::from_le_bytes([h[10], h[11]])) != SLOT_SIZE {
        return Err(Error::corrupt(path, 10, "unsupported keyring slot size"));
    }
    let mut keyring_id = [0u8; 16];
    keyring_id.copy_from_slice(&h[16..32]);
    match (h[12], kek) {
        (0, None) => Ok((keyring_id, version)),
        (0, Some(_)) => Err(Error::Kek(
            "a key-encryption key was given but this keyring is not wrapped; open it without one".into(),
        )),
        (1, None) => Err(Error::Kek(
            "this keyring is wrapped under a key-encryption key; supply it (--key-file or SHREDLOG_KEK)".into(),
        )),
        (1, Some(kek)) => {
            let nonce: [u8; NONCE_LEN] = h[32..44].try_into().map_err(|_| Error::corrupt(path, 32, "bad nonce"))?;
            match kek.open(&nonce, &check_aad(&keyring_id), &h[44..92]) {
                Some(_) => Ok((keyring_id, version)),
                None => Err(Error::Kek("the key-encryption key does not match this keyring".into())),
            }
        }
        _ => Err(Error::corrupt(path, 12, "unknown keyring wrapping flag")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: OpenMode = OpenMode {
        create: true,
        read_only: false,
        salvage: false,
    };

    fn tslot(id: &str) -> Slot {
        Slot::Transcript(TranscriptSlot {
            tid: [1; 16],
            vid: [2; 16],
            content_key: Key::random().unwrap(),
            pii_slot: 7,
            rules_version: 1,
            created_millis: 1234,
            caller_id: id.into(),
        })
    }

    #[test]
    fn slots_roundtrip_plain_and_wrapped() {
        for kek in [None, Some(Key::random().unwrap())] {
            let dir = tempfile::tempdir().unwrap();
            let mut kr = Keyring::open(dir.path(), kek.as_ref(), RW, |_, _| {})
                .unwrap()
                .keyring;
            let slots = vec![
                tslot("t-1"),
                Slot::Pii(PiiSlot {
                    tid: [1; 16],
                    pii_key: Key::random().unwrap(),
                }),
                Slot::Visitor(VisitorSlot {
                    vid: [2; 16],
                    email: "ann@example.com".into(),
                }),
            ];
            let mut written = Vec::new();
            for s in &slots {
                let i = kr.allocate().unwrap();
                kr.write(i, s).unwrap();
                written.push((i, s.clone()));
            }
            kr.wipe(written[1].0).unwrap();
            kr.sync().unwrap();
            drop(kr);
            let mut slots = Vec::new();
            let loaded =
                Keyring::open(dir.path(), kek.as_ref(), RW, |i, s| slots.push((i, s))).unwrap();
            assert!(loaded.damaged.is_empty());
            assert_eq!(slots, vec![written[0].clone(), written[2].clone()]);
            // The wiped slot and the rest of the grown, still-zero slots.
            assert_eq!(loaded.keyring.free_count(), GROW as usize - 2);
            assert_eq!(loaded.keyring.len(), FIRST_DATA_SLOT + GROW);
            let raw = std::fs::read(dir.path().join("keyring")).unwrap();
            let has_email = raw.windows(15).any(|w| w == b"ann@example.com");
            assert_eq!(has_email, kek.is_none(), "email plaintext iff unwrapped");
        }
    }

    #[test]
    fn the_file_grows_by_whole_runs_of_free_slots() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let mut kr = Keyring::open(dir.path(), None, RW, |_, _| {})
            .unwrap()
            .keyring;
        let size = || std::fs::metadata(&path).unwrap().len();
        let first = kr.allocate().unwrap();
        assert_eq!(first, FIRST_DATA_SLOT, "lowest slot first");
        let grown = size();
        assert_eq!(grown, u64::from(FIRST_DATA_SLOT + GROW) * SLOT_SIZE as u64);
        // The rest of the run is taken without changing the file's length.
        for _ in 1..GROW {
            kr.allocate().unwrap();
        }
        assert_eq!(size(), grown);
        assert_eq!(kr.free_count(), 0);
        let next = kr.allocate().unwrap();
        assert_eq!(next, FIRST_DATA_SLOT + GROW);
        assert_eq!(size(), grown + u64::from(GROW) * SLOT_SIZE as u64);
        // Unwritten slots read back as free; a compaction's tail cut drops them.
        kr.write(first, &tslot("t-1")).unwrap();
        kr.sync().unwrap();
        drop(kr);
        let mut used = 0;
        let mut loaded = Keyring::open(dir.path(), None, RW, |_, _| used += 1).unwrap();
        assert_eq!(used, 1);
        assert_eq!(loaded.keyring.free_count(), 2 * GROW as usize - 1);
        loaded.keyring.truncate_free_tail().unwrap();
        assert_eq!(size(), u64::from(FIRST_DATA_SLOT + 1) * SLOT_SIZE as u64);
    }

    /// Staged slots land exactly as slot-by-slot writes would, in runs.
    #[test]
    fn staged_slots_are_written_in_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = Keyring::open(dir.path(), None, RW, |_, _| {})
            .unwrap()
            .keyring;
        let slots: Vec<u32> = (0..6).map(|_| kr.allocate().unwrap()).collect();
        let mut staged = StagedSlots::default();
        // Two runs: 0-2 and 4-5 (3 is left free).
        for (n, &i) in slots.iter().enumerate().filter(|(n, _)| *n != 3) {
            kr.stage(&mut staged, i, &tslot(&format!("t-{n}"))).unwrap();
        }
        kr.write_staged(staged).unwrap();
        kr.sync().unwrap();
        for (n, &i) in slots.iter().enumerate() {
            match kr.read_slot(i).unwrap() {
                Some(Slot::Transcript(t)) => assert_eq!(t.caller_id, format!("t-{n}")),
                None => assert_eq!(n, 3),
                _ => panic!("slot {i}"),
            }
        }
    }

    /// A large keyring grows by an eighth of itself (up to 4 MiB), so the
    /// syncs that growth costs become rarer as the store grows.
    #[test]
    fn a_large_keyring_grows_by_an_eighth() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = Keyring::open(dir.path(), None, RW, |_, _| {})
            .unwrap()
            .keyring;
        let mut steps = Vec::new();
        let mut len = kr.len();
        for _ in 0..20_000 {
            kr.allocate().unwrap();
            if kr.len() != len {
                steps.push(kr.len() - len);
                len = kr.len();
            }
        }
        for (i, step) in steps.iter().enumerate() {
            let before = kr.len() - steps[i..].iter().sum::<u32>();
            assert_eq!(*step, (before / 8).clamp(GROW, MAX_GROW), "growth {i}");
        }
        assert!(
            steps.len() < 20_000 / GROW as usize,
            "{} growths",
            steps.len()
        );
    }

    #[test]
    fn wrong_or_missing_kek_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let kek = Key::random().unwrap();
        drop(Keyring::open(dir.path(), Some(&kek), RW, |_, _| {}).unwrap());
        assert!(matches!(
            Keyring::open(dir.path(), None, RW, |_, _| {}).err(),
            Some(Error::Kek(_))
        ));
        let other = Key::random().unwrap();
        assert!(matches!(
            Keyring::open(dir.path(), Some(&other), RW, |_, _| {}).err(),
            Some(Error::Kek(_))
        ));
    }

    #[test]
    fn damaged_slots_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = Keyring::open(dir.path(), None, RW, |_, _| {})
            .unwrap()
            .keyring;
        let i = kr.allocate().unwrap();
        kr.write(i, &tslot("t-1")).unwrap();
        kr.sync().unwrap();
        drop(kr);
        let path = dir.path().join("keyring");
        let mut raw = std::fs::read(&path).unwrap();
        raw[i as usize * SLOT_SIZE + 40] ^= 0x10;
        std::fs::write(&path, &raw).unwrap();
        let loaded = Keyring::open(dir.path(), None, RW, |_, _| {}).unwrap();
        assert_eq!(loaded.damaged.len(), 1);
        assert_eq!(loaded.damaged[0].index, i);
    }

    #[test]
    fn the_state_slot_holds_the_marks_and_a_short_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = Keyring::open(dir.path(), None, RW, |_, _| {})
            .unwrap()
            .keyring;
        for _ in 0..3 {
            let i = kr.allocate().unwrap();
            kr.write(i, &tslot("t-1")).unwrap();
        }
        kr.note_segment(4, 1234);
        kr.note_audit(7, 900, Some((5, 700)));
        kr.sync().unwrap();
        let marks = kr.marks();
        assert_eq!(marks.slots, FIRST_DATA_SLOT + GROW);
        drop(kr);
        let loaded = Keyring::open(dir.path(), None, RW, |_, _| {}).unwrap();
        let m = loaded.marks.unwrap();
        assert_eq!(m, marks);
        assert_eq!(
            (m.segment, m.segment_len, m.audit_entries, m.audit_bytes),
            (4, 1234, 7, 900)
        );
        assert_eq!((m.audit_done_entries, m.audit_done_bytes), (5, 700));
        drop(loaded);
        // Cut at a slot boundary or inside a slot: the end is missing.
        let path = dir.path().join("keyring");
        let full = std::fs::read(&path).unwrap();
        for cut in [full.len() - SLOT_SIZE, full.len() - 100, 3 * SLOT_SIZE] {
            std::fs::write(&path, &full[..cut]).unwrap();
            let err = Keyring::open(dir.path(), None, RW, |_, _| {})
                .err()
                .unwrap();
            assert!(err.to_string().contains("end is missing"), "{err}");
            let salvage = OpenMode {
                salvage: true,
                ..RW
            };
            let loaded = Keyring::open(dir.path(), None, salvage, |_, _| {}).unwrap();
            assert!(!loaded.damaged.is_empty());
        }
        // A flipped state slot is damage.
        let mut bad = full.clone();
        bad[SLOT_SIZE + 20] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let loaded = Keyring::open(dir.path(), None, RW, |_, _| {}).unwrap();
        assert_eq!(loaded.damaged[0].index, STATE_SLOT);
    }

    #[test]
    fn a_version_1_keyring_is_read_and_upgraded_by_its_first_state_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut kr = Keyring::open(dir.path(), None, RW, |_, _| {})
            .unwrap()
            .keyring;
        let i = kr.allocate().unwrap();
        kr.write(i, &tslot("t-1")).unwrap();
        kr.sync().unwrap();
        drop(kr);
        // Make it version 1: header version 1, state slot zero.
        let path = dir.path().join("keyring");
        let mut raw = std::fs::read(&path).unwrap();
        raw[8..10].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32fast::hash(&raw[..508]);
        raw[508..512].copy_from_slice(&crc.to_le_bytes());
        raw[SLOT_SIZE..2 * SLOT_SIZE].fill(0);
        std::fs::write(&path, &raw).unwrap();
        let read_only = OpenMode {
            create: false,
            read_only: true,
            salvage: false,
        };
        let mut n = 0;
        let loaded = Keyring::open(dir.path(), None, read_only, |_, _| n += 1).unwrap();
        assert_eq!((n, loaded.marks, loaded.keyring.version), (1, None, 1));
        drop(loaded);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            raw,
            "a read-only open writes nothing"
        );
        let mut kr = Keyring::open(dir.path(), None, RW, |_, _| {})
            .unwrap()
            .keyring;
        kr.sync().unwrap();
        drop(kr);
        let loaded = Keyring::open(dir.path(), None, RW, |_, _| {}).unwrap();
        assert_eq!(loaded.keyring.version, KEYRING_VERSION);
        assert!(loaded.marks.is_some());
    }

    #[test]
    fn a_missing_keyring_is_not_created_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let no = OpenMode {
            create: false,
            ..RW
        };
        assert!(matches!(
            Keyring::open(dir.path(), None, no, |_, _| {}).err(),
            Some(Error::NotAStore(_))
        ));
        assert!(!dir.path().join("keyring").exists());
    }
}
