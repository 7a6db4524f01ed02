//! Compaction: space comes back, shredded ciphertext leaves the disk, live
//! data reads back identically, crashes inside compaction lose nothing.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use parking_lot::Mutex;
use shredlog::failpoint::{Action, arm, disarm_all};
use shredlog::{CompactOptions, Message, Options, Store};

/// Failpoints are process-wide: tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn opts() -> Options {
    Options {
        segment_size: 64 << 10,
        ..Options::default()
    }
}

fn files_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".seg") || n == "keyring"
        })
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn transcripts_of(all: &[Message], id: &str) -> Vec<Message> {
    all.iter().filter(|m| m.transcript == id).cloned().collect()
}

const VISITORS: u64 = 40;
const TRANSCRIPTS: u64 = 160;

#[test]
fn deleting_half_and_compacting_shrinks_to_the_live_data() {
    let _s = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    let all = populate(&store, VISITORS, TRANSCRIPTS, 6);
    for v in (0..VISITORS).step_by(2) {
        store.delete_visitor(&visitor(v).email, "half").unwrap();
    }
    let before = files_size(dir.path());
    let keyring_len = || std::fs::metadata(dir.path().join("keyring")).unwrap().len();
    let keyring_before = keyring_len();
    assert!(store.stats().unwrap().dead_bytes > 0);
    let report = store.compact(&CompactOptions::everything()).unwrap();
    assert!(report.segments_rewritten + report.segments_removed > 0);
    let stats = store.stats().unwrap();
    assert_eq!(stats.dead_bytes, 0, "{stats:?}");
    // The keyring's free tail and the hole a growth left past it are cut:
    // the file is as long as the keyring the report and the stats count.
    let keyring = keyring_len();
    assert!(keyring < keyring_before, "{keyring} of {keyring_before}");
    assert_eq!(report.keyring_bytes_after, keyring);
    assert_eq!(stats.keyring_bytes, keyring);
    assert!(report.keyring_bytes_before >= report.keyring_bytes_after);
    let after = files_size(dir.path());
    assert!(after < before * 6 / 10, "{after} of {before}");
    for t in 0..TRANSCRIPTS {
        let id = format!("t-{t}");
        if (t % VISITORS) % 2 == 1 {
            assert_eq!(store.transcript(&id).unwrap(), transcripts_of(&all, &id));
        } else {
            assert!(store.transcript(&id).is_err());
        }
    }
    assert!(store.verify().unwrap().is_ok());
    store.close().unwrap();

    // The same live data written into a fresh store needs about as much.
    let fresh = tempfile::tempdir().unwrap();
    let f = Store::open(fresh.path(), opts()).unwrap();
    for t in (0..TRANSCRIPTS).filter(|t| (t % VISITORS) % 2 == 1) {
        f.append_batch(&transcripts_of(&all, &format!("t-{t}")))
            .unwrap();
    }
    f.close().unwrap();
    let needed = files_size(fresh.path());
    assert!(
        after as f64 <= needed as f64 * 1.10,
        "compacted {after} vs fresh {needed}"
    );

    // The checkpoint stays valid: reopening scans nothing.
    let store = Store::open(dir.path(), opts()).unwrap();
    assert!(store.recovery_report().checkpoint_used);
    assert_eq!(store.recovery_report().records_scanned, 0);
    assert_eq!(
        store.transcript("t-1").unwrap(),
        transcripts_of(&all, "t-1")
    );
}

/// PII ciphertexts (and whole records) of transcripts, found in a copy of the
/// directory via the format: frames after the 32-byte segment header.
fn ciphertexts(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>, [u8; 16])> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "seg") {
            continue;
        }
        let b = std::fs::read(&p).unwrap();
        let mut off = 32;
        while off + 8 <= b.len() {
            let n = u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            if n == 0 || off + 8 + n > b.len() {
                break;
            }
            let body = &b[off + 8..off + 8 + n];
            off += 8 + n;
            if body[1] != 1 {
                // A segment's footer, not a record.
                continue;
            }
            let tid: [u8; 16] = body[4..20].try_into().unwrap();
            let c = u32::from_le_bytes(body[48..52].try_into().unwrap()) as usize;
            // Version 2 records may carry a 16-byte message-id digest.
            let h = if body[2] & 2 != 0 { 96 } else { 80 };
            let pii = body[h + c..].to_vec();
            let content = body[h..h + c].to_vec();
            out.push((content, pii, tid));
        }
    }
    out
}

/// tid of each transcript, from the keyring (transcript slots: kind 1).
fn tids(dir: &Path) -> std::collections::HashMap<String, [u8; 16]> {
    let k = std::fs::read(dir.join("keyring")).unwrap();
    let mut out = std::collections::HashMap::new();
    for slot in keyring_slots(&k) {
        if slot.kind == 1 {
            let p = &slot.payload;
            let n = p[78] as usize;
            out.insert(
                String::from_utf8(p[79..79 + n].to_vec()).unwrap(),
                p[0..16].try_into().unwrap(),
            );
        }
    }
    out
}

#[test]
fn after_erasure_and_compaction_no_shredded_ciphertext_remains() {
    let _s = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    let all = populate(&store, VISITORS, TRANSCRIPTS, 6);
    store.sync().unwrap();
    let before = ciphertexts(dir.path());
    let ids = tids(dir.path());
    // Erase visitor 3 (PII keys), delete transcript t-5 (both keys).
    store.redact_visitor(&visitor(3).email, "e").unwrap();
    store.delete_transcript("t-5", "d").unwrap();
    store.compact(&CompactOptions::everything()).unwrap();
    let erased: Vec<[u8; 16]> = (0..TRANSCRIPTS)
        .filter(|t| t % VISITORS == 3)
        .map(|t| ids[&format!("t-{t}")])
        .collect();
    let deleted = ids["t-5"];
    let live: Vec<u8> = dir_bytes(dir.path())
        .into_iter()
        .flat_map(|(_, b)| b)
        .collect();
    let mut checked = 0;
    for (content, pii, tid) in &before {
        if erased.contains(tid) && !pii.is_empty() {
            assert!(
                !contains(&live, pii),
                "PII ciphertext of an erased transcript survived"
            );
            assert!(
                contains(&live, content),
                "content of a redacted transcript must stay"
            );
            checked += 1;
        }
        if *tid == deleted {
            assert!(
                !contains(&live, content),
                "ciphertext of a deleted transcript survived"
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "checked only {checked}");
    // Redacted transcripts still read, other data untouched.
    let redacted = store.transcript("t-3").unwrap();
    assert_eq!(redacted.len(), 6);
    assert_eq!(
        store.transcript("t-4").unwrap(),
        transcripts_of(&all, "t-4")
    );
    assert!(store.verify().unwrap().is_ok());
}

/// A compaction that removes a segment (nothing in it live) and fails
/// before it writes the index's new run leaves a store that opens and reads
/// what is live: the keyring stopped naming the old run, which lists the
/// removed segment, before the file went (open takes a segment that a run
/// the keyring names lists, and that is missing, for lost data).
#[test]
fn a_segment_removed_by_a_compaction_cut_short_is_not_taken_for_lost() {
    let _s = SERIAL.lock();
    // Its close wrote the run that the next open takes.
    let (dir, all) = many_segments();
    let store = Store::open(dir.path(), tiny_segments()).unwrap();
    assert!(store.recovery_report().index_run_used);
    let gone: Vec<String> = (40..80).map(|t| format!("t-{t}")).collect();
    for t in &gone {
        store.delete_transcript(t, "request").unwrap();
    }
    // The second segment's swap fails: the first is gone by then, and the
    // keyring's compaction (which stops naming the run too) not begun.
    arm("compact.rename", Action::Error, 2);
    let result = store.compact(&CompactOptions::everything());
    disarm_all();
    assert!(result.is_err(), "compact.rename was not hit");
    // The files as a crash now would leave them (a close would write a
    // new run).
    let crashed = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), crashed.path().join(e.file_name())).unwrap();
        }
    }
    drop(store);
    let store = Store::open(crashed.path(), tiny_segments()).unwrap();
    let removed = (1..200u64)
        .filter(|id| !crashed.path().join(format!("{id:012}.seg")).exists())
        .count();
    assert!(removed > 0, "no segment was removed");
    for t in 0..160 {
        let id = format!("t-{t}");
        if gone.contains(&id) {
            assert!(store.transcript(&id).is_err(), "deleted {id} came back");
        } else {
            assert_eq!(store.transcript(&id).unwrap(), transcripts_of(&all, &id));
        }
    }
}

#[test]
fn failures_inside_compaction_lose_nothing() {
    let _s = SERIAL.lock();
    for (point, hit) in [
        ("compact.write", 3),
        ("compact.sync", 1),
        ("compact.rename", 2),
        ("dir.sync", 1),
        ("keyring.sync", 2),
        ("keyring.write", 5),
        ("atomic.rename", 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let all = {
            let store = Store::open(dir.path(), opts()).unwrap();
            let all = populate(&store, VISITORS, TRANSCRIPTS, 4);
            for v in (0..VISITORS).step_by(3) {
                store.delete_visitor(&visitor(v).email, "x").unwrap();
            }
            arm(point, Action::Error, hit);
            let result = store.compact(&CompactOptions::everything());
            disarm_all();
            assert!(result.is_err(), "{point} was not hit");
            // Reads keep working whatever happened.
            for t in (0..TRANSCRIPTS)
                .filter(|t| !(t % VISITORS).is_multiple_of(3))
                .step_by(7)
            {
                let id = format!("t-{t}");
                assert_eq!(
                    store.transcript(&id).unwrap(),
                    transcripts_of(&all, &id),
                    "{point}"
                );
            }
            drop(store);
            all
        };
        let store = Store::open(dir.path(), opts()).unwrap_or_else(|e| panic!("{point}: {e}"));
        for t in 0..TRANSCRIPTS {
            let id = format!("t-{t}");
            if !(t % VISITORS).is_multiple_of(3) {
                assert_eq!(
                    store.transcript(&id).unwrap(),
                    transcripts_of(&all, &id),
                    "{point}: {id}"
                );
            } else {
                assert!(
                    store.transcript(&id).is_err(),
                    "{point}: deleted {id} came back"
                );
            }
        }
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "{point}: {:?}", report.problems);
        // A later compaction finishes the job.
        store.compact(&CompactOptions::everything()).unwrap();
        assert_eq!(store.stats().unwrap().dead_bytes, 0, "{point}");
        assert!(store.verify().unwrap().is_ok());
    }
}

#[test]
fn readers_and_writers_go_on_during_compaction() {
    let _s = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), opts()).unwrap());
    let all = Arc::new(populate(&store, VISITORS, TRANSCRIPTS, 6));
    for v in (0..VISITORS).step_by(2) {
        store.delete_visitor(&visitor(v).email, "x").unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (store, all, stop) = (Arc::clone(&store), Arc::clone(&all), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) || n < 50 {
                    let t = (n * 2 + 1 + r) % TRANSCRIPTS;
                    if (t % VISITORS) % 2 == 1 {
                        let id = format!("t-{t}");
                        assert_eq!(store.transcript(&id).unwrap(), transcripts_of(&all, &id));
                    }
                    n += 1;
                }
            })
        })
        .collect();
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for i in 0..100 {
                store
                    .append(&message(1, "t-new", i, 1_900_000_000_000 + i as i64))
                    .unwrap();
            }
        })
    };
    let mut limited = CompactOptions::everything();
    limited.bytes_per_sec = Some(4 << 20);
    store.compact(&limited).unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(store.transcript("t-new").unwrap().len(), 100);
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn the_delete_persistence_bound_is_kept_in_the_background() {
    let _s = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        Options {
            max_dead_age_ms: Some(300),
            ..opts()
        },
    )
    .unwrap();
    populate(&store, 4, 8, 5);
    store.sync().unwrap();
    let before = ciphertexts(dir.path());
    let ids = tids(dir.path());
    store.delete_transcript("t-2", "x").unwrap();
    assert!(store.stats().unwrap().dead_bytes > 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.stats().unwrap().dead_bytes > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "dead bytes outlived the bound by far"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let live: Vec<u8> = dir_bytes(dir.path())
        .into_iter()
        .flat_map(|(_, b)| b)
        .collect();
    for (content, _, tid) in &before {
        if *tid == ids["t-2"] {
            assert!(!contains(&live, content));
        }
    }
    assert!(store.verify().unwrap().is_ok());
}
