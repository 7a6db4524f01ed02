//! An acknowledged erasure is on stable storage when it returns, seen
//! through the sync journal (a copy of the keyring taken at every keyring
//! sync) before anything reopens the store. Its own test binary: the journal
//! is switched on by an environment variable for the whole process.

mod common;

use common::*;
use shredlog::{Options, Store, Timestamp};

/// The keyring as last synced already has the wipes of every erasure,
/// deletion and retention run that returned (issue 12, point 10: a test that
/// reopens first cannot tell, since open redoes logged wipes).
#[test]
fn an_erasure_is_on_stable_storage_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    // The variable is read once, at the first sync of this process.
    set_journal(&journal);
    let data = dir.path().join("store");
    let store = Store::open(&data, Options::default()).unwrap();
    populate(&store, 4, 8, 3);
    let email = visitor(1).email.to_lowercase();
    let synced = || std::fs::read(data.join("keyring.synced")).unwrap();
    assert!(
        contains(&synced(), email.as_bytes()),
        "the journal copies the keyring"
    );
    store.redact_visitor(&visitor(1).email, "T-1").unwrap();
    let live = std::fs::read(data.join("keyring")).unwrap();
    assert_eq!(
        synced(),
        live,
        "the erasure's writes were not synced before it returned"
    );
    assert!(!contains(&synced(), email.as_bytes()));
    store.delete_transcript("t-2", "T-2").unwrap();
    assert_eq!(synced(), std::fs::read(data.join("keyring")).unwrap());
    store
        .apply_retention(0, false, Timestamp::now().unix_millis(), "T-3")
        .unwrap();
    assert_eq!(synced(), std::fs::read(data.join("keyring")).unwrap());
}

fn set_journal(path: &std::path::Path) {
    #[expect(unsafe_code, reason = "setting an environment variable in a test")]
    // SAFETY: this binary holds one test, and it sets the variable before it
    // starts any thread or opens a store: nothing reads the environment
    // concurrently.
    unsafe {
        std::env::set_var("SHREDLOG_SYNC_LOG", path)
    };
}
