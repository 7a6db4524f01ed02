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
                    .map(|i| {
                        json!([
                            i.id,
                            i.messages,
                            i.redacted,
                            i.first.as_str(),
                            i.last.as_str()
                        ])
                    })
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
        .map(|e| {
            json!([
                e.seq,
                e.op,
                e.subject,
                e.transcripts,
                e.keys_destroyed,
                e.reference
            ])
        })
        .collect();
    let stats = store.stats().unwrap();
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

/// Every file of a directory with its bytes, by name.
fn snapshot(dir: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name(), std::fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn format_1_stores_read_back_as_their_writer_read_them() {
    for name in ["v1-plain", "v1-kek"] {
        let dir = copy_store(name);
        let before = snapshot(dir.path());
        let options = Options {
            kek: kek(name),
            ..Options::default()
        };
        // Read only: exactly what the writer read, and not a byte written.
        let ro = Options {
            read_only: true,
            ..options.clone()
        };
        let store = Store::open(dir.path(), ro).unwrap();
        assert_eq!(read_back(&store), expected(name), "{name}");
        drop(store);
        assert_eq!(
            snapshot(dir.path()),
            before,
            "{name}: a read-only open wrote"
        );
        // Opened to write, this build upgrades the keyring and starts a
        // format-2 segment after the old last one (one more segment); what
        // reads back is the same, before and after it closes the store.
        let mut want = expected(name);
        want["stats"]["segments"] = (want["stats"]["segments"].as_u64().unwrap() + 1).into();
        let store = Store::open(dir.path(), options.clone()).unwrap();
        assert_eq!(read_back(&store), want, "{name}, opened to write");
        store.close().unwrap();
        let store = Store::open(dir.path(), options.clone()).unwrap();
        assert_eq!(read_back(&store), want, "{name}, reopened");
        // New messages go on in format 2 and everything reads back after
        // another close.
        let more = shredlog::interchange::parse_line(
            r#"{"transcript":"t-13","id":"m-2","ts":"2024-05-15T10:16:03.120Z","from":"operator","kind":"text","text":"call +44 20 7946 0999"}"#,
        )
        .unwrap();
        store.append(&more).unwrap();
        store.close().unwrap();
        let store = Store::open(dir.path(), options).unwrap();
        let t13 = store.transcript("t-13").unwrap();
        assert_eq!(t13.len(), 2);
        assert_eq!(t13[1], more);
        assert!(store.verify().unwrap().is_ok(), "{name}");
    }
}

/// Emails of a store written before canonical emails are compared in the
/// canonical form from the first open on: another spelling of a stored
/// address finds the visitor, erases it, and appends join it.
#[test]
fn older_directory_entries_answer_to_every_spelling() {
    let dir = copy_store("v1-plain");
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let stored = "fixture.visitor3@example.com";
    let list = store.transcripts_by_email(stored, None, None).unwrap();
    assert!(!list.is_empty());
    for other in [
        "Fixture.Visitor3@EXAMPLE.com.",
        " mailto:FIXTURE.visitor3@example.com ",
    ] {
        let again = store.transcripts_by_email(other, None, None).unwrap();
        assert_eq!(again.len(), list.len(), "{other}");
    }
    assert_eq!(store.recovery_report().email_twins, 0);
    store
        .redact_visitor("MAILTO:Fixture.Visitor3@Example.COM.", "T-1")
        .unwrap();
    assert!(matches!(
        store.export(stored),
        Err(shredlog::Error::VisitorNotFound)
    ));
}

/// A store written before record-location files (docs/FORMAT.md §7a) gets
/// them at its first writable open, from its segments; a read-only open
/// builds them in memory and writes none. Later opens read them instead of
/// scanning, and read back exactly what the writer read.
#[test]
fn an_older_store_gets_its_record_location_files_at_its_first_writable_open() {
    for name in ["v1-plain", "v1-kek"] {
        let dir = copy_store(name);
        let has_idx = |dir: &Path| {
            std::fs::read_dir(dir)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "idx")
                })
                .count()
        };
        assert_eq!(has_idx(dir.path()), 0);
        let options = Options {
            kek: kek(name),
            ..Options::default()
        };
        let ro = Store::open(
            dir.path(),
            Options {
                read_only: true,
                ..options.clone()
            },
        )
        .unwrap();
        assert_eq!(read_back(&ro), expected(name), "{name}");
        drop(ro);
        assert_eq!(has_idx(dir.path()), 0, "{name}: a read-only open wrote");
        let store = Store::open(dir.path(), options.clone()).unwrap();
        // Every segment of the old store is sealed now (a format-2 segment
        // was started after the old last one).
        let old_segments = expected(name)["stats"]["segments"].as_u64().unwrap();
        assert_eq!(has_idx(dir.path()) as u64, old_segments, "{name}");
        store.close().unwrap();
        std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
        let store = Store::open(dir.path(), options).unwrap();
        assert_eq!(
            store.recovery_report().records_scanned,
            0,
            "{name}: the location files cover every sealed segment"
        );
        let mut want = expected(name);
        want["stats"]["segments"] = (old_segments + 1).into();
        assert_eq!(read_back(&store), want, "{name}, from location files");
    }
}
