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
use crate::message::{Message, Timestamp, normalize_email};
use crate::options::{Durability, Options};
use crate::pii::{Detector, RULES_VERSION};
use crate::policy::Policy;
use crate::record::{self, FLAG_PII, KIND_MESSAGE, RECORD_VERSION, RecordHeader, Tid, Vid};
use crate::seal::{Key, TAG_LEN, random_array};
use crate::segment::{self, Active, SEGMENT_HEADER, Segment};
use crate::split::{self, ContentPart, JoinContext, PiiPart};

mod compact;
mod keyring_compact;
mod privacy;
pub use compact::{CompactOptions, CompactReport};
pub use privacy::{
    ConsentEvent, ConsentState, ExportedMessage, HoldTarget, Rectification, VisitorExport,
};

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
    active_file: Mutex<(PathBuf, Arc<File>)>,
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

/// Sizes and counts.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Number of segment files.
    pub segments: usize,
    /// Bytes in segment files.
    pub segment_bytes: u64,
    /// Bytes of records that can still be read.
    pub live_bytes: u64,
    /// Bytes of records that can never be read again (reclaimable by compaction).
    pub dead_bytes: u64,
    /// Bytes of the keyring file.
    pub keyring_bytes: u64,
    /// Keyring slots in use.
    pub keyring_slots_used: u64,
    /// Keyring slots free for reuse.
    pub keyring_slots_free: u64,
    /// Live transcripts.
    pub transcripts: u64,
    /// Transcripts whose PII key is destroyed.
    pub transcripts_redacted: u64,
    /// Visitors in the directory.
    pub visitors: u64,
    /// Live message records.
    pub messages: u64,
    /// Transcripts per detection-rules version.
    pub rules_versions: BTreeMap<u16, u64>,
    /// The current detection-rules version.
    pub current_rules_version: u16,
    /// Per segment: (id, file bytes, usage).
    pub per_segment: Vec<(u64, u64, SegmentUsage)>,
}

/// What `verify` found.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records read and checked (frames, checksums).
    pub records: u64,
    /// Live records decrypted and joined successfully.
    pub live_records: u64,
    /// Records that can never be read again (not an error).
    pub dead_records: u64,
    /// Keyring slots checked.
    pub keyring_slots: u64,
    /// Every problem found, naming file and offset. Empty means sound.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether the store is sound.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
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
        let loaded = Keyring::open(&dir, options.kek.as_ref().map(|k| &k.0))?;
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
        let (mut index, orphans) = index_from_slots(loaded.slots);
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

        let (active, segments) = recover_segments(&dir, &options, &mut index, &mut report)?;
        let (audit, entries) = AuditLog::open(&dir, options.salvage)?;
        let policy = Policy::load(&dir)?;
        privacy::finish_pending(&mut keyring, &mut index, &entries)?;
        if !options.salvage && !loaded_damaged {
            privacy::drop_empty_transcripts(&mut keyring, &mut index)?;
        }
        let keyring_file = keyring.file();
        let keyring_path = keyring.path().to_owned();
        let active_file = (active.path.clone(), Arc::clone(&active.file));
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
        Ok(Store { inner })
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

    /// Appends one message; see [`Store::append_batch`].
    ///
    /// # Errors
    /// As [`Store::append_batch`].
    pub fn append(&self, msg: &Message) -> Result<()> {
        self.append_batch(std::slice::from_ref(msg))
    }

    /// Appends messages and returns once they are durable under the configured
    /// [`Durability`], with one sync for the whole batch. The first message of
    /// a transcript must name its visitor; later messages that name one must
    /// name the same email.
    ///
    /// A batch that breaks a rule is refused whole before anything is written.
    /// A batch cut short by a crash or an I/O error was not acknowledged; each
    /// of its messages is then either stored whole or absent (a prefix of the
    /// batch may survive), never altered.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a message that breaks a rule (nothing of the batch
    /// is written), [`Error::Restricted`] for a restricted visitor,
    /// [`Error::Poisoned`] after an earlier I/O failure, [`Error::Io`] when
    /// writing or syncing fails (the store then refuses further writes).
    pub fn append_batch(&self, msgs: &[Message]) -> Result<()> {
        let inner = &*self.inner;
        inner.commit.check()?;
        let mut prepared = Vec::with_capacity(msgs.len());
        for msg in msgs {
            prepared.push(prepare(
                msg,
                &inner.detector,
                inner.options.max_message_bytes,
            )?);
        }
        let ticket = {
            let mut w = inner.writer.lock();
            inner.commit.check()?;
            let plan = self.plan(&prepared)?;
            if let Err(e) = self.write_planned(&mut w, &prepared, plan) {
                // `plan` checked every rule, so whatever fails here failed
                // after keyring slots may have been written: refuse further
                // writes until a reopen rebuilds the state from disk.
                inner.commit.poison(&e);
                return Err(e);
            }
            inner.commit.ticket()
        };
        match inner.options.durability {
            Durability::Immediate => inner.commit.wait(ticket, || inner.sync_now()),
            Durability::Batched { .. } => Ok(()),
        }
    }

    /// Works out, without writing anything, which transcript and visitor each
    /// message goes to, and which must be created.
    fn plan(&self, prepared: &[Prepared<'_>]) -> Result<Vec<Target>> {
        let index = self.inner.index.read();
        let mut new_transcripts: HashMap<&str, (usize, String)> = HashMap::new();
        let mut targets = Vec::with_capacity(prepared.len());
        let different =
            || Error::invalid("message names a different visitor than its transcript's");
        for p in prepared {
            let id = p.msg.transcript.as_str();
            let email = p.msg.visitor.as_ref().map(|v| normalize_email(&v.email));
            if let Some(tid) = index.by_caller.get(id) {
                let t = index
                    .transcripts
                    .get(tid)
                    .ok_or_else(|| Error::invalid("index inconsistency"))?;
                self.check_not_restricted(&t.vid)?;
                if p.pii.is_some() && t.pii_key.is_none() {
                    return Err(Error::invalid(
                        "this transcript's personal data was erased; personal data cannot be added to it (start a new transcript)",
                    ));
                }
                if let Some(e) = &email
                    && index.visitors.get(&t.vid).map(|v| v.email.as_str()) != Some(e.as_str())
                {
                    return Err(different());
                }
                targets.push(Target::Existing(*tid));
            } else if let Some((n, first_email)) = new_transcripts.get(id) {
                if email.as_ref().is_some_and(|e| e != first_email) {
                    return Err(different());
                }
                targets.push(Target::New(*n));
            } else {
                let Some(email) = email else {
                    return Err(Error::invalid(
                        "the first message of a transcript must name the visitor (field `visitor`)",
                    ));
                };
                if email.len() > crate::keyring::MAX_EMAIL {
                    return Err(Error::invalid("field `visitor.email` is too long"));
                }
                if id.len() > crate::keyring::MAX_TRANSCRIPT_ID {
                    return Err(Error::invalid(
                        "field `transcript` is longer than 200 bytes",
                    ));
                }
                if let Some(vid) = index.by_email.get(&email) {
                    self.check_not_restricted(vid)?;
                }
                let n = new_transcripts.len();
                new_transcripts.insert(id, (n, email.clone()));
                targets.push(Target::NewFirst(n, email));
            }
        }
        Ok(targets)
    }

    fn write_planned(
        &self,
        w: &mut Writer,
        prepared: &[Prepared<'_>],
        targets: Vec<Target>,
    ) -> Result<()> {
        let inner = &*self.inner;
        let now = Timestamp::now().unix_millis();
        // 1. Keys and directory entries for new transcripts and visitors.
        let mut created: Vec<TranscriptEntry> = Vec::new();
        let mut new_visitor_entries: Vec<(Vid, VisitorEntry)> = Vec::new();
        {
            let index = inner.index.read();
            for (p, target) in prepared.iter().zip(&targets) {
                let Target::NewFirst(_, email) = target else {
                    continue;
                };
                let vid = match index.by_email.get(email) {
                    Some(vid) => *vid,
                    None => match new_visitor_entries.iter().find(|(_, v)| &v.email == email) {
                        Some((vid, _)) => *vid,
                        None => {
                            let vid: Vid = random_array()?;
                            let slot = w.keyring.allocate()?;
                            w.keyring.write(
                                slot,
                                &Slot::Visitor(VisitorSlot {
                                    vid,
                                    email: email.clone(),
                                }),
                            )?;
                            new_visitor_entries.push((
                                vid,
                                VisitorEntry {
                                    email: email.clone(),
                                    slot,
                                    transcripts: Default::default(),
                                    tids: Default::default(),
                                },
                            ));
                            vid
                        }
                    },
                };
                created.push(create_transcript(w, vid, &p.msg.transcript, now)?);
            }
        }
        if !created.is_empty() {
            inner.keyring_dirty.store(true, Ordering::SeqCst);
        }
        // 2. Seal, frame and write every message.
        let pending = {
            let index = inner.index.read();
            let mut items = Vec::with_capacity(prepared.len());
            for (p, target) in prepared.iter().zip(&targets) {
                let t: &TranscriptEntry = match target {
                    Target::Existing(tid) => index
                        .transcripts
                        .get(tid)
                        .ok_or_else(|| Error::invalid("index inconsistency"))?,
                    Target::New(n) | Target::NewFirst(n, _) => created
                        .get(*n)
                        .ok_or_else(|| Error::invalid("plan inconsistency"))?,
                };
                items.push((t, p));
            }
            self.seal_and_write(w, &items)?
        };
        // 4. Publish to readers.
        {
            let mut index = inner.index.write();
            for (vid, v) in new_visitor_entries {
                index.by_email.insert(v.email.clone(), vid);
                index.visitors.insert(vid, v);
            }
            for t in created {
                index.by_caller.insert(t.caller_id.clone(), t.tid);
                index.insert_transcript(t);
            }
            for (tid, r) in pending {
                index.add_record(&tid, r);
            }
        }
        if std::mem::take(&mut w.checkpoint_due) {
            inner.write_checkpoint(w, false)?;
        }
        Ok(())
    }

    /// Seals each message under its transcript's keys and appends the frames,
    /// rolling segments as needed. Returns the new records' locations.
    fn seal_and_write(
        &self,
        w: &mut Writer,
        items: &[(&TranscriptEntry, &Prepared<'_>)],
    ) -> Result<Vec<(Tid, RecordRef)>> {
        let inner = &*self.inner;
        let mut next_seq: HashMap<Tid, u32> = HashMap::new();
        let mut buf: Vec<u8> = Vec::with_capacity(items.iter().map(|(_, p)| p.size_hint()).sum());
        let mut pending: Vec<(Tid, RecordRef)> = Vec::with_capacity(items.len());
        {
            for &(t, p) in items {
                let seq = *next_seq.entry(t.tid).or_insert_with(|| t.next_seq());
                next_seq.insert(t.tid, seq + 1);
                let mut header = RecordHeader {
                    version: RECORD_VERSION,
                    kind: KIND_MESSAGE,
                    flags: 0,
                    tid: t.tid,
                    vid: t.vid,
                    seq,
                    ts_millis: p.msg.ts.unix_millis(),
                    content_len: (p.content.len() + TAG_LEN) as u32,
                    pii_len: 0,
                    content_nonce: [0; 12],
                    pii_nonce: [0; 12],
                };
                let (cn, cct) = t
                    .content_key
                    .seal(&record::aad(b'C', &header), &p.content)?;
                header.content_nonce = cn;
                let mut pct = Vec::new();
                if let Some(pii) = &p.pii {
                    let key = t.pii_key.as_ref().ok_or_else(|| {
                        Error::invalid(
                            "this transcript's personal data was erased; start a new transcript",
                        )
                    })?;
                    header.flags |= FLAG_PII;
                    header.pii_len = (pii.len() + TAG_LEN) as u32;
                    let (pn, ct) = key.seal(&record::aad(b'P', &header), pii)?;
                    header.pii_nonce = pn;
                    pct = ct;
                }
                let frame_start = buf.len();
                record::encode(&header, &cct, &pct, &mut buf);
                let len = (buf.len() - frame_start) as u32;
                pending.push((
                    t.tid,
                    RecordRef {
                        seq,
                        ts: header.ts_millis,
                        loc: Loc {
                            seg: 0,
                            off: frame_start as u64,
                            len,
                        },
                        pii_len: header.pii_len,
                    },
                ));
            }
        }
        // 3. Write, rolling segments as needed.
        let mut i = 0;
        while i < pending.len() {
            let start = pending.get(i).map_or(0, |p| p.1.loc.off);
            // Take as many frames as fit in the active segment (at least one).
            let mut j = i;
            let mut end = start;
            while let Some((_, r)) = pending.get(j) {
                let next_end = r.loc.off + u64::from(r.loc.len);
                let fits = w.active.len + (next_end - start) <= inner.options.segment_size;
                if !fits && (j > i || w.active.len > SEGMENT_HEADER) {
                    break;
                }
                end = next_end;
                j += 1;
            }
            if j == i {
                self.roll(w)?;
                continue;
            }
            let chunk = buf
                .get(start as usize..end as usize)
                .ok_or_else(|| Error::invalid("frame bounds"))?;
            let base = w.active.append(chunk)?;
            for (_, r) in pending.get_mut(i..j).into_iter().flatten() {
                r.loc.seg = w.active.id;
                r.loc.off = base + (r.loc.off - start);
            }
            i = j;
        }
        Ok(pending)
    }

    /// Seals the active segment and starts the next one.
    fn roll(&self, w: &mut Writer) -> Result<()> {
        let inner = &*self.inner;
        segment::sync(&w.active.path, &w.active.file)?;
        let next = Active::create(&inner.dir, w.active.id + 1)?;
        let map = segment::map(&w.active.path, &w.active.file)?;
        let sealed = Segment::Sealed {
            path: w.active.path.clone(),
            map,
        };
        {
            let mut segs = inner.segments.write();
            segs.insert(w.active.id, Arc::new(sealed));
            segs.insert(next.id, Arc::new(next.reader()));
        }
        *inner.active_file.lock() = (next.path.clone(), Arc::clone(&next.file));
        w.active = next;
        // Everything before the new segment is durable now, but records of the
        // batch being written are not in the index yet: checkpoint once the
        // batch is published.
        w.checkpoint_due = inner.options.checkpoint;
        Ok(())
    }

    /// Makes everything appended so far durable (useful with batched durability).
    ///
    /// # Errors
    /// [`Error::Io`] if syncing fails; the store is then poisoned.
    pub fn sync(&self) -> Result<()> {
        let inner = &*self.inner;
        let ticket = {
            let _w = inner.writer.lock();
            inner.commit.ticket()
        };
        inner.commit.wait(ticket, || inner.sync_now())
    }

    /// Every message of a transcript, in the order appended. Personal data whose
    /// key was destroyed reads as [`crate::REDACTED`].
    ///
    /// # Errors
    /// [`Error::TranscriptNotFound`], or [`Error::Corrupt`] if a record fails its
    /// checks (never altered data).
    pub fn transcript(&self, id: &str) -> Result<Vec<Message>> {
        let entry = self.entry_by_caller(id)?;
        self.check_not_restricted(&entry.vid)?;
        Ok(self
            .read_entry(&entry.tid)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// A copy of a live transcript's index entry.
    fn entry_by_caller(&self, id: &str) -> Result<TranscriptEntry> {
        let index = self.inner.index.read();
        let tid = index.by_caller.get(id).ok_or(Error::TranscriptNotFound)?;
        let t = index
            .transcripts
            .get(tid)
            .ok_or(Error::TranscriptNotFound)?;
        if t.records.is_empty() {
            return Err(Error::TranscriptNotFound);
        }
        Ok(t.clone())
    }

    /// Reads every message of a transcript with its facts. The index entry and
    /// the segments are taken under one lock, so that compaction moving records
    /// cannot pair old locations with new files.
    fn read_entry(&self, tid: &Tid) -> Result<Vec<(Message, MessageFacts)>> {
        let (entry, segs) = {
            let index = self.inner.index.read();
            let entry = index
                .transcripts
                .get(tid)
                .ok_or(Error::TranscriptNotFound)?
                .clone();
            let segs = self.segments_for(&entry.records);
            (entry, segs)
        };
        let entry = &entry;
        let mut out = Vec::with_capacity(entry.records.len());
        for r in &entry.records {
            let seg = segs
                .get(&r.loc.seg)
                .ok_or_else(|| Error::corrupt(&self.inner.dir, r.loc.seg, "segment missing"))?;
            out.push(read_message(seg, r, entry)?);
        }
        Ok(out)
    }

    fn segments_for(&self, records: &[RecordRef]) -> HashMap<u64, Arc<Segment>> {
        let segs = self.inner.segments.read();
        let mut out = HashMap::new();
        for r in records {
            if let Some(s) = segs.get(&r.loc.seg) {
                out.entry(r.loc.seg).or_insert_with(|| Arc::clone(s));
            }
        }
        out
    }

    /// A visitor's transcripts, newest (by latest message) first, optionally
    /// only those with messages between `from` and `to` (inclusive, Unix ms).
    ///
    /// # Errors
    /// None today; the `Result` leaves room for lookups that touch disk.
    pub fn transcripts_by_email(
        &self,
        email: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<TranscriptInfo>> {
        let index = self.inner.index.read();
        let Some(vid) = index.by_email.get(&normalize_email(email)) else {
            return Ok(Vec::new());
        };
        self.check_not_restricted(vid)?;
        let Some(v) = index.visitors.get(vid) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (_, tid) in v.transcripts.iter().rev() {
            let Some(t) = index.transcripts.get(tid) else {
                continue;
            };
            let (Some(first), Some(last)) = (t.first_ts(), t.last_ts()) else {
                continue;
            };
            if from.is_some_and(|f| last < f) || to.is_some_and(|to| first > to) {
                continue;
            }
            out.push(info(t, first, last));
        }
        Ok(out)
    }

    /// Checks every record and keyring slot: checksums, decryption, joining.
    ///
    /// # Errors
    /// [`Error::Io`] if files cannot be read; damage is reported in the report.
    pub fn verify(&self) -> Result<VerifyReport> {
        let inner = &*self.inner;
        let mut report = VerifyReport::default();
        // Keyring.
        {
            let w = inner.writer.lock();
            let bytes = std::fs::read(&inner.keyring_path).at(&inner.keyring_path)?;
            for (i, chunk) in bytes.chunks(crate::keyring::SLOT_SIZE).enumerate().skip(1) {
                report.keyring_slots += 1;
                let Ok(slot) = <&[u8; crate::keyring::SLOT_SIZE]>::try_from(chunk) else {
                    report.problems.push(format!("keyring: slot {i} truncated"));
                    continue;
                };
                if let Err(reason) = w.keyring.decode_slot(i as u32, slot) {
                    report.problems.push(format!(
                        "corruption in {} at offset {}: keyring slot {i}: {reason}",
                        inner.keyring_path.display(),
                        i * crate::keyring::SLOT_SIZE
                    ));
                }
            }
        }
        let (index_records, entries): (u64, HashMap<Tid, TranscriptEntry>) = {
            let index = inner.index.read();
            let n = index
                .transcripts
                .values()
                .map(|t| t.records.len() as u64)
                .sum();
            (n, index.transcripts.clone())
        };
        let segs: Vec<(u64, Arc<Segment>)> = inner
            .segments
            .read()
            .iter()
            .map(|(k, v)| (*k, Arc::clone(v)))
            .collect();
        let active_len = inner.writer.lock().active.len;
        let mut seen_live = 0u64;
        for (id, seg) in segs {
            let bytes = match &*seg {
                Segment::Sealed { map, .. } => map.to_vec(),
                Segment::Active { .. } => seg.read(0, active_len as usize)?.into_owned(),
            };
            if let Err(e) = segment::check_header(seg.path(), &bytes, id) {
                report.problems.push(e.to_string());
                continue;
            }
            let mut records = Vec::new();
            let scan = segment::scan(
                seg.path(),
                &bytes,
                SEGMENT_HEADER,
                false,
                true,
                |off, size, rec| {
                    records.push((off, size, rec.header.tid, rec.header.seq));
                },
            )?;
            for d in scan.damage {
                report.problems.push(format!(
                    "corruption in {} at offset {}: {} ({} bytes)",
                    seg.path().display(),
                    d.offset,
                    d.reason,
                    d.skipped
                ));
            }
            for (off, size, tid, seq) in records {
                report.records += 1;
                let Some(t) = entries.get(&tid) else {
                    report.dead_records += 1;
                    continue;
                };
                let Some(r) = t
                    .records
                    .iter()
                    .find(|r| r.seq == seq && r.loc.seg == id && r.loc.off == off)
                else {
                    report.dead_records += 1;
                    continue;
                };
                debug_assert_eq!(r.loc.len as usize, size);
                seen_live += 1;
                match read_message(&seg, r, t) {
                    Ok(_) => report.live_records += 1,
                    Err(e) => report.problems.push(e.to_string()),
                }
            }
        }
        if seen_live != index_records {
            report.problems.push(format!(
                "index lists {index_records} live records but the segments hold {seen_live}"
            ));
        }
        Ok(report)
    }

    /// Sizes, counts and garbage.
    pub fn stats(&self) -> Stats {
        let inner = &*self.inner;
        let (slots, free) = {
            let w = inner.writer.lock();
            (u64::from(w.keyring.len()), w.keyring.free_count() as u64)
        };
        let mut s = Stats {
            keyring_bytes: slots * crate::keyring::SLOT_SIZE as u64,
            keyring_slots_free: free,
            keyring_slots_used: slots
                .saturating_sub(u64::from(crate::keyring::FIRST_DATA_SLOT) + free),
            current_rules_version: RULES_VERSION,
            ..Stats::default()
        };
        let index = inner.index.read();
        for t in index.transcripts.values() {
            if t.records.is_empty() {
                continue;
            }
            s.transcripts += 1;
            s.messages += t.records.len() as u64;
            if t.pii_key.is_none() {
                s.transcripts_redacted += 1;
            }
            *s.rules_versions.entry(t.rules_version).or_default() += 1;
        }
        s.visitors = index.by_email.len() as u64;
        for id in inner.segments.read().keys() {
            let bytes =
                std::fs::metadata(inner.dir.join(segment::file_name(*id))).map_or(0, |m| m.len());
            let usage = index.usage.get(id).copied().unwrap_or_default();
            s.segments += 1;
            s.segment_bytes += bytes;
            s.live_bytes += usage.live;
            s.dead_bytes += usage.dead;
            s.per_segment.push((*id, bytes, usage));
        }
        s
    }

    /// Syncs, writes the index checkpoint and closes the store.
    ///
    /// # Errors
    /// [`Error::Io`] if the final sync or checkpoint fails.
    pub fn close(self) -> Result<()> {
        self.inner.shutdown()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Inner {
    fn sync_now(&self) -> Result<()> {
        if self.keyring_dirty.swap(false, Ordering::SeqCst) {
            crate::failpoint::check("keyring.sync").at(&self.keyring_path)?;
            self.keyring_file.sync_data().at(&self.keyring_path)?;
        }
        let (path, file) = self.active_file.lock().clone();
        segment::sync(&path, &file)
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
        ckpt.dead = index
            .usage
            .iter()
            .filter(|(id, _)| covered(**id))
            .map(|(id, u)| (*id, u.dead, u.dead_since))
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
        let me = std::thread::current().id();
        for h in std::mem::take(&mut *self.background.lock()) {
            // The last handle may be dropped by a background thread itself.
            if h.thread().id() != me {
                h.thread().unpark();
                let _ = h.join();
            }
        }
        self.commit.check()?;
        let w = self.writer.lock();
        let ticket = self.commit.ticket();
        self.commit.wait(ticket, || self.sync_now())?;
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
        let store = Store { inner };
        let _ = store.compact(&options);
    }
}

/// Creates a transcript's keys and keyring slots (written, not synced).
fn create_transcript(
    w: &mut Writer,
    vid: Vid,
    caller_id: &str,
    min_created: i64,
) -> Result<TranscriptEntry> {
    let now = Timestamp::now().unix_millis().max(min_created);
    let tid: Tid = random_array()?;
    let content_key = Key::random()?;
    let pii_key = Key::random()?;
    let pii_slot = w.keyring.allocate()?;
    w.keyring.write(
        pii_slot,
        &Slot::Pii(PiiSlot {
            tid,
            pii_key: pii_key.clone(),
        }),
    )?;
    let content_slot = w.keyring.allocate()?;
    w.keyring.write(
        content_slot,
        &Slot::Transcript(TranscriptSlot {
            tid,
            vid,
            content_key: content_key.clone(),
            pii_slot,
            rules_version: RULES_VERSION,
            created_millis: now,
            caller_id: caller_id.to_owned(),
        }),
    )?;
    Ok(TranscriptEntry {
        tid,
        vid,
        caller_id: caller_id.to_owned(),
        content_slot,
        pii_slot,
        content_key,
        pii_key: Some(pii_key),
        rules_version: RULES_VERSION,
        created_millis: now,
        records: Vec::new(),
        ts_range: None,
    })
}

/// Where a message of a batch goes.
enum Target {
    Existing(Tid),
    /// The n-th transcript created by this batch; this message creates it.
    NewFirst(usize, String),
    /// A later message of the n-th transcript created by this batch.
    New(usize),
}

/// A message split and encoded, ready to seal.
struct Prepared<'a> {
    msg: &'a Message,
    content: Vec<u8>,
    pii: Option<zeroize::Zeroizing<Vec<u8>>>,
}

impl Prepared<'_> {
    fn size_hint(&self) -> usize {
        record::FRAME_HEADER
            + record::RECORD_HEADER
            + self.content.len()
            + self.pii.as_ref().map_or(0, |p| p.len())
            + 2 * TAG_LEN
    }
}

fn prepare<'a>(msg: &'a Message, detector: &Detector, max: usize) -> Result<Prepared<'a>> {
    if msg.transcript.is_empty() {
        return Err(Error::invalid("field `transcript` is empty"));
    }
    let (content, pii) = split::split(msg, detector);
    let content = crate::codec::encode(&content);
    let pii = pii.map(|mut p| {
        let bytes = zeroize::Zeroizing::new(crate::codec::encode(&p));
        zeroize::Zeroize::zeroize(&mut p);
        bytes
    });
    let size = content.len() + pii.as_ref().map_or(0, |p| p.len());
    if size > max {
        return Err(Error::invalid(format!(
            "message is larger than the limit of {max} bytes"
        )));
    }
    Ok(Prepared { msg, content, pii })
}

fn info(t: &TranscriptEntry, first: i64, last: i64) -> TranscriptInfo {
    TranscriptInfo {
        id: t.caller_id.clone(),
        first: Timestamp::from_unix_millis(first),
        last: Timestamp::from_unix_millis(last),
        messages: t.records.len(),
        redacted: t.pii_key.is_none(),
        rules_version: t.rules_version,
    }
}

/// Facts about a stored message that the message itself does not carry.
#[derive(Clone, Debug, Default)]
pub(crate) struct MessageFacts {
    /// Position in the transcript.
    pub seq: u32,
    /// Size of the uploaded file, for file messages (kept after redaction).
    pub file_size: Option<u64>,
    /// SHA-256 of the uploaded file while its PII key lives.
    pub file_sha256: Option<[u8; 32]>,
}

/// Reads, authenticates and joins one record.
fn read_message(
    seg: &Segment,
    r: &RecordRef,
    t: &TranscriptEntry,
) -> Result<(Message, MessageFacts)> {
    let path = seg.path();
    let bytes = seg.read(r.loc.off, r.loc.len as usize)?;
    let corrupt = |why: &str| Error::corrupt(path, r.loc.off, why.to_owned());
    let (rec, size) = record::decode(&bytes).map_err(|e| corrupt(&e.describe()))?;
    if size != r.loc.len as usize || rec.header.tid != t.tid || rec.header.seq != r.seq {
        return Err(corrupt("record is not the one the index expects"));
    }
    let h = &rec.header;
    let content_plain = zeroize::Zeroizing::new(
        t.content_key
            .open(&h.content_nonce, &record::aad(b'C', h), rec.content)
            .ok_or_else(|| corrupt("record content does not authenticate"))?,
    );
    let content: ContentPart = crate::codec::decode(&content_plain)
        .ok_or_else(|| corrupt("record content does not decode"))?;
    let pii: Option<PiiPart> = match (&t.pii_key, rec.pii.is_empty()) {
        (Some(key), false) => {
            let plain = zeroize::Zeroizing::new(
                key.open(&h.pii_nonce, &record::aad(b'P', h), rec.pii)
                    .ok_or_else(|| corrupt("record PII part does not authenticate"))?,
            );
            Some(
                crate::codec::decode(&plain)
                    .ok_or_else(|| corrupt("record PII part does not decode"))?,
            )
        }
        (Some(_), true) => Some(PiiPart::default()),
        (None, _) => None,
    };
    let ctx = JoinContext {
        transcript: &t.caller_id,
        ts_millis: h.ts_millis,
    };
    let msg = split::join(&ctx, &content, pii.as_ref()).map_err(|e| corrupt(e.0))?;
    let facts = MessageFacts {
        seq: h.seq,
        file_size: match &content.body {
            split::ContentBody::File { size, .. } => Some(*size),
            _ => None,
        },
        file_sha256: split::file_sha256(pii.as_ref()),
    };
    Ok((msg, facts))
}

/// Builds the index's key and directory part from the keyring's slots; also
/// returns slots to wipe: PII slots no transcript slot names (left by a
/// deletion cut short) and second copies left by a keyring compaction cut short.
fn index_from_slots(slots: Vec<(u32, Slot)>) -> (Index, Vec<u32>) {
    let mut index = Index::default();
    let mut pii: HashMap<u32, PiiSlot> = HashMap::new();
    let mut transcripts = Vec::new();
    let mut wipe = Vec::new();
    for (i, slot) in slots {
        match slot {
            Slot::Transcript(t) => transcripts.push((i, t)),
            Slot::Pii(p) => {
                pii.insert(i, p);
            }
            Slot::Visitor(v) if index.visitors.contains_key(&v.vid) => wipe.push(i),
            Slot::Visitor(v) => {
                index.by_email.insert(v.email.clone(), v.vid);
                index.visitors.insert(
                    v.vid,
                    VisitorEntry {
                        email: v.email,
                        slot: i,
                        transcripts: Default::default(),
                        tids: Default::default(),
                    },
                );
            }
        }
    }
    // Of two copies of one transcript slot, keep the one whose PII key resolves.
    let resolves = |t: &TranscriptSlot| pii.get(&t.pii_slot).is_some_and(|p| p.tid == t.tid);
    transcripts.sort_by_key(|(i, t)| (t.tid, !resolves(t), *i));
    let mut seen = std::collections::HashSet::new();
    for (slot, t) in transcripts {
        if !seen.insert(t.tid) {
            wipe.push(slot);
            continue;
        }
        let pii_key = pii
            .get(&t.pii_slot)
            .filter(|p| p.tid == t.tid)
            .map(|p| p.pii_key.clone());
        let entry = TranscriptEntry {
            tid: t.tid,
            vid: t.vid,
            caller_id: t.caller_id.clone(),
            content_slot: slot,
            pii_slot: if pii_key.is_some() { t.pii_slot } else { 0 },
            content_key: t.content_key.clone(),
            pii_key,
            rules_version: t.rules_version,
            created_millis: t.created_millis,
            records: Vec::new(),
            ts_range: None,
        };
        // If two generations share a caller id, the newer wins.
        let newer = index
            .by_caller
            .get(&t.caller_id)
            .and_then(|old| index.transcripts.get(old))
            .is_none_or(|old| old.created_millis <= t.created_millis);
        if newer {
            index.by_caller.insert(t.caller_id.clone(), t.tid);
        }
        index.insert_transcript(entry);
    }
    let named: std::collections::HashSet<u32> =
        index.transcripts.values().map(|t| t.pii_slot).collect();
    wipe.extend(pii.keys().copied().filter(|s| !named.contains(s)));
    (index, wipe)
}

/// Loads the checkpoint, scans what it does not cover, truncates a torn tail,
/// and opens the segments for reading and appending.
fn recover_segments(
    dir: &Path,
    options: &Options,
    index: &mut Index,
    report: &mut RecoveryReport,
) -> Result<(Active, BTreeMap<u64, Arc<Segment>>)> {
    // A compaction cut short leaves its unfinished output behind.
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.to_str().is_some_and(|p| p.ends_with(".seg.tmp")) {
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    let mut ids = segment::list(dir)?;
    // A last segment too short to hold its header was cut off while being
    // created (or truncated): it holds no records.
    while let Some(&last) = ids.last() {
        let path = dir.join(segment::file_name(last));
        let len = std::fs::metadata(&path).at(&path)?.len();
        if len >= SEGMENT_HEADER {
            break;
        }
        std::fs::remove_file(&path).at(&path)?;
        crate::fsutil::sync_dir(dir)?;
        report.truncated = Some((path, 0, len));
        ids.pop();
    }
    if ids.is_empty() {
        let active = Active::create(dir, 1)?;
        let mut segs = BTreeMap::new();
        segs.insert(1, Arc::new(active.reader()));
        return Ok((active, segs));
    }

    // Where scanning starts: (segment id, offset).
    let mut start: (u64, u64) = (ids.first().copied().unwrap_or(1), SEGMENT_HEADER);
    if options.checkpoint
        && let Some(ckpt) = Checkpoint::load(dir).filter(|c| checkpoint_fits(dir, c, &ids))
    {
        for (tid, recs) in ckpt.transcripts {
            index.load_records(&tid, recs);
        }
        for (id, dead, since) in ckpt.dead {
            let u = index.usage.entry(id).or_default();
            u.dead += dead;
            u.dead_since = since;
        }
        if let Some(&(id, len)) = ckpt.segments.last() {
            start = (id, len);
        }
        report.checkpoint_used = true;
    }

    let mut segs = BTreeMap::new();
    let last_id = ids.last().copied().unwrap_or(1);
    let mut active = None;
    for &id in &ids {
        let path = dir.join(segment::file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(id == last_id)
            .open(&path)
            .at(&path)?;
        let is_last = id == last_id;
        if id >= start.0 {
            let map = segment::map(&path, &file)?;
            segment::check_header(&path, &map, id)?;
            let from = if id == start.0 {
                start.1
            } else {
                SEGMENT_HEADER
            };
            let mut scanned = 0u64;
            let scan = segment::scan(
                &path,
                &map,
                from,
                is_last,
                options.salvage,
                |off, size, rec| {
                    scanned += 1;
                    let r = RecordRef {
                        seq: rec.header.seq,
                        ts: rec.header.ts_millis,
                        loc: Loc {
                            seg: id,
                            off,
                            len: size as u32,
                        },
                        pii_len: rec.header.pii_len,
                    };
                    // A record already indexed (from the checkpoint, or a second
                    // copy left by a compaction cut short) counts as dead.
                    index.add_record(&rec.header.tid, r);
                },
            )?;
            report.records_scanned += scanned;
            for d in scan.damage {
                report
                    .skipped
                    .push((path.clone(), d.offset, d.skipped, d.reason));
            }
            let file_len = map.len() as u64;
            drop(map);
            if let Some(at) = scan.torn_at {
                file.set_len(at).at(&path)?;
                file.sync_all().at(&path)?;
                report.truncated = Some((path.clone(), at, file_len - at));
            }
            if is_last {
                active = Some(Active::reopen(path.clone(), id, scan.end)?);
                if scan.end < file_len && scan.torn_at.is_none() {
                    // Zero-filled space after the data: cut it off so appends
                    // continue right after the last record.
                    file.set_len(scan.end).at(&path)?;
                    file.sync_all().at(&path)?;
                }
            }
        }
        if is_last {
            if active.is_none() {
                // Covered by the checkpoint up to its end: append after it.
                let len = file.metadata().at(&path)?.len();
                active = Some(Active::reopen(path.clone(), id, len)?);
            }
            if let Some(a) = &active {
                segs.insert(id, Arc::new(a.reader()));
            }
        } else {
            let map = segment::map(&path, &file)?;
            if id < start.0 {
                segment::check_header(&path, &map, id)?;
            }
            segs.insert(id, Arc::new(Segment::Sealed { path, map }));
        }
    }
    let active = active.ok_or_else(|| Error::corrupt(dir, 0, "no active segment"))?;
    Ok((active, segs))
}

/// A checkpoint is usable only if every segment it covers still exists, at
/// least as long as it was, and no older segment is missing from it.
fn checkpoint_fits(dir: &Path, ckpt: &Checkpoint, ids: &[u64]) -> bool {
    let Some(&(last_covered, _)) = ckpt.segments.last() else {
        return false;
    };
    let covered: Vec<u64> = ckpt.segments.iter().map(|s| s.0).collect();
    let older: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|&id| id <= last_covered)
        .collect();
    if covered != older {
        return false;
    }
    ckpt.segments.iter().all(|(id, len)| {
        std::fs::metadata(dir.join(segment::file_name(*id))).is_ok_and(|m| m.len() >= *len)
            && *len >= SEGMENT_HEADER
    })
}
