//! The public [`Store`] handle and the engine behind it.
//!
//! | file | what |
//! | --- | --- |
//! | `open.rs` | open and recovery: the keyring's slots into the index and the key cache, the checkpoint, the scan, torn tails |
//! | `commit.rs` | group commit, syncing, the checkpoint, close, background threads |
//! | `write.rs` | the append path: plan, keys, seal, append, roll |
//! | `read.rs` | the read path: a transcript, a visitor's list |
//! | `inspect.rs` | `verify` and `stats` |
//! | `compact.rs` | compaction of segments and of the keyring |
//!
//! The privacy operations are in `crate::ops`, one file per operation, built on
//! the verbs of this module.
//!
//! Locks are taken in this order, never the other way round: the writer's
//! mutex, the index, the segment map; the audit log's and the policy's locks
//! are taken last and held briefly.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parking_lot::{Mutex, RwLock};

use crate::config::Options;
use crate::error::{Error, Result};
use crate::ids::hex;
use crate::index::{CallerKey, Index};
use crate::keyring::directory::Sectors;
use crate::keyring::{DirectoryReader, KeyCache, Keyring};
use crate::message::Timestamp;
use crate::pii::Detector;
use crate::policy::Policy;
use crate::record::Vid;
use crate::screen::Screen;
use crate::segment::{self, Active, Segment};
use crate::shred::AuditLog;

mod commit;
mod compact;
mod inspect;
mod locations;
mod open;
mod read;
mod runs;
pub(crate) mod snapshot;
mod twins;
mod write;

pub use compact::{CompactOptions, CompactReport};
pub use inspect::{Stats, VerifyReport};
pub(crate) use read::{Hashing, MessageFacts};
pub use write::Appended;
pub(crate) use write::{At, Item, NewGeneration, create_transcript, prepare};

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
    pub(crate) engine: Arc<Engine>,
}

/// The engine: everything a store is, shared by the handle and its
/// background threads.
pub(crate) struct Engine {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) detector: Detector,
    /// Checks text kept outside sealed records (references, caller ids).
    pub(crate) screen: Screen,
    _lock: Option<File>,
    pub(crate) index: RwLock<Index>,
    /// The number of the index's run file in use (0: none yet).
    pub(crate) run_number: std::sync::atomic::AtomicU64,
    /// The key of the index's caller-id hashes (a copy, for hashing
    /// without the index's lock).
    pub(crate) caller_key: CallerKey,
    /// The data keys of live transcripts (the keyring's side of the index).
    pub(crate) keys: KeyCache,
    /// Lookup by email, in the keyring's directory (the index holds no email).
    pub(crate) directory: DirectoryReader,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    pub(crate) commit: commit::GroupCommit,
    keyring_file: Arc<File>,
    pub(crate) keyring_path: PathBuf,
    /// Keys were written since the last sync: the next sync covers the keyring.
    pub(crate) keyring_dirty: AtomicBool,
    /// Syncs (of the keyring, of the segment) large appends started early,
    /// waited for by the next sync.
    early_syncs: Mutex<Vec<std::thread::JoinHandle<Result<()>>>>,
    /// The active segment's sync handle (`None` when read-only).
    active_file: Mutex<Option<segment::SyncHandle>>,
    pub(crate) report: RecoveryReport,
    pub(crate) audit: Mutex<AuditLog>,
    pub(crate) policy: RwLock<Policy>,
    /// Held by a compaction run: one at a time. A backup's snapshot holds
    /// it too, so that no segment it copies is rewritten or removed.
    pub(crate) compaction: Mutex<()>,
    closed: AtomicBool,
    background: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Keyring slots open left out of the index that belong to nothing
    /// (orphaned PII keys, second copies of slots, uncommitted rewrites):
    /// wiped by a writing open before it serves anything (a read-only one
    /// keeps them, and the next writing open or compaction wipes them).
    leftovers: Mutex<Vec<u32>>,
}

/// What only one writer at a time may touch.
pub(crate) struct Writer {
    pub(crate) keyring: Keyring,
    /// The segment appends go to; `None` when the store is read-only.
    active: Option<Active>,
    /// The last segment's id and the end of its data, for a read-only store
    /// (a writable one asks `active`).
    last: (u64, u64),
    /// A segment was sealed: write a checkpoint after the current batch.
    pub(crate) checkpoint_due: bool,
    /// The manifest of the index's run in use (without its rows of held
    /// generations), to tell whether a new run would be the same.
    pub(crate) run_manifest: Option<crate::index::Manifest>,
}

impl Writer {
    /// The active segment, or [`Error::ReadOnly`].
    fn active(&mut self) -> Result<&mut Active> {
        self.active.as_mut().ok_or(Error::ReadOnly)
    }

    /// The last segment's id and data length.
    pub(crate) fn last_segment(&self) -> (u64, u64) {
        self.active.as_ref().map_or(self.last, |a| (a.id, a.len))
    }

    /// Records in the keyring's state how much of the active segment is
    /// durable (written with the next keyring sync).
    pub(crate) fn note_durable(&mut self) {
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
    /// Whether the index's run was used (else the index was rebuilt from
    /// the keyring's slots and the location files).
    pub index_run_used: bool,
    /// Why a run the manifest names was not used (it is derived data: the
    /// index was rebuilt, and a writing open wrote a new one).
    pub index_run_refused: Option<String>,
    /// Records parsed from the log at open (those not covered by the checkpoint).
    pub records_scanned: u64,
    /// Sealed segments open found unchanged since the index checkpoint
    /// recorded them and left unopened: each is opened, and its header,
    /// length and footer checked, when first read (docs/FORMAT.md §7.3).
    pub segments_unopened: u64,
    /// A torn tail of the last segment (an unacknowledged write a crash cut
    /// short): (file, offset, bytes). Cut off, unless the store is read-only.
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// A torn last line of the audit log: (offset, bytes). Cut off, unless
    /// the store is read-only.
    pub audit_truncated: Option<(u64, u64)>,
    /// Audit entries open read (the tail after those whose effects were known
    /// to be on disk).
    pub audit_entries_read: u64,
    /// Damage skipped in salvage mode: (file, offset, bytes, reason).
    pub skipped: Vec<(PathBuf, u64, u64, String)>,
    /// Damaged keyring slots ignored in salvage mode: (slot index, offset
    /// in the keyring file, reason).
    pub damaged_slots: Vec<(u32, u64, String)>,
    /// Logged privacy operations whose effects open finished (on disk, or in
    /// memory when read-only): (audit sequence number, operation).
    pub finished: Vec<(u64, String)>,
    /// Keyring slots that belong to nothing (left by a crash): a writing
    /// open wipes them before it returns, a read-only one leaves them.
    pub leftover_slots: usize,
    /// Visitors stored (before emails had one canonical form) under another
    /// spelling of an address another visitor has: each is found only by its
    /// stored spelling, so an erasure must name each spelling.
    pub email_twins: usize,
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

impl TranscriptInfo {
    /// A listing's transcript (it has records).
    pub(crate) fn listed(l: &crate::index::Listing, id: &str) -> TranscriptInfo {
        TranscriptInfo {
            id: id.to_owned(),
            first: Timestamp::from_unix_millis(l.ts_range.0),
            last: Timestamp::from_unix_millis(l.ts_range.1),
            messages: l.count as usize,
            redacted: !l.has_pii,
            rules_version: l.rules_version,
        }
    }
}

impl Store {
    /// What open found and did.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.engine.report
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.engine.dir
    }

    /// The personal-data detector in force.
    pub fn detector(&self) -> &Detector {
        &self.engine.detector
    }

    /// Whether the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.engine.options.read_only
    }

    /// Syncs, writes the index checkpoint and closes the store.
    ///
    /// # Errors
    /// [`Error::Io`] if the final sync or checkpoint fails.
    pub fn close(self) -> Result<()> {
        self.engine.shutdown()
    }
}

impl Drop for Store {
    /// Closes the store as [`Store::close`] does, ignoring errors (a failed
    /// final sync leaves the store as a crash would: recoverable).
    fn drop(&mut self) {
        let _ = self.engine.shutdown();
    }
}

impl Store {
    /// Fails with [`Error::Restricted`] if the visitor's data is restricted.
    /// A restriction whose visitor has no directory entry any more (their
    /// personal data is gone: erased, redacted by retention, or deleted) no
    /// longer applies: it could never be lifted, since lifting needs the email.
    pub(crate) fn check_not_restricted(&self, vid: &Vid) -> Result<()> {
        let restricted = {
            let policy = self.engine.policy.read();
            !policy.restricted.is_empty() && policy.restricted.contains_key(&hex(vid))
        };
        if !restricted {
            return Ok(());
        }
        // Callers may hold the index's read lock already.
        let has_directory_entry = self
            .engine
            .index
            .read_recursive()
            .visitor(vid)?
            .is_some_and(|v| v.slot != 0);
        if has_directory_entry {
            return Err(Error::Restricted);
        }
        Ok(())
    }
}

impl Engine {
    /// The visitor an email as a caller wrote it names: of the directory
    /// entries for its address that `index` still names (a second copy left
    /// by a crash, or the old entry of a rectification, is not an answer),
    /// the one stored under exactly that spelling, else the one stored in
    /// canonical form, else the first ([`crate::keyring::directory::choose`]).
    ///
    /// `how`: [`Sectors::Read`] for an append's lookups, else
    /// [`Sectors::Mapped`].
    ///
    /// # Errors
    /// [`Error::Invalid`] when `email` is not an email address and no entry
    /// has that spelling; [`Error::Corrupt`] for a damaged directory sector.
    pub(crate) fn vid_by_address(
        &self,
        index: &Index,
        email: &str,
        how: Sectors,
    ) -> Result<Option<Vid>> {
        let query = crate::keyring::directory::Query::new(email);
        let found = self.directory.find(&query, how)?;
        let mut known = Vec::new();
        for (slot, v) in &found {
            if index.visitor_slot(&v.vid)? == Some(*slot) {
                known.push((*slot, v, v.vid));
            }
        }
        match crate::keyring::directory::choose(&query, &known) {
            Some(vid) => Ok(Some(vid)),
            None if query.is_email => Ok(None),
            None => crate::email::canonical(email).map(|_| None),
        }
    }

    /// Fails unless the store may write.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.options.read_only {
            return Err(Error::ReadOnly);
        }
        self.commit.check()
    }
}
