//! The write path: prepare (split and encode) a batch, plan where each
//! message goes, create keys, seal, append with segment rolls, publish to the
//! index, and group commit.

use crate::secret::SecretVec;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Engine, Store, Writer};
use crate::config::Durability;
use crate::error::{Error, Result};
use crate::index::{CallerHash, Loc, RecordRef, TranscriptEntry};
use crate::keyring::directory::Sectors;
use crate::keyring::{PiiSlot, Slot, StagedSlots, TranscriptKeys, TranscriptSlot, VisitorSlot};
use crate::message::{Message, Timestamp};
use crate::pii::{Detector, RULES_VERSION};
use crate::record::{self, MessageKeys, MsgIdDigest, Placement, Tid, Vid};
use crate::screen::{Field, Screen};
use crate::seal::{Nonces, TAG_LEN};
use crate::segment::{Active, SEGMENT_HEADER, Segment};
use crate::split;

/// What an append did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Appended {
    /// Messages stored.
    pub stored: usize,
    /// Messages not stored because their transcript already holds their id
    /// (a retry of an append that succeeded).
    pub already_stored: usize,
}

impl Store {
    /// Appends one message; see [`Store::append_batch`].
    ///
    /// # Errors
    /// As [`Store::append_batch`].
    pub fn append(&self, msg: &Message) -> Result<Appended> {
        self.append_batch(std::slice::from_ref(msg))
            .map_err(Error::without_position)
    }

    /// Appends messages and returns once they are durable under the configured
    /// [`Durability`], with one sync for the whole batch. The first message of
    /// a transcript must name its visitor; later messages that name one must
    /// name the same email.
    ///
    /// A message with an id ([`Message::id`]) that its transcript already
    /// holds (or that an earlier message of the batch has) is not stored
    /// again: it is counted in [`Appended::already_stored`], so that a retry
    /// of a batch whose answer was lost stores nothing twice.
    ///
    /// A batch that breaks a rule is refused whole before anything is written.
    /// A batch cut short by a crash or an I/O error was not acknowledged; each
    /// of its messages is then either stored whole or absent (a prefix of the
    /// batch may survive), never altered.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a message that breaks a rule (nothing of the batch
    /// is written), [`Error::Restricted`] for a restricted visitor,
    /// [`Error::ReadOnly`] for a store opened read-only,
    /// [`Error::Poisoned`] after an earlier I/O failure, [`Error::Io`] when
    /// writing or syncing fails (the store then refuses further writes).
    pub fn append_batch(&self, msgs: &[Message]) -> Result<Appended> {
        let engine = &*self.engine;
        engine.check_writable()?;
        // Announced to the group commit until this batch has its ticket.
        let arrival = matches!(engine.options.durability, Durability::Immediate)
            .then(|| engine.commit.arrive());
        let prepared = prepare_all(
            msgs,
            &engine.detector,
            &engine.screen,
            engine.options.max_message_bytes,
        )?;
        let (ticket, appended) = {
            let mut w = engine.writer.lock();
            engine.commit.check()?;
            let plan = self.plan(&prepared)?;
            let already_stored = plan.iter().filter(|t| matches!(t, Target::Stored)).count();
            let appended = Appended {
                stored: plan.len() - already_stored,
                already_stored,
            };
            if appended.stored == 0 {
                return Ok(appended);
            }
            if let Err(e) = engine.write_planned(&mut w, &prepared, plan) {
                // `plan` checked every rule, so whatever fails here failed
                // after keyring slots may have been written: refuse further
                // writes until a reopen rebuilds the state from disk.
                engine.commit.poison(&e);
                return Err(e);
            }
            (engine.commit.ticket(), appended)
        };
        drop(arrival);
        match engine.options.durability {
            Durability::Immediate => {
                engine.commit.wait(ticket, || engine.sync_now())?;
                if engine.index.read().changes_held() >= super::runs::RUN_EVERY {
                    // The append is durable whatever happens here: a run
                    // that cannot be written now is written by a later one.
                    let _ = engine.maybe_write_run(&mut engine.writer.lock());
                }
            }
            Durability::Batched { .. } => {}
        }
        Ok(appended)
    }

    /// Works out, without writing anything, which transcript and visitor each
    /// message goes to, and which must be created.
    fn plan(&self, prepared: &[Prepared<'_>]) -> Result<Vec<Target>> {
        let index = self.engine.index.read();
        let mut new_transcripts: HashMap<&str, (usize, String)> = HashMap::new();
        // (transcript, message id) of the batch so far.
        let mut ids: std::collections::HashSet<(&str, &str)> = Default::default();
        let mut targets = Vec::with_capacity(prepared.len());
        let different =
            || Error::invalid("message names a different visitor than its transcript's");
        // Whose each email is, looked up in the keyring's directory once per
        // batch (a transcript's messages repeat their visitor).
        let mut owners: HashMap<String, Option<Vid>> = HashMap::new();
        let mut owner = |e: &str| -> Result<Option<Vid>> {
            if let Some(v) = owners.get(e) {
                return Ok(*v);
            }
            let v = self.engine.vid_by_address(&index, e, Sectors::Read)?;
            owners.insert(e.to_owned(), v);
            Ok(v)
        };
        // The generation each transcript id leads to, looked up once per
        // batch (its messages repeat it).
        let mut generations: HashMap<&str, Option<crate::index::Gen<'_>>> = HashMap::new();
        for (at, p) in prepared.iter().enumerate() {
            let id = p.msg.transcript.as_str();
            if let Some(msg_id) = p.msg.id.as_deref()
                && !ids.insert((id, msg_id))
            {
                targets.push(Target::Stored);
                continue;
            }
            let email = p.email.clone();
            let generation = match generations.get(id) {
                Some(g) => g.clone(),
                None => {
                    let g = index.by_caller(id)?;
                    generations.insert(id, g.clone());
                    g
                }
            };
            if let Some(t) = generation {
                if let Some(msg_id) = p.msg.id.as_deref() {
                    let keys = self.engine.keys.get(&t)?;
                    if index.has_msg_id(&t, &keys.content.msg_id_digest(msg_id))? {
                        targets.push(Target::Stored);
                        continue;
                    }
                }
                self.check_not_restricted(&t.vid)?;
                if p.pii.is_some() && !t.has_pii() {
                    return Err(Error::invalid(
                        "this transcript's personal data was erased; personal data cannot be added to it (start a new transcript)",
                    ).in_message(at));
                }
                if let Some(e) = &email
                    && owner(e)? != Some(t.vid)
                {
                    return Err(different().in_message(at));
                }
                targets.push(Target::Existing(t.tid));
            } else if let Some((n, first_email)) = new_transcripts.get(id) {
                if email.as_ref().is_some_and(|e| e != first_email) {
                    return Err(different().in_message(at));
                }
                targets.push(Target::New(*n));
            } else {
                let Some(email) = email else {
                    return Err(Error::invalid(
                        "the first message of a transcript must name the visitor (field `visitor`)",
                    )
                    .in_message(at));
                };
                if email.len() > crate::keyring::MAX_EMAIL {
                    return Err(Error::invalid("field `visitor.email` is too long").in_message(at));
                }
                if id.len() > crate::keyring::MAX_TRANSCRIPT_ID {
                    return Err(
                        Error::invalid("field `transcript` is longer than 200 bytes")
                            .in_message(at),
                    );
                }
                let known = owner(&email)?;
                if let Some(vid) = known {
                    self.check_not_restricted(&vid)?;
                }
                let n = new_transcripts.len();
                new_transcripts.insert(id, (n, email.clone()));
                targets.push(Target::NewFirst(n, email, known));
            }
        }
        Ok(targets)
    }
}

impl Engine {
    fn write_planned(
        &self,
        w: &mut Writer,
        prepared: &[Prepared<'_>],
        targets: Vec<Target>,
    ) -> Result<()> {
        let now = Timestamp::now().unix_millis();
        // Whether this batch's syncs start before its commit (see
        // `EARLY_SYNC_MIN`).
        let early_syncs = prepared.len() >= EARLY_SYNC_MIN
            && matches!(self.options.durability, Durability::Immediate);
        // 1. Keys and directory entries for new transcripts and visitors.
        let mut created: Vec<Created> = Vec::new();
        let mut new_visitors: Vec<(Vid, String, u32)> = Vec::new();
        let mut staged = StagedSlots::default();
        // Room in the directory's table for every entry this batch may add,
        // made before any is placed (a growth moves only what is on disk).
        let mut entry_cells = 0u64;
        for target in &targets {
            if let Target::NewFirst(_, email, None) = target {
                entry_cells += u64::from(w.keyring.cells_for(&Slot::Visitor(VisitorSlot {
                    vid: [0; 16],
                    email: email.clone(),
                    revision: 0,
                }))?);
            }
        }
        if entry_cells > 0 {
            // Under the index's lock: a growth moves entries, and nothing
            // may read their old places before the index knows.
            let mut index = self.index.write();
            let moved = w.keyring.reserve_visitors(entry_cells)?;
            for m in moved {
                if let Err(e) = index.move_visitor_slot_from(&m.vid, m.from, m.to) {
                    // The entries moved on disk: the index must follow.
                    self.commit.poison(&e);
                    return Err(e);
                }
            }
        }
        {
            // The ids and keys of the batch's new visitors and transcripts,
            // drawn at once (a visitor's id, a transcript's id and two keys).
            let new = targets
                .iter()
                .filter(|t| matches!(t, Target::NewFirst(..)))
                .count();
            let mut random = Nonces::with_bytes(new * (16 + 16 + 2 * 32))?;
            for (p, target) in prepared.iter().zip(&targets) {
                let Target::NewFirst(_, email, known) = target else {
                    continue;
                };
                let known = match known {
                    Some(vid) => Some(*vid),
                    None => new_visitors.iter().find(|v| &v.1 == email).map(|v| v.0),
                };
                let vid = match known {
                    Some(vid) => vid,
                    None => {
                        let vid: Vid = random.take()?;
                        let entry = Slot::Visitor(VisitorSlot {
                            vid,
                            email: email.clone(),
                            revision: 0,
                        });
                        let slot = w.keyring.allocate(&entry)?;
                        w.keyring.stage(&mut staged, slot, &entry)?;
                        new_visitors.push((vid, email.clone(), slot));
                        vid
                    }
                };
                created.push(create_transcript(
                    w,
                    &mut staged,
                    NewGeneration {
                        vid,
                        caller_id: &p.msg.transcript,
                        caller: self.caller_key.hash(&p.msg.transcript),
                        min_created: now,
                    },
                    true,
                    &mut random,
                )?);
            }
        }
        w.keyring.write_staged(staged)?;
        if !created.is_empty() {
            // The keyring's state goes with the new keys' sync: it records
            // how much of the active segment earlier syncs made durable.
            w.note_durable();
            w.keyring.flush_state()?;
            self.keyring_dirty.store(true, Ordering::SeqCst);
            // A large batch's sealing and writing take long enough to hide
            // most of the keyring's sync: it starts now (`sync_now` waits).
            if early_syncs {
                self.sync_keyring_early();
            }
        }
        // 2. Seal, frame and write every message.
        let pending = {
            let index = self.index.read();
            let mut items = Vec::with_capacity(prepared.len());
            // Each existing generation's next sequence number, worked out
            // once per batch (it may read location files).
            let mut next: HashMap<Tid, u32> = HashMap::new();
            for (p, target) in prepared.iter().zip(&targets) {
                let (entry, keys) = match target {
                    Target::Stored => continue,
                    Target::Existing(tid) => {
                        let entry = index.transcript(tid)?.ok_or_else(|| {
                            Error::Internal(
                                "index inconsistency: a planned transcript is gone".into(),
                            )
                        })?;
                        let keys = self.keys.get(&entry)?;
                        let next_seq = match next.get(tid) {
                            Some(n) => *n,
                            None => {
                                let n = index.next_seq(&entry)?;
                                next.insert(*tid, n);
                                n
                            }
                        };
                        let at = At {
                            tid: entry.tid,
                            vid: entry.vid,
                            next_seq,
                        };
                        (at, keys)
                    }
                    Target::New(n) | Target::NewFirst(n, _, _) => {
                        let c = created.get(*n).ok_or_else(|| {
                            Error::Internal(
                                "plan inconsistency: a new transcript is missing".into(),
                            )
                        })?;
                        (At::new_generation(&c.entry), c.keys.clone())
                    }
                };
                items.push(Item {
                    at: entry,
                    keys,
                    prepared: p,
                });
            }
            drop(index);
            self.seal_and_write(w, &items)?
        };
        // A large batch's records are synced while it is published.
        if early_syncs {
            self.sync_segment_early();
        }
        // 3. Publish to readers. The index reads its run to change it: should
        // that fail, the records are on disk but readers cannot see them, so
        // the store is poisoned (the next open finds them).
        let published = (|| -> Result<()> {
            let mut index = self.index.write();
            for (vid, _, slot) in new_visitors {
                index.add_visitor(vid, slot)?;
            }
            for c in created {
                self.keys.insert(c.entry.tid, c.keys);
                index.add_new_transcript(c.entry)?;
            }
            for (tid, r, d) in pending {
                index.add_record(&tid, r, d)?;
            }
            Ok(())
        })();
        if let Err(e) = published {
            self.commit.poison(&e);
            return Err(e);
        }
        if std::mem::take(&mut w.checkpoint_due) {
            self.write_checkpoint(w, false)?;
        }
        Ok(())
    }

    /// Seals each message under its transcript's keys and appends the frames,
    /// rolling segments as needed. Returns the new records' locations.
    pub(crate) fn seal_and_write(
        &self,
        w: &mut Writer,
        items: &[Item<'_>],
    ) -> Result<Vec<(Tid, RecordRef, Option<MsgIdDigest>)>> {
        // Where each message goes (cheap, in order), then the sealing (AES-GCM
        // over every byte: most of an append's CPU when uploads are large),
        // on several threads for a large batch.
        let mut next_seq: HashMap<Tid, u32> = HashMap::new();
        let places: Vec<Placement> = items
            .iter()
            .enumerate()
            .map(|(n, item)| {
                let seq = *next_seq.entry(item.at.tid).or_insert(item.at.next_seq);
                next_seq.insert(item.at.tid, seq + 1);
                Placement {
                    tid: item.at.tid,
                    vid: item.at.vid,
                    seq,
                    ts_millis: item.prepared.msg.ts.unix_millis(),
                    msg_id: item
                        .prepared
                        .msg
                        .id
                        .as_deref()
                        .map(|id| item.keys.content.msg_id_digest(id)),
                    batch_end: n + 1 == items.len(),
                }
            })
            .collect();
        let (buf, mut pending) = seal_all(items, &places)?;
        // One batch goes to one segment, whole (a batch is all or none across
        // a crash, and recovery judges that segment by segment): the active
        // segment is rolled first if the batch would take it past its size.
        let active_len = w.active()?.len;
        if active_len > SEGMENT_HEADER
            && active_len.saturating_add(buf.len() as u64) > self.options.segment_size
        {
            self.roll(w)?;
        }
        let active = w.active()?;
        let base = active.append(&buf)?;
        let seg = active.id;
        for (_, r, _) in &mut pending {
            r.loc.seg = seg;
            r.loc.off += base;
        }
        Ok(pending)
    }

    /// Seals the active segment and starts the next one: the old one gets
    /// its footer and is synced, the new one is created (header synced), and
    /// the keyring's state moves its durable mark to the new segment.
    pub(crate) fn roll(&self, w: &mut Writer) -> Result<()> {
        let r = self.roll_inner(w);
        if let Err(e) = &r
            && !matches!(e, Error::ReadOnly)
        {
            // The segment may be sealed already: nothing more goes into it.
            self.commit.poison(e);
        }
        r
    }

    fn roll_inner(&self, w: &mut Writer) -> Result<()> {
        let active = w.active()?;
        active.seal()?;
        let next = Active::create(&self.dir, active.id + 1)?;
        let sealed_id = active.id;
        let sealed = Arc::new(Segment::sealed(
            active.path.clone(),
            Arc::clone(&active.file),
            active.generation,
        ));
        {
            let mut segs = self.segments.write();
            segs.insert(active.id, Arc::clone(&sealed));
            segs.insert(next.id, Arc::new(next.reader()));
        }
        self.set_active_file(next.sync_handle());
        w.keyring.note_segment(next.id, next.durable_len());
        w.active = Some(next);
        w.keyring.sync()?;
        self.index_sealed(sealed_id, &sealed);
        // Everything before the new segment is durable now, but records of the
        // batch being written are not in the index yet: checkpoint once the
        // batch is published.
        w.checkpoint_due = self.options.checkpoint;
        Ok(())
    }
}

impl Engine {
    /// Writes the location file of a segment just sealed and moves its
    /// records' locations out of memory. A failure costs only memory: the
    /// records stay in the index, and the next open builds the file.
    pub(crate) fn index_sealed(&self, id: u64, sealed: &Segment) {
        let Segment::Sealed { path, .. } = sealed else {
            return;
        };
        let held = self.index.read().held_records_in(id);
        if let Ok(sidecar) = super::locations::build_sealed(&self.dir, path, id, held, true) {
            let _ = self.index.write().attach_sidecar(Arc::new(sidecar));
        }
    }
}

impl Store {
    /// Makes everything appended so far durable (useful with batched durability).
    ///
    /// # Errors
    /// [`Error::Io`] if syncing fails; the store is then poisoned.
    pub fn sync(&self) -> Result<()> {
        let engine = &*self.engine;
        engine.check_writable()?;
        let ticket = {
            let _w = engine.writer.lock();
            engine.commit.ticket()
        };
        engine.commit.wait(ticket, || engine.sync_now())
    }
}

/// A new generation, made by [`create_transcript`]: its index entry and keys.
pub(crate) struct Created {
    pub entry: TranscriptEntry,
    pub keys: TranscriptKeys,
}

/// The generation [`create_transcript`] makes: its visitor, its caller's id
/// and that id's hash, and the earliest creation time it may have.
pub(crate) struct NewGeneration<'a> {
    pub vid: Vid,
    pub caller_id: &'a str,
    pub caller: CallerHash,
    pub min_created: i64,
}

/// Creates a generation's keys (and id) from `random` and allocates its
/// keyring slots, staged in `staged` for the caller to write (not synced).
/// Without `with_pii` the generation gets no PII key at all: it can hold no
/// personal data (used to rewrite a transcript whose PII key is gone).
pub(crate) fn create_transcript(
    w: &mut Writer,
    staged: &mut StagedSlots,
    new: NewGeneration<'_>,
    with_pii: bool,
    random: &mut Nonces,
) -> Result<Created> {
    let NewGeneration {
        vid,
        caller_id,
        caller,
        min_created,
    } = new;
    let now = Timestamp::now().unix_millis().max(min_created);
    let tid: Tid = random.take()?;
    let content_key = random.key()?;
    let (pii_slot, pii_key) = if with_pii {
        let pii_key = random.key()?;
        let slot = Slot::Pii(PiiSlot {
            tid,
            pii_key: pii_key.clone(),
        });
        let pii_slot = w.keyring.allocate(&slot)?;
        w.keyring.stage(staged, pii_slot, &slot)?;
        (Some(pii_slot), Some(pii_key))
    } else {
        (None, None)
    };
    let slot = Slot::Transcript(TranscriptSlot {
        tid,
        vid,
        content_key: content_key.clone(),
        pii_slot: pii_slot.unwrap_or(0),
        rules_version: RULES_VERSION,
        created_millis: now,
        caller_id: caller_id.to_owned(),
    });
    let content_slot = w.keyring.allocate(&slot)?;
    w.keyring.stage(staged, content_slot, &slot)?;
    Ok(Created {
        entry: TranscriptEntry::new(tid, vid, caller, content_slot, pii_slot, RULES_VERSION, now),
        keys: TranscriptKeys {
            content: content_key,
            pii: pii_key,
            caller_id: Arc::from(caller_id),
        },
    })
}

/// Where a message of a batch goes.
enum Target {
    /// Nowhere: its transcript already holds its id (or the batch does).
    Stored,
    Existing(Tid),
    /// The n-th transcript created by this batch; this message creates it,
    /// for the visitor of that email (`Some`: a known one, as looked up
    /// under the writer's lock, which the batch holds until it is written).
    NewFirst(usize, String, Option<Vid>),
    /// A later message of the n-th transcript created by this batch.
    New(usize),
}

/// The generation a message is sealed into.
#[derive(Clone, Copy)]
pub(crate) struct At {
    pub tid: Tid,
    pub vid: Vid,
    /// Its next sequence number before this batch.
    pub next_seq: u32,
}

impl At {
    /// Where the messages of a generation without records go.
    pub(crate) fn new_generation(t: &TranscriptEntry) -> At {
        At {
            tid: t.tid,
            vid: t.vid,
            next_seq: 0,
        }
    }
}

/// One message to seal: where, under which keys, what.
pub(crate) struct Item<'a> {
    pub at: At,
    pub keys: TranscriptKeys,
    pub prepared: &'a Prepared<'a>,
}

/// A message split and encoded, ready to seal.
pub(crate) struct Prepared<'a> {
    msg: &'a Message,
    /// The visitor's email in canonical form (appends only).
    email: Option<String>,
    content: Vec<u8>,
    pub(crate) pii: Option<SecretVec>,
}

impl Prepared<'_> {
    fn size_hint(&self) -> usize {
        record::FRAME_HEADER
            + record::RECORD_HEADER
            + record::MSG_ID_LEN
            + self.content.len()
            + self.pii.as_ref().map_or(0, |p| p.len())
            + 2 * TAG_LEN
    }
}

/// Batches with at least this many bytes to seal are sealed on several
/// threads.
const PARALLEL_SEAL_MIN_BYTES: usize = 256 << 10;

/// The number of cores this process may use (asked once: the answer reads
/// cgroup files on every call).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}

/// The sealed frames of a batch, back to back, and each record's location
/// in them (segment 0, offsets from the start of the buffer).
type SealedBatch = (Vec<u8>, Vec<(Tid, RecordRef, Option<MsgIdDigest>)>);

/// Seals `items` at `places` in order into one buffer: on this thread, or in
/// contiguous runs of about equal bytes on up to `cores()` threads, each with
/// its own nonces, joined in order afterwards.
fn seal_all(items: &[Item<'_>], places: &[Placement]) -> Result<SealedBatch> {
    let hints: Vec<usize> = items.iter().map(|i| i.prepared.size_hint()).collect();
    let total: usize = hints.iter().sum();
    let threads = cores()
        .min(total / (PARALLEL_SEAL_MIN_BYTES / 2))
        .clamp(1, items.len().max(1));
    // Cut points: each run holds about `total / threads` bytes.
    let mut cuts = vec![0];
    let mut acc = 0;
    for (n, h) in hints.iter().enumerate() {
        acc += h;
        if cuts.len() < threads && acc >= total * cuts.len() / threads && n + 1 < items.len() {
            cuts.push(n + 1);
        }
    }
    cuts.push(items.len());
    let run = |from: usize, to: usize| -> Result<SealedBatch> {
        let (items, places) = (&items[from..to], &places[from..to]);
        let pii_count = items.iter().filter(|i| i.prepared.pii.is_some()).count();
        let mut nonces = Nonces::new(items.len() + pii_count)?;
        let mut buf: Vec<u8> = Vec::with_capacity(hints[from..to].iter().sum());
        let mut pending = Vec::with_capacity(items.len());
        // The keys made ready for the generation of the message before,
        // kept while messages of one generation follow each other; the PII
        // key only once a message needs it.
        let mut ready: Option<(Tid, MessageKeys)> = None;
        for (item, place) in items.iter().zip(places) {
            let p = item.prepared;
            let needs_pii = p.pii.is_some() && item.keys.pii.is_some();
            let fits = ready
                .as_ref()
                .is_some_and(|(tid, k)| *tid == item.at.tid && (k.pii.is_some() || !needs_pii));
            if !fits {
                let pii = item.keys.pii.as_ref().filter(|_| p.pii.is_some());
                ready = Some((item.at.tid, MessageKeys::new(&item.keys.content, pii)));
            }
            let Some((_, keys)) = &ready else {
                return Err(Error::Internal("no keys made ready for a message".into()));
            };
            let frame_start = buf.len();
            let sealed = record::seal_message(
                place,
                keys,
                &p.content,
                p.pii.as_ref().map(|x| x.as_slice()),
                &mut nonces,
                &mut buf,
            )?;
            pending.push((
                item.at.tid,
                RecordRef {
                    seq: place.seq,
                    ts: place.ts_millis,
                    loc: Loc {
                        seg: 0,
                        off: frame_start as u64,
                        len: sealed.frame_len,
                    },
                    pii_len: sealed.pii_len,
                },
                place.msg_id,
            ));
        }
        Ok((buf, pending))
    };
    if cuts.len() <= 2 {
        return run(0, items.len());
    }
    std::thread::scope(|scope| {
        let helpers: Vec<_> = cuts
            .windows(2)
            .skip(1)
            .map(|w| {
                let (from, to) = (w[0], w[1]);
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || run(from, to))
                    .map_err(|_| (from, to))
            })
            .collect();
        let (mut buf, mut pending) = run(cuts[0], cuts[1])?;
        buf.reserve(total.saturating_sub(buf.len()));
        for helper in helpers {
            let (part, refs) = match helper {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(Error::Internal("a sealing thread panicked".into())))?,
                // No thread to spare: this one seals the run.
                Err((from, to)) => run(from, to)?,
            };
            let base = buf.len() as u64;
            buf.extend_from_slice(&part);
            pending.extend(refs.into_iter().map(|(tid, mut r, digest)| {
                r.loc.off += base;
                (tid, r, digest)
            }));
        }
        Ok((buf, pending))
    })
}

/// Batches at least this long are prepared on several threads.
const PARALLEL_PREPARE_MIN: usize = 128;

/// Messages in a batch from which its keyring sync starts before the
/// batch is sealed (`Engine::sync_keyring_early`), and its segment's sync
/// before it is published (`Engine::sync_segment_early`). Smaller ones
/// (single appends among them) leave both to the commit's sync, which one
/// sync serves for every append it gathers.
const EARLY_SYNC_MIN: usize = 64;

/// Prepares every message of a batch: in order on this thread for a short
/// batch, else in contiguous chunks on up to `available_parallelism` threads
/// (detection is most of the CPU an append costs). Either way the error is
/// the one of the first message that fails.
fn prepare_all<'a>(
    msgs: &'a [Message],
    detector: &Detector,
    screen: &Screen,
    max: usize,
) -> Result<Vec<Prepared<'a>>> {
    // `first`: the position of the part's first message in the batch.
    let run = |first: usize, part: &'a [Message]| -> Result<Vec<Prepared<'a>>> {
        part.iter()
            .enumerate()
            .map(|(i, m)| {
                prepare(m, detector, Some(screen), max).map_err(|e| e.in_message(first + i))
            })
            .collect()
    };
    if msgs.len() < PARALLEL_PREPARE_MIN {
        return run(0, msgs);
    }
    let threads = cores().min(msgs.len() / (PARALLEL_PREPARE_MIN / 2)).max(1);
    if threads == 1 {
        return run(0, msgs);
    }
    let chunk = msgs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut parts = msgs.chunks(chunk).enumerate();
        let (_, first) = parts.next().unwrap_or_default();
        let helpers: Vec<_> = parts
            .map(|(k, part)| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || run(k * chunk, part))
                    .map_err(|_| (k * chunk, part))
            })
            .collect();
        let mut out = run(0, first)?;
        out.reserve(msgs.len() - out.len());
        for helper in helpers {
            let part = match helper {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(Error::Internal("a preparing thread panicked".into()))
                })?,
                // No thread to spare: this one does the chunk.
                Err((at, part)) => run(at, part)?,
            };
            out.extend(part);
        }
        Ok(out)
    })
}

/// Splits a message into its redacted view and PII fill and encodes both.
/// A new message (`screen` given) must also have ids without personal data
/// and a visitor email that is an email address; a rewritten one keeps what
/// it had.
pub(crate) fn prepare<'a>(
    msg: &'a Message,
    detector: &Detector,
    screen: Option<&Screen>,
    max: usize,
) -> Result<Prepared<'a>> {
    if msg.transcript.is_empty() {
        return Err(Error::invalid("field `transcript` is empty"));
    }
    let mut email = None;
    if let Some(screen) = screen {
        screen.id(Field::TranscriptId, &msg.transcript)?;
        if let Some(id) = &msg.id {
            screen.id(Field::MessageId, id)?;
        }
        if let Some(v) = &msg.visitor {
            email = Some(crate::email::canonical(&v.email)?.into_owned());
        }
    }
    let (content, pii) = split::split(msg, detector);
    let content = crate::codec::encode(&split::ContentV2 {
        part: &content,
        msg_id: msg.id.as_deref().unwrap_or(""),
    });
    // The fill borrows from the message: encoded straight into one buffer,
    // the only copy of the message's personal data the store makes.
    let pii = pii.map(|p| SecretVec::new(crate::codec::encode(&p)));
    let size = content.len() + pii.as_ref().map_or(0, |p| p.len());
    if size > max {
        return Err(Error::invalid(format!(
            "message is larger than the limit of {max} bytes"
        )));
    }
    Ok(Prepared {
        msg,
        email,
        content,
        pii,
    })
}
