//! Durability: group commit (appenders that wait for durability share one
//! sync), syncing the keyring and the active segment, the index checkpoint,
//! close, and the background threads (batched syncs, the delete-persistence
//! bound).
//!
//! Group commit:
//!
//! Each append takes a ticket (a sequence number) while holding the writer's
//! lock. Waiting for durability, the first waiter becomes the leader: it reads
//! the newest ticket written so far, syncs, and publishes that ticket as
//! durable; everyone whose ticket is covered returns. A failed sync poisons
//! the store: nobody is told their write is safe, and every later write fails.
//!
//! Before it syncs, a leader gives appends already on their way (between
//! entering the append and taking their ticket: detecting, sealing, waiting
//! for the writer's lock) a short, bounded moment to get their tickets, so
//! that they ride on its sync instead of paying for the next one. A lone
//! writer never waits: nobody is on the way.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::compact::CompactOptions;
use super::{Engine, Writer};
use crate::config::Durability;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::Stamp;
use crate::index::{Checkpoint, Index};
use crate::segment::{self, SEGMENT_HEADER};

/// How long a leader waits at most for appends on their way.
const GATHER: Duration = Duration::from_micros(200);

/// Close seals an active segment at least this long (docs/FORMAT.md §3):
/// loading a quarter of a MiB of chat records from the checkpoint (about
/// 1,000) adds some 0.05 ms to the next open, a MiB some 0.2 ms.
pub(crate) const SEAL_AT_CLOSE: u64 = 256 << 10;

#[derive(Default)]
struct State {
    /// Newest ticket handed out (its bytes are written to the OS).
    written: u64,
    /// Newest ticket known durable.
    synced: u64,
    syncing: bool,
    poisoned: Option<String>,
}

/// The group-commit coordinator.
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    cond: Condvar,
    /// Appends on their way to a ticket (see [`GroupCommit::arrive`]).
    arriving: AtomicUsize,
    gather: Duration,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit::with_gather(GATHER)
    }
}

/// An append on its way to a ticket; dropped once it has one (or failed).
pub(crate) struct Arrival<'a>(&'a AtomicUsize);

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl GroupCommit {
    fn with_gather(gather: Duration) -> GroupCommit {
        GroupCommit {
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
            arriving: AtomicUsize::new(0),
            gather,
        }
    }

    /// Announces an append that will wait for durability; drop the guard
    /// right after taking the ticket.
    pub(crate) fn arrive(&self) -> Arrival<'_> {
        self.arriving.fetch_add(1, Ordering::AcqRel);
        Arrival(&self.arriving)
    }

    /// Lets appends on their way take their tickets, for at most `gather`.
    fn gather(&self) {
        let start = Instant::now();
        while self.arriving.load(Ordering::Acquire) > 0 && start.elapsed() < self.gather {
            std::thread::yield_now();
        }
    }

    /// Registers written bytes; returns their ticket. Call under the writer lock.
    pub(crate) fn ticket(&self) -> u64 {
        let mut s = self.state.lock();
        s.written += 1;
        s.written
    }

    /// Fails if a previous I/O error poisoned the store.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.state.lock().poisoned {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// Marks the store poisoned.
    pub(crate) fn poison(&self, why: &Error) {
        let mut s = self.state.lock();
        if s.poisoned.is_none() {
            s.poisoned = Some(why.to_string());
        }
        self.cond.notify_all();
    }

    /// Whether everything written so far is durable.
    pub(crate) fn is_clean(&self) -> bool {
        let s = self.state.lock();
        s.synced >= s.written
    }

    /// Returns once `ticket` is durable, syncing with `sync` if nobody else is.
    pub(crate) fn wait(&self, ticket: u64, sync: impl Fn() -> Result<()>) -> Result<()> {
        self.wait_inner(ticket, sync, true)
    }

    /// As [`GroupCommit::wait`], for a caller that holds the writer's lock:
    /// as leader it does not wait for appends on their way, which need that
    /// lock to get their tickets.
    pub(crate) fn wait_holding_writer(
        &self,
        ticket: u64,
        sync: impl Fn() -> Result<()>,
    ) -> Result<()> {
        self.wait_inner(ticket, sync, false)
    }

    fn wait_inner(&self, ticket: u64, sync: impl Fn() -> Result<()>, gather: bool) -> Result<()> {
        let mut s = self.state.lock();
        loop {
            if let Some(why) = &s.poisoned {
                return Err(Error::Poisoned(why.clone()));
            }
            if s.synced >= ticket {
                return Ok(());
            }
            if s.syncing {
                self.cond.wait(&mut s);
                continue;
            }
            s.syncing = true;
            drop(s);
            if gather {
                self.gather();
            }
            // Every ticket handed out so far has its bytes written.
            let target = self.state.lock().written;
            let result = sync();
            s = self.state.lock();
            s.syncing = false;
            match result {
                Ok(()) => s.synced = s.synced.max(target),
                Err(e) => {
                    if s.poisoned.is_none() {
                        s.poisoned = Some(e.to_string());
                    }
                    self.cond.notify_all();
                    return Err(e);
                }
            }
            self.cond.notify_all();
        }
    }
}

impl Engine {
    /// Makes everything written so far durable. When new keys were written,
    /// the keyring and the segment are synced at the same time (two device
    /// queues, one wait): a record that reaches the disk before its keys was
    /// not acknowledged, and without its keys it is dead at recovery. The
    /// syncs a large append started early ([`Engine::sync_keyring_early`],
    /// [`Engine::sync_segment_early`]) are waited for here, so that nothing
    /// is acknowledged before they end; the first failure among them fails
    /// this sync.
    pub(crate) fn sync_now(&self) -> Result<()> {
        let segment = self.active_file.lock().clone().ok_or(Error::ReadOnly)?;
        // The early syncs end first: the segment need not be synced again
        // for bytes one of them made durable.
        let early = joined(std::mem::take(&mut *self.early_syncs.lock()));
        let sync_segment = || {
            if segment.is_durable() {
                Ok(())
            } else {
                segment.sync()
            }
        };
        if !self
            .keyring_dirty
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return early.and(sync_segment());
        }
        let keyring = || sync_keyring(&self.keyring_file, &self.keyring_path);
        let both = std::thread::scope(|scope| {
            match std::thread::Builder::new().spawn_scoped(scope, keyring) {
                Ok(k) => {
                    let s = sync_segment();
                    let k = k.join().unwrap_or_else(|_| {
                        Err(Error::Internal("the keyring sync thread panicked".into()))
                    });
                    k.and(s)
                }
                // No thread to spare: one after the other.
                Err(_) => keyring().and_then(|()| sync_segment()),
            }
        });
        early.and(both)
    }

    /// Starts syncing the keyring now, on a thread of its own, for the keys
    /// and directory entries a large batch has just written: the sync (the
    /// longer of a commit's two: the entries sit on pages all over the
    /// directory's table) then runs while the batch is sealed, written and
    /// published, and the commit's [`Engine::sync_now`] waits for it. A
    /// later write to the keyring marks it dirty again, for the commit's own
    /// sync. Without a thread to spare, the commit's sync does it all.
    pub(crate) fn sync_keyring_early(&self) {
        if !self.keyring_dirty.swap(false, Ordering::SeqCst) {
            return;
        }
        let (file, path) = (Arc::clone(&self.keyring_file), self.keyring_path.clone());
        if !self.start_early("shredlog-keyring-sync", move || sync_keyring(&file, &path)) {
            self.keyring_dirty.store(true, Ordering::SeqCst);
        }
    }

    /// Starts syncing the active segment now, on a thread of its own, for
    /// the records a large batch has just appended: the sync then runs
    /// while the batch is published to the index, and the commit's
    /// [`Engine::sync_now`] waits for it (and syncs the segment again only
    /// if something was appended after it began). Without a thread to
    /// spare, the commit's sync does it.
    pub(crate) fn sync_segment_early(&self) {
        if let Some(segment) = self.active_file.lock().clone() {
            // Not started, the segment is not durable: the commit syncs it.
            self.start_early("shredlog-segment-sync", move || segment.sync());
        }
    }

    /// Runs `sync` on a thread named `name`, for the next [`Engine::sync_now`]
    /// to wait for; false if no thread could be started.
    fn start_early(&self, name: &str, sync: impl FnOnce() -> Result<()> + Send + 'static) -> bool {
        match std::thread::Builder::new().name(name.into()).spawn(sync) {
            Ok(handle) => {
                self.early_syncs.lock().push(handle);
                true
            }
            Err(_) => false,
        }
    }

    /// Points syncs at a new active segment (after a roll).
    pub(crate) fn set_active_file(&self, handle: segment::SyncHandle) {
        *self.active_file.lock() = Some(handle);
    }

    /// Writes the index checkpoint. With `full` it covers everything written
    /// (call only when all of it is synced); otherwise only sealed segments,
    /// which are synced when sealed.
    pub(crate) fn write_checkpoint(&self, w: &Writer, full: bool) -> Result<()> {
        let index = self.index.read();
        let segs = self.segments.read();
        let (active, active_len) = w.last_segment();
        let covered = |seg: u64| full || seg < active;
        let mut ckpt = Checkpoint::default();
        for (id, seg) in segs.iter() {
            let len = match (*id == active, full) {
                (true, true) => active_len,
                (true, false) => SEGMENT_HEADER,
                _ => match std::fs::metadata(self.dir.join(segment::file_name(*id))) {
                    Ok(m) => {
                        // The sealed file as it is now: a next open that
                        // finds it so need not open it (under the writer's
                        // lock, which a compaction's swap also holds).
                        ckpt.files.push((*id, Stamp::of(&m)));
                        m.len()
                    }
                    Err(_) => 0,
                },
            };
            ckpt.segments.push((*id, seg.generation(), len));
        }
        // PII parts of redacted transcripts are counted dead again at load
        // (from the keyring), so the checkpoint leaves them out.
        let mut pii_dead: HashMap<u64, u64> = HashMap::new();
        // Those of segments with a location file are counted again from
        // there, whatever the checkpoint says; only those held in memory
        // matter.
        for t in index.with_recent_records().filter(|t| !t.has_pii()) {
            for r in Index::recent_records(t) {
                *pii_dead.entry(r.loc.seg).or_default() += u64::from(r.pii_len);
            }
        }
        ckpt.dead = index
            .usage()
            .iter()
            .filter(|(id, _)| covered(**id))
            .map(|(id, u)| {
                let dead = u
                    .dead
                    .saturating_sub(pii_dead.get(id).copied().unwrap_or(0));
                (*id, dead, u.dead_since)
            })
            .collect();
        // Only the records held in memory: those of segments with a
        // record-location file are found there.
        ckpt.transcripts = index
            .with_recent_records()
            .map(|t| {
                (
                    t.tid,
                    Index::recent_records(t)
                        .iter()
                        .filter(|r| covered(r.loc.seg))
                        .copied()
                        .collect::<Vec<_>>(),
                    // Digests of uncovered records are found again by the scan.
                    Index::recent_msg_ids(t).copied().collect::<Vec<_>>(),
                )
            })
            .filter(|(_, records, _)| !records.is_empty())
            .collect();
        drop(segs);
        drop(index);
        ckpt.save(&self.dir)
    }

    /// Closes the store: joins the background threads, makes everything
    /// durable, records the whole active segment and audit log as
    /// acknowledged in the keyring's state, writes the checkpoint.
    pub(crate) fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        for h in std::mem::take(&mut *self.background.lock()) {
            h.thread().unpark();
            let _ = h.join();
        }
        if self.options.read_only {
            return Ok(());
        }
        crate::failpoint::check("store.close").at(&self.dir)?;
        self.commit.check()?;
        let mut w = self.writer.lock();
        // Everything written is made durable first; then the zeros written
        // ahead are cut off (a closed store's last segment ends with its
        // data), and the keyring's state records the whole segment as
        // acknowledged: any byte missing later is lost data, not a torn tail.
        let ticket = self.commit.ticket();
        self.commit
            .wait_holding_writer(ticket, || self.sync_now())?;
        // An active segment holding a good deal is sealed now: its records'
        // locations go to its location file, and the next open need not
        // load them into memory from the checkpoint (open stays short
        // however the last session ended). A small one is kept, so that
        // stores opened and closed often do not fill up with small segments.
        if w.active()?.len >= SEAL_AT_CLOSE {
            self.roll(&mut w)?;
        }
        w.active()?.trim()?;
        w.note_durable();
        // Every logged operation has its effects on disk by now.
        let (entries, bytes) = self.audit.lock().marks();
        w.keyring.note_audit(entries, bytes, Some((entries, bytes)));
        w.keyring.sync()?;
        if self.options.checkpoint {
            self.write_checkpoint(&w, true)?;
            // A new run unless the one the keyring names holds everything.
            if !self.run_is_current(&w)? {
                self.write_run(&mut w)?;
            }
        }
        Ok(())
    }

    /// Starts the background threads the options ask for.
    pub(crate) fn start_background(self: &std::sync::Arc<Engine>) -> Result<()> {
        if self.options.read_only {
            return Ok(());
        }
        if let Durability::Batched { interval_ms } = self.options.durability {
            let weak = std::sync::Arc::downgrade(self);
            let handle = std::thread::Builder::new()
                .name("shredlog-sync".into())
                .spawn(move || background_sync(weak, Duration::from_millis(interval_ms.max(1))))
                .map_err(|e| Error::io("shredlog-sync thread", e))?;
            self.background.lock().push(handle);
        }
        if let Some(bound) = self.options.max_dead_age_ms {
            let weak = std::sync::Arc::downgrade(self);
            let handle = std::thread::Builder::new()
                .name("shredlog-compact".into())
                .spawn(move || background_compact(weak, bound.max(1)))
                .map_err(|e| Error::io("shredlog-compact thread", e))?;
            self.background.lock().push(handle);
        }
        Ok(())
    }
}

/// Syncs the keyring's data (the failpoint and sync journal of the test
/// builds around it).
fn sync_keyring(file: &File, path: &Path) -> Result<()> {
    crate::failpoint::check("keyring.sync").at(path)?;
    file.sync_data().at(path)?;
    crate::failpoint::synced(path, file);
    Ok(())
}

/// Waits for every early sync; the first failure, once all ended.
fn joined(early: Vec<JoinHandle<Result<()>>>) -> Result<()> {
    let mut out = Ok(());
    for handle in early {
        let r = handle
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("an early sync thread panicked".into())));
        if out.is_ok() {
            out = r;
        }
    }
    out
}

fn background_sync(weak: Weak<Engine>, every: Duration) {
    loop {
        std::thread::park_timeout(every);
        let Some(engine) = weak.upgrade() else { return };
        if engine.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if engine.commit.is_clean() || engine.commit.check().is_err() {
            continue;
        }
        let ticket = {
            let _w = engine.writer.lock();
            engine.commit.ticket()
        };
        if engine.commit.wait(ticket, || engine.sync_now()).is_ok()
            && engine.index.read().changes_held() >= super::runs::RUN_EVERY
        {
            let _ = engine.maybe_write_run(&mut engine.writer.lock());
        }
    }
}

/// Keeps the delete-persistence bound: compacts segments whose dead bytes are
/// older than half the bound, sealing the active segment when it holds some.
fn background_compact(weak: Weak<Engine>, bound_ms: u64) {
    let every = Duration::from_millis((bound_ms / 4).clamp(50, 60_000));
    loop {
        std::thread::park_timeout(every);
        let Some(engine) = weak.upgrade() else { return };
        if engine.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let options = CompactOptions {
            dead_older_than_ms: Some(i64::try_from(bound_ms / 2).unwrap_or(i64::MAX)),
            include_active: true,
            bytes_per_sec: engine.options.compaction_bytes_per_sec,
            ..CompactOptions::default()
        };
        let _ = engine.compact(&options, &|_, _| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn concurrent_waiters_share_syncs() {
        let gc = Arc::new(GroupCommit::default());
        let syncs = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let gc = Arc::clone(&gc);
                let syncs = Arc::clone(&syncs);
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let t = gc.ticket();
                        gc.wait(t, || {
                            syncs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(gc.is_clean());
        assert!(syncs.load(Ordering::SeqCst) < 400, "no sharing happened");
    }

    #[test]
    fn a_waiter_is_not_released_by_a_sync_that_started_before_its_write() {
        // The leader syncs tickets up to 1; ticket 2 is written meanwhile and
        // must wait for a sync of its own, not ride on the one in flight.
        let gc = Arc::new(GroupCommit::default());
        let t1 = gc.ticket();
        let (in_sync, go) = (
            Arc::new(std::sync::Barrier::new(2)),
            Arc::new(std::sync::Barrier::new(2)),
        );
        let syncs = Arc::new(AtomicUsize::new(0));
        let leader = {
            let (gc, in_sync, go, syncs) = (
                Arc::clone(&gc),
                Arc::clone(&in_sync),
                Arc::clone(&go),
                Arc::clone(&syncs),
            );
            std::thread::spawn(move || {
                gc.wait(t1, || {
                    syncs.fetch_add(1, Ordering::SeqCst);
                    in_sync.wait();
                    go.wait();
                    Ok(())
                })
                .unwrap();
            })
        };
        in_sync.wait();
        let t2 = gc.ticket();
        let follower = {
            let (gc, syncs) = (Arc::clone(&gc), Arc::clone(&syncs));
            std::thread::spawn(move || {
                gc.wait(t2, || {
                    syncs.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap();
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            !follower.is_finished(),
            "ticket 2 was released by a sync that started before it was written"
        );
        go.wait();
        leader.join().unwrap();
        follower.join().unwrap();
        assert_eq!(syncs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_leader_waits_for_appends_on_their_way() {
        // An append announced before the leader syncs gets its ticket into
        // the same sync (the bound is generous here: the test must not race).
        let gc = Arc::new(GroupCommit::with_gather(std::time::Duration::from_secs(30)));
        let on_the_way = gc.arrive();
        let t1 = gc.ticket();
        let syncs = Arc::new(AtomicUsize::new(0));
        let leader = {
            let (gc, syncs) = (Arc::clone(&gc), Arc::clone(&syncs));
            std::thread::spawn(move || {
                gc.wait(t1, || {
                    syncs.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap();
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(syncs.load(Ordering::SeqCst), 0, "the leader did not wait");
        let t2 = gc.ticket();
        drop(on_the_way);
        leader.join().unwrap();
        gc.wait(t2, || panic!("ticket 2 needed a second sync"))
            .unwrap();
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn failed_sync_poisons() {
        let gc = GroupCommit::default();
        let t = gc.ticket();
        let err = gc.wait(t, || Err(Error::invalid("disk gone"))).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)));
        let t2 = gc.ticket();
        assert!(matches!(gc.wait(t2, || Ok(())), Err(Error::Poisoned(_))));
        assert!(gc.check().is_err());
        // Even the first ticket is not reported durable later.
        assert!(gc.wait(t, || Ok(())).is_err());
    }
}
