//! A writing open rewrites a keyring of format 1, 2 or 3 in format 4
//! (docs/FORMAT.md §6.11). A crash at any step of that rewrite (a failpoint
//! stops it there) must leave a store that opens, read-only and writable,
//! and reads back exactly what it read before: the old keyring or the new
//! one, whole, never a mix and never a key lost.
//!
//! Failpoints are process-global: every scenario runs from the one test.

use std::path::{Path, PathBuf};

use shredlog::failpoint::{self, Action};
use shredlog::{KeyEncryptionKey, Options, Store};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .join("store")
}

fn copy_store(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

/// Every transcript's messages (or error) and every visitor's list.
fn read_back(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for t in 1..=13 {
        out.push(format!("{:?}", store.transcript(&format!("t-{t}"))));
    }
    for v in 1..=6 {
        let email = format!("fixture.visitor{v}@example.com");
        out.push(format!(
            "{:?}",
            store.transcripts_by_email(&email, None, None).map(|l| l
                .into_iter()
                .map(|i| (i.id, i.messages, i.redacted))
                .collect::<Vec<_>>())
        ));
    }
    out
}

fn version(dir: &Path) -> u16 {
    let k = std::fs::read(dir.join("keyring")).unwrap();
    u16::from_le_bytes([k[8], k[9]])
}

#[test]
fn a_keyring_rewrite_cut_short_at_any_step_loses_nothing() {
    for name in ["v1-plain", "v1-kek"] {
        let kek = (name == "v1-kek").then(|| KeyEncryptionKey::from_hex(&"5e".repeat(32)).unwrap());
        let options = Options {
            kek: kek.clone(),
            ..Options::default()
        };
        let read_only = Options {
            read_only: true,
            ..options.clone()
        };
        let want = {
            let dir = copy_store(name);
            read_back(&Store::open(dir.path(), read_only.clone()).unwrap())
        };
        for step in [
            "rekey.write",
            "rekey.sync",
            "rekey.rename",
            "dir.sync",
            "rekey.wipe-old",
        ] {
            let ctx = format!("{name}, {step}");
            let dir = copy_store(name);
            failpoint::arm(step, Action::Error, 1);
            let opened = Store::open(dir.path(), options.clone());
            failpoint::disarm_all();
            assert!(opened.is_err(), "{ctx}: the failpoint did not fire");
            drop(opened);
            // Before the rename the old keyring is in force, after it the new.
            let renamed = matches!(step, "dir.sync" | "rekey.wipe-old");
            assert_eq!(version(dir.path()), if renamed { 4 } else { 1 }, "{ctx}");
            let store = Store::open(dir.path(), read_only.clone())
                .unwrap_or_else(|e| panic!("{ctx}: read-only open: {e}"));
            assert_eq!(read_back(&store), want, "{ctx}: read-only");
            drop(store);
            let store = Store::open(dir.path(), options.clone())
                .unwrap_or_else(|e| panic!("{ctx}: writable open: {e}"));
            assert_eq!(read_back(&store), want, "{ctx}: writable");
            assert!(store.verify().unwrap().is_ok(), "{ctx}");
            store.close().unwrap();
            assert_eq!(version(dir.path()), 4, "{ctx}");
            assert!(
                !dir.path().join("keyring.rekey").exists(),
                "{ctx}: the rewrite's temporary file is left"
            );
        }
    }
}
