//! Open time against the length of the audit log (issue 14): two stores of
//! the same 10,000 visitors, one with 100 erasures behind it and one with
//! 10,000. Open reads only the audit entries after the keyring's "done" mark,
//! so both open alike; `read_whole_audit_log/10000` is what open would pay
//! if it re-read the log (as it did before format 2).
//!
//! `cargo bench --bench open`

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use shredlog::{Body, Message, Options, Sender, Store, Timestamp, Visitor};

const VISITORS: u64 = 10_000;

fn store_with(erasures: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), common::batched()).expect("open");
    let email = |v: u64| format!("visitor.{v}@example.com");
    let batch: Vec<Message> = (0..VISITORS)
        .map(|v| Message {
            transcript: format!("t-{v}"),
            id: None,
            ts: Timestamp::from_unix_millis(1_700_000_000_000 + v as i64 * 1000),
            from: Some(Sender::Visitor),
            visitor: Some(Visitor {
                email: email(v),
                name: Some(format!("Name{v}")),
                phone: None,
                id: None,
                ip: None,
            }),
            body: Body::Text(format!("hello, this is visitor {v}")),
        })
        .collect();
    for chunk in batch.chunks(1000) {
        store.append_batch(chunk).expect("append");
    }
    for v in 0..erasures {
        store.redact_visitor(&email(v), "BENCH-1").expect("erase");
    }
    store.close().expect("close");
    dir
}

fn read_only() -> Options {
    Options {
        read_only: true,
        ..Options::default()
    }
}

fn bench(c: &mut Criterion) {
    let few = store_with(100);
    let many = store_with(VISITORS);
    let mut group = c.benchmark_group("open");
    for (label, dir) in [("100", &few), ("10000", &many)] {
        group.bench_function(format!("erasures/{label}"), |b| {
            b.iter(|| {
                let store = Store::open(dir.path(), read_only()).expect("open");
                assert_eq!(store.recovery_report().audit_entries_read, 0);
                drop(store);
            });
        });
    }
    let store = Store::open(many.path(), read_only()).expect("open");
    group.bench_function("read_whole_audit_log/10000", |b| {
        b.iter(|| store.audit_log().expect("audit").len());
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
