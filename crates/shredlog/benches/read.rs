//! Reads and open, at two store sizes (~100 k and ~1 M messages, chat-like
//! workload without files, built once per process with `append_batch` of 1000
//! and batched durability, then closed so the index checkpoint is written).
//!
//! Groups (each runnable alone with a criterion filter, e.g.
//! `cargo bench --bench read -- read_transcript/100k`):
//!
//! * `read_transcript/{100k,1M}`: `Store::transcript` of one transcript,
//!   cycling through all transcripts in shuffled order (4–16 messages each).
//! * `transcripts_by_email/{100k,1M}/{all,range}`: a visitor's transcripts,
//!   all of them or those within a 30-day window, cycling through visitors.
//! * `open/{100k,1M}/{checkpoint,no_checkpoint}`: `Store::open` of the closed
//!   store, with the index checkpoint, and with `index.ckpt` deleted before
//!   each open (full log scan). Files are in the page cache.

mod common;

use std::hint::black_box;

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use shredlog::{Options, Store};
use workload::DEFAULT_START_UNIX_MS;

use common::{LARGE, SMALL, fixture};

const DAY_MS: i64 = 86_400_000;

fn read_transcript(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_transcript");
    for size in [SMALL, LARGE] {
        let mut i = 0usize;
        g.bench_function(size.label, move |b| {
            let fx = fixture(size);
            let guard = fx.store();
            let store = guard.as_ref().expect("open store");
            b.iter(|| {
                let id = &fx.transcripts[i % fx.transcripts.len()];
                i += 1;
                black_box(store.transcript(id).expect("transcript"))
            });
        });
    }
    g.finish();
}

fn transcripts_by_email(c: &mut Criterion) {
    let mut g = c.benchmark_group("transcripts_by_email");
    // A 30-day window in the middle of the workload's year.
    let from = DEFAULT_START_UNIX_MS + 150 * DAY_MS;
    let to = from + 30 * DAY_MS;
    for size in [SMALL, LARGE] {
        for (name, range) in [("all", None), ("range", Some((from, to)))] {
            let mut i = 0usize;
            g.bench_function(format!("{}/{name}", size.label), move |b| {
                let fx = fixture(size);
                let guard = fx.store();
                let store = guard.as_ref().expect("open store");
                b.iter(|| {
                    let email = &fx.emails[i % fx.emails.len()];
                    i += 1;
                    black_box(
                        store
                            .transcripts_by_email(email, range.map(|r| r.0), range.map(|r| r.1))
                            .expect("transcripts_by_email"),
                    )
                });
            });
        }
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("open");
    // Opening the large store without a checkpoint takes about a second:
    // flat sampling needs only one open per sample.
    g.sampling_mode(SamplingMode::Flat);
    for size in [SMALL, LARGE] {
        for checkpoint in [true, false] {
            let name = if checkpoint {
                "checkpoint"
            } else {
                "no_checkpoint"
            };
            g.bench_function(format!("{}/{name}", size.label), move |b| {
                let fx = fixture(size);
                fx.close_shared();
                let dir = fx.dir.path();
                b.iter_batched(
                    || {
                        if !checkpoint {
                            match std::fs::remove_file(dir.join("index.ckpt")) {
                                Ok(()) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                                Err(e) => panic!("remove index.ckpt: {e}"),
                            }
                        }
                    },
                    |()| {
                        let store = Store::open(dir, Options::default()).expect("open");
                        assert_eq!(store.recovery_report().checkpoint_used, checkpoint);
                        // Dropped (closed, checkpoint written) outside the timing.
                        store
                    },
                    BatchSize::PerIteration,
                );
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = read_transcript, transcripts_by_email, open
}
criterion_main!(benches);
