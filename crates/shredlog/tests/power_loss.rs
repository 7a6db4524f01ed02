//! Simulated power loss: a child appends (Immediate durability) and erases,
//! reporting what was acknowledged; it is killed, and then every file is cut
//! back to what had been synced (the store's sync journal, see
//! `SHREDLOG_SYNC_LOG` in src/failpoint.rs): unsynced appends vanish and the
//! keyring returns to its last synced image, as after a power cut that loses
//! the page cache. Every acknowledged write and erasure must survive that.
//!
//! Unlike SIGKILL alone (which keeps the page cache), this catches a missing
//! or misplaced fsync. Knob: `SHREDLOG_POWER_ITERATIONS` (default 6).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use shredlog::{Options, Store};

const CHILD: &str = "SHREDLOG_POWER_CHILD";
const VISITORS: u64 = 30;

/// The child: appends transcript after transcript in small batches (and
/// now and then a large one), erases a visitor now and then, and prints each
/// acknowledged step.
#[test]
fn power_child() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let store = Store::open(&dir, Options::default()).unwrap();
    let mut rng = Rng(std::process::id() as u64);
    for t in 0u64.. {
        let v = 100 + t % VISITORS;
        let id = format!("p-{t}");
        // Several batches per transcript: the later ones create no keys, so
        // they are synced by the segment sync alone.
        let mut done = 0;
        for _ in 0..1 + rng.below(3) {
            let per = 1 + rng.below(5);
            let batch: Vec<_> = (done..done + per)
                .map(|i| message(v, &id, i, 1_700_000_000_000 + (t * 100 + i) as i64))
                .collect();
            store.append_batch(&batch).unwrap();
            done += per;
            println!("acked {id} {done}");
        }
        if t % 5 == 4 {
            // Now and then a large batch of new transcripts (80 messages):
            // its keyring sync starts before it is sealed and written, its
            // segment's before it is published.
            let first = 1_000_000 + t * 8;
            let big: Vec<_> = (first..first + 8)
                .flat_map(|b| {
                    let id = format!("p-{b}");
                    (0..10).map(move |i| {
                        message(100 + b % VISITORS, &id, i, 1_700_000_000_000 + i as i64)
                    })
                })
                .collect();
            store.append_batch(&big).unwrap();
            for b in first..first + 8 {
                println!("acked p-{b} 10");
            }
        }
        if t % 7 == 6 {
            let victim = 100 + rng.below(VISITORS);
            if store.redact_visitor(&visitor(victim).email, "p").is_ok() {
                println!("erased {victim}");
            }
        }
    }
}

/// Cuts every file back to its last synced state.
fn power_cut(dir: &Path, log: &Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut synced: HashMap<String, u64> = HashMap::new();
    for line in text.lines() {
        if let Some((p, len)) = line.rsplit_once('\t')
            && let Ok(len) = len.parse()
        {
            synced.insert(p.to_owned(), len);
        }
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".seg") || name == "audit.log" {
            match synced.get(&path.display().to_string()) {
                Some(&len) => {
                    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                    if f.metadata().unwrap().len() > len {
                        f.set_len(len).unwrap();
                    }
                }
                None => std::fs::remove_file(&path).unwrap(),
            }
        }
    }
    let snap = dir.join("keyring.synced");
    if snap.exists() {
        std::fs::rename(&snap, dir.join("keyring")).unwrap();
    }
    let _ = std::fs::remove_file(dir.join("keyring.synced.tmp"));
    // The checkpoint is written atomically after syncs; drop it so that the
    // scan of the cut files decides (conservative: the checkpoint would only
    // have been used if it still fits the files).
    let _ = std::fs::remove_file(dir.join("index.ckpt"));
}

#[test]
fn acknowledged_writes_and_erasures_survive_a_simulated_power_cut() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let iterations: u64 = std::env::var("SHREDLOG_POWER_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let mut rng = Rng(0x0051_10ad);
    for it in 0..iterations {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let log = tmp.path().join("sync.log");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "power_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, &dir)
            .env("SHREDLOG_SYNC_LOG", &log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
        child.kill().unwrap();
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        power_cut(&dir, &log);

        let store = Store::open(&dir, Options::default())
            .unwrap_or_else(|e| panic!("iteration {it}: reopen: {e}"));
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "iteration {it}: {:?}", report.problems);
        let mut acked = 0;
        let mut erased = std::collections::HashSet::new();
        for l in &lines {
            let mut parts = l.split(' ');
            if let Some("acked") = parts.next() {
                let id = parts.next().unwrap();
                let n: usize = parts.next().unwrap().parse().unwrap();
                let got = store
                    .transcript(id)
                    .unwrap_or_else(|e| panic!("iteration {it}: acknowledged {id} lost: {e}"));
                assert!(
                    got.len() >= n,
                    "iteration {it}: {id} has {} of {n} acknowledged messages",
                    got.len()
                );
                acked += 1;
            }
        }
        // An acknowledged erasure holds: every transcript of the visitor
        // acknowledged before it reads redacted. (The visitor may come back
        // afterwards as a new directory entry: a later transcript, even one
        // not yet acknowledged, may legitimately hold the same email.)
        for (pos, l) in lines.iter().enumerate() {
            let Some(v) = l
                .strip_prefix("erased ")
                .and_then(|v| v.parse::<u64>().ok())
            else {
                continue;
            };
            for earlier in &lines[..pos] {
                let Some(id) = earlier
                    .strip_prefix("acked ")
                    .and_then(|r| r.split(' ').next())
                else {
                    continue;
                };
                let t: u64 = id.trim_start_matches("p-").parse().unwrap();
                if 100 + t % VISITORS != v {
                    continue;
                }
                if let Ok(msgs) = store.transcript(id) {
                    let email = &msgs[0].visitor.as_ref().unwrap().email;
                    assert_eq!(
                        email,
                        shredlog::REDACTED,
                        "iteration {it}: erasure of visitor {v} undone for {id}"
                    );
                }
            }
            erased.insert(v);
        }
        eprintln!(
            "power cut {it}: {acked} acknowledged batches, {} erasures checked",
            erased.len()
        );
        assert!(acked > 0 || lines.is_empty());
    }
}
