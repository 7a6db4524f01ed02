//! Stores written by an older format still open and read exactly as the
//! build that wrote them read them (tests/fixtures/README.md).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use shredlog::{KeyEncryptionKey, Options, Store, interchange};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn copy_store(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture(name).join("store")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

fn kek(name: &str) -> Option<KeyEncryptionKey> {
    (name == "v1-kek").then(|| KeyEncryptionKey::from_hex(&"5e".repeat(32)).unwrap())
}

/// What the store reads back, in the shape of `expected.json`.
fn read_back(store: &Store) -> Value {
    let mut shows = serde_json::Map::new();
    for t in 1..=13 {
        let id = format!("t-{t}");
        let v = match store.transcript(&id) {
            Ok(ms) => Value::Array(
                ms.iter()
                    .map(|m| Value::String(interchange::to_line(m)))
                    .collect(),
            ),
            Err(e) => Value::String(format!("error: {e}")),
        };
        shows.insert(id, v);
    }
    let mut lists = serde_json::Map::new();
    for v in 1..=6 {
        let email = format!("fixture.visitor{v}@example.com");
        let v = match store.transcripts_by_email(&email, None, None) {
            Ok(l) => Value::Array(
                l.iter()
                    .map(|i| json!([i.id, i.messages, i.redacted, i.first.as_str(), i.last.as_str()]))
                    .collect(),
            ),
            Err(e) => Value::String(format!("error: {e}")),
        };
        lists.insert(email, v);
    }
    let consent = store.consent("fixture.visitor6@example.com").unwrap();
    let audit: Vec<Value> = store
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|e| json!([e.seq, e.op, e.subject, e.transcripts, e.keys_destroyed, e.reference]))
        .collect();
    let stats = store.stats();
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    json!({
        "show": shows,
        "transcripts": lists,
        "consent_visitor6": consent,
        "audit": audit,
        "stats": {"transcripts": stats.transcripts, "messages": stats.messages,
                   "visitors": stats.visitors, "transcripts_redacted": stats.transcripts_redacted,
                   "segments": stats.segments},
        "verify": {"records": report.records, "live_records": report.live_records, "dead_records": report.dead_records},
    })
}

fn expected(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(name).join("expected.json")).unwrap()).unwrap()
}

#[test]
fn format_1_stores_read_back_as_their_writer_read_them() {
    for name in ["v1-plain", "v1-kek"] {
        let dir = copy_store(name);
        let options = Options {
            kek: kek(name),
            ..Options::default()
        };
        let store = Store::open(dir.path(), options.clone()).unwrap();
        assert_eq!(read_back(&store), expected(name), "{name}");
        store.close().unwrap();
        // And again after this build has written to it (and closed it).
        let store = Store::open(dir.path(), options).unwrap();
        assert_eq!(read_back(&store), expected(name), "{name}, reopened");
    }
}
