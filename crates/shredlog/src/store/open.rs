//! Recovery at open: the index from the keyring's slots, the sealed
//! segments' record-location files, the checkpoint, the scan of what they do
//! not cover, torn tails.
//!
//! Only bytes written after the last durable commit may be cut without an
//! error. What was acknowledged is known from the keyring's durable marks
//! (the active segment's synced length), the checkpoint (lengths that were
//! synced when it was written) and the footers of sealed segments; anything
//! less is corruption, named with its file and offset. A read-only open
//! changes no byte: it reports what a writable open would cut.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parking_lot::{Mutex, RwLock};

use super::commit::GroupCommit;
use super::locations;
use super::{Engine, RecoveryReport, Store, Writer};
use crate::config::Options;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::Stamp;
use crate::ids::{IdMap, SlotMap};
use crate::index::{
    CallerHash, CallerKey, Checkpoint, Describes, Index, Loc, Manifest, Rebuild, RecordRef,
    SegmentUsage, Sidecar, TranscriptEntry, run_file_name, sidecar_file_name, sidecar_id_of,
};
use crate::keyring::{
    KeyCache, Keyring, Marks, OpenMode, Slot, SlotSink, Tail, TranscriptSlot, newer_revision,
};
use crate::pii::Detector;
use crate::policy::Policy;
use crate::record::{self, FOOTER_FRAME, Tid, Vid};
use crate::screen::Screen;
use crate::segment::{self, Active, SEGMENT_HEADER, ScanRules, Segment, SegmentHeader};
use crate::shred::{
    AUDIT_FILE, AuditLog, AuditMarks, AuditMode, InMemory, Owner, Shredder, Wipe, WipeUnwiped,
};

const LOCK_FILE: &str = "LOCK";

impl Store {
    /// Opens the store in `dir`, creating it if needed (and allowed by
    /// `options.create`).
    ///
    /// Recovery: the keyring is read, each sealed segment's record-location
    /// file taken (or rebuilt from the segment when it is missing, stale or
    /// damaged; only in memory when read-only), the index checkpoint loaded
    /// when valid, and the last segment after it scanned; only a write a
    /// crash cut short after the last durable commit is cut off; anything
    /// acknowledged that is missing or damaged is an error, unless
    /// `options.salvage` (read-only) skips and reports it. Logged privacy
    /// operations cut short are finished.
    ///
    /// # Errors
    /// [`Error::Locked`] if another process has it open, [`Error::NotAStore`]
    /// for a directory without a store that may not be created,
    /// [`Error::Corrupt`] for damage (file and offset named), [`Error::Kek`]
    /// for a missing or wrong key-encryption key, [`Error::Io`] for I/O
    /// failures.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        let dir = dir.as_ref();
        match Store::open_with(dir, options.clone(), None) {
            // The index's run is derived data: when it is damaged where open
            // reads it, the index is rebuilt instead (a writing open writes
            // a new run).
            Err(Error::Corrupt {
                path,
                offset,
                reason,
            }) if path.extension().is_some_and(|x| x == "run")
                || path.file_name().is_some_and(|n| n == "index.manifest") =>
            {
                let why = format!(
                    "corruption in {} at offset {offset}: {reason}",
                    path.display()
                );
                Store::open_with(dir, options, Some(why))
            }
            r => r,
        }
    }

    /// [`Store::open`]; `refused`: the index's run is not used, for that
    /// reason.
    fn open_with(dir: &Path, mut options: Options, refused: Option<String>) -> Result<Store> {
        let dir = dir.to_path_buf();
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
        // The directory is listed once (the lock keeps other writers out),
        // with each file's inode number.
        let (names, inodes) = crate::fsutil::listing(&dir)?;
        let detector =
            Detector::new(&options.detector).map_err(|e| Error::invalid(e.to_string()))?;
        let screen = Screen::new(
            &options.detector,
            options.allow_unerasable_personal_data_in_ids,
        )?;
        let mut report = RecoveryReport::default();

        let keyring_path = dir.join("keyring");
        let keyring_missing = std::fs::metadata(&keyring_path).map_or(true, |m| m.len() == 0);
        if keyring_missing && !segment::ids_in(&names).is_empty() {
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
        let mode = OpenMode {
            create,
            read_only,
            salvage: options.salvage,
        };
        // The index's run, unless salvaging (which trusts no derived file).
        // A damaged manifest is derived data too: the index is rebuilt.
        report.index_run_refused = refused;
        let manifest =
            if options.checkpoint && !options.salvage && report.index_run_refused.is_none() {
                match Manifest::load(&dir) {
                    Ok(m) => m,
                    Err(e) => {
                        report.index_run_refused = Some(e.to_string());
                        None
                    }
                }
            } else {
                None
            };
        // The keyring, and the directory part of the index built from it.
        let mut indexer = SlotIndexer::new(&dir, manifest, options.cache_bytes);
        let (loaded, indexed) =
            Keyring::open(&dir, options.kek.as_ref().map(|k| &k.0), mode, &mut indexer)
                .and_then(|loaded| Ok((loaded, indexer.finish()?)))?;
        // The checkpoint (recover_segments decides whether it fits). A
        // panicking decoder counts as an unusable checkpoint.
        let checkpoint = options
            .checkpoint
            .then(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Checkpoint::load(&dir)))
                    .ok()
                    .flatten()
            })
            .flatten();
        let Indexed {
            mut index,
            mut leftovers,
            twins,
            mut manifest,
            refused,
            links,
        } = indexed;
        if refused.is_some() {
            report.index_run_refused = refused;
        }
        report.index_run_used = manifest.is_some();
        // The byte accounting of the sealed segments the run covers.
        let known_usage: HashMap<(u64, u32), SegmentUsage> = manifest
            .as_ref()
            .map(|m| m.usage.iter().map(|(id, g, u)| ((*id, *g), *u)).collect())
            .unwrap_or_default();
        if let Some(d) = loaded.damaged.first()
            && !options.salvage
        {
            return Err(Error::corrupt(
                loaded.keyring.path(),
                d.offset,
                format!("keyring slot {}: {}", d.index, d.reason),
            ));
        }
        report.damaged_slots = loaded
            .damaged
            .iter()
            .map(|d| (d.index, d.offset, d.reason.to_owned()))
            .collect();
        let marks = loaded.marks;
        let mut keyring = loaded.keyring;
        if let Some(m) = &mut manifest {
            // Slots written from now on are found at open above the run's.
            keyring.set_floor(m.keyring_cells);
            settle_directory(&mut index, &links, &keyring)?;
            // The active segment's generations, as the run has them.
            if !index.use_run_rows(std::mem::take(&mut m.held)) {
                return Err(Error::corrupt(
                    dir.join(crate::index::MANIFEST_FILE),
                    0,
                    "the index manifest's rows of held generations are not whole rows in order",
                ));
            }
        }
        // Keys are read when a transcript is read or written.
        let key_cache = KeyCache::new(Some(keyring.reader()), options.key_cache_entries);
        // Emails are looked up in the keyring's directory, never held.
        let directory = keyring.directory_reader();

        let Recovered {
            active,
            segments,
            last,
        } = recover_segments(
            Listing {
                dir: &dir,
                names: &names,
                inodes: &inodes,
            },
            &options,
            marks,
            checkpoint,
            &known_usage,
            &mut index,
            &mut report,
        )?;
        let mut audit_marks = marks.map_or(AuditMarks::default(), |m| AuditMarks {
            entries: m.audit_entries,
            bytes: m.audit_bytes,
            done_entries: m.audit_done_entries,
            done_bytes: m.audit_done_bytes,
        });
        // Operations logged since the run was written: the run does not
        // show their effects, so they are carried out on the index again
        // (and on the keyring only where a wipe had not reached it).
        if let Some(m) = &manifest
            && m.audit_entries < audit_marks.done_entries
        {
            audit_marks.done_entries = m.audit_entries;
            audit_marks.done_bytes = m.audit_bytes;
        }
        let (audit, entries, audit_recovery) = AuditLog::open(
            &dir,
            audit_marks,
            AuditMode {
                read_only,
                salvage: options.salvage,
            },
        )?;
        report.audit_truncated = audit_recovery.torn;
        report.audit_entries_read = entries.len() as u64;
        for (offset, reason) in audit_recovery.damage {
            report
                .skipped
                .push((dir.join(AUDIT_FILE), offset, 0, reason));
        }
        let mut policy = Policy::load(&dir)?;
        let redone = {
            let mut in_memory = InMemory;
            let mut unwiped = WipeUnwiped::new(&mut keyring, !read_only);
            let wipe: &mut dyn Wipe = match (&manifest, read_only) {
                // An operation counts as finished here only if a slot it
                // destroys was still there.
                (Some(_), _) => &mut unwiped,
                (None, true) => &mut in_memory,
                (None, false) => unwiped.keyring(),
            };
            let mut shredder = Shredder {
                index: &mut index,
                keys: &key_cache,
                wipe,
            };
            crate::shred::redo::finish_pending(&mut shredder, &entries, &mut policy)?
        };
        if !read_only && redone.policy_changed {
            policy.save(&dir)?;
        }
        report.finished = redone.ops;
        // Of two generations of one caller id, the committed one is seen.
        for t in index.hide_generations(committed_generation)? {
            leftovers.push(t.content_slot);
            leftovers.extend(t.pii_slot);
            key_cache.forget(&t.tid);
        }
        // Keys of appends that never wrote a record.
        for t in index.drop_recordless()? {
            leftovers.push(t.content_slot);
            leftovers.extend(t.pii_slot);
            key_cache.forget(&t.tid);
        }
        report.leftover_slots = leftovers.len();
        report.email_twins = twins;
        if let Some(a) = &active {
            let (entries, bytes) = audit.marks();
            // Every logged operation has its effects on disk once the wipes
            // just made are synced (below): the next state may say so.
            keyring.note_audit(entries, bytes, Some((entries, bytes)));
            keyring.note_segment(a.id, a.durable_len());
        }
        if !read_only && redone.keyring_changed {
            keyring.sync()?;
        }
        index.set_caching(true);
        let keyring_file = keyring.file();
        let keyring_path = keyring.path().to_owned();
        let active_file = active.as_ref().map(Active::sync_handle);
        let engine = Arc::new(Engine {
            dir,
            detector,
            screen,
            _lock: lock,
            caller_key: index.caller_key().clone(),
            run_number: std::sync::atomic::AtomicU64::new(manifest.as_ref().map_or(0, |m| m.run)),
            index: RwLock::new(index),
            keys: key_cache,
            directory,
            writer: Mutex::new(Writer {
                keyring,
                active,
                last,
                checkpoint_due: false,
                run_manifest: manifest.clone(),
            }),
            segments: RwLock::new(segments),
            commit: GroupCommit::default(),
            keyring_file,
            keyring_path,
            keyring_dirty: AtomicBool::new(false),
            early_syncs: Mutex::new(Vec::new()),
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
        // Slots that belong to nothing are wiped before anything is served:
        // among them the copies of keys a keyring compaction cut short left
        // (the other copy is the one in use). Left for the next compaction,
        // such a copy outlived an erasure of its generation, and an open
        // after one that found the used copy wiped took the copy back
        // (docs/FORMAT.md §6.9).
        let wiped = !engine.options.read_only
            && engine.commit.is_clean()
            && !engine.leftovers.lock().is_empty();
        if wiped {
            engine.drop_leftovers()?;
        }
        if !engine.options.read_only && engine.options.checkpoint {
            let mut w = engine.writer.lock();
            // A writing open without a usable run writes one now (the next
            // open then reads it instead of every slot), and forgets what
            // the index held in memory; it removes runs no manifest names.
            // (Wiping leftovers made the keyring stop naming the run.)
            if (manifest.is_none() || wiped) && engine.commit.is_clean() {
                engine.write_run(&mut w)?;
            }
            let keep = run_file_name(engine.run_number.load(std::sync::atomic::Ordering::SeqCst));
            remove_stray_runs(&engine.dir, &names, &keep)?;
        }
        engine.start_background()?;
        Ok(Store { engine })
    }
}

/// Removes index run files other than `keep` (left by a writer stopped
/// between writing a run and removing the old one).
fn remove_stray_runs(dir: &Path, names: &[String], keep: &str) -> Result<()> {
    for name in names {
        let is_run =
            name.starts_with("index-") && (name.ends_with(".run") || name.ends_with(".run.tmp"));
        if is_run && name != keep {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                // Listed earlier in this open, and gone since: nothing to do.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                r => r.at(&path)?,
            }
        }
    }
    Ok(())
}

/// Of several generations of one caller id, the committed one: the oldest
/// (creation time, then tid) that has a record, else the oldest. Later ones
/// are a rewrite cut short before its commit record, or keys of an append
/// that never wrote a record.
fn committed_generation(versions: &[&TranscriptEntry]) -> Option<Tid> {
    let mut sorted: Vec<&&TranscriptEntry> = versions.iter().collect();
    sorted.sort_by_key(|t| (t.created_millis, t.tid));
    sorted
        .iter()
        .find(|t| !t.is_empty())
        .or(sorted.first())
        .map(|t| t.tid)
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

/// What the keyring's slots give open.
struct Indexed {
    index: Index,
    leftovers: Vec<u32>,
    /// Directory entries sharing their address with another visitor's.
    twins: usize,
    /// The manifest of the run the index builds on, if it does.
    manifest: Option<Manifest>,
    /// Why the run the manifest names was not used.
    refused: Option<String>,
    /// Links to the directory entries written since the run.
    links: Vec<(Vid, u32, u8)>,
}

/// Takes the directory entries written since the run, as their links say
/// (`links`: visitor, entry's cell, revision, in slot order): of two of one
/// visitor the newer revision is where its entry is. (An entry moved
/// otherwise — a growth of the directory's table, a rectification that
/// moved it — made the keyring stop naming the run: open then rebuilds.)
///
/// A link is taken only if its cell still holds the visitor's entry: one
/// wiped since (an erasure, a retention that left the visitor nothing
/// personal) may have given its cell to another visitor's entry.
fn settle_directory(index: &mut Index, links: &[(Vid, u32, u8)], keyring: &Keyring) -> Result<()> {
    let mut latest: IdMap<(u32, u8)> = IdMap::default();
    for &(vid, cell, revision) in links {
        match latest.get(&vid) {
            Some(&(_, held)) if !newer_revision(revision, held) && revision != held => {}
            _ => {
                latest.insert(vid, (cell, revision));
            }
        }
    }
    for (vid, (cell, _)) in latest {
        let holds = matches!(keyring.read_slot(cell), Ok(Some(s)) if Owner::Visitor(vid).holds(&s));
        let named = index.visitor_slot(&vid)?;
        match (holds, named) {
            (true, Some(slot)) if slot == cell => {}
            (true, _) => index.set_directory_slot(&vid, cell)?,
            (false, Some(slot)) if slot == cell => index.set_directory_slot(&vid, 0)?,
            (false, _) => {}
        }
    }
    Ok(())
}

/// Builds the index's key and directory part from the keyring's slots, fed
/// one at a time as the keyring is read ([`SlotIndexer::add`]); then
/// [`SlotIndexer::finish`] also returns the leftover slots: PII slots no
/// transcript slot names (left by a deletion cut short) and second copies
/// left by a keyring compaction cut short. Open only leaves them out of the
/// index; a later compaction of a sound store wipes them.
///
/// Runs at every open over every slot, so it moves what it takes out of the
/// slots instead of copying it, straight into the index (a transcript slot
/// becomes its generation's entry at once, with its PII slot settled at the
/// end). It keeps no key: a slot's keys are wiped as soon as it has been
/// looked at (the key cache reads them again when a transcript is read or
/// written), so that open never holds every key.
#[derive(Default)]
pub(super) struct SlotIndexer {
    index: Index,
    /// PII slot → the generation it belongs to.
    pii: SlotMap<Tid>,
    /// Second copies of transcript slots (a keyring compaction cut short;
    /// rare), settled against the copy in the index at the end.
    copies: Vec<(u32, Found)>,
    leftovers: Vec<u32>,
    /// Directory entries of a revision other than 0 (rewritten elsewhere by
    /// a rectification; rare): visitor → (slot, revision).
    revisions: IdMap<(u32, u8)>,
    twins: super::twins::Twins,
    /// The first error a slot met (the index's run could not be read).
    failed: Option<Error>,
    dir: PathBuf,
    cache_bytes: usize,
    /// The run the index builds on, if any.
    run: Option<RunInUse>,
    /// Why the run the manifest names was not used.
    refused: Option<String>,
}

/// A transcript slot as open keeps it: all but its key.
struct Found {
    tid: Tid,
    vid: Vid,
    pii_slot: u32,
    rules_version: u16,
    created_millis: i64,
    caller: CallerHash,
}

impl Found {
    fn of(t: TranscriptSlot, index: &Index) -> Found {
        // The content key is dropped (and wiped) here.
        Found {
            tid: t.tid,
            vid: t.vid,
            pii_slot: t.pii_slot,
            rules_version: t.rules_version,
            created_millis: t.created_millis,
            caller: index.caller_hash(&t.caller_id),
        }
    }
}

impl SlotSink for &mut SlotIndexer {
    fn start(
        &mut self,
        keyring_id: &[u8; 16],
        directory_key: Option<&[u8; 32]>,
        marks: Option<&Marks>,
    ) -> Option<Tail> {
        let key = directory_key.map_or_else(CallerKey::random, CallerKey::derive);
        self.index = Index::new(key);
        self.index.set_cache_bytes(self.cache_bytes);
        // Caching starts once open is done.
        self.index.set_caching(false);
        let run = self.run.take()?;
        let m = &run.manifest;
        let refused = if m.keyring_id != *keyring_id {
            Some("the index manifest belongs to another keyring".to_owned())
        } else if marks.is_none_or(|k| k.run != m.run) {
            Some(format!(
                "the index manifest names run {}, the keyring another (an older copy, or one cut short)",
                m.run
            ))
        } else if directory_key.is_none() || m.caller_check != self.index.caller_key().check() {
            Some("the index run's caller-id hashes are under another key".to_owned())
        } else {
            let path = self.dir.join(run_file_name(m.run));
            self.index
                .use_run(&path, m.run, m.transcripts, m.directory as usize)
                .err()
                .map(|e| e.to_string())
        };
        match refused {
            Some(why) => {
                // Derived data: the index is rebuilt from every slot.
                self.refused = Some(why);
                self.index = Index::new(self.index.caller_key().clone());
                self.index.set_cache_bytes(self.cache_bytes);
                self.index.set_caching(false);
                None
            }
            None => {
                let tail = Tail {
                    floor: run.manifest.keyring_cells,
                    occupancy: run.manifest.occupancy.clone(),
                    stranded: run.manifest.stranded,
                };
                self.run = Some(run);
                Some(tail)
            }
        }
    }

    fn slot(&mut self, index: u32, slot: Slot) {
        if let Err(e) = self.add(index, slot) {
            self.failed.get_or_insert(e);
        }
    }
}

/// What open takes from the index manifest.
struct RunInUse {
    manifest: Manifest,
    /// Directory entries written since the run, as their links say:
    /// (visitor, entry's cell, revision).
    entries: Vec<(Vid, u32, u8)>,
}

impl SlotIndexer {
    /// An indexer that builds on the run `manifest` names (if it fits the
    /// keyring: checked when the keyring's header is read), for a store in
    /// `dir`, keeping at most `cache_bytes` of blocks.
    fn new(dir: &Path, manifest: Option<Manifest>, cache_bytes: usize) -> SlotIndexer {
        SlotIndexer {
            dir: dir.to_owned(),
            cache_bytes,
            run: manifest.map(|manifest| RunInUse {
                manifest,
                entries: Vec::new(),
            }),
            ..SlotIndexer::default()
        }
    }

    /// Takes slot `i`.
    pub(super) fn add(&mut self, i: u32, slot: Slot) -> Result<()> {
        if let Some(run) = &mut self.run {
            // The run holds every slot below the floor; a directory entry
            // may be anywhere (in the directory's table), and is checked
            // against the run's at the end.
            match &slot {
                Slot::Link(l) => {
                    run.entries.push((l.vid, l.cell, l.revision));
                    return Ok(());
                }
                _ if i < run.manifest.keyring_cells => return Ok(()),
                _ => {}
            }
        }
        match slot {
            Slot::Transcript(t) => {
                let t = Found::of(t, &self.index);
                if self.index.transcript(&t.tid)?.is_some() {
                    self.copies.push((i, t));
                    return Ok(());
                }
                // Its PII slot is taken as named, and checked once every
                // PII slot has been seen (`finish`).
                let entry = TranscriptEntry::new(
                    t.tid,
                    t.vid,
                    t.caller,
                    i,
                    Some(t.pii_slot),
                    t.rules_version,
                    t.created_millis,
                );
                // Of two generations of one caller id, which one is seen is
                // settled once the log has been read (`committed_generation`).
                self.index.add_transcript(entry, false)?;
            }
            Slot::Pii(p) => {
                self.pii.insert(i, p.tid);
            }
            // Where an entry is (the entry itself tells it here).
            Slot::Link(_) => {}
            Slot::Visitor(v) => {
                // A second directory entry of a visitor is a copy left by a
                // keyring compaction cut short (the same revision: either
                // will do), or the old entry of a rectification cut short
                // (the newer revision wins).
                let (vid, revision) = (v.vid, v.revision);
                if revision != 0 {
                    self.revisions.insert(vid, (i, revision));
                }
                if self.index.add_visitor(v.vid, i)? {
                    self.twins.add(vid, &v.email);
                    return Ok(());
                }
                let held = self.index.visitor_slot(&vid)?.unwrap_or(0);
                let held_revision = match self.revisions.get(&vid) {
                    Some(&(slot, r)) if slot == held => r,
                    _ => 0,
                };
                if newer_revision(revision, held_revision) {
                    self.leftovers.push(held);
                    self.index.move_visitor_slot(&vid, i)?;
                } else {
                    self.leftovers.push(i);
                    if revision != 0 {
                        self.revisions.insert(vid, (held, held_revision));
                    }
                }
            }
        }
        Ok(())
    }

    /// The index and the leftover slots.
    fn finish(self) -> Result<Indexed> {
        let SlotIndexer {
            mut index,
            mut pii,
            copies,
            mut leftovers,
            revisions: _,
            twins,
            failed,
            run,
            refused,
            ..
        } = self;
        if let Some(e) = failed {
            return Err(e);
        }

        // Of two copies of one transcript slot (a keyring compaction cut
        // short), keep the one whose PII key resolves, else the lower slot.
        let resolves = |tid: &Tid, pii_slot: Option<u32>| {
            pii_slot.is_some_and(|s| pii.get(&s).is_some_and(|owner| owner == tid))
        };
        for (slot, t) in copies {
            let Some(held) = index.transcript(&t.tid)? else {
                continue;
            };
            let (held_slot, held_pii) = (held.content_slot, held.pii_slot);
            drop(held);
            let better = (!resolves(&t.tid, Some(t.pii_slot)), slot)
                < (!resolves(&t.tid, held_pii), held_slot);
            if better {
                index.move_slots(&t.tid, slot, Some(t.pii_slot))?;
                leftovers.push(held_slot);
            } else {
                leftovers.push(slot);
            }
        }
        // A generation keeps its PII slot only if that slot is its own (and
        // takes it out of the map); what is left is named by no generation.
        index.settle_pii_slots(|tid, slot| match pii.get(&slot) {
            Some(owner) if owner == tid => {
                pii.remove(&slot);
                true
            }
            _ => false,
        });
        leftovers.extend(pii.keys().copied());
        Ok(Indexed {
            index,
            leftovers,
            links: run.as_ref().map(|r| r.entries.clone()).unwrap_or_default(),
            // Entries written since the run are in canonical form: never twins.
            twins: run
                .as_ref()
                .map_or(twins.count(), |r| r.manifest.twins as usize),
            manifest: run.map(|r| r.manifest),
            refused,
        })
    }
}

/// The segments as open found them.
pub(super) struct Recovered {
    /// The segment appends go to (`None` when read-only).
    pub active: Option<Active>,
    pub segments: BTreeMap<u64, Arc<Segment>>,
    /// The last segment's id and the end of its data (0, 0 for none).
    pub last: (u64, u64),
}

/// One segment file as listed at open.
struct Listed {
    id: u64,
    path: PathBuf,
    file: File,
    /// The file's length.
    len: u64,
    header: SegmentHeader,
    /// Its last [`FOOTER_FRAME`] bytes (fewer if it is shorter).
    tail: Vec<u8>,
    /// Its location file, opened while listing: for a sealed segment
    /// (not the last) whose location file recovery would open.
    sidecar: Option<Result<Option<Sidecar>>>,
}

/// Open lists the segments on two threads from this many.
const PARALLEL_LIST_MIN: usize = 16;

/// Opens segment `id`, checks its header, reads its footer's bytes and,
/// for a sealed segment whose location file recovery would use, opens
/// that file too (`recover_segments` decides what to do with each).
fn list_segment(dir: &Path, id: u64, is_last: bool, salvage: bool) -> Result<Listed> {
    let path = dir.join(segment::file_name(id));
    let file = OpenOptions::new().read(true).open(&path).at(&path)?;
    let len = file.metadata().at(&path)?.len();
    // Read, not mapped: a page touched through a map stays this process's
    // resident memory (with the pages the kernel maps around it) for as
    // long as the segment is open.
    let mut head = [0u8; SEGMENT_HEADER as usize];
    let got = segment::read_up_to(&file, &mut head, 0).at(&path)?;
    let header = segment::check_header(&path, &head[..got], id)?;
    let mut tail = [0u8; FOOTER_FRAME];
    let at = len.saturating_sub(FOOTER_FRAME as u64);
    let got = segment::read_up_to(&file, &mut tail, at).at(&path)?;
    let tail = tail[..got].to_vec();
    // As recovery decides for a segment that is not the last: a location
    // file is looked for unless salvaging, when the footer is there and
    // whole or the segment's version has none.
    let footer_ok = header.has_footer()
        && segment::check_footer(&path, &tail, len, id, header.generation).is_ok();
    let sidecar = (!is_last && !salvage && (footer_ok || !header.has_footer())).then(|| {
        let describes = Describes {
            segment: id,
            generation: header.generation,
            segment_len: len,
        };
        Sidecar::open(&dir.join(sidecar_file_name(id)), describes)
    });
    Ok(Listed {
        id,
        path,
        file,
        len,
        header,
        tail,
        sidecar,
    })
}

/// The sealed segments open need not open: (id → generation, length) of
/// each the checkpoint recorded, with a file stamp, as a sealed segment
/// (not the last segment, nor the one the keyring's marks name), whose
/// file is the one recorded (on the device, `dev`, of the store's segment
/// files, with the same inode number in the directory's listing: a
/// compaction's rewrite, a restored copy or a removal gives it another, or
/// none), whose generation the run covers and whose location file is
/// there. A file that is not the one recorded only makes open list the
/// segment as before. Its length, header and footer are checked when it is
/// first read ([`Segment::sealed_unopened`]), and each record's CRC when
/// that record is: a sealed file is never written in place, so a change in
/// place (a cut, a flipped byte) is damage, reported then.
fn unchanged_segments(
    listing: &Listing<'_>,
    ckpt: &Checkpoint,
    dev: u64,
    last: u64,
    known_usage: &HashMap<(u64, u32), SegmentUsage>,
    marked: u64,
) -> BTreeMap<u64, (u32, u64)> {
    let mut out = BTreeMap::new();
    if ckpt.files.is_empty() {
        return out;
    }
    let stamps: HashMap<u64, Stamp> = ckpt.files.iter().copied().collect();
    let mut located = std::collections::HashSet::new();
    let mut inodes = HashMap::new();
    for (name, &ino) in listing.names.iter().zip(listing.inodes) {
        if let Some(id) = sidecar_id_of(name) {
            located.insert(id);
        } else if let Some(id) = segment::id_of(name) {
            inodes.insert(id, ino);
        }
    }
    for &(id, generation, len) in &ckpt.segments {
        if id >= last
            || id == marked
            || !located.contains(&id)
            || !known_usage.contains_key(&(id, generation))
        {
            continue;
        }
        let Some(stamp) = stamps.get(&id) else {
            continue;
        };
        if stamp.dev == dev && inodes.get(&id) == Some(&stamp.ino) {
            out.insert(id, (generation, len));
        }
    }
    out
}

/// The store's directory, the names in it, listed once at open, and each
/// name's inode number (in the same order).
pub(super) struct Listing<'a> {
    pub dir: &'a Path,
    pub names: &'a [String],
    pub inodes: &'a [u64],
}

/// Loads the checkpoint, scans what it does not cover, handles a torn tail,
/// and opens the segments for reading (and, unless read-only, appending).
pub(super) fn recover_segments(
    listing: Listing<'_>,
    options: &Options,
    marks: Option<Marks>,
    checkpoint: Option<Checkpoint>,
    known_usage: &HashMap<(u64, u32), SegmentUsage>,
    index: &mut Index,
    report: &mut RecoveryReport,
) -> Result<Recovered> {
    let Listing { dir, names, .. } = listing;
    let read_only = options.read_only;
    let salvage = options.salvage;
    let corrupt_or_skip = |report: &mut RecoveryReport, e: Error| -> Result<()> {
        match e {
            Error::Corrupt {
                path,
                offset,
                reason,
            } if salvage => {
                report.skipped.push((path, offset, 0, reason));
                Ok(())
            }
            e => Err(e),
        }
    };
    if !read_only {
        // A compaction cut short leaves its unfinished output behind.
        for name in names.iter().filter(|n| n.ends_with(".seg.tmp")) {
            let path = dir.join(name);
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    let marked = marks.map_or(0, |m| m.segment);
    let listed_in_ckpt = |id: u64| {
        checkpoint
            .as_ref()
            .is_some_and(|c| c.segments.iter().any(|s| s.0 == id))
    };
    let mut ids = segment::ids_in(names);
    // The device the segment files are on (their stamps name it).
    let mut dev = 0;
    // A last segment too short to hold its header was cut off while being
    // created: it holds no records, and nothing durable names it yet.
    if let Some(&last) = ids.last() {
        let path = dir.join(segment::file_name(last));
        let meta = std::fs::metadata(&path).at(&path)?;
        dev = Stamp::of(&meta).dev;
        let len = meta.len();
        if len < SEGMENT_HEADER {
            if last <= marked || listed_in_ckpt(last) {
                corrupt_or_skip(
                    report,
                    Error::corrupt(
                        &path,
                        len,
                        "the last segment is shorter than its header, but it held acknowledged data (cut short?)",
                    ),
                )?;
            } else if !read_only {
                std::fs::remove_file(&path).at(&path)?;
                crate::fsutil::sync_dir(dir)?;
            }
            report.truncated = Some((path, 0, len));
            ids.pop();
        }
    }
    if ids.last().copied().unwrap_or(0) < marked {
        corrupt_or_skip(
            report,
            Error::corrupt(
                dir.join(segment::file_name(marked)),
                0,
                "the segment the keyring records as holding acknowledged data is missing",
            ),
        )?;
    }
    // A sealed segment the index's run lists (the keyring names the run) is
    // there: a compaction that removes one first makes the keyring stop
    // naming the run, so a missing one held acknowledged records.
    let mut covered: Vec<u64> = known_usage.keys().map(|&(id, _)| id).collect();
    covered.sort_unstable();
    covered.dedup();
    for id in covered {
        if ids.binary_search(&id).is_err() {
            corrupt_or_skip(
                report,
                Error::corrupt(
                    dir.join(segment::file_name(id)),
                    0,
                    "the segment is missing, but the index run the keyring names lists it: acknowledged records are lost",
                ),
            )?;
        }
    }
    if ids.is_empty() {
        if read_only {
            return Ok(Recovered {
                active: None,
                segments: BTreeMap::new(),
                last: (0, 0),
            });
        }
        let active = Active::create(dir, 1)?;
        let mut segs = BTreeMap::new();
        segs.insert(1, Arc::new(active.reader()));
        return Ok(Recovered {
            active: Some(active),
            segments: segs,
            last: (1, SEGMENT_HEADER),
        });
    }

    let last_id = ids.last().copied().unwrap_or(1);
    // Sealed segments whose files are as the checkpoint recorded them are
    // left unopened (checked when first read); the others are listed now.
    let unchanged = match &checkpoint {
        Some(ckpt) if !salvage => {
            unchanged_segments(&listing, ckpt, dev, last_id, known_usage, marked)
        }
        _ => BTreeMap::new(),
    };
    let to_list: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !unchanged.contains_key(id))
        .collect();
    // Every listed segment's header is checked (a bad one is always an
    // error), the first failing segment's error reported.
    let list = |ids: &[u64]| -> Result<Vec<Listed>> {
        ids.iter()
            .map(|&id| list_segment(dir, id, id == last_id, salvage))
            .collect()
    };
    let listed = if to_list.len() >= PARALLEL_LIST_MIN {
        // Half of them on a second thread: opening and reading two files
        // per segment is most of what open does in a store of many.
        let (first, second) = to_list.split_at(to_list.len() / 2);
        std::thread::scope(|scope| {
            match std::thread::Builder::new()
                .name("shredlog-open".into())
                .spawn_scoped(scope, || list(second))
            {
                Ok(handle) => {
                    let mut listed = list(first);
                    let rest = handle.join().unwrap_or_else(|_| {
                        Err(Error::Internal("a segment-listing thread panicked".into()))
                    });
                    if let Ok(l) = &mut listed {
                        l.extend(rest?);
                    }
                    listed
                }
                // No thread to spare: this one lists them all.
                Err(_) => list(&to_list),
            }
        })?
    } else {
        list(&to_list)?
    };

    // Where scanning the last segment starts: (segment id, offset).
    let mut start: (u64, u64) = (ids.first().copied().unwrap_or(1), SEGMENT_HEADER);
    let mut ckpt_len: HashMap<u64, u64> = HashMap::new();
    let mut ckpt_records = None;
    if let Some(ckpt) = checkpoint {
        // Every segment as it is: those listed as read, the unchanged as
        // recorded (their stamps say they are the files recorded).
        let mut seen: Vec<Seen> = listed
            .iter()
            .map(|l| Seen {
                id: l.id,
                generation: l.header.generation,
                len: l.len,
            })
            .chain(unchanged.iter().map(|(&id, &(generation, len))| Seen {
                id,
                generation,
                len,
            }))
            .collect();
        seen.sort_unstable_by_key(|s| s.id);
        match checkpoint_fits(dir, &ckpt, &seen) {
            Fit::Stale => {}
            Fit::Lost(e) => corrupt_or_skip(report, e)?,
            Fit::Fits => {
                ckpt_len = ckpt.segments.iter().map(|s| (s.0, s.2)).collect();
                index.load_dead(ckpt.dead);
                ckpt_records = Some(ckpt.transcripts);
                if let Some(&(id, _, len)) = ckpt.segments.last() {
                    start = (id, len);
                }
                report.checkpoint_used = true;
            }
        }
    }
    if !read_only {
        locations::remove_strays(dir, names, &ids)?;
    }

    let mut segs = BTreeMap::new();
    report.segments_unopened = unchanged.len() as u64;
    for (id, (generation, len)) in unchanged {
        // The run knows this file's generations and byte accounting; its
        // location file and the segment are opened when first read.
        let path = dir.join(segment::file_name(id));
        let describes = Describes {
            segment: id,
            generation,
            segment_len: len,
        };
        let rebuild: Rebuild = {
            let (dir, path) = (dir.to_owned(), path.clone());
            Box::new(move || {
                let built = locations::build_sealed(&dir, &path, id, 0, !read_only)?;
                let found = built.describes();
                if found != describes {
                    return Err(Error::corrupt(
                        &path,
                        0,
                        format!(
                            "the segment is generation {} of {} bytes, but generation {} of {} bytes when the index checkpoint recorded it",
                            found.generation,
                            found.segment_len,
                            describes.generation,
                            describes.segment_len
                        ),
                    ));
                }
                Ok(built)
            })
        };
        let sidecar = Sidecar::unopened(&dir.join(sidecar_file_name(id)), describes, rebuild);
        let usage = known_usage
            .get(&(id, generation))
            .copied()
            .ok_or_else(|| Error::Internal("an unopened segment's usage is unknown".into()))?;
        index.take_sidecar(Arc::new(sidecar), usage);
        segs.insert(
            id,
            Arc::new(Segment::sealed_unopened(path, id, generation, len)),
        );
    }
    let mut active = None;
    let mut last = (last_id, SEGMENT_HEADER);
    for seg in listed {
        let Listed {
            id,
            path,
            file,
            len: file_len,
            header,
            tail,
            mut sidecar,
        } = seg;
        let is_last = id == last_id;
        // What was acknowledged of this segment.
        let acknowledged = ckpt_len
            .get(&id)
            .copied()
            .unwrap_or(0)
            .max(if id == marked {
                marks.map_or(0, |m| m.segment_len)
            } else {
                0
            });
        let mut data_end = file_len;
        // Whether the segment ends with its own footer (checked).
        let mut footer_ok = false;
        let tail = || tail.as_slice();
        // Sealed: not the last segment, or the last one with its footer (a
        // roll cut short after sealing it).
        let sealed_file = !is_last
            || (header.has_footer()
                && segment::check_footer(&path, tail(), file_len, id, header.generation).is_ok());
        if sealed_file {
            if header.has_footer() {
                match segment::check_footer(&path, tail(), file_len, id, header.generation) {
                    Ok(_) => footer_ok = true,
                    Err(e) => corrupt_or_skip(report, e)?,
                }
            }
            // Its records' locations: from its location file when that is
            // the one of this file, else from a scan (and written down).
            let describes = Describes {
                segment: id,
                generation: header.generation,
                segment_len: file_len,
            };
            let idx_path = dir.join(sidecar_file_name(id));
            // Salvage trusts no derived file: it reads what is left of the
            // segments themselves.
            let found = if !salvage && (footer_ok || !header.has_footer()) {
                match sidecar.take() {
                    Some(opened) => opened?,
                    None => Sidecar::open(&idx_path, describes)?,
                }
            } else {
                None
            };
            // A file whose summaries fail their checks is not used. One of a
            // segment the index's run covers is taken as it is: the run
            // knows its generations, the manifest its byte accounting.
            let loaded =
                found.is_some_and(|sidecar| match known_usage.get(&(id, header.generation)) {
                    Some(u) => {
                        index.take_sidecar(Arc::new(sidecar), *u);
                        true
                    }
                    None => index.load_sidecar(Arc::new(sidecar)).is_ok(),
                });
            if !loaded {
                // Missing, stale or damaged: rebuilt from the segment (it is
                // derived data). A read-only open keeps it in memory.
                let rules = ScanRules {
                    id,
                    header,
                    last: false,
                    salvage,
                    acknowledged,
                };
                let mut collect = locations::Collect::default();
                let mut scanned = 0u64;
                // Through a map of its own, dropped after the scan: the pages
                // it reads do not stay in this process's resident memory.
                let once = segment::map_once(&path)?;
                let scan = segment::scan(&path, &once, SEGMENT_HEADER, rules, |off, size, rec| {
                    scanned += 1;
                    collect.add(off, size, rec);
                })?;
                report.records_scanned += scanned;
                for d in scan.damage {
                    report
                        .skipped
                        .push((path.clone(), d.offset, d.skipped, d.reason));
                }
                let sidecar = collect.finish(dir, describes, !read_only)?;
                index.load_sidecar(Arc::new(sidecar))?;
            }
        } else {
            // The last segment: its records are held in memory, from the
            // checkpoint and a scan of what it does not cover.
            if let Some(lists) = ckpt_records.take() {
                index.load_checkpoint_records(lists, |seg| seg == id)?;
            }
            let from = if id == start.0 {
                start.1
            } else {
                SEGMENT_HEADER
            };
            let rules = ScanRules {
                id,
                header,
                last: is_last,
                salvage,
                acknowledged,
            };
            let mut scanned = 0u64;
            let mut failed = None;
            // Through a map of its own, dropped after the scan.
            let map = segment::map(&path, &file)?;
            let scan = segment::scan(&path, &map, from, rules, |off, size, rec| {
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
                // A record already indexed (from the checkpoint, or a
                // second copy left by a compaction cut short) counts as dead.
                if let Err(e) = index.add_record(&rec.header.tid, r, rec.header.msg_id) {
                    failed.get_or_insert(e);
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            report.records_scanned += scanned;
            for d in scan.damage {
                report
                    .skipped
                    .push((path.clone(), d.offset, d.skipped, d.reason));
            }
            if let Some(at) = scan.torn_at {
                report.truncated = Some((path.clone(), at, file_len - at));
            }
            footer_ok = scan.footer.is_some();
            data_end = if footer_ok { scan.end } else { scan.data_end };
        }
        // A version-1 last segment is not appended to (it could never get a
        // footer): a writing open leaves it as it is, cut to its data, and
        // starts a version-2 segment after it.
        let legacy_tail = is_last && !read_only && !header.has_footer();
        let sealed = !is_last || footer_ok || legacy_tail;
        if legacy_tail && data_end < file_len {
            let f = OpenOptions::new().write(true).open(&path).at(&path)?;
            f.set_len(data_end).at(&path)?;
            f.sync_all().at(&path)?;
        }
        if legacy_tail {
            // It is sealed from now on: its records' locations go to a
            // location file (kept in memory if that cannot be written).
            if let Ok(sidecar) = locations::build_sealed(dir, &path, id, 0, true) {
                index.attach_sidecar(Arc::new(sidecar))?;
            }
        }
        if !is_last || sealed {
            if is_last {
                last = (id, data_end);
            }
            segs.insert(
                id,
                Arc::new(Segment::sealed(path, Arc::new(file), header.generation)),
            );
            continue;
        }
        last = (id, data_end);
        if read_only {
            segs.insert(
                id,
                Arc::new(Segment::Active {
                    path,
                    file: Arc::new(file),
                    generation: header.generation,
                }),
            );
        } else {
            drop(file);
            // Zeros written ahead, and a torn tail, are cut off: appends
            // continue right after the last record.
            let a = Active::reopen(path, id, data_end, header.generation.max(1), acknowledged)?;
            segs.insert(id, Arc::new(a.reader()));
            active = Some(a);
        }
    }
    if !read_only && active.is_none() {
        // The last segment is sealed (a roll cut short after sealing it):
        // appends go to a new one.
        let next = Active::create(dir, last_id + 1)?;
        segs.insert(next.id, Arc::new(next.reader()));
        last = (next.id, SEGMENT_HEADER);
        active = Some(next);
    }
    Ok(Recovered {
        active,
        segments: segs,
        last,
    })
}

/// Whether a checkpoint describes the segments as they are.
enum Fit {
    Fits,
    /// Written before a compaction rewrote or removed a segment: ignored.
    Stale,
    /// A segment it covers, of the same generation, is shorter than it was
    /// when the checkpoint was written (after those bytes were synced).
    Lost(Error),
}

/// A segment file as open knows it.
struct Seen {
    id: u64,
    generation: u32,
    len: u64,
}

/// A checkpoint is used only if every segment it covers still exists with
/// the generation it recorded, no older segment is missing from it, and each
/// is at least as long as recorded. Anything else that compaction explains
/// (a segment rewritten or removed since) makes it stale; a segment of the
/// recorded generation that is shorter lost acknowledged data.
fn checkpoint_fits(dir: &Path, ckpt: &Checkpoint, seen: &[Seen]) -> Fit {
    let Some(&(last_covered, _, _)) = ckpt.segments.last() else {
        return Fit::Stale;
    };
    let older: Vec<&Seen> = seen.iter().filter(|s| s.id <= last_covered).collect();
    if older.len() != ckpt.segments.len() {
        return Fit::Stale;
    }
    for (&(id, generation, len), seg) in ckpt.segments.iter().zip(older) {
        if seg.id != id || seg.generation != generation || len < SEGMENT_HEADER {
            return Fit::Stale;
        }
        if seg.len < len {
            return Fit::Lost(Error::corrupt(
                dir.join(segment::file_name(seg.id)),
                seg.len,
                format!(
                    "the segment is shorter than the {len} bytes the index checkpoint recorded after they were synced: acknowledged writes are missing (cut short?)"
                ),
            ));
        }
    }
    Fit::Fits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::{PiiSlot, VisitorSlot};
    use crate::seal::Key;

    fn transcript(tid: u8, vid: u8, pii_slot: u32, caller: &str, created: i64) -> Slot {
        Slot::Transcript(TranscriptSlot {
            tid: [tid; 16],
            vid: [vid; 16],
            content_key: Key::random().unwrap(),
            pii_slot,
            rules_version: 1,
            created_millis: created,
            caller_id: caller.into(),
        })
    }

    fn pii(tid: u8) -> Slot {
        Slot::Pii(PiiSlot {
            tid: [tid; 16],
            pii_key: Key::random().unwrap(),
        })
    }

    fn visitor(vid: u8, email: &str) -> Slot {
        Slot::Visitor(VisitorSlot {
            vid: [vid; 16],
            email: email.into(),
            revision: 0,
        })
    }

    #[test]
    fn slots_become_the_index_and_leftovers_are_listed() {
        let slots = vec![
            (2, visitor(9, "ann@example.com")),
            (3, pii(1)),
            // Transcript 1 and a second copy of it (a keyring compaction cut
            // short) whose PII slot does not resolve: the copy goes.
            (4, transcript(1, 9, 3, "t-1", 10)),
            (5, transcript(1, 9, 6, "t-1", 10)),
            // A PII key no transcript names (a deletion cut short).
            (6, pii(7)),
            // Transcript 2 with a PII key, and an older generation of the same
            // caller id without one.
            (8, transcript(2, 9, 10, "t-2", 30)),
            (10, pii(2)),
            (11, transcript(3, 9, 0, "t-2", 20)),
            // A second directory entry for visitor 9.
            (12, visitor(9, "ann@example.com")),
            // Two copies again, this time the higher one resolves its PII key.
            (13, transcript(4, 9, 99, "t-4", 40)),
            (14, transcript(4, 9, 15, "t-4", 40)),
            (15, pii(4)),
        ];
        let mut indexer = SlotIndexer::default();
        for (i, slot) in slots {
            indexer.add(i, slot).unwrap();
        }
        let Indexed {
            mut index,
            mut leftovers,
            ..
        } = indexer.finish().unwrap();
        leftovers.sort_unstable();
        assert_eq!(leftovers, vec![5, 6, 12, 13]);
        assert_eq!(index.transcript_count(), 4);
        let t4 = index.transcript(&[4; 16]).unwrap().unwrap();
        assert_eq!((t4.content_slot, t4.pii_slot), (14, Some(15)));
        let t1 = index.transcript(&[1; 16]).unwrap().unwrap();
        assert_eq!((t1.content_slot, t1.pii_slot), (4, Some(3)));
        let t3 = index.transcript(&[3; 16]).unwrap().unwrap();
        assert_eq!(t3.pii_slot, None);
        let with_pii: Vec<Tid> = index
            .transcripts()
            .map(|t| t.unwrap())
            .filter(|t| t.pii_slot.is_some())
            .map(|t| t.tid)
            .collect();
        assert_eq!(with_pii.len(), 3, "t-1, t-2, t-4");
        assert_eq!(index.by_caller("t-1").unwrap().unwrap().tid, [1; 16]);
        assert!(
            index
                .visitor(&[9; 16])
                .unwrap()
                .is_some_and(|v| v.slot != 0)
        );
        assert_eq!(index.generations_of(&[9; 16]).unwrap().len(), 4);
        // Of the two generations of t-2, the older one is the committed one
        // (neither has records here).
        let hidden = index.hide_generations(committed_generation).unwrap();
        assert_eq!(hidden.len(), 1);
        assert_eq!(hidden[0].tid, [2; 16]);
        assert_eq!(index.by_caller("t-2").unwrap().unwrap().tid, [3; 16]);
    }

    /// Of two directory entries of one visitor, open keeps the newer
    /// revision (a rectification that moved the entry, cut short between
    /// writing the new one and wiping the old), in either order on disk;
    /// the other is a leftover.
    #[test]
    fn the_newer_revision_of_a_directory_entry_wins() {
        let entry = |email: &str, revision| {
            Slot::Visitor(VisitorSlot {
                vid: [9; 16],
                email: email.into(),
                revision,
            })
        };
        for (old_at, new_at, old_rev, new_rev) in [
            (16, 40, 0, 1),
            (40, 16, 0, 1),
            (16, 40, 127, 0),
            (40, 16, 126, 127),
        ] {
            let mut indexer = SlotIndexer::default();
            let mut slots = vec![
                (old_at, entry("old@example.com", old_rev)),
                (new_at, entry("new@example.com", new_rev)),
            ];
            slots.sort_by_key(|s| s.0);
            for (i, slot) in slots {
                indexer.add(i, slot).unwrap();
            }
            let Indexed {
                index, leftovers, ..
            } = indexer.finish().unwrap();
            assert_eq!(leftovers, vec![old_at]);
            assert_eq!(index.visitor(&[9; 16]).unwrap().unwrap().slot, new_at);
        }
    }
}
