//! `rekey`: wrapping, rotating and unwrapping the keyring in place, and its
//! crash safety. A failpoint at each step of a rekey stops it there (as a
//! crash would); the store must then open, whole, under exactly one of the
//! old and the new key, and a second rekey must finish the job.
//!
//! Failpoints are process-global: every scenario runs from the one test.

mod common;

use std::path::Path;

use common::{contains, message, personal_strings, visitor};
use shredlog::failpoint::{self, Action};
use shredlog::{Error, KeyEncryptionKey, Options, Store, rekey};

fn kek(byte: &str) -> KeyEncryptionKey {
    KeyEncryptionKey::from_hex(&byte.repeat(32)).unwrap()
}

fn with(k: Option<&KeyEncryptionKey>) -> Options {
    Options {
        kek: k.cloned(),
        ..Options::default()
    }
}

/// A store of 6 visitors; visitor 1 erased.
fn populate(dir: &Path, k: Option<&KeyEncryptionKey>) {
    let store = Store::open(dir, with(k)).unwrap();
    for v in 0..6 {
        for i in 0..4 {
            store
                .append(&message(
                    v,
                    &format!("t-{v}"),
                    i,
                    1_700_000_000_000 + i as i64,
                ))
                .unwrap();
        }
    }
    store.redact_visitor(&visitor(1).email, "T-1").unwrap();
    store.close().unwrap();
}

/// Opens under `k` and checks every transcript reads as before.
fn check(dir: &Path, k: Option<&KeyEncryptionKey>, ctx: &str) {
    let store = Store::open(dir, with(k)).unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
    let r = store.verify().unwrap();
    assert!(r.is_ok(), "{ctx}: {:?}", r.problems);
    for v in 0..6 {
        assert_eq!(
            store.transcript(&format!("t-{v}")).unwrap().len(),
            4,
            "{ctx}"
        );
    }
    assert!(
        store
            .transcripts_by_email(&visitor(1).email, None, None)
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(
        store
            .transcripts_by_email(&visitor(2).email, None, None)
            .unwrap()
            .len(),
        1
    );
}

fn opens(dir: &Path, k: Option<&KeyEncryptionKey>) -> bool {
    Store::open(
        dir,
        Options {
            read_only: true,
            ..with(k)
        },
    )
    .is_ok()
}

#[test]
fn rekey_wraps_rotates_unwraps_and_survives_crashes() {
    let a = kek("a1");
    let b = kek("b2");
    // The plain path: wrap, rotate, unwrap.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    populate(dir, None);
    let plain = std::fs::read(dir.join("keyring")).unwrap();
    assert!(
        personal_strings(2)
            .iter()
            .any(|s| contains(&plain, s.as_bytes()))
    );
    let r = rekey(dir, None, Some(&a)).unwrap();
    assert!(r.wrapped && !r.was_wrapped && r.slots > 0);
    let wrapped = std::fs::read(dir.join("keyring")).unwrap();
    for s in personal_strings(2) {
        assert!(
            !contains(&wrapped, s.as_bytes()),
            "a wrapped keyring shows {s}"
        );
    }
    assert!(!opens(dir, None));
    check(dir, Some(&a), "wrapped");
    rekey(dir, Some(&a), Some(&b)).unwrap();
    assert!(!opens(dir, Some(&a)));
    check(dir, Some(&b), "rotated");
    assert!(matches!(rekey(dir, Some(&a), None), Err(Error::Kek(_))));
    rekey(dir, Some(&b), None).unwrap();
    check(dir, None, "unwrapped");
    assert!(!dir.join("keyring.rekey").exists());
    // A rekey refuses an open store.
    let open = Store::open(dir, Options::default()).unwrap();
    assert!(matches!(rekey(dir, None, Some(&a)), Err(Error::Locked(_))));
    drop(open);

    // Crashes at every step, for wrap, rotate and unwrap.
    let steps = [
        "rekey.write",
        "rekey.sync",
        "rekey.rename",
        "dir.sync",
        "rekey.wipe-old",
    ];
    let cases: [(Option<&KeyEncryptionKey>, Option<&KeyEncryptionKey>); 3] =
        [(None, Some(&a)), (Some(&a), Some(&b)), (Some(&b), None)];
    for (from, to) in cases {
        for step in steps {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            populate(dir, from);
            failpoint::arm(step, Action::Error, 1);
            let e = rekey(dir, from, to);
            failpoint::disarm_all();
            assert!(e.is_err(), "{step}: the failpoint did not fire");
            let ctx = format!("{step} ({} → {})", from.is_some(), to.is_some());
            // Exactly one key opens it: the old before the rename, the new after.
            let (old, new) = (opens(dir, from), opens(dir, to));
            assert!(
                old != new,
                "{ctx}: old key opens: {old}, new key opens: {new}"
            );
            let now = if old { from } else { to };
            check(dir, now, &ctx);
            if old {
                // Run again: it finishes.
                rekey(dir, from, to).unwrap_or_else(|e| panic!("{ctx}: rerun: {e}"));
            }
            check(dir, to, &format!("{ctx}, finished"));
            assert!(
                !dir.join("keyring.rekey").exists(),
                "{ctx}: the new keyring's temporary file is left"
            );
        }
    }
}
