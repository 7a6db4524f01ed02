//! The index's run and manifest (docs/FORMAT.md §7b): open builds on the
//! run the keyring names and replays only what came after it; a run that
//! is stale, foreign or damaged is never used to answer wrongly (the index
//! is rebuilt from the keyring and the location files, or the damage is
//! reported).

mod common;

use std::path::Path;
use std::sync::Mutex;

use common::{populate, visitor};
use shredlog::failpoint::{self, Action};
use shredlog::{CompactOptions, Error, Message, Options, Store};

/// Failpoints are the process's: the tests run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn small_segments() -> Options {
    Options {
        segment_size: 16 << 10,
        ..Options::default()
    }
}

fn read_only() -> Options {
    Options {
        read_only: true,
        ..small_segments()
    }
}

/// The store's one run file.
fn run_file(dir: &Path) -> std::path::PathBuf {
    let runs: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "run"))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

/// What a store answers: every transcript's messages, every visitor's
/// listing, and the counts.
fn answers(store: &Store, visitors: u64, transcripts: u64) -> String {
    let mut out = String::new();
    for t in 0..transcripts {
        let id = format!("t-{t}");
        out += &format!(
            "{id}: {:?}\n",
            store.transcript(&id).map_err(|e| e.to_string())
        );
    }
    for v in 0..visitors {
        let email = visitor(v).email;
        let listed = store
            .transcripts_by_email(&email, None, None)
            .map(|l| {
                l.into_iter()
                    .map(|i| (i.id, i.messages, i.first, i.last, i.redacted))
                    .collect::<Vec<_>>()
            })
            .map_err(|e| e.to_string());
        out += &format!("{email}: {listed:?}\n");
    }
    let counts = store.stats().map(|s| {
        format!(
            "transcripts {} redacted {} visitors {} messages {} live {} dead {}",
            s.transcripts,
            s.transcripts_redacted,
            s.visitors,
            s.messages,
            s.live_bytes,
            s.dead_bytes
        )
    });
    out += &format!("{:?}\n", counts.map_err(|e| e.to_string()));
    out
}

/// The answers of the same store rebuilt without its run (read-only: the
/// manifest is moved away and back).
fn rebuilt_answers(dir: &Path, visitors: u64, transcripts: u64) -> String {
    let manifest = dir.join("index.manifest");
    let aside = dir.join("manifest.aside");
    std::fs::rename(&manifest, &aside).unwrap();
    let store = Store::open(dir, read_only()).unwrap();
    assert!(!store.recovery_report().index_run_used);
    let a = answers(&store, visitors, transcripts);
    drop(store);
    std::fs::rename(&aside, &manifest).unwrap();
    a
}

#[test]
fn a_reopened_store_builds_on_its_run_and_answers_as_a_rebuilt_one() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    populate(&store, 5, 20, 6);
    store.close().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let report = store.recovery_report();
    assert!(report.index_run_used, "{:?}", report.index_run_refused);
    let with_run = answers(&store, 5, 20);
    assert!(store.verify().unwrap().is_ok());
    drop(store);
    assert_eq!(with_run, rebuilt_answers(dir.path(), 5, 20));
}

#[test]
fn operations_after_the_run_are_found_again_after_a_crash() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let mut all = populate(&store, 5, 20, 6);
    store.close().unwrap();
    // After the run: an erasure, deletions, new transcripts of old and new
    // visitors; then the process dies before any new run is written.
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(store.recovery_report().index_run_used);
    store.redact_visitor(&visitor(1).email, "r-1").unwrap();
    store.delete_transcript("t-2", "r-2").unwrap();
    store.delete_visitor(&visitor(3).email, "r-3").unwrap();
    let more: Vec<Message> = (0..6)
        .map(|i| {
            common::message(
                if i < 3 { 0 } else { 7 },
                &format!("n-{i}"),
                0,
                1_800_000_000_000 + i,
            )
        })
        .collect();
    store.append_batch(&more).unwrap();
    all.extend(more);
    let before = answers(&store, 8, 20);
    failpoint::arm("store.close", Action::Error, 0);
    assert!(store.close().is_err());
    failpoint::disarm_all();
    // A read-only open answers the same and writes nothing.
    let files = common::dir_bytes(dir.path());
    let ro = Store::open(dir.path(), read_only()).unwrap();
    assert!(ro.recovery_report().index_run_used);
    assert!(
        ro.recovery_report().finished.is_empty(),
        "nothing was left half done: {:?}",
        ro.recovery_report().finished
    );
    assert_eq!(answers(&ro, 8, 20), before);
    drop(ro);
    assert!(
        common::dir_bytes(dir.path()) == files,
        "a read-only open wrote"
    );
    // So do a writing open and a rebuilt index.
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(store.recovery_report().index_run_used);
    let after = answers(&store, 8, 20);
    assert_eq!(after, before);
    for i in 0..6 {
        assert_eq!(store.transcript(&format!("n-{i}")).unwrap().len(), 1);
    }
    assert!(matches!(
        store.transcript("t-2"),
        Err(Error::TranscriptNotFound)
    ));
    assert!(store.verify().unwrap().is_ok());
    drop(store);
    assert_eq!(rebuilt_answers(dir.path(), 8, 20), before);
}

#[test]
fn a_stale_foreign_or_damaged_manifest_is_not_used() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    populate(&store, 4, 12, 5);
    store.close().unwrap();
    let run_files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = common::dir_bytes(dir)
            .into_iter()
            .filter(|(n, _)| n.starts_with("index-") || n == "index.manifest")
            .collect();
        v.sort();
        v
    };
    let old = run_files(dir.path());
    assert_eq!(old.len(), 2, "one run and its manifest");
    // The store goes on: an erasure and a keyring compaction move and wipe
    // the slots the old run names.
    let store = Store::open(dir.path(), small_segments()).unwrap();
    store.delete_visitor(&visitor(2).email, "r").unwrap();
    store.redact_visitor(&visitor(1).email, "r").unwrap();
    store.compact(&CompactOptions::everything()).unwrap();
    let want = answers(&store, 4, 12);
    store.close().unwrap();
    // The old run and manifest put back (a copy from an older state).
    for (name, _) in run_files(dir.path()) {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    for (name, bytes) in &old {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let store = Store::open(dir.path(), read_only()).unwrap();
    let report = store.recovery_report();
    assert!(!report.index_run_used);
    assert!(
        report
            .index_run_refused
            .as_deref()
            .is_some_and(|r| r.contains("names run")),
        "{:?}",
        report.index_run_refused
    );
    assert_eq!(answers(&store, 4, 12), want, "the erased stay erased");
    drop(store);
    // A writing open writes a run of its own, which the next open uses.
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(answers(&store, 4, 12), want);
    drop(store);
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(store.recovery_report().index_run_used);
    assert_eq!(answers(&store, 4, 12), want);
    drop(store);
    // A manifest of another store.
    let other = tempfile::tempdir().unwrap();
    let o = Store::open(other.path(), small_segments()).unwrap();
    populate(&o, 1, 1, 1);
    o.close().unwrap();
    let mine = run_files(dir.path());
    for (name, bytes) in run_files(other.path()) {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let store = Store::open(dir.path(), read_only()).unwrap();
    assert!(!store.recovery_report().index_run_used);
    assert_eq!(answers(&store, 4, 12), want);
    drop(store);
    for (name, bytes) in &mine {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    // Every byte of the manifest flipped in turn: refused, never misread.
    let manifest = dir.path().join("index.manifest");
    let good = std::fs::read(&manifest).unwrap();
    for at in (0..good.len()).step_by(7) {
        let mut b = good.clone();
        b[at] ^= 0x10;
        std::fs::write(&manifest, &b).unwrap();
        let store = Store::open(dir.path(), read_only()).unwrap();
        assert!(!store.recovery_report().index_run_used, "byte {at}");
        assert_eq!(answers(&store, 4, 12), want, "byte {at}");
    }
    std::fs::write(&manifest, &good).unwrap();
}

#[test]
fn a_damaged_run_is_reported_where_it_is_read_and_rebuilt_once_its_manifest_is_removed() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    populate(&store, 4, 40, 3);
    store.close().unwrap();
    let want = answers(&Store::open(dir.path(), read_only()).unwrap(), 4, 40);
    let run = run_file(dir.path());
    let good = std::fs::read(&run).unwrap();
    // A flip in every block: the header, a data block, a fence block.
    for block in 0..good.len() / 4096 {
        let mut b = good.clone();
        b[block * 4096 + 9] ^= 0x01;
        std::fs::write(&run, &b).unwrap();
        let store = match Store::open(dir.path(), read_only()) {
            Ok(s) => s,
            Err(e) => panic!("block {block}: {e}"),
        };
        if !store.recovery_report().index_run_used {
            // Found at open (header, fences): the index was rebuilt.
            assert_eq!(answers(&store, 4, 40), want, "block {block}");
            continue;
        }
        // Found when read: every answer is right or an error naming the run.
        let got = answers(&store, 4, 40);
        for (g, w) in got.lines().zip(want.lines()) {
            assert!(
                g == w || g.contains(&run.display().to_string()),
                "block {block}: {g} (want {w})"
            );
        }
    }
    std::fs::write(&run, &good).unwrap();
    std::fs::remove_file(dir.path().join("index.manifest")).unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(answers(&store, 4, 40), want);
    drop(store);
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(store.recovery_report().index_run_used);
}

#[test]
fn a_run_write_cut_short_at_any_step_leaves_a_store_that_opens_right() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for point in ["run.write", "run.manifest", "atomic.rename", "keyring.sync"] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), small_segments()).unwrap();
        populate(&store, 3, 9, 4);
        let want = answers(&store, 3, 9);
        // The run written at close fails at `point`.
        failpoint::arm(point, Action::Error, 0);
        let closed = store.close();
        failpoint::disarm_all();
        drop(closed);
        let store = Store::open(dir.path(), small_segments()).unwrap();
        assert_eq!(answers(&store, 3, 9), want, "{point}");
        assert!(store.verify().unwrap().is_ok(), "{point}");
        drop(store);
        let store = Store::open(dir.path(), small_segments()).unwrap();
        assert!(store.recovery_report().index_run_used, "{point}");
        assert_eq!(answers(&store, 3, 9), want, "{point}");
    }
}

/// The directory cell of an entry an erasure wiped after the run is taken
/// by a new visitor's entry; after a crash, open carries the erasure out
/// again on the index, and must leave the new entry alone.
#[test]
fn replaying_an_erasure_never_wipes_a_new_entry_in_its_old_cell() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cell_of = |dir: &Path, email: &str| -> Option<usize> {
        let bytes = std::fs::read(dir.join("keyring")).unwrap();
        common::keyring_slots(&bytes)
            .into_iter()
            .find(|s| s.visitor().is_some_and(|(_, e, _)| e == email.as_bytes()))
            .map(|s| s.index)
    };
    let mut reused = 0;
    for round in 0..40u64 {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), small_segments()).unwrap();
        populate(&store, 3, 3, 2);
        store.close().unwrap();
        let erased = visitor(1).email.to_lowercase();
        let old_cell = cell_of(dir.path(), &erased).unwrap();
        let store = Store::open(dir.path(), small_segments()).unwrap();
        store.redact_visitor(&visitor(1).email, "r").unwrap();
        // New visitors until one's entry lands in the wiped cell (or a few).
        let new: Vec<u64> = (0..4).map(|i| 100 + round * 10 + i).collect();
        for (i, v) in new.iter().enumerate() {
            let m = common::message(*v, &format!("n-{i}"), 0, 1_800_000_000_000);
            store.append_batch(&[m]).unwrap();
        }
        failpoint::arm("store.close", Action::Error, 0);
        let closed = store.close();
        failpoint::disarm_all();
        assert!(closed.is_err());
        let lands = new
            .iter()
            .any(|v| cell_of(dir.path(), &visitor(*v).email.to_lowercase()) == Some(old_cell));
        reused += usize::from(lands);
        let store = Store::open(dir.path(), small_segments()).unwrap();
        for (i, v) in new.iter().enumerate() {
            let listed = store
                .transcripts_by_email(&visitor(*v).email, None, None)
                .unwrap_or_else(|e| panic!("round {round}: visitor {v}: {e}"));
            assert_eq!(listed.len(), 1, "round {round}: n-{i}");
        }
        let erased_lookup = store.export(&visitor(1).email);
        assert!(
            matches!(erased_lookup, Err(Error::VisitorNotFound)),
            "round {round}: the erased visitor is found"
        );
        assert!(store.verify().unwrap().is_ok(), "round {round}");
        if reused >= 3 {
            break;
        }
    }
    assert!(reused > 0, "no new entry took the erased one's cell");
}

/// A compaction cut short at any keyring write or sync: the next open
/// answers as a rebuilt index does, and every visitor can still be erased
/// (an index naming a slot that holds another's keys would refuse it).
#[test]
fn a_compaction_cut_short_anywhere_leaves_an_index_that_names_only_its_own_slots() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for point in [
        "keyring.write",
        "keyring.sync",
        "run.write",
        "atomic.rename",
    ] {
        for hit in 0..12u64 {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path(), small_segments()).unwrap();
            populate(&store, 6, 30, 3);
            store.close().unwrap();
            let store = Store::open(dir.path(), small_segments()).unwrap();
            store.delete_visitor(&visitor(0).email, "r").unwrap();
            for t in [4, 10, 16] {
                store.delete_transcript(&format!("t-{t}"), "r").unwrap();
            }
            let more: Vec<Message> = (0..5)
                .map(|i| common::message(20 + i, &format!("n-{i}"), 0, 1_800_000_000_000))
                .collect();
            store.append_batch(&more).unwrap();
            failpoint::arm(point, Action::Error, hit);
            let compacted = store.compact(&CompactOptions::everything());
            failpoint::disarm_all();
            let want_ok = compacted.is_ok();
            drop(store);
            let store = Store::open(dir.path(), small_segments()).unwrap();
            let got = answers(&store, 25, 30);
            let ctx = format!(
                "{point} #{hit} (compaction {})",
                if want_ok { "done" } else { "cut" }
            );
            assert!(store.verify().unwrap().is_ok(), "{ctx}");
            drop(store);
            assert_eq!(got, rebuilt_answers(dir.path(), 25, 30), "{ctx}");
            let store = Store::open(dir.path(), small_segments()).unwrap();
            for v in 1..6 {
                store
                    .redact_visitor(&visitor(v).email, "r")
                    .unwrap_or_else(|e| panic!("{ctx}: visitor {v}: {e}"));
            }
            for v in 20..25 {
                store
                    .delete_visitor(&visitor(v).email, "r")
                    .unwrap_or_else(|e| panic!("{ctx}: visitor {v}: {e}"));
            }
            assert!(store.verify().unwrap().is_ok(), "{ctx}");
        }
    }
}

/// docs/FORMAT.md §7b.1, followed by a reader that knows only the document:
/// every block's checksum, the four sections, rows in order, and rows that
/// name what the keyring (§6) holds: each generation's slots hold its keys,
/// each visitor's slot its directory entry.
#[test]
fn a_run_reads_as_format_md_says() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    populate(&store, 7, 200, 2);
    store.redact_visitor(&visitor(3).email, "r").unwrap();
    store.close().unwrap();
    let run_path = run_file(dir.path());
    let run = std::fs::read(&run_path).unwrap();
    const B: usize = 4096;
    assert_eq!(run.len() % B, 0);
    for (i, block) in run.chunks(B).enumerate() {
        let crc = u32::from_le_bytes(block[4092..].try_into().unwrap());
        assert_eq!(crc32fast::hash(&block[..4092]), crc, "block {i}");
    }
    assert_eq!(&run[..8], b"SHRDRUN1");
    assert_eq!(u32::from_le_bytes(run[8..12].try_into().unwrap()), 1);
    assert_eq!(u32::from_le_bytes(run[12..16].try_into().unwrap()), 4);
    let u16_at = |at: usize| u16::from_le_bytes(run[at..at + 2].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(run[at..at + 8].try_into().unwrap()) as usize;
    let mut sections = Vec::new();
    for s in 0..4 {
        let at = 16 + 44 * s;
        let (key_len, val_len) = (u16_at(at), u16_at(at + 2));
        let (rows, first, blocks) = (u64_at(at + 4), u64_at(at + 12), u64_at(at + 20));
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for b in first..first + blocks {
            let block = &run[b * B..(b + 1) * B];
            let n = u16::from_le_bytes([block[0], block[1]]) as usize;
            let size = key_len + 1 + val_len;
            for r in 0..n {
                let row = &block[2 + r * size..2 + (r + 1) * size];
                assert_eq!(row[key_len], 1, "the index writes no tombstone");
                out.push((row[..key_len].to_vec(), row[key_len + 1..].to_vec()));
            }
        }
        assert_eq!(out.len(), rows, "section {s}");
        assert!(
            out.windows(2).all(|w| w[0].0 < w[1].0),
            "section {s} ascending"
        );
        sections.push(((key_len, val_len), out));
    }
    let specs: Vec<(usize, usize)> = sections.iter().map(|s| s.0).collect();
    assert_eq!(specs, [(16, 60), (16, 4), (32, 28), (16, 16)]);
    let [(_, generations), (_, visitors), (_, pairs), (_, callers)] = &sections[..] else {
        unreachable!()
    };
    assert_eq!(generations.len(), 200);
    assert_eq!(callers.len(), 200, "one caller id per transcript");
    // The keyring's slots, per §6.2.
    let keyring = std::fs::read(dir.path().join("keyring")).unwrap();
    let slots: std::collections::HashMap<usize, common::RawSlot> = common::keyring_slots(&keyring)
        .into_iter()
        .map(|s| (s.index, s))
        .collect();
    let gens: std::collections::HashMap<&[u8], &[u8]> =
        generations.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    let mut redacted = 0;
    for (tid, v) in generations {
        let vid = &v[0..16];
        let content = u32::from_le_bytes(v[32..36].try_into().unwrap()) as usize;
        let pii = u32::from_le_bytes(v[36..40].try_into().unwrap()) as usize;
        let t = &slots[&content];
        assert_eq!(
            (t.kind, &t.payload[0..16], &t.payload[16..32]),
            (1, &tid[..], vid)
        );
        if pii == 0 {
            redacted += 1;
        } else {
            let p = &slots[&pii];
            assert_eq!((p.kind, &p.payload[0..16]), (2, &tid[..]));
        }
        // Its pair, with its listing: content slot, flags (bit 0: PII
        // key alive), rules version, records and their times (two
        // messages a second apart).
        let (_, l) = pairs
            .iter()
            .find(|(k, _)| k[..16] == *vid && k[16..] == tid[..])
            .unwrap();
        let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap());
        let i64_of = |b: &[u8]| i64::from_le_bytes(b.try_into().unwrap());
        assert_eq!(u32_of(&l[0..4]) as usize, content);
        assert_eq!((l[4], l[5]), (u8::from(pii != 0), 0));
        assert_eq!(l[6..8], v[40..42], "rules version");
        assert_eq!(u32_of(&l[8..12]), 2);
        assert_eq!(i64_of(&l[20..28]) - i64_of(&l[12..20]), 1000);
    }
    assert_eq!(pairs.len(), 200, "a pair per generation");
    assert_eq!(
        redacted,
        200 / 7 + 1,
        "visitor 3's transcripts are redacted"
    );
    for (vid, v) in visitors {
        let slot = u32::from_le_bytes(v[..4].try_into().unwrap()) as usize;
        if slot == 0 {
            continue;
        }
        let (entry_vid, _, _) = slots[&slot].visitor().unwrap();
        assert_eq!(entry_vid, &vid[..]);
    }
    assert_eq!(visitors.iter().filter(|(_, v)| v[..] != [0; 4]).count(), 6);
    for (_, tid) in callers {
        assert!(gens.contains_key(&tid[..]));
    }
}

/// `verify` checks every listing row of the run against the location
/// files: a pair whose record count was changed by hand (its block's
/// checksum mended) is reported, naming the run, and a rebuilt index lists
/// the truth.
#[test]
fn verify_reports_a_listing_row_that_differs_from_the_records() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    // Most records in sealed segments, so that most generations are not
    // held in memory (whose listings are worked out, not read).
    populate(&store, 3, 60, 4);
    store.close().unwrap();
    let run_path = run_file(dir.path());
    let mut run = std::fs::read(&run_path).unwrap();
    // Section 2 (pairs): key 32 bytes, value 28; the record count (value
    // bytes 8..12) of every row of its first data block becomes 7.
    let first = u64::from_le_bytes(run[16 + 88 + 12..16 + 88 + 20].try_into().unwrap()) as usize;
    let block = first * 4096;
    let rows = u16::from_le_bytes([run[block], run[block + 1]]) as usize;
    for r in 0..rows {
        let count = block + 2 + r * 61 + 33 + 8;
        assert_eq!(run[count..count + 4], 4u32.to_le_bytes());
        run[count..count + 4].copy_from_slice(&7u32.to_le_bytes());
    }
    let crc = crc32fast::hash(&run[block..block + 4092]);
    run[block + 4092..block + 4096].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&run_path, &run).unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let problems = store.verify().unwrap().problems;
    let name = run_path.file_name().unwrap().to_str().unwrap();
    assert!(
        problems.len() > rows / 2,
        "{} of {rows}: {problems:?}",
        problems.len()
    );
    for p in &problems {
        assert!(
            p.contains(name)
                && p.contains("says 7 records")
                && p.contains("its records say 4 records"),
            "{p}"
        );
    }
    drop(store);
    std::fs::remove_file(dir.path().join("index.manifest")).unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(store.verify().unwrap().is_ok());
    for v in 0..3 {
        for t in store
            .transcripts_by_email(&visitor(v).email, None, None)
            .unwrap()
        {
            assert_eq!(t.messages, 4);
        }
    }
}

/// `verify` checks every directory slot the index names against the
/// keyring: a run naming another visitor's entry (here: made by hand, its
/// block's checksum mended) is reported, not trusted.
#[test]
fn verify_reports_a_run_that_names_another_visitors_entry() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    populate(&store, 3, 6, 2);
    store.close().unwrap();
    let run_path = run_file(dir.path());
    let mut run = std::fs::read(&run_path).unwrap();
    // Section 1 (visitors): key 16 bytes, value a u32 slot; its first data
    // block's first two rows swap their slots.
    let first = u64::from_le_bytes(run[16 + 44 + 12..16 + 44 + 20].try_into().unwrap()) as usize;
    let block = first * 4096;
    let row = |i: usize| block + 2 + i * 21 + 17;
    let (a, b) = (row(0), row(1));
    let slot_a: [u8; 4] = run[a..a + 4].try_into().unwrap();
    let slot_b: [u8; 4] = run[b..b + 4].try_into().unwrap();
    assert_ne!(slot_a, slot_b);
    run[a..a + 4].copy_from_slice(&slot_b);
    run[b..b + 4].copy_from_slice(&slot_a);
    let crc = crc32fast::hash(&run[block..block + 4092]);
    run[block + 4092..block + 4096].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&run_path, &run).unwrap();
    let store = Store::open(dir.path(), read_only()).unwrap();
    assert!(store.recovery_report().index_run_used);
    let report = store.verify().unwrap();
    let named = report
        .problems
        .iter()
        .filter(|p| p.contains("as the directory entry of visitor"))
        .count();
    assert_eq!(named, 2, "{:?}", report.problems);
}

#[test]
fn a_close_with_nothing_new_keeps_the_run_and_one_with_changes_writes_a_new_one() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    populate(&store, 5, 20, 6);
    store.close().unwrap();
    let run = run_file(dir.path());
    let run_bytes = std::fs::read(&run).unwrap();
    let manifest = std::fs::read(dir.path().join("index.manifest")).unwrap();
    let before = answers(&Store::open(dir.path(), read_only()).unwrap(), 5, 20);

    // Opened, read and closed: the run and its manifest stay as they are.
    for _ in 0..2 {
        let store = Store::open(dir.path(), small_segments()).unwrap();
        assert!(store.recovery_report().index_run_used);
        assert_eq!(answers(&store, 5, 20), before);
        store.close().unwrap();
        assert_eq!(run_file(dir.path()), run);
        assert!(
            std::fs::read(&run).unwrap() == run_bytes,
            "the run was rewritten"
        );
        assert!(
            std::fs::read(dir.path().join("index.manifest")).unwrap() == manifest,
            "the manifest was rewritten"
        );
    }

    // Each change the run does not hold makes the close write a new one,
    // and the next open answers as a rebuilt index does.
    type Change<'a> = (&'a str, &'a dyn Fn(&Store));
    let changes: [Change; 4] = [
        ("a new transcript", &|s| {
            s.append_batch(&[common::message(2, "new-1", 0, 1_800_000_000_000)])
                .unwrap();
        }),
        ("an erasure", &|s| {
            s.redact_visitor(&visitor(1).email, "r-1").unwrap();
        }),
        ("a deletion", &|s| {
            s.delete_transcript("t-3", "r-3").unwrap();
        }),
        ("a new visitor", &|s| {
            s.append_batch(&[common::message(9, "new-2", 0, 1_800_000_000_000)])
                .unwrap();
        }),
    ];
    let mut last = run;
    for (what, change) in changes {
        let store = Store::open(dir.path(), small_segments()).unwrap();
        change(&store);
        let want = answers(&store, 10, 20);
        store.close().unwrap();
        let now = run_file(dir.path());
        assert_ne!(now, last, "{what}: no new run");
        last = now;
        let store = Store::open(dir.path(), read_only()).unwrap();
        assert!(store.recovery_report().index_run_used, "{what}");
        assert_eq!(answers(&store, 10, 20), want, "{what}");
        drop(store);
        assert_eq!(rebuilt_answers(dir.path(), 10, 20), want, "{what}");
    }

    // Messages appended to a transcript of the active segment change no
    // row of the run (their locations are in the checkpoint): whether or
    // not the close writes a run, the next open finds them.
    let store = Store::open(dir.path(), small_segments()).unwrap();
    store
        .append_batch(&[common::message(2, "new-1", 1, 1_800_000_000_001)])
        .unwrap();
    let want = answers(&store, 10, 20);
    assert_eq!(store.transcript("new-1").unwrap().len(), 2);
    store.close().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert!(store.recovery_report().index_run_used);
    assert_eq!(answers(&store, 10, 20), want);
    assert_eq!(store.transcript("new-1").unwrap().len(), 2);
    assert!(store.verify().unwrap().is_ok());
    drop(store);
    assert_eq!(rebuilt_answers(dir.path(), 10, 20), want);
}
