//! The keyring's directory table grows crash-safely (docs/FORMAT.md §6.12).
//! A batch of new visitors that makes the table grow is cut short at each of
//! the keyring syncs it makes (the five of the growth, then the batch's own):
//! the store reopens sound, every acknowledged visitor is found by email, the
//! header names no region left to retire, no email is in the keyring twice,
//! and the same batch then goes through.
//!
//! Failpoints are process-global: every scenario runs from the one test.

mod common;

use common::{message, visitor};
use shredlog::failpoint::{self, Action};
use shredlog::{Options, Store};

/// Visitors written before the batch: 26 one-cell entries leave the first
/// table (8 sectors, 56 slot cells) just under half full.
const BEFORE: u64 = 26;
/// Visitors of the batch that makes it grow.
const BATCH: u64 = 4;

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
fn a_growth_cut_short_at_any_sync_loses_no_visitor() {
    let ts = 1_700_000_000_000;
    for hit in 1..=6 {
        let ctx = format!("keyring sync {hit}");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let store = Store::open(dir, Options::default()).unwrap();
        for v in 0..BEFORE {
            store
                .append_batch(&[message(v, &format!("t-{v}"), 0, ts)])
                .unwrap();
        }
        let size_before = std::fs::metadata(dir.join("keyring")).unwrap().len();
        let batch: Vec<_> = (BEFORE..BEFORE + BATCH)
            .map(|v| message(v, &format!("t-{v}"), 0, ts))
            .collect();
        failpoint::arm("keyring.sync", Action::Error, hit);
        let cut = store.append_batch(&batch);
        failpoint::disarm_all();
        assert!(cut.is_err(), "{ctx}: the failpoint did not fire");
        drop(store);

        let store =
            Store::open(dir, Options::default()).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
        assert!(store.verify().unwrap().is_ok(), "{ctx}");
        for v in 0..BEFORE {
            assert_eq!(found(&store, v), 1, "{ctx}: visitor {v}");
        }
        let k = std::fs::read(dir.join("keyring")).unwrap();
        assert_eq!(&k[136..144], &[0u8; 8], "{ctx}: a region is left to retire");
        assert!(k.len() as u64 >= size_before, "{ctx}");
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
}
