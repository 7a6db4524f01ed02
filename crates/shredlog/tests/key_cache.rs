//! Data keys are read from the keyring when a transcript is read or written
//! and kept only in a bounded cache (issue 15): with room for two
//! generations' keys, every read, append, erasure and compaction of a store
//! of many transcripts gives exactly what a store holding every key would.

mod common;

use shredlog::{CompactOptions, Options, REDACTED, Store};

fn tiny() -> Options {
    Options {
        key_cache_entries: 2,
        ..Options::default()
    }
}

#[test]
fn a_tiny_key_cache_reads_writes_and_erases_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), tiny()).unwrap();
    let all = common::populate(&store, 6, 24, 5);
    // Reads in an order that defeats the cache, twice.
    for _ in 0..2 {
        for t in (0..24).rev().chain(0..24) {
            let id = format!("t-{t}");
            let want: Vec<_> = all.iter().filter(|m| m.transcript == id).collect();
            let got = store.transcript(&id).unwrap();
            assert_eq!(got.len(), want.len(), "{id}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.body, w.body, "{id}");
            }
        }
    }
    // Appends to old transcripts (keys read back for message-id checks too).
    let mut more = common::message(3, "t-3", 99, 1_800_000_000_000);
    more.id = Some("m-99".into());
    store.append(&more).unwrap();
    assert_eq!(store.append(&more).unwrap().already_stored, 1);
    // An erasure, then reads of the erased visitor's transcripts: their
    // keys come back from the keyring without the destroyed PII key.
    let email = common::visitor(3).email;
    store.redact_visitor(&email, "T-1").unwrap();
    for t in [3, 9, 15, 21] {
        let got = store.transcript(&format!("t-{t}")).unwrap();
        assert_eq!(got[0].visitor.as_ref().unwrap().email, REDACTED);
    }
    // Keyring compaction moves slots; reads still find the right keys.
    store
        .delete_visitor(&common::visitor(0).email, "T-2")
        .unwrap();
    store.compact(&CompactOptions::everything()).unwrap();
    for t in (1..24).filter(|t| t % 6 != 0) {
        let id = format!("t-{t}");
        let got = store.transcript(&id).unwrap();
        assert!(!got.is_empty(), "{id}");
        if t % 6 != 3 {
            assert_eq!(
                got[0].visitor.as_ref().unwrap().email,
                common::visitor(t % 6).email,
                "{id}"
            );
        }
    }
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    drop(store);
    // And after a reopen, with nothing cached.
    let store = Store::open(dir.path(), tiny()).unwrap();
    assert_eq!(
        store.transcript("t-7").unwrap()[0]
            .visitor
            .as_ref()
            .unwrap()
            .email,
        common::visitor(1).email
    );
}
