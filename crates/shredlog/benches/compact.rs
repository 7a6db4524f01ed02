//! Compaction throughput next to a plain sequential copy of the same bytes on
//! the same disk (the device's limit for this job).
//!
//! `compact/100k`: a copy of the ~100 k-message fixture with half of its
//! visitors deleted, compacted (`CompactOptions::everything`); throughput is
//! the segment bytes the compaction reads. `sequential_copy/100k`: the same
//! segment files copied and synced with `std::fs::copy`.
//!
//! `cargo bench --bench compact`

mod common;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shredlog::{CompactOptions, Options, Store};

use common::{SMALL, fixture};

fn segment_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().expect("metadata").len())
        .sum()
}

fn bench(c: &mut Criterion) {
    let fx = fixture(SMALL);
    let template = fx.copy();
    let bytes = segment_bytes(template.path());
    let mut group = c.benchmark_group("compaction");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(format!("compact/{}", SMALL.label), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                common::copy_dir(template.path(), dir.path());
                let store = Store::open(dir.path(), Options::default()).expect("open");
                for email in fx.emails.iter().step_by(2) {
                    let _ = store.delete_visitor(email, "bench");
                }
                let start = Instant::now();
                store
                    .compact(&CompactOptions::everything())
                    .expect("compact");
                total += start.elapsed();
                drop(store);
            }
            total
        })
    });
    group.bench_function(format!("sequential_copy/{}", SMALL.label), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let start = Instant::now();
                for e in std::fs::read_dir(template.path()).expect("read_dir") {
                    let e = e.expect("entry");
                    if e.file_name().to_string_lossy().ends_with(".seg") {
                        let to = dir.path().join(e.file_name());
                        std::fs::copy(e.path(), &to).expect("copy");
                        std::fs::File::open(&to)
                            .and_then(|f| f.sync_all())
                            .expect("sync");
                    }
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
