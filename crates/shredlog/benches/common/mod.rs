//! Shared helpers for the benchmarks: realistic workloads from
//! `workload`, store fixtures built once per bench binary, and
//! copies of a closed fixture for benches that destroy data.
//!
//! Not every bench binary uses every helper.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use criterion::Criterion;
use shredlog::{Durability, Message, Options, Store, interchange};
use tempfile::TempDir;
use workload::{WorkloadConfig, WorkloadSummary, generate};

/// Default criterion settings for every group; command-line flags
/// (`--warm-up-time`, `--measurement-time`, `--sample-size`) override them.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// A chat-like workload: no uploaded files.
pub fn config(seed: u64, visitors: usize) -> WorkloadConfig {
    WorkloadConfig {
        seed,
        visitors,
        file_probability: 0.0,
        ..WorkloadConfig::default()
    }
}

/// A generated workload, parsed.
pub struct Workload {
    /// Messages in the generator's (global time) order.
    pub messages: Vec<Message>,
    /// Interchange JSON bytes of each message's line (newline included).
    pub line_bytes: Vec<u32>,
    pub summary: WorkloadSummary,
}

/// Generates and parses a workload.
pub fn workload(cfg: &WorkloadConfig) -> Workload {
    let mut out = Vec::new();
    let summary = generate(cfg, &mut out).expect("generate workload");
    let text = std::str::from_utf8(&out).expect("workload is UTF-8");
    let mut messages = Vec::with_capacity(summary.lines as usize);
    let mut line_bytes = Vec::with_capacity(summary.lines as usize);
    for line in text.lines() {
        messages.push(interchange::parse_line(line).expect("workload line parses"));
        line_bytes.push(line.len() as u32 + 1);
    }
    Workload {
        messages,
        line_bytes,
        summary,
    }
}

/// Options with batched durability (used to build fixtures quickly).
pub fn batched() -> Options {
    Options {
        durability: Durability::Batched { interval_ms: 10 },
        ..Options::default()
    }
}

/// Deterministic Fisher–Yates shuffle (xorshift64*), so benches do not walk
/// the data in insertion order.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut s = seed | 1;
    for i in (1..items.len()).rev() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
        items.swap(i, (r % (i as u64 + 1)) as usize);
    }
}

/// A store size used by the read and privacy benches.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    /// Label used in bench names, e.g. `100k`.
    pub label: &'static str,
    /// Visitors to generate (about 30 messages each with the default config).
    pub visitors: usize,
    pub seed: u64,
}

/// ~100 k messages.
pub const SMALL: Size = Size {
    label: "100k",
    visitors: 3_330,
    seed: 11,
};
/// ~1 M messages.
pub const LARGE: Size = Size {
    label: "1M",
    visitors: 33_300,
    seed: 12,
};

/// A closed store built from a workload, plus what the benches need to know
/// about it. The directory is the pristine template: benches that destroy
/// data work on copies ([`Fixture::copy`]).
pub struct Fixture {
    pub size: Size,
    pub dir: TempDir,
    pub messages: u64,
    pub json_bytes: u64,
    pub segment_bytes: u64,
    /// Lower-case visitor emails, shuffled.
    pub emails: Vec<String>,
    /// Caller transcript ids, shuffled.
    pub transcripts: Vec<String>,
    /// Latest message time of every transcript (Unix ms), ascending.
    pub last_ts: Vec<i64>,
    /// An open store on `dir`, shared by the read benches (None when closed).
    store: Mutex<Option<Store>>,
}

impl Fixture {
    /// Builds the store: `append_batch` of 1000 messages, batched durability,
    /// then `close` (which writes the index checkpoint).
    pub fn build(size: Size) -> Fixture {
        let started = Instant::now();
        let mut out = Vec::new();
        let summary = generate(&config(size.seed, size.visitors), &mut out).expect("generate");
        let generated = started.elapsed();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), batched()).expect("open fixture store");
        let text = std::str::from_utf8(&out).expect("UTF-8");
        let mut batch = Vec::with_capacity(1000);
        let mut last: HashMap<String, i64> = HashMap::new();
        let mut messages = 0u64;
        for line in text.lines() {
            let msg = interchange::parse_line(line).expect("workload line parses");
            let ts = msg.ts.unix_millis();
            let e = last.entry(msg.transcript.clone()).or_insert(ts);
            *e = (*e).max(ts);
            batch.push(msg);
            if batch.len() == 1000 {
                store.append_batch(&batch).expect("append_batch");
                messages += batch.len() as u64;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            store.append_batch(&batch).expect("append_batch");
            messages += batch.len() as u64;
        }
        drop(out);
        let segment_bytes = store.stats().unwrap().segment_bytes;
        store.close().expect("close fixture store");
        let mut emails: Vec<String> = summary.visitors.iter().map(|v| v.email.clone()).collect();
        shuffle(&mut emails, size.seed ^ 0xE);
        let mut transcripts: Vec<String> = summary
            .visitors
            .iter()
            .flat_map(|v| v.transcripts.iter().cloned())
            .collect();
        shuffle(&mut transcripts, size.seed ^ 0x7);
        let mut last_ts: Vec<i64> = last.into_values().collect();
        last_ts.sort_unstable();
        eprintln!(
            "fixture {}: {} messages ({:.1} MB JSON, {:.1} MB of segments), {} transcripts, \
             {} visitors; generated in {:.1?}, built in {:.1?}",
            size.label,
            messages,
            summary.bytes as f64 / 1e6,
            segment_bytes as f64 / 1e6,
            transcripts.len(),
            emails.len(),
            generated,
            started.elapsed()
        );
        Fixture {
            size,
            dir,
            messages,
            json_bytes: summary.bytes,
            segment_bytes,
            emails,
            transcripts,
            last_ts,
            store: Mutex::new(None),
        }
    }

    /// The shared open store (opened with default options on first use).
    pub fn store(&self) -> MutexGuard<'_, Option<Store>> {
        let mut guard = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(Store::open(self.dir.path(), Options::default()).expect("open"));
        }
        guard
    }

    /// Closes the shared store if it is open, so the directory can be
    /// reopened or copied.
    pub fn close_shared(&self) {
        let mut guard = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = guard.take() {
            s.close().expect("close");
        }
    }

    /// A fresh copy of the (closed) template directory.
    pub fn copy(&self) -> TempDir {
        self.close_shared();
        let to = tempfile::tempdir().expect("tempdir");
        copy_dir(self.dir.path(), to.path());
        to
    }
}

/// Copies the regular files of a store directory (it is flat) and syncs
/// them, so that the copy's write-back does not slow down the syncs of the
/// operation being measured.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let ty = entry.file_type().expect("file type");
        assert!(
            ty.is_file(),
            "unexpected non-file in store dir: {:?}",
            entry.path()
        );
        let dest = to.join(entry.file_name());
        std::fs::copy(entry.path(), &dest).expect("copy");
        std::fs::File::open(&dest)
            .and_then(|f| f.sync_all())
            .expect("sync copy");
    }
    std::fs::File::open(to)
        .and_then(|d| d.sync_all())
        .expect("sync dir");
}

/// The fixture of `size`, built on first use in this process.
pub fn fixture(size: Size) -> &'static Fixture {
    static SMALL_FX: OnceLock<Fixture> = OnceLock::new();
    static LARGE_FX: OnceLock<Fixture> = OnceLock::new();
    let cell = if size.label == SMALL.label {
        &SMALL_FX
    } else {
        &LARGE_FX
    };
    cell.get_or_init(|| Fixture::build(size))
}
