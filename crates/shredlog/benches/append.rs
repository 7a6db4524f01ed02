//! Append throughput.
//!
//! Groups (each runnable alone with a criterion filter, e.g.
//! `cargo bench --bench append -- append_single`):
//!
//! * `append_single/immediate/{1,8,32}_threads`: `Store::append` of one message
//!   at a time with `Durability::Immediate`; each thread writes its own
//!   transcripts. Group commit lets concurrent writers share a sync.
//! * `append_single/batched_10ms/1_thread`: the same with
//!   `Durability::Batched { interval_ms: 10 }`.
//! * `append_batch/immediate/1000`: `Store::append_batch` of 1000 messages, one
//!   sync per batch.
//! * `write_path/pii_detection_{on,off}`: single appends with batched
//!   durability, with the default detector and with email/phone/IP detection
//!   off; throughput in interchange-JSON bytes.
//!
//! Messages come from `workload` with files disabled. Every bench
//! writes into its own fresh store; when a bench has used up the workload it
//! appends it again under new transcript ids (`<id>~<generation>`), so every
//! append creates or extends a transcript the way a live chat does.

mod common;

use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shredlog::pii::DetectorConfig;
use shredlog::{Durability, Message, Options, Store};
use tempfile::TempDir;

use common::Workload;

/// The message pool: ~60 k chat messages in ~6 k transcripts.
fn pool() -> &'static Workload {
    static POOL: OnceLock<Workload> = OnceLock::new();
    POOL.get_or_init(|| common::workload(&common::config(1, 2_000)))
}

/// One writer's messages: whole transcripts, in time order, replayed under a
/// new generation suffix once used up.
struct Stream {
    template: Vec<Message>,
    cursor: u64,
}

impl Stream {
    fn next(&mut self) -> Message {
        let len = self.template.len() as u64;
        let generation = self.cursor / len;
        let mut m = self.template[(self.cursor % len) as usize].clone();
        m.transcript = format!("{}~{generation}", m.transcript);
        self.cursor += 1;
        m
    }

    fn take(&mut self, n: u64) -> Vec<Message> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// Splits the pool into `n` streams by transcript (round robin in order of
/// first appearance).
fn streams(n: usize) -> Vec<Stream> {
    let mut owner = std::collections::HashMap::new();
    let mut out: Vec<Vec<Message>> = (0..n).map(|_| Vec::new()).collect();
    for m in &pool().messages {
        let next = owner.len();
        let k = *owner.entry(m.transcript.as_str()).or_insert(next % n);
        out[k].push(m.clone());
    }
    out.into_iter()
        .map(|template| Stream {
            template,
            cursor: 0,
        })
        .collect()
}

struct Bed {
    _dir: TempDir,
    store: Store,
    streams: Vec<Stream>,
}

impl Bed {
    fn new(options: Options, writers: usize) -> Bed {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), options).expect("open");
        Bed {
            _dir: dir,
            store,
            streams: streams(writers),
        }
    }

    /// Appends `total` messages with single `append` calls spread over the
    /// writer threads; returns the wall time from the start signal until every
    /// writer is done.
    fn run(&mut self, total: u64) -> Duration {
        let n = self.streams.len() as u64;
        let work: Vec<Vec<Message>> = self
            .streams
            .iter_mut()
            .enumerate()
            .map(|(k, s)| s.take(total / n + u64::from((k as u64) < total % n)))
            .collect();
        if n == 1 {
            let t0 = Instant::now();
            for m in &work[0] {
                self.store.append(m).expect("append");
            }
            return t0.elapsed();
        }
        let barrier = Barrier::new(work.len() + 1);
        let store = &self.store;
        std::thread::scope(|scope| {
            let handles: Vec<_> = work
                .iter()
                .map(|msgs| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        for m in msgs {
                            store.append(m).expect("append");
                        }
                    })
                })
                .collect();
            barrier.wait();
            let t0 = Instant::now();
            for h in handles {
                h.join().expect("writer thread");
            }
            t0.elapsed()
        })
    }
}

fn immediate() -> Options {
    Options::default()
}

fn append_single(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_single");
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 8, 32] {
        let name = if threads == 1 {
            "immediate/1_thread".to_string()
        } else {
            format!("immediate/{threads}_threads")
        };
        let mut bed: Option<Bed> = None;
        g.bench_function(name, move |b| {
            let bed = bed.get_or_insert_with(|| Bed::new(immediate(), threads));
            b.iter_custom(|iters| bed.run(iters));
        });
    }
    let mut bed: Option<Bed> = None;
    g.bench_function("batched_10ms/1_thread", move |b| {
        let bed = bed.get_or_insert_with(|| Bed::new(common::batched(), 1));
        b.iter_custom(|iters| bed.run(iters));
    });
    g.finish();
}

fn append_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_batch");
    g.throughput(Throughput::Elements(1000));
    let mut bed: Option<Bed> = None;
    g.bench_function("immediate/1000", move |b| {
        let bed = bed.get_or_insert_with(|| Bed::new(immediate(), 1));
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let batch = bed.streams[0].take(1000);
                let t0 = Instant::now();
                bed.store.append_batch(&batch).expect("append_batch");
                spent += t0.elapsed();
            }
            spent
        });
    });
    g.finish();
}

/// Whole transcripts from the pool adding up to about 1000 messages, so that
/// one iteration appends a fixed, known number of bytes.
fn block() -> (Vec<Message>, u64) {
    let p = pool();
    let mut ids = std::collections::HashSet::new();
    for m in &p.messages {
        if ids.len() >= 100 {
            break;
        }
        ids.insert(m.transcript.as_str());
    }
    let mut msgs = Vec::new();
    let mut bytes = 0u64;
    for (m, b) in p.messages.iter().zip(&p.line_bytes) {
        if ids.contains(m.transcript.as_str()) {
            msgs.push(m.clone());
            bytes += u64::from(*b);
        }
    }
    (msgs, bytes)
}

fn write_path(c: &mut Criterion) {
    let (block, bytes) = block();
    let mut g = c.benchmark_group("write_path");
    g.throughput(Throughput::Bytes(bytes));
    eprintln!(
        "write_path: one iteration appends {} messages ({} bytes of interchange JSON) one by one",
        block.len(),
        bytes
    );
    let no_pii = DetectorConfig {
        emails: false,
        obfuscated_emails: false,
        phones: false,
        ips: false,
        ..Default::default()
    };
    for (name, detector) in [
        ("pii_detection_on", DetectorConfig::default()),
        ("pii_detection_off", no_pii),
    ] {
        let options = Options {
            durability: Durability::Batched { interval_ms: 10 },
            detector,
            ..Options::default()
        };
        let mut state: Option<(TempDir, Store, Stream)> = None;
        let block = block.clone();
        g.bench_function(name, move |b| {
            let (_, store, stream) = state.get_or_insert_with(|| {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = Store::open(dir.path(), options.clone()).expect("open");
                let stream = Stream {
                    template: block.clone(),
                    cursor: 0,
                };
                (dir, store, stream)
            });
            b.iter_custom(|iters| {
                let msgs = stream.take(iters * block.len() as u64);
                let t0 = Instant::now();
                for m in &msgs {
                    store.append(m).expect("append");
                }
                t0.elapsed()
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = append_single, append_batch, write_path
}
criterion_main!(benches);
