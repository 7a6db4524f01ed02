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

#[test]
fn truncating_the_last_segment_anywhere_is_recovered() {
    for checkpoint in [false, true] {
        let src = tempfile::tempdir().unwrap();
        let all = build(src.path(), checkpoint);
        let seg = last_segment(src.path());
        let len = std::fs::metadata(&seg).unwrap().len();
        let mut previous = usize::MAX;
        // Every offset near the start and the end, a stride in between.
        let cuts = (0..=len)
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
            let store = Store::open(dir.path(), Options::default())
                .unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            let n = check_no_altered_data(&store, &all);
            // Cutting more never yields more messages.
            assert!(n <= previous);
            previous = n;
            let report = store.verify().unwrap();
            assert!(report.is_ok(), "cut {cut}: {:?}", report.problems);
            // The store keeps working after recovery.
            // (A transcript whose records were all cut off is gone, so the
            // message names its visitor.)
            let mut more = message(0, "t-0", 99, 5);
            more.visitor = Some(visitor(0));
            store.append(&more).unwrap();
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
    bytes[2 * 512 + 20] ^= 0x04;
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(dir.path(), Options::default()).err().unwrap();
    assert!(
        err.to_string().contains("keyring") && err.to_string().contains("offset 1024"),
        "{err}"
    );
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
