//! The public [`Store`]: open, append, read, verify, stats.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::audit::{AuditLog, AuditMarks, AuditMode};
use crate::commit::GroupCommit;
use crate::error::{Error, IoContext, Result};
use crate::index::{
    Checkpoint, Index, Loc, RecordRef, SegmentUsage, TranscriptEntry, VisitorEntry,
};
use crate::keyring::{Keyring, OpenMode, PiiSlot, Slot, TranscriptSlot, VisitorSlot};
use crate::message::{Message, Timestamp, normalize_email, normalized_email};
use crate::options::{Durability, Options};
use crate::pii::{Detector, RULES_VERSION};
use crate::policy::Policy;
use crate::record::{
    self, FLAG_MSG_ID, FLAG_PII, KIND_MESSAGE, MsgIdDigest, RECORD_VERSION, RecordHeader, Tid, Vid,
};
use crate::seal::{Key, Nonces, TAG_LEN, random_array};
use crate::segment::{self, Active, SEGMENT_HEADER, Segment};
use crate::split::{self, ContentPart, JoinContext, PiiPart};

mod compact;
mod inspect;
mod keyring_compact;
mod privacy;
mod read;
mod recover;
mod write;
pub use compact::{CompactOptions, CompactReport};
pub use inspect::{Stats, VerifyReport};
pub use privacy::{
    ConsentEvent, ConsentState, ExportedMessage, HoldTarget, Rectification, VisitorExport,
};
use read::{MessageFacts, read_message};
use recover::{Recovered, SlotIndexer, recover_segments};
pub use write::Appended;
use write::{create_transcript, prepare};

/// A shredlog store: one directory, shared by all threads of one process.
///
/// ```
/// use shredlog::{Message, Store, Options, interchange};
/// let dir = tempfile::tempdir()?;
/// let store = Store::open(dir.path(), Options::default())?;
/// let line = r#"{"transcript":"t-1","ts":"2024-05-02T10:15:03.120Z","from":"visitor",
///   "visitor":{"email":"Ann@example.com"},"kind":"text","text":"call me on +44 20 7946 0958"}"#;
/// store.append(&interchange::parse_line(&line.replace('\n', ""))?)?;
/// let messages = store.transcript("t-1")?;
/// assert_eq!(messages.len(), 1);
/// let listed = store.transcripts_by_email("ann@EXAMPLE.com ", None, None)?;
/// assert_eq!(listed[0].id, "t-1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Store {
    inner: Arc<Inner>,
    /// The handle returned by `open` (true) or a background thread's borrowed
    /// one (false); only the owner's drop closes the store.
    owner: bool,
}

struct Inner {
    dir: PathBuf,
    options: Options,
    detector: Detector,
    _lock: Option<File>,
    index: RwLock<Index>,
    writer: Mutex<Writer>,
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    commit: GroupCommit,
    keyring_file: Arc<File>,
    keyring_path: PathBuf,
    keyring_dirty: AtomicBool,
    /// The active segment's sync handle (`None` when read-only).
    active_file: Mutex<Option<segment::SyncHandle>>,
    report: RecoveryReport,
    audit: Mutex<AuditLog>,
    policy: RwLock<Policy>,
    /// Held by a compaction run: one at a time.
    compaction: Mutex<()>,
    closed: AtomicBool,
    background: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Keyring slots open left alone that belong to nothing (orphaned PII
    /// keys, second copies of slots, keys of transcripts that never got a
    /// record, uncommitted rewrites): wiped by the next compaction of a
    /// sound store, never by open.
    leftovers: Mutex<Vec<u32>>,
}

struct Writer {
    keyring: Keyring,
    /// The segment appends go to; `None` when the store is read-only.
    active: Option<Active>,
    /// The last segment's id and the end of its data, for a read-only store
    /// (a writable one asks `active`).
    last: (u64, u64),
    /// A segment was sealed: write a checkpoint after the current batch.
    checkpoint_due: bool,
}

impl Writer {
    /// The active segment, or [`Error::ReadOnly`].
    fn active(&mut self) -> Result<&mut Active> {
        self.active.as_mut().ok_or(Error::ReadOnly)
    }

    /// The last segment's id and data length.
    fn last_segment(&self) -> (u64, u64) {
        self.active.as_ref().map_or(self.last, |a| (a.id, a.len))
    }

    /// Records in the keyring's state how much of the active segment is
    /// durable (written with the next keyring sync).
    fn note_durable(&mut self) {
        if let Some(a) = &self.active {
            self.keyring.note_segment(a.id, a.durable_len());
        }
    }
}

/// What open found and did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Whether the index checkpoint was used (else the log was scanned).
    pub checkpoint_used: bool,
    /// Records parsed from the log at open (those not covered by the checkpoint).
    pub records_scanned: u64,
    /// A torn tail of the last segment (an unacknowledged write a crash cut
    /// short): (file, offset, bytes). Cut off, unless the store is read-only.
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// A torn last line of the audit log: (offset, bytes). Cut off, unless
    /// the store is read-only.
    pub audit_truncated: Option<(u64, u64)>,
    /// Damage skipped in salvage mode: (file, offset, bytes, reason).
    pub skipped: Vec<(PathBuf, u64, u64, String)>,
    /// Damaged keyring slots ignored in salvage mode: (slot index, reason).
    pub damaged_slots: Vec<(u32, String)>,
    /// Logged privacy operations whose effects open finished (on disk, or in
    /// memory when read-only): (audit sequence number, operation).
    pub finished: Vec<(u64, String)>,
    /// Keyring slots that belong to nothing, left for compaction to wipe.
    pub leftover_slots: usize,
}

impl RecoveryReport {
    /// Whether open found damage (possible only in salvage mode, which
    /// skipped it).
    pub fn found_damage(&self) -> bool {
        !self.skipped.is_empty() || !self.damaged_slots.is_empty()
    }
}

/// A transcript as listed for a visitor.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TranscriptInfo {
    /// The caller's transcript id.
    pub id: String,
    /// Time of its earliest message.
    pub first: Timestamp,
    /// Time of its latest message.
    pub last: Timestamp,
    /// Number of messages.
    pub messages: usize,
    /// Whether its personal data has been destroyed.
    pub redacted: bool,
    /// Version of the detection rules it was written under.
    pub rules_version: u16,
}

const LOCK_FILE: &str = "LOCK";

impl Store {
    /// Opens the store in `dir`, creating it if needed.
    ///
    /// Recovery: the keyring is read, the index checkpoint loaded when valid,
    /// and the log after it scanned; a torn tail of the last segment is
    /// truncated; any other damage is an error unless `options.salvage`.
    ///
    /// # Errors
    /// [`Error::Locked`] if another process has it open, [`Error::Corrupt`] for
    /// damage (file and offset named), [`Error::Kek`] for a missing or wrong
    /// key-encryption key, [`Error::Io`] for I/O failures.
    pub fn open(dir: impl AsRef<Path>, mut options: Options) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        // Salvage reads what is left of a damaged store; it never writes.
        options.read_only |= options.salvage;
        let read_only = options.read_only;
        let create = options.create && !read_only;
        if create {
            std::fs::create_dir_all(&dir).at(&dir)?;
        } else if !dir.join("keyring").exists() {
            return Err(Error::NotAStore(dir));
        }
        let lock = lock(&dir, read_only)?;
        let detector =
            Detector::new(&options.detector).map_err(|e| Error::invalid(e.to_string()))?;
        let mut report = RecoveryReport::default();

        let keyring_path = dir.join("keyring");
        let keyring_missing = std::fs::metadata(&keyring_path).map_or(true, |m| m.len() == 0);
        if keyring_missing && !segment::list(&dir)?.is_empty() {
            return Err(Error::corrupt(
                &keyring_path,
                0,
                "the keyring is missing or empty but segments exist; without it no record can be read (restore it from a backup)",
            ));
        }
        if options.max_message_bytes > record::MAX_BODY - 1024 {
            return Err(Error::invalid(format!(
                "max-message-bytes may be at most {} bytes",
                record::MAX_BODY - 1024
            )));
        }
        // The checkpoint is read and decoded on a second thread while this one
        // reads the keyring and builds the directory part of the index from
        // it (recover_segments decides whether the checkpoint fits).
        let mode = OpenMode {
            create,
            read_only,
            salvage: options.salvage,
        };
        let (loaded, checkpoint) = std::thread::scope(|scope| {
            let load = || options.checkpoint.then(|| Checkpoint::load(&dir)).flatten();
            let helper = std::thread::Builder::new()
                .name("shredlog-open".into())
                .spawn_scoped(scope, load);
            let mut indexer = SlotIndexer::default();
            let loaded =
                Keyring::open(&dir, options.kek.as_ref().map(|k| &k.0), mode, |i, slot| {
                    indexer.add(i, slot);
                })
                .map(|loaded| (loaded, indexer.finish()));
            let checkpoint = match helper {
                // A panicking decoder counts as an unusable checkpoint.
                Ok(handle) => handle.join().ok().flatten(),
                Err(_) => load(),
            };
            (loaded, checkpoint)
        });
        let (loaded, (mut index, leftovers)) = loaded?;
        if let Some(d) = loaded.damaged.first()
            && !options.salvage
        {
            return Err(Error::corrupt(
                loaded.keyring.path(),
                u64::from(d.index) * crate::keyring::SLOT_SIZE as u64,
                format!("keyring slot {}: {}", d.index, d.reason),
            ));
        }
        report.damaged_slots = loaded
            .damaged
            .iter()
            .map(|d| (d.index, d.reason.to_owned()))
            .collect();
        let marks = loaded.marks;
        let mut keyring = loaded.keyring;

        let Recovered {
            active,
            segments,
            last,
        } = recover_segments(&dir, &options, marks, checkpoint, &mut index, &mut report)?;
        let audit_marks = marks.map_or(AuditMarks::default(), |m| AuditMarks {
            entries: m.audit_entries,
            bytes: m.audit_bytes,
        });
        let (audit, entries, audit_recovery) = AuditLog::open(
            &dir,
            audit_marks,
            AuditMode {
                read_only,
                salvage: options.salvage,
            },
        )?;
        report.audit_truncated = audit_recovery.torn;
        for (offset, reason) in audit_recovery.damage {
            report
                .skipped
                .push((dir.join(crate::audit::AUDIT_FILE), offset, 0, reason));
        }
        let mut policy = Policy::load(&dir)?;
        let finished = {
            let wipes = if read_only { None } else { Some(&mut keyring) };
            privacy::finish_pending(wipes, &mut index, &entries, &mut policy)?
        };
        if !read_only && finished.policy_changed {
            policy.save(&dir)?;
        }
        report.finished = finished.ops;
        let mut leftovers = leftovers;
        leftovers.extend(privacy::resolve_generations(&mut index));
        report.leftover_slots = leftovers.len();
        if let Some(a) = &active {
            let (entries, bytes) = audit.marks();
            keyring.note_audit(entries, bytes, None);
            keyring.note_segment(a.id, a.durable_len());
        }
        if !read_only && finished.keyring_changed {
            keyring.sync()?;
        }
        let keyring_file = keyring.file();
        let keyring_path = keyring.path().to_owned();
        let active_file = active.as_ref().map(Active::sync_handle);
        let inner = Arc::new(Inner {
            dir,
            detector,
            _lock: lock,
            index: RwLock::new(index),
            writer: Mutex::new(Writer {
                keyring,
                active,
                last,
                checkpoint_due: false,
            }),
            segments: RwLock::new(segments),
            commit: GroupCommit::default(),
            keyring_file,
            keyring_path,
            keyring_dirty: AtomicBool::new(false),
            active_file: Mutex::new(active_file),
            report,
            audit: Mutex::new(audit),
            policy: RwLock::new(policy),
            compaction: Mutex::new(()),
            closed: AtomicBool::new(false),
            background: Mutex::new(Vec::new()),
            leftovers: Mutex::new(leftovers),
            options,
        });
        if let Durability::Batched { interval_ms } = inner.options.durability
            && !read_only
        {
            let weak = Arc::downgrade(&inner);
            let handle = std::thread::Builder::new()
                .name("shredlog-sync".into())
                .spawn(move || background_sync(weak, Duration::from_millis(interval_ms.max(1))))
                .map_err(|e| Error::io("shredlog-sync thread", e))?;
            inner.background.lock().push(handle);
        }
        if let Some(bound) = inner.options.max_dead_age_ms
            && !read_only
        {
            let weak = Arc::downgrade(&inner);
            let handle = std::thread::Builder::new()
                .name("shredlog-compact".into())
                .spawn(move || background_compact(weak, bound.max(1)))
                .map_err(|e| Error::io("shredlog-compact thread", e))?;
            inner.background.lock().push(handle);
        }
        Ok(Store { inner, owner: true })
    }

    /// Whether the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner.options.read_only
    }

    /// What open found and did.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.report
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The personal-data detector in force.
    pub fn detector(&self) -> &Detector {
        &self.inner.detector
    }

    /// Syncs, writes the index checkpoint and closes the store.
    ///
    /// # Errors
    /// [`Error::Io`] if the final sync or checkpoint fails.
    pub fn close(self) -> Result<()> {
        self.inner.shutdown()
    }
}

impl Drop for Store {
    /// Closes the store as [`Store::close`] does, ignoring errors (a failed
    /// final sync leaves the store as a crash would: recoverable).
    fn drop(&mut self) {
        if self.owner {
            let _ = self.inner.shutdown();
        }
    }
}

impl Inner {
    /// Makes everything written so far durable. When new keys were written,
    /// the keyring and the segment are synced at the same time (two devices
    /// queues, one wait): a record that reaches the disk before its keys was
    /// not acknowledged, and without its keys it is dead at recovery.
    fn sync_now(&self) -> Result<()> {
        let segment = self.active_file.lock().clone().ok_or(Error::ReadOnly)?;
        if !self.keyring_dirty.swap(false, Ordering::SeqCst) {
            return segment.sync();
        }
        let keyring = || -> Result<()> {
            crate::failpoint::check("keyring.sync").at(&self.keyring_path)?;
            self.keyring_file.sync_data().at(&self.keyring_path)?;
            crate::failpoint::synced(&self.keyring_path, &self.keyring_file);
            Ok(())
        };
        std::thread::scope(|scope| {
            match std::thread::Builder::new().spawn_scoped(scope, keyring) {
                Ok(k) => {
                    let s = segment.sync();
                    let k = k.join().unwrap_or_else(|_| {
                        Err(Error::Internal("the keyring sync thread panicked".into()))
                    });
                    k.and(s)
                }
                // No thread to spare: one after the other.
                Err(_) => keyring().and_then(|()| segment.sync()),
            }
        })
    }

    /// Writes the index checkpoint. With `full` it covers everything written
    /// (call only when all of it is synced); otherwise only sealed segments,
    /// which are synced when sealed.
    fn write_checkpoint(&self, w: &Writer, full: bool) -> Result<()> {
        let index = self.index.read();
        let segs = self.segments.read();
        let (active, active_len) = w.last_segment();
        let covered = |seg: u64| full || seg < active;
        let mut ckpt = Checkpoint::default();
        for (id, seg) in segs.iter() {
            let len = match (*id == active, full) {
                (true, true) => active_len,
                (true, false) => SEGMENT_HEADER,
                _ => {
                    std::fs::metadata(self.dir.join(segment::file_name(*id))).map_or(0, |m| m.len())
                }
            };
            ckpt.segments.push((*id, seg.generation(), len));
        }
        // PII parts of redacted transcripts are counted dead again at load
        // (from the keyring), so the checkpoint leaves them out.
        let mut pii_dead: HashMap<u64, u64> = HashMap::new();
        for t in index.transcripts.values().filter(|t| t.pii_key.is_none()) {
            for r in &t.records {
                *pii_dead.entry(r.loc.seg).or_default() += u64::from(r.pii_len);
            }
        }
        ckpt.dead = index
            .usage
            .iter()
            .filter(|(id, _)| covered(**id))
            .map(|(id, u)| {
                let dead = u
                    .dead
                    .saturating_sub(pii_dead.get(id).copied().unwrap_or(0));
                (*id, dead, u.dead_since)
            })
            .collect();
        ckpt.transcripts = index
            .transcripts
            .values()
            .map(|t| {
                (
                    t.tid,
                    t.records
                        .iter()
                        .filter(|r| covered(r.loc.seg))
                        .copied()
                        .collect::<Vec<_>>(),
                    // Digests of uncovered records are found again by the scan.
                    t.msg_ids.iter().copied().collect::<Vec<_>>(),
                )
            })
            .filter(|(_, records, _)| !records.is_empty())
            .collect();
        drop(segs);
        drop(index);
        ckpt.save(&self.dir)
    }

    fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // Only the owning handle closes, and it never lives on a background
        // thread, so every background thread can be joined.
        for h in std::mem::take(&mut *self.background.lock()) {
            h.thread().unpark();
            let _ = h.join();
        }
        if self.options.read_only {
            return Ok(());
        }
        self.commit.check()?;
        let mut w = self.writer.lock();
        // Everything written is made durable first; then the zeros written
        // ahead are cut off (a closed store's last segment ends with its
        // data), and the keyring's state records the whole segment as
        // acknowledged: any byte missing later is lost data, not a torn tail.
        let ticket = self.commit.ticket();
        self.commit
            .wait_holding_writer(ticket, || self.sync_now())?;
        w.active()?.trim()?;
        w.note_durable();
        let (entries, bytes) = self.audit.lock().marks();
        w.keyring.note_audit(entries, bytes, None);
        w.keyring.sync()?;
        if self.options.checkpoint {
            self.write_checkpoint(&w, true)?;
        }
        Ok(())
    }
}

/// Takes the directory's lock: exclusive to write, shared to read only (a
/// read-only open creates no file; without a `LOCK` file it takes none).
fn lock(dir: &Path, read_only: bool) -> Result<Option<File>> {
    let lock_path = dir.join(LOCK_FILE);
    let file = if read_only {
        match File::open(&lock_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&lock_path, e)),
        }
    } else {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .at(&lock_path)?
    };
    let taken = if read_only {
        file.try_lock_shared()
    } else {
        file.try_lock()
    };
    match taken {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&lock_path, e)),
    }
}

fn background_sync(weak: Weak<Inner>, every: Duration) {
    loop {
        std::thread::park_timeout(every);
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.load(Ordering::SeqCst) {
            return;
        }
        if inner.commit.is_clean() || inner.commit.check().is_err() {
            continue;
        }
        let ticket = {
            let _w = inner.writer.lock();
            inner.commit.ticket()
        };
        let _ = inner.commit.wait(ticket, || inner.sync_now());
    }
}

/// Keeps the delete-persistence bound: compacts segments whose dead bytes are
/// older than half the bound, sealing the active segment when it holds some.
fn background_compact(weak: Weak<Inner>, bound_ms: u64) {
    let every = Duration::from_millis((bound_ms / 4).clamp(50, 60_000));
    loop {
        std::thread::park_timeout(every);
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.load(Ordering::SeqCst) {
            return;
        }
        let options = CompactOptions {
            dead_older_than_ms: Some(i64::try_from(bound_ms / 2).unwrap_or(i64::MAX)),
            include_active: true,
            bytes_per_sec: inner.options.compaction_bytes_per_sec,
            ..CompactOptions::default()
        };
        let store = Store {
            inner,
            owner: false,
        };
        let _ = store.compact(&options);
    }
}
