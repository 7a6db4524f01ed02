//! Replays every checked-in fuzz corpus file through its fuzz target's logic,
//! so that `cargo test` (and CI) exercises the fuzzers' invariants.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| f(&data));
        assert!(
            result.is_ok(),
            "fuzz target {target} fails on {}",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 5, "corpus of {target} has only {n} files");
}

#[test]
fn record() {
    replay("record", shredlog::fuzzing::record);
}

#[test]
fn sealed() {
    replay("sealed", shredlog::fuzzing::sealed);
}

#[test]
fn segment() {
    replay("segment", shredlog::fuzzing::segment);
}

#[test]
fn keyring_slot() {
    replay("keyring_slot", shredlog::fuzzing::keyring_slot);
}

#[test]
fn interchange_line() {
    replay("interchange_line", shredlog::fuzzing::interchange_line);
}

#[test]
fn redactor() {
    replay("redactor", shredlog::fuzzing::redactor);
}
