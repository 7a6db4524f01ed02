//! Torn tails and flipped bytes: open never panics and never returns altered
//! data; damage is reported with file and offset; salvage keeps the rest.

mod common;

use std::path::Path;

use common::*;
use shredlog::{Error, Message, Options, Store};

fn build(dir: &Path, checkpoint: bool) -> Vec<Message> {
    let store = Store::open(
        dir,
        Options {
            checkpoint,
            ..Options::default()
        },
    )
    .unwrap();
    let all = populate(&store, 2, 4, 4);
    drop(store);
    all
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Every transcript either reads back exactly as written or fails; returns
/// how many messages read back.
fn check_no_altered_data(store: &Store, all: &[Message]) -> usize {
    let mut n = 0;
    for t in 0..4 {
        let id = format!("t-{t}");
        let want: Vec<_> = all.iter().filter(|m| m.transcript == id).cloned().collect();
        if let Ok(got) = store.transcript(&id) {
            assert!(got.len() <= want.len());
            assert_eq!(got[..], want[..got.len()], "{id} altered");
            n += got.len();
        }
    }
    n
}

/// Every file of a directory with its bytes, by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = dir_bytes(dir);
    files.sort();
    files
}

#[test]
fn cutting_a_closed_stores_last_segment_anywhere_is_an_error_and_salvage_keeps_the_rest() {
    for checkpoint in [false, true] {
        let src = tempfile::tempdir().unwrap();
        let all = build(src.path(), checkpoint);
        let seg = last_segment(src.path());
        let len = std::fs::metadata(&seg).unwrap().len();
        let mut previous = usize::MAX;
        // Every offset near the start and the end, a stride in between.
        let cuts = (0..len)
            .rev()
            .filter(|c| c % 11 == 0 || *c < 160 || *c + 700 > len);
        for cut in cuts {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(src.path(), dir.path());
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.path().join(seg.file_name().unwrap()))
                .unwrap();
            f.set_len(cut).unwrap();
            drop(f);
            let damaged = snapshot(dir.path());
            // Every byte of a closed store was acknowledged: a cut is lost
            // data, never a torn tail, for a writing open and a reading one.
            for read_only in [false, true] {
                let options = Options {
                    read_only,
                    ..Options::default()
                };
                match Store::open(dir.path(), options) {
                    Err(Error::Corrupt { path, .. }) => {
                        assert!(
                            path.ends_with(seg.file_name().unwrap()),
                            "cut {cut}: {path:?}"
                        )
                    }
                    Err(e) => panic!("cut {cut}: {e}"),
                    Ok(_) => panic!("cut {cut} of {len} bytes went unnoticed"),
                }
                assert_eq!(
                    snapshot(dir.path()),
                    damaged,
                    "cut {cut}: a failed open wrote"
                );
            }
            // Salvage reads what is left, unaltered, says what is missing,
            // and writes nothing.
            let salvage = Options {
                salvage: true,
                ..Options::default()
            };
            let store =
                Store::open(dir.path(), salvage).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            let n = check_no_altered_data(&store, &all);
            // Cutting more never yields more messages.
            assert!(n <= previous);
            previous = n;
            assert!(store.recovery_report().found_damage(), "cut {cut}");
            assert!(!store.verify().unwrap().is_ok(), "cut {cut}");
            assert!(matches!(
                store.append(&message(0, "t-0", 99, 5)),
                Err(Error::ReadOnly)
            ));
            drop(store);
            assert_eq!(snapshot(dir.path()), damaged, "cut {cut}: salvage wrote");
        }
        assert_eq!(previous, 0);
    }
}

#[test]
fn flipping_any_byte_never_panics_or_returns_altered_data() {
    let src = tempfile::tempdir().unwrap();
    let all = build(src.path(), true);
    let files: Vec<_> = std::fs::read_dir(src.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut outcomes = [0usize; 3];
    for name in files {
        let len = std::fs::metadata(src.path().join(&name)).unwrap().len() as usize;
        // Every byte of small files, a stride through big ones.
        let step = (len / 400).max(1);
        for at in (0..len).step_by(step) {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(src.path(), dir.path());
            let path = dir.path().join(&name);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[at] ^= 0x20;
            std::fs::write(&path, &bytes).unwrap();
            match Store::open(dir.path(), Options::default()) {
                Err(Error::Corrupt { .. }) | Err(Error::UnsupportedVersion { .. }) => {
                    outcomes[0] += 1
                }
                Err(e) => panic!("{name:?} at {at}: unexpected error kind {e}"),
                Ok(store) => {
                    check_no_altered_data(&store, &all);
                    let report = store.verify().unwrap();
                    outcomes[if report.is_ok() { 1 } else { 2 }] += 1;
                }
            }
        }
    }
    // Some flips are caught at open, some only when the record is read.
    assert!(outcomes[0] > 0 && outcomes[2] > 0, "{outcomes:?}");
}

#[test]
fn damage_is_reported_with_file_and_offset_and_salvage_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let all = build(dir.path(), false);
    let seg = last_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    // Damage a record in the middle (not the tail).
    let at = bytes.len() / 3;
    bytes[at] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let err = Store::open(dir.path(), Options::default())
        .err()
        .expect("damage must be reported");
    let msg = err.to_string();
    assert!(
        msg.contains(&seg.display().to_string()) && msg.contains("offset"),
        "{msg}"
    );
    let store = Store::open(
        dir.path(),
        Options {
            salvage: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(store.recovery_report().skipped.len(), 1);
    // Every message that reads back is one that was written, in order; exactly
    // one (the damaged one) is missing.
    let mut n = 0;
    for t in 0..4 {
        let id = format!("t-{t}");
        let want: Vec<_> = all.iter().filter(|m| m.transcript == id).collect();
        let got = store.transcript(&id).unwrap();
        let mut it = want.iter();
        for m in &got {
            assert!(
                it.any(|w| *w == m),
                "{id}: a message read back that was not written"
            );
        }
        n += got.len();
    }
    assert_eq!(n, all.len() - 1, "exactly one record lost");
}

#[test]
fn a_damaged_keyring_slot_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let all = build(dir.path(), true);
    let path = dir.path().join("keyring");
    let mut bytes = std::fs::read(&path).unwrap();
    // A byte of the first transcript's keys.
    let slot = keyring_slots(&bytes)
        .into_iter()
        .find(|s| s.kind == 1)
        .unwrap();
    let offset = slot.index * 64;
    bytes[offset + 20] ^= 0x04;
    std::fs::write(&path, &bytes).unwrap();
    let names_it = |e: &Error| {
        let msg = e.to_string();
        msg.contains("keyring") && msg.contains(&format!("offset {offset}"))
    };
    // Open reads the slots the index's run holds only when they are used:
    // the read that needs the damaged one reports it, the others read
    // right, and `verify` reports it.
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert!(store.recovery_report().index_run_used);
    let mut refused = 0;
    for t in 0..4 {
        let id = format!("t-{t}");
        match store.transcript(&id) {
            Ok(got) => {
                let want: Vec<Message> =
                    all.iter().filter(|m| m.transcript == id).cloned().collect();
                assert_eq!(got, want, "{id}");
            }
            Err(e) => {
                assert!(names_it(&e), "{id}: {e}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 1, "one transcript's keys are in the damaged slot");
    let report = store.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("offset {offset}"))),
        "{:?}",
        report.problems
    );
    drop(store);
    // An open that reads every slot (without the run) refuses the store.
    std::fs::remove_file(dir.path().join("index.manifest")).unwrap();
    let err = Store::open(dir.path(), Options::default()).err().unwrap();
    assert!(names_it(&err), "{err}");
    let store = Store::open(
        dir.path(),
        Options {
            salvage: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(store.recovery_report().damaged_slots.len(), 1);
    check_no_altered_data(&store, &all);
}

/// Offset just past the last whole frame (or footer): the end of the data in
/// a segment whose file runs on with preallocated zeros. Found by walking the
/// frames' length fields, so a record whose last byte is 0 does not fool it.
fn data_end(bytes: &[u8]) -> usize {
    let mut off = 32;
    while let Some(len) = bytes.get(off..off + 4) {
        let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
        if len == 0 || off + 8 + len > bytes.len() {
            break;
        }
        off += 8 + len;
    }
    off
}

#[test]
fn a_page_of_unsynced_appends_lost_to_a_power_cut_is_a_torn_tail() {
    // Batched durability with a long interval: only `sync` makes data durable.
    let options = Options {
        durability: shredlog::Durability::Batched {
            interval_ms: 3_600_000,
        },
        ..Options::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options).unwrap();
    let acked: Vec<Message> = (0..20)
        .map(|i| message(1, "t-a", i, 1_000 + i as i64))
        .collect();
    store.append_batch(&acked).unwrap();
    store.sync().unwrap();
    let seg = last_segment(dir.path());
    let synced_end = data_end(&std::fs::read(&seg).unwrap());
    let later: Vec<Message> = (0..200)
        .map(|i| message(2, "t-b", i, 5_000 + i as i64))
        .collect();
    store.append_batch(&later).unwrap();
    // The files as a power cut could leave them: the page cache's contents,
    // except one page of the unsynced appends that never reached the disk
    // while later pages did (write-back order is arbitrary).
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    drop(store);
    let seg_copy = copy.path().join(seg.file_name().unwrap());
    let mut bytes = std::fs::read(&seg_copy).unwrap();
    let hole = synced_end.next_multiple_of(4096) + 4096;
    assert!(
        data_end(&bytes) > hole + 2 * 4096,
        "unsynced data spans the hole"
    );
    bytes[hole..hole + 4096].fill(0);
    std::fs::write(&seg_copy, &bytes).unwrap();

    let reopened = Store::open(copy.path(), Options::default()).unwrap();
    assert_eq!(
        reopened.transcript("t-a").unwrap(),
        acked,
        "synced data kept"
    );
    let report = reopened.recovery_report();
    let (path, at, _) = report.truncated.clone().expect("cut at the hole");
    assert_eq!(path, seg_copy);
    assert!((synced_end as u64..hole as u64 + 1).contains(&at), "{at}");
    // What survived of the unsynced batch is a prefix, unaltered.
    let kept = reopened.transcript("t-b").map(|m| m.len()).unwrap_or(0);
    assert!(kept < later.len());
    if kept > 0 {
        assert_eq!(reopened.transcript("t-b").unwrap(), later[..kept]);
    }
    // The store takes appends again, and a clean close leaves no zeros.
    reopened.append(&message(1, "t-a", 20, 3_000)).unwrap();
    reopened.close().unwrap();
    let bytes = std::fs::read(&seg_copy).unwrap();
    assert_eq!(
        data_end(&bytes),
        bytes.len(),
        "closed segment ends with its data"
    );
}
