//! Regression tests for bugs found by review.

mod common;

use common::*;
use shredlog::{Error, Options, Store};

/// A batch that crosses a segment roll: the checkpoint written at the roll
/// must not claim records that were not yet in the index, or a crash (drop
/// without close) loses acknowledged writes.
#[test]
fn batches_crossing_a_roll_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options {
        segment_size: 8 << 10,
        ..Options::default()
    };
    let all = {
        let store = Store::open(dir.path(), opts()).unwrap();
        let all = populate(&store, 3, 12, 20);
        // Simulate a crash: no close, so no final checkpoint.
        std::mem::forget(store);
        all
    };
    // The forgotten store still holds the directory lock in this process;
    // release it by reopening the lock file is impossible, so copy the files.
    let copy = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.path().join(e.file_name())).unwrap();
    }
    let store = Store::open(copy.path(), opts()).unwrap();
    assert!(store.recovery_report().checkpoint_used);
    for t in 0..12 {
        let id = format!("t-{t}");
        let want: Vec<_> = all.iter().filter(|m| m.transcript == id).cloned().collect();
        assert_eq!(store.transcript(&id).unwrap(), want, "{id}");
    }
    assert!(store.verify().unwrap().is_ok());
}

/// Salvage must not wipe the PII key of a transcript whose slot is damaged.
#[test]
fn salvage_keeps_keys_of_damaged_transcript_slots() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store, 1, 1, 3);
    store.close().unwrap();
    let path = dir.path().join("keyring");
    let before = std::fs::read(&path).unwrap();
    // One visitor, one PII slot, one transcript slot. Damage the transcript slot.
    let slots = keyring_slots(&before);
    let of = |kind| slots.iter().find(|s| s.kind == kind).unwrap().range();
    let (pii, transcript) = (of(2), of(1));
    let mut bytes = before.clone();
    bytes[transcript.start + 100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let store = Store::open(
        dir.path(),
        Options {
            salvage: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(store.recovery_report().damaged_slots.len(), 1);
    drop(store);
    let after = std::fs::read(&path).unwrap();
    assert_eq!(&after[pii.clone()], &before[pii], "PII slot was wiped");
}

#[test]
fn a_missing_keyring_is_an_error_not_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store, 1, 1, 3);
    store.close().unwrap();
    std::fs::remove_file(dir.path().join("keyring")).unwrap();
    let err = Store::open(dir.path(), Options::default()).err().unwrap();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(
        !dir.path().join("keyring").exists(),
        "no fresh keyring may be created"
    );
}

#[test]
fn the_keyring_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), Options::default()).unwrap());
    let mode = std::fs::metadata(dir.path().join("keyring"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "keyring mode {mode:o}");
}

/// An erased visitor's restriction goes with their data: their redacted
/// transcripts must not stay unreadable forever (lifting needs the email).
#[test]
fn erasure_ends_a_restriction() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store, 1, 2, 3);
    let email = visitor(0).email;
    store.restrict_visitor(&email, "r").unwrap();
    assert!(matches!(store.transcript("t-0"), Err(Error::Restricted)));
    store.redact_visitor(&email, "e").unwrap();
    assert_eq!(store.transcript("t-0").unwrap().len(), 3);
}

/// Dead bytes must not grow with every open that uses the checkpoint.
#[test]
fn dead_bytes_are_stable_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store, 2, 4, 5);
    store.redact_visitor(&visitor(1).email, "e").unwrap();
    let dead = store.stats().unwrap().dead_bytes;
    assert!(dead > 0);
    store.close().unwrap();
    for _ in 0..3 {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        assert!(store.recovery_report().checkpoint_used);
        assert_eq!(store.stats().unwrap().dead_bytes, dead);
        store.close().unwrap();
    }
    std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.stats().unwrap().dead_bytes, dead, "a scan must agree");
}

/// Rewriting (or rectifying) a redacted transcript must not bring back a
/// PII key: `<redacted>` must not turn into literal text under a live key.
#[test]
fn rewriting_a_redacted_transcript_keeps_it_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store, 1, 2, 7);
    store.apply_retention(0, false, i64::MAX / 2, "r").unwrap();
    let before = store.transcript("t-0").unwrap();
    store
        .rewrite_transcript("t-0", &["conversation".into()], "w")
        .unwrap();
    let after = store.transcript("t-0").unwrap();
    assert_eq!(after.len(), before.len());
    let info_redacted = store.stats().unwrap().transcripts_redacted;
    assert_eq!(info_redacted, 2, "both transcripts still count as redacted");
    // The extra span now reads redacted in the content too.
    for m in &after {
        if let shredlog::Body::Text(t) = &m.body {
            assert!(!t.contains("conversation"), "{t}");
        }
    }
    assert_eq!(after[0].visitor.as_ref().unwrap().email, shredlog::REDACTED);
    assert!(store.verify().unwrap().is_ok());
}

/// A restriction cannot outlive the visitor's directory entry.
#[test]
fn a_restriction_ends_when_retention_redacts_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store, 1, 1, 3);
    store.restrict_visitor(&visitor(0).email, "r").unwrap();
    store.apply_retention(0, false, i64::MAX / 2, "r").unwrap();
    assert_eq!(store.transcript("t-0").unwrap().len(), 3);
}
