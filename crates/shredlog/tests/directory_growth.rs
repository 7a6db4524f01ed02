//! The keyring's table is rebuilt bigger crash-safely (docs/FORMAT.md
//! §6.13). A batch of new visitors that makes the table grow is cut short
//! at each of the keyring's writes and syncs and the directory syncs it
//! makes (the rebuild's, then the batch's own): the store reopens sound,
//! every acknowledged visitor is found by email, the header names no
//! rebuild under way and no rebuilt table is left beside the keyring, no
//! email is in the keyring twice, and the same batch then goes through.
//!
//! Failpoints are process-global: every scenario runs from the one test.

mod common;

use common::{message, visitor};
use shredlog::failpoint::{self, Action};
use shredlog::{Options, Store};

/// Visitors written before the batch, each with one transcript: 8 times 5
/// cells (directory entry 1, transcript slot 2, PII and caller slots 1
/// each) leave the first table (8 sectors, 56 slot cells) short of 6/7
/// full (48 cells), which the batch passes.
const BEFORE: u64 = 8;
/// Visitors of the batch that makes it grow.
const BATCH: u64 = 2;

fn email(v: u64) -> String {
    visitor(v).email.to_lowercase()
}

fn found(store: &Store, v: u64) -> usize {
    store
        .transcripts_by_email(&visitor(v).email, None, None)
        .unwrap()
        .len()
}

#[test]
fn a_growth_cut_short_at_any_write_or_sync_loses_no_visitor() {
    // New slots wait in the young area until 40 cells of them would be
    // there: the batch below makes the table grow.
    failpoint::set_young_cells(40);
    for point in ["keyring.sync", "keyring.write", "dir.sync"] {
        let mut hit = 1;
        while cut_at(point, hit) {
            hit += 1;
        }
        assert!(hit > 1, "{point}: never reached");
    }
}

/// Cuts the growing batch short at the `hit`-th time it reaches `point`
/// and checks what a reopen finds; false when it never got that far (the
/// batch went through).
fn cut_at(point: &str, hit: u64) -> bool {
    let ts = 1_700_000_000_000;
    {
        let ctx = format!("{point} {hit}");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let store = Store::open(dir, Options::default()).unwrap();
        for v in 0..BEFORE {
            store
                .append_batch(&[message(v, &format!("t-{v}"), 0, ts)])
                .unwrap();
        }
        let batch: Vec<_> = (BEFORE..BEFORE + BATCH)
            .map(|v| message(v, &format!("t-{v}"), 0, ts))
            .collect();
        failpoint::arm(point, Action::Error, hit);
        let cut = store.append_batch(&batch);
        failpoint::disarm_all();
        if cut.is_ok() {
            let k = std::fs::read(dir.join("keyring")).unwrap();
            let sectors = u32::from_le_bytes(k[132..136].try_into().unwrap());
            assert!(sectors > 8, "{ctx}: the table did not grow");
            return false;
        }
        drop(store);

        let store =
            Store::open(dir, Options::default()).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "{ctx}: {:?}", report.problems);
        for v in 0..BEFORE {
            assert_eq!(found(&store, v), 1, "{ctx}: visitor {v}");
        }
        let k = std::fs::read(dir.join("keyring")).unwrap();
        assert_eq!(
            &k[136..152],
            &[0u8; 16],
            "{ctx}: a rebuild is left under way"
        );
        assert!(!dir.join("keyring.grow").exists(), "{ctx}");
        for v in 0..BEFORE + BATCH {
            let copies = k
                .windows(email(v).len())
                .filter(|w| *w == email(v).as_bytes())
                .count();
            assert!(
                copies <= 1,
                "{ctx}: {} copies of visitor {v}'s email",
                copies
            );
        }
        // The batch goes through now (the table grown, by then at least),
        // and every visitor is found once.
        store.append_batch(&batch).unwrap();
        let k = std::fs::read(dir.join("keyring")).unwrap();
        let sectors = u32::from_le_bytes(k[132..136].try_into().unwrap());
        assert!(
            sectors > 8,
            "{ctx}: the table did not grow ({sectors} sectors)"
        );
        for v in 0..BEFORE + BATCH {
            assert_eq!(found(&store, v), 1, "{ctx}: visitor {v} after the retry");
        }
        assert!(store.verify().unwrap().is_ok(), "{ctx}");
        store.close().unwrap();
        let store = Store::open(dir, Options::default()).unwrap();
        for v in 0..BEFORE + BATCH {
            assert_eq!(found(&store, v), 1, "{ctx}: visitor {v} after a reopen");
        }
    }
    true
}
