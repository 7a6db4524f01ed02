//! Group commit: appenders that wait for durability share one sync.
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

/// How long a leader waits at most for appends on their way.
const GATHER: Duration = Duration::from_micros(200);

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
