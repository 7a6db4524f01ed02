//! Dry runs (`Store::preview_*`): they say exactly what the operation then
//! does (the counts of its audit entry, what a hold refuses or spares), and
//! they write no byte, also on a store opened read-only.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::message;
use shredlog::{Error, HoldTarget, Options, Preview, Store};

const DAY: i64 = 86_400_000;
/// "Now" for the retention runs: day 1000 after the epoch.
const NOW: i64 = 1000 * DAY;

/// Visitor `v` with `n` transcripts `v{v}-t{i}`, the latest message of
/// transcript `i` written `age(i)` days before [`NOW`].
fn fill(store: &Store, v: u64, n: u64, age: impl Fn(u64) -> i64) {
    for i in 0..n {
        let t = format!("v{v}-t{i}");
        let ts = NOW - age(i) * DAY;
        let msgs: Vec<_> = (0..3)
            .map(|m| message(v, &t, m, ts - 1000 + m as i64))
            .collect();
        store.append_batch(&msgs).unwrap();
    }
}

fn email(v: u64) -> String {
    common::visitor(v).email
}

/// Every file of the directory with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            let m = e.metadata().unwrap();
            out.insert(
                p.clone(),
                (std::fs::read(&p).unwrap(), m.modified().unwrap()),
            );
        }
    }
    out
}

/// The counts a preview and the audit entry of the operation share.
fn counts(p: &Preview) -> (String, String, u64, u64) {
    (
        p.op.clone(),
        p.subject.clone(),
        p.transcripts,
        p.keys_destroyed,
    )
}

fn entry_counts(e: &shredlog::AuditEntry) -> (String, String, u64, u64) {
    (
        e.op.clone(),
        e.subject.clone(),
        e.transcripts,
        e.keys_destroyed,
    )
}

#[test]
fn previews_match_what_the_operations_then_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    fill(&store, 1, 4, |i| 10 * i as i64); // 0, 10, 20, 30 days old
    fill(&store, 2, 3, |_| 400);
    fill(&store, 3, 2, |_| 5);
    fill(&store, 4, 2, |_| 500);
    store
        .place_hold(HoldTarget::Transcript("v1-t3"), "HOLD-1")
        .unwrap();
    store
        .place_hold(HoldTarget::Email(&email(4)), "HOLD-2")
        .unwrap();

    // Retention, redacting: visitor 1's transcripts of 20 days (30 is held),
    // visitor 2's three; visitor 4 is held (2 transcripts).
    let p = store.preview_retention(15 * DAY, false, NOW).unwrap();
    assert_eq!((p.transcripts, p.keys_destroyed, p.held), (4, 4, 3));
    assert!(!p.refused_by_hold);
    let e = store
        .apply_retention(15 * DAY, false, NOW, "RET-1")
        .unwrap();
    assert_eq!(counts(&p), entry_counts(&e));
    assert_eq!(p.detail, e.detail);

    // Again: what is already redacted is nothing to do, the held still held.
    let p = store.preview_retention(15 * DAY, false, NOW).unwrap();
    assert_eq!((p.transcripts, p.held), (0, 3));
    // Deleting: the four redacted ones (one key each) and nothing held.
    let p = store.preview_retention(15 * DAY, true, NOW).unwrap();
    assert_eq!((p.transcripts, p.keys_destroyed, p.held), (4, 4, 3));
    let e = store.apply_retention(15 * DAY, true, NOW, "RET-2").unwrap();
    assert_eq!(counts(&p), entry_counts(&e));

    // Erasure of visitor 1: three transcripts left (one held, which does not
    // stop an erasure by default), their PII keys and the directory entry.
    let p = store
        .preview_redact_visitor(&email(1).to_uppercase())
        .unwrap();
    assert_eq!((p.transcripts, p.keys_destroyed, p.held), (3, 4, 1));
    assert!(!p.refused_by_hold && !p.restricted);
    let e = store.redact_visitor(&email(1), "DSR-1").unwrap();
    assert_eq!(counts(&p), entry_counts(&e));
    assert!(matches!(
        store.preview_redact_visitor(&email(1)),
        Err(Error::VisitorNotFound)
    ));

    // With holds blocking erasure, the held visitor's preview says so, and
    // the erasure is refused.
    store.set_holds_block_erasure(true).unwrap();
    let p = store.preview_redact_visitor(&email(4)).unwrap();
    assert_eq!((p.held, p.refused_by_hold), (2, true));
    assert!(matches!(
        store.redact_visitor(&email(4), "DSR-2"),
        Err(Error::LegalHold)
    ));
    // Deletion is refused by any hold.
    let p = store.preview_delete_visitor(&email(4)).unwrap();
    assert!(p.refused_by_hold);
    assert!(matches!(
        store.delete_visitor(&email(4), "DEL-0"),
        Err(Error::LegalHold)
    ));
    store.set_holds_block_erasure(false).unwrap();

    // A restricted visitor: the preview says so; deletion ends it.
    store.restrict_visitor(&email(3), "R-1").unwrap();
    let p = store.preview_delete_visitor(&email(3)).unwrap();
    assert!(p.restricted && !p.refused_by_hold);
    assert_eq!((p.transcripts, p.keys_destroyed), (2, 5));
    let e = store.delete_visitor(&email(3), "DEL-1").unwrap();
    assert_eq!(counts(&p), entry_counts(&e));

    // One transcript: refused while held, then after release exactly so.
    let p = store.preview_delete_transcript("v1-t3").unwrap();
    assert_eq!((p.held, p.refused_by_hold), (1, true));
    store
        .release_hold(HoldTarget::Transcript("v1-t3"), "HOLD-1")
        .unwrap();
    let p = store.preview_delete_transcript("v1-t3").unwrap();
    // Erased already: the content key is all that is left.
    assert_eq!((p.transcripts, p.keys_destroyed, p.held), (1, 1, 0));
    let e = store.delete_transcript("v1-t3", "DEL-2").unwrap();
    assert_eq!(counts(&p), entry_counts(&e));
    assert_eq!(p.detail, e.detail);
    assert!(matches!(
        store.preview_delete_transcript("v1-t3"),
        Err(Error::TranscriptNotFound)
    ));
    assert!(matches!(
        store.preview_retention(-1, false, NOW),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn previews_write_no_byte_even_on_a_writable_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        fill(&store, 1, 3, |i| i as i64 * 100);
        fill(&store, 2, 2, |_| 50);
        store
            .place_hold(HoldTarget::Email(&email(2)), "H-1")
            .unwrap();
        store.restrict_visitor(&email(1), "R-1").unwrap();
        store.close().unwrap();
    }
    let before = snapshot(dir.path());
    let previews = |store: &Store| {
        store.preview_redact_visitor(&email(1)).unwrap();
        store.preview_delete_visitor(&email(2)).unwrap();
        store.preview_delete_transcript("v1-t0").unwrap();
        store.preview_retention(0, true, NOW).unwrap();
        store.preview_retention(60 * DAY, false, NOW).unwrap();
    };
    // Read-only: the store cannot write, and the previews still answer.
    let read_only = Options {
        read_only: true,
        ..Options::default()
    };
    let store = Store::open(dir.path(), read_only).unwrap();
    previews(&store);
    drop(store);
    assert_eq!(snapshot(dir.path()), before);

    // Writable: opening may note its own state at close, so compare the
    // files between open and close.
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let opened = snapshot(dir.path());
    for _ in 0..3 {
        previews(&store);
    }
    assert_eq!(snapshot(dir.path()), opened);
    // And the operations they previewed had not happened.
    assert_eq!(
        store.preview_redact_visitor(&email(1)).unwrap().transcripts,
        3
    );
    assert!(store.audit_log().unwrap().iter().all(|e| e.op != "erasure"));
}
