//! Backup benchmark (docs/BACKUP.md, "Cost"): backup throughput of a store
//! of about 0.3 M messages next to a plain copy of the same files to the
//! same kind of target, and the size of a second, incremental backup after
//! 1 % more messages.
//!
//! ```sh
//! cargo run --release -p shredlog-backup --example backup_bench -- [VISITORS] [s3://bucket/prefix]
//! ```
//! (default 10,000 visitors ≈ 0.3 M messages, to directories under the
//! system's temporary directory; with an s3:// URL the backups go there and
//! the plain copy is uploaded there too, one object per file.)

use std::io::Write;
use std::time::Instant;

use shredlog::backup::{BackupKey, BackupOptions, DirTarget, Target};
use shredlog::{Durability, Options, Store, interchange};

fn load(store: &Store, seed: u64, visitors: usize, tag: &str) -> usize {
    let config = workload::WorkloadConfig {
        seed,
        visitors,
        ..workload::WorkloadConfig::default()
    };
    let mut out = Vec::new();
    workload::generate(&config, &mut out).expect("generate");
    let lines: Vec<&str> = std::str::from_utf8(&out).expect("utf-8").lines().collect();
    let mut n = 0;
    for batch in lines.chunks(1000) {
        let msgs: Vec<_> = batch
            .iter()
            .map(|l| {
                let l = l.replace("\"transcript\":\"", &format!("\"transcript\":\"{tag}"));
                interchange::parse_line(&l).expect("line")
            })
            .collect();
        store.append_batch(&msgs).expect("append");
        n += msgs.len();
    }
    n
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let visitors: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let s3 = args.get(2).cloned();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let options = Options {
        durability: Durability::Batched { interval_ms: 100 },
        ..Options::default()
    };
    let store = Store::open(&data, options).expect("open");
    let t = Instant::now();
    let messages = load(&store, 7, visitors, "");
    eprintln!(
        "loaded {messages} messages in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let key = BackupKey::from_hex(&"5a".repeat(32)).expect("key");
    let target: Box<dyn Target> = match &s3 {
        Some(url) => shredlog_backup::open_target(&format!("{url}/backup")).expect("target"),
        None => Box::new(DirTarget::new(tmp.path().join("backup"))),
    };
    let plain: Box<dyn Target> = match &s3 {
        Some(url) => shredlog_backup::open_target(&format!("{url}/plain")).expect("target"),
        None => Box::new(DirTarget::new(tmp.path().join("plain"))),
    };
    // Plain copy: every file of the store, whole, one object each.
    let t = Instant::now();
    let mut copied = 0u64;
    for e in std::fs::read_dir(&data).expect("read_dir") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "LOCK" || name.ends_with(".tmp") {
            continue;
        }
        let bytes = std::fs::read(e.path()).expect("read");
        copied += bytes.len() as u64;
        plain.put(&name, &bytes).expect("put");
    }
    let copy_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let first = store
        .backup(&*target, &key, &BackupOptions::default())
        .expect("backup");
    let backup_s = t.elapsed().as_secs_f64();
    let more = load(&store, 8, visitors / 100, "more-");
    let t = Instant::now();
    let second = store
        .backup(&*target, &key, &BackupOptions::default())
        .expect("backup");
    let second_s = t.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "store: {messages} messages, {:.1} MB backed up ({:.1} MB in the directory)",
        mb(first.bytes),
        mb(copied)
    );
    let _ = writeln!(
        out,
        "plain copy:    {:.1} MB in {copy_s:.2}s = {:.0} MB/s",
        mb(copied),
        mb(copied) / copy_s
    );
    let _ = writeln!(
        out,
        "first backup:  {:.1} MB in {backup_s:.2}s = {:.0} MB/s ({} objects)",
        mb(first.bytes),
        mb(first.bytes) / backup_s,
        first.objects_uploaded
    );
    let _ = writeln!(
        out,
        "second backup after {more} more messages ({:.1} %): {:.2} MB uploaded of {:.1} MB ({:.1} %), {} pieces reused, {second_s:.2}s",
        100.0 * more as f64 / messages as f64,
        mb(second.uploaded),
        mb(second.bytes),
        100.0 * second.uploaded as f64 / second.bytes as f64,
        second.objects_reused
    );
}
