//! Privacy operations at two store sizes (~100 k and ~1 M messages, the same
//! fixtures as the read benches). Every bench works on a copy of the closed
//! fixture, with `Durability::Immediate` (the default options).
//!
//! Groups (each runnable alone with a criterion filter, e.g.
//! `cargo bench --bench privacy -- redact_visitor`):
//!
//! * `redact_visitor/{100k,1M}`: erasure of one visitor; every iteration erases
//!   a different visitor that is not yet erased (shuffled order). Should the
//!   visitors of a copy run out, a fresh copy is taken (outside the timing).
//! * `delete_transcript/{100k,1M}`: deletion of one transcript, likewise.
//! * `retention/{100k,1M}`: `apply_retention(.., delete: false, ..)` with a
//!   cutoff that makes ~10 % of the transcripts old enough, on a fresh copy of
//!   the store for every iteration (`iter_batched`, `PerIteration`).

mod common;

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use shredlog::{Options, Store};
use tempfile::TempDir;

use common::{Fixture, LARGE, SMALL, fixture};

/// A copy of a fixture, consumed one key (email or transcript id) at a time.
struct Consumer {
    fx: &'static Fixture,
    what: &'static str,
    keys: &'static [String],
    store: Option<(Store, TempDir)>,
    next: usize,
    copies: usize,
    used: usize,
}

impl Consumer {
    fn new(fx: &'static Fixture, what: &'static str, keys: &'static [String]) -> Consumer {
        Consumer {
            fx,
            what,
            keys,
            store: None,
            next: 0,
            copies: 0,
            used: 0,
        }
    }

    /// Makes sure a copy is open with keys left. Call before `iter_custom`:
    /// criterion's warm-up counts the wall time of the routine, so the first
    /// (expensive) copy must not happen inside it.
    fn ready(&mut self) {
        if self.store.is_none() || self.next == self.keys.len() {
            if let Some((s, _dir)) = self.store.take() {
                s.close().expect("close");
            }
            let dir = self.fx.copy();
            let store = Store::open(dir.path(), Options::default()).expect("open copy");
            self.store = Some((store, dir));
            self.next = 0;
            self.copies += 1;
        }
    }

    /// The store and the next unused key, taking a fresh copy when needed
    /// (the caller times only the operation).
    fn take(&mut self) -> (&Store, &'static str) {
        self.ready();
        let key = &self.keys[self.next];
        self.next += 1;
        self.used += 1;
        (&self.store.as_ref().expect("store").0, key.as_str())
    }
}

impl Drop for Consumer {
    /// Reports how much was consumed, and (as a diagnostic, not a criterion
    /// measurement) how long reopening the last copy takes after its erasures:
    /// open replays the audit log.
    fn drop(&mut self) {
        eprintln!(
            "{} {}: {} done on {} cop{} of the store ({} keys each)",
            self.fx.size.label,
            self.what,
            self.used,
            self.copies,
            if self.copies == 1 { "y" } else { "ies" },
            self.keys.len()
        );
        if let Some((store, dir)) = self.store.take() {
            let _ = store.close();
            let t0 = Instant::now();
            let reopened = Store::open(dir.path(), Options::default());
            let spent = t0.elapsed();
            eprintln!(
                "{} {}: reopening the copy after {} {} took {spent:.1?} (fresh copy: see open/{})",
                self.fx.size.label, self.what, self.next, self.what, self.fx.size.label
            );
            drop(reopened);
        }
    }
}

fn redact_visitor(c: &mut Criterion) {
    let mut g = c.benchmark_group("redact_visitor");
    for size in [SMALL, LARGE] {
        let mut state: Option<Consumer> = None;
        g.bench_function(size.label, move |b| {
            let fx = fixture(size);
            let st = state.get_or_insert_with(|| Consumer::new(fx, "erasures", &fx.emails));
            st.ready();
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let (store, email) = st.take();
                    let t0 = Instant::now();
                    store
                        .redact_visitor(email, "bench")
                        .expect("redact_visitor");
                    spent += t0.elapsed();
                }
                spent
            });
        });
    }
    g.finish();
}

fn delete_transcript(c: &mut Criterion) {
    let mut g = c.benchmark_group("delete_transcript");
    for size in [SMALL, LARGE] {
        let mut state: Option<Consumer> = None;
        g.bench_function(size.label, move |b| {
            let fx = fixture(size);
            let st = state.get_or_insert_with(|| Consumer::new(fx, "deletions", &fx.transcripts));
            st.ready();
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let (store, id) = st.take();
                    let t0 = Instant::now();
                    store
                        .delete_transcript(id, "bench")
                        .expect("delete_transcript");
                    spent += t0.elapsed();
                }
                spent
            });
        });
    }
    g.finish();
}

fn retention(c: &mut Criterion) {
    let mut g = c.benchmark_group("retention");
    // Every iteration needs a fresh copy of the store: one run per sample.
    g.sampling_mode(SamplingMode::Flat);
    const PERIOD_MS: i64 = 90 * 86_400_000;
    for size in [SMALL, LARGE] {
        g.bench_function(size.label, move |b| {
            let fx = fixture(size);
            // Transcripts whose latest message is before the cutoff: ~10 %.
            let cutoff = fx.last_ts[fx.last_ts.len() / 10];
            let expected = fx.last_ts.partition_point(|t| *t < cutoff) as u64;
            let now_ms = cutoff + PERIOD_MS;
            b.iter_batched(
                || {
                    let dir = fx.copy();
                    let store = Store::open(dir.path(), Options::default()).expect("open copy");
                    (store, dir)
                },
                |(store, dir)| {
                    let e = store
                        .apply_retention(PERIOD_MS, false, now_ms, "bench")
                        .expect("apply_retention");
                    assert_eq!(e.transcripts, expected, "transcripts redacted by retention");
                    // Closed and removed outside the timing.
                    (store, dir)
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = redact_visitor, delete_transcript, retention
}
criterion_main!(benches);
