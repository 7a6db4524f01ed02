//! The public [`Store`]: open, append, read, verify, stats.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::audit::AuditLog;
use crate::commit::GroupCommit;
use crate::error::{Error, IoContext, Result};
use crate::index::{
    Checkpoint, Index, Loc, RecordRef, SegmentUsage, TranscriptEntry, VisitorEntry,
};
use crate::keyring::{Keyring, PiiSlot, Slot, TranscriptSlot, VisitorSlot};
use crate::message::{Message, Timestamp, normalize_email, normalized_email};
use crate::options::{Durability, Options};
use crate::pii::{Detector, RULES_VERSION};
use crate::policy::Policy;
use crate::record::{self, FLAG_PII, KIND_MESSAGE, RECORD_VERSION, RecordHeader, Tid, Vid};
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
use recover::{SlotIndexer, recover_segments};
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
    _lock: File,
    index: RwLock<Index>,
    writer: Mutex<Writer>,
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    commit: GroupCommit,
    keyring_file: Arc<File>,
    keyring_path: PathBuf,
    keyring_dirty: AtomicBool,
    active_file: Mutex<segment::SyncHandle>,
    report: RecoveryReport,
    audit: Mutex<AuditLog>,
    policy: RwLock<Policy>,
    /// Held by a compaction run: one at a time.
    compaction: Mutex<()>,
    closed: AtomicBool,
    background: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

struct Writer {
    keyring: Keyring,
    active: Active,
    /// A segment was sealed: write a checkpoint after the current batch.
    checkpoint_due: bool,
}

/// What open found and repaired.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Whether the index checkpoint was used (else the log was scanned).
    pub checkpoint_used: bool,
    /// Records parsed from the log at open (those not covered by the checkpoint).
    pub records_scanned: u64,
    /// A torn tail that was truncated: (file, offset it was cut at, bytes removed).
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// Damaged stretches skipped in salvage mode: (file, offset, bytes, reason).
    pub skipped: Vec<(PathBuf, u64, u64, String)>,
    /// Damaged keyring slots ignored in salvage mode: (slot index, reason).
    pub damaged_slots: Vec<(u32, String)>,
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
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).at(&dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .at(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked(dir)),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
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
        let (loaded, checkpoint) = std::thread::scope(|scope| {
            let load = || options.checkpoint.then(|| Checkpoint::load(&dir)).flatten();
            let helper = std::thread::Builder::new()
                .name("shredlog-open".into())
                .spawn_scoped(scope, load);
            let mut indexer = SlotIndexer::default();
            let loaded = Keyring::open(&dir, options.kek.as_ref().map(|k| &k.0), |i, slot| {
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
        let (loaded, (mut index, orphans)) = loaded?;
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
        let loaded_damaged = !loaded.damaged.is_empty();
        let mut keyring = loaded.keyring;
        // PII keys whose transcript slot is gone (a deletion cut short) and
        // second copies of slots (a keyring compaction cut short). Not when
        // slots are damaged: a damaged transcript slot would make its PII key
        // look orphaned.
        let orphans = if loaded_damaged { Vec::new() } else { orphans };
        for slot in &orphans {
            keyring.wipe(*slot)?;
        }
        if !orphans.is_empty() {
            keyring.sync()?;
        }

        let (active, segments) =
            recover_segments(&dir, &options, checkpoint, &mut index, &mut report)?;
        let (audit, entries) = AuditLog::open(&dir, options.salvage)?;
        let policy = Policy::load(&dir)?;
        privacy::finish_pending(&mut keyring, &mut index, &entries)?;
        if !options.salvage && !loaded_damaged {
            privacy::drop_empty_transcripts(&mut keyring, &mut index)?;
        }
        let keyring_file = keyring.file();
        let keyring_path = keyring.path().to_owned();
        let active_file = active.sync_handle();
        let inner = Arc::new(Inner {
            dir,
            detector,
            _lock: lock,
            index: RwLock::new(index),
            writer: Mutex::new(Writer {
                keyring,
                active,
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
            options,
        });
        if let Durability::Batched { interval_ms } = inner.options.durability {
            let weak = Arc::downgrade(&inner);
            let handle = std::thread::Builder::new()
                .name("shredlog-sync".into())
                .spawn(move || background_sync(weak, Duration::from_millis(interval_ms.max(1))))
                .map_err(|e| Error::io("shredlog-sync thread", e))?;
            inner.background.lock().push(handle);
        }
        if let Some(bound) = inner.options.max_dead_age_ms {
            let weak = Arc::downgrade(&inner);
            let handle = std::thread::Builder::new()
                .name("shredlog-compact".into())
                .spawn(move || background_compact(weak, bound.max(1)))
                .map_err(|e| Error::io("shredlog-compact thread", e))?;
            inner.background.lock().push(handle);
        }
        Ok(Store { inner, owner: true })
    }

    /// What open found and repaired.
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
        let segment = self.active_file.lock().clone();
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
                    let k = k
                        .join()
                        .unwrap_or_else(|_| Err(Error::invalid("keyring sync thread panicked")));
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
        let active = w.active.id;
        let covered = |seg: u64| full || seg < active;
        let mut ckpt = Checkpoint::default();
        for id in segs.keys() {
            let len = match (*id == active, full) {
                (true, true) => w.active.len,
                (true, false) => SEGMENT_HEADER,
                _ => {
                    std::fs::metadata(self.dir.join(segment::file_name(*id))).map_or(0, |m| m.len())
                }
            };
            ckpt.segments.push((*id, len));
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
                )
            })
            .filter(|(_, records)| !records.is_empty())
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
        self.commit.check()?;
        let mut w = self.writer.lock();
        // A closed store's last segment ends with its data.
        w.active.trim()?;
        let ticket = self.commit.ticket();
        self.commit
            .wait_holding_writer(ticket, || self.sync_now())?;
        if self.options.checkpoint {
            self.write_checkpoint(&w, true)?;
        }
        Ok(())
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
