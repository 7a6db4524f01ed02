//! Throughput of detection and redaction over the evaluation corpus (a mix of
//! about half PII-bearing and half PII-free chat lines in many languages), and
//! of detection over a support desk's message texts (the workload generator's
//! support profile: long operator answers, pasted logs, mostly English, few
//! addresses), which is what `shredlog import` spends its detector time on.
//!
//! ```sh
//! cargo bench --bench pii
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shredlog::pii::{Detector, DetectorConfig, PLACEHOLDER};

fn corpus_lines() -> Vec<String> {
    include_str!("../tests/pii_corpus/corpus.jsonl")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("corpus line is JSON");
            v["text"].as_str().expect("text field").to_owned()
        })
        .collect()
}

/// The message texts and consent prompts of a support desk's workload, as
/// `shredlog import` hands them to the detector.
fn support_texts() -> Vec<String> {
    let config = workload::WorkloadConfig {
        file_probability: 0.0,
        ..workload::WorkloadConfig::support_desk(7, 300)
    };
    let mut buf = Vec::new();
    workload::generate(&config, &mut buf).expect("workload generates");
    String::from_utf8(buf)
        .expect("UTF-8")
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("workload line is JSON");
            let text = v.get("text").or_else(|| v.get("consent")?.get("prompt"))?;
            text.as_str().map(str::to_owned)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = corpus_lines();
    let bytes: usize = lines.iter().map(String::len).sum();
    let default = Detector::default();
    let all = Detector::new(&DetectorConfig {
        payment_cards: true,
        ibans: true,
        ..DetectorConfig::default()
    })
    .unwrap();
    // The corpus lines without personal data (the common case) as a second corpus.
    let prose: Vec<String> = lines
        .iter()
        .filter(|l| default.find(l).is_empty())
        .cloned()
        .collect();
    let prose_bytes: usize = prose.iter().map(String::len).sum();

    let mut g = c.benchmark_group("pii");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("find/corpus", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(default.find(black_box(l)));
            }
        })
    });
    g.bench_function("redact/corpus", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(default.redact(black_box(l), PLACEHOLDER));
            }
        })
    });
    g.bench_function("redact/corpus-all-detectors", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(all.redact(black_box(l), PLACEHOLDER));
            }
        })
    });
    g.throughput(Throughput::Bytes(prose_bytes as u64));
    g.bench_function("find/pii-free-lines", |b| {
        b.iter(|| {
            for l in &prose {
                black_box(default.find(black_box(l)));
            }
        })
    });
    g.bench_function("redact/pii-free-lines", |b| {
        b.iter(|| {
            for l in &prose {
                black_box(default.redact(black_box(l), PLACEHOLDER));
            }
        })
    });
    let support = support_texts();
    g.throughput(Throughput::Bytes(
        support.iter().map(String::len).sum::<usize>() as u64,
    ));
    g.bench_function("find/support-desk", |b| {
        b.iter(|| {
            for t in &support {
                black_box(default.find(black_box(t)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
