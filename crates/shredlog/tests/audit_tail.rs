//! Open does not re-read the redo log (issue 14): the keyring's state slot
//! records how much of the audit log has all its effects on disk, and open
//! reads only the entries after that mark. However many erasures a store has
//! seen, a clean open reads no audit entry; one cut short is read and
//! finished. (The time this saves is measured in `benches/open.rs`.)

mod common;

use shredlog::{Options, Store};

fn erased_store(visitors: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    common::populate(&store, visitors, visitors, 2);
    for v in 0..visitors {
        store
            .redact_visitor(&common::visitor(v).email, "T-1")
            .unwrap();
    }
    store.close().unwrap();
    dir
}

#[test]
fn a_clean_open_reads_no_audit_entry_however_many_erasures() {
    for visitors in [10, 600] {
        let dir = erased_store(visitors);
        for read_only in [false, true] {
            let store = Store::open(
                dir.path(),
                Options {
                    read_only,
                    ..Options::default()
                },
            )
            .unwrap();
            let r = store.recovery_report();
            assert_eq!(r.audit_entries_read, 0, "{visitors} erasures");
            assert!(r.finished.is_empty());
            // The log is all there: the audit command reads it whole.
            assert_eq!(store.audit_log().unwrap().len() as u64, visitors);
            assert_eq!(
                store.stats().unwrap().visitors,
                0,
                "every visitor was erased"
            );
        }
    }
}

#[test]
fn the_finished_part_is_checked_by_verify_and_by_its_length() {
    let dir = erased_store(20);
    // The marks say 20 entries are done; damage after them is still found,
    // damage before them is found by verify (which reads the whole log).
    let log = dir.path().join("audit.log");
    let text = std::fs::read(&log).unwrap();
    let first_line_end = text.iter().position(|&b| b == b'\n').unwrap();
    let mut flipped = text.clone();
    flipped[first_line_end / 2] ^= 0x20;
    std::fs::write(&log, &flipped).unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.recovery_report().audit_entries_read, 0);
    let report = store.verify().unwrap();
    assert!(!report.is_ok(), "verify reads the whole log");
    drop(store);
    // A log cut inside the finished part no longer matches the marks.
    std::fs::write(&log, &text[..first_line_end + 1]).unwrap();
    let Err(err) = Store::open(dir.path(), Options::default()) else {
        panic!("a log cut inside its finished part opened")
    };
    assert!(err.to_string().contains("audit.log"), "{err}");
}
