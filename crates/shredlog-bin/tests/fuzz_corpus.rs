//! Replays the checked-in corpus of the server's fuzz target through its
//! logic, so that `cargo test` (and CI) exercises its invariants.

use std::path::Path;

#[test]
fn request_body() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/request_body");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| shredlog_bin::fuzzing::request_body(&data));
        assert!(result.is_ok(), "request_body fails on {}", path.display());
        n += 1;
    }
    assert!(n >= 5, "corpus of request_body has only {n} files");
}
