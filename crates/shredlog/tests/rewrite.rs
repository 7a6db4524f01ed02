//! Re-redaction by rewrite.

mod common;

use shredlog::failpoint::{Action, arm, disarm_all};
use shredlog::{Body, Options, REDACTED, Store};

/// Failpoints are process-wide: the tests of this file run one at a time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn text_of(m: &shredlog::Message) -> &str {
    match &m.body {
        Body::Text(t) => t,
        _ => "",
    }
}

#[test]
fn rewrite_redacts_a_missed_span_under_new_keys_and_survives_crashes() {
    let _serial = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let mut first = common::message(1, "t-r", 0, 1_000);
    first.body = Body::Text("my loyalty card is LC-778812, thanks".into());
    store.append(&first).unwrap();
    store.append(&common::message(1, "t-r", 1, 2_000)).unwrap();
    let before = store.transcript("t-r").unwrap();
    let keyring_before = std::fs::read(dir.path().join("keyring")).unwrap();

    let report = store
        .rewrite_transcript("t-r", &["LC-778812".to_string()], "TICKET-9")
        .unwrap();
    assert_eq!(report.op, "rewrite");
    // Reads the same while the PII key lives.
    assert_eq!(store.transcript("t-r").unwrap(), before);
    let info = &store
        .transcripts_by_email(&common::visitor(1).email, None, None)
        .unwrap()[0];
    assert_eq!(info.rules_version, shredlog::pii::RULES_VERSION);
    // The old keys are gone from the keyring: no 32-byte run of the old
    // keyring's key slots survives.
    let keyring_after = std::fs::read(dir.path().join("keyring")).unwrap();
    for slot in common::keyring_slots(&keyring_before) {
        if slot.kind == 2 {
            let old = &slot.payload[16..48];
            assert!(
                !common::contains(&keyring_after, old),
                "old PII key survived the rewrite"
            );
        }
    }
    // After erasure the missed span reads redacted.
    store
        .redact_visitor(&common::visitor(1).email, "T")
        .unwrap();
    let after = store.transcript("t-r").unwrap();
    assert_eq!(
        text_of(&after[0]),
        format!("my loyalty card is {REDACTED}, thanks")
    );
    drop(store);

    // A rewrite whose commit (the audit entry) fails is rolled back at open.
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let now = store.transcript("t-r").unwrap();
    arm("audit.write", Action::Error, 0);
    assert!(store.rewrite_transcript("t-r", &[], "x").is_err());
    disarm_all();
    drop(store);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(store.transcript("t-r").unwrap(), now);
    assert!(store.verify().unwrap().is_ok());
    assert_eq!(
        store.stats().unwrap().transcripts,
        1,
        "exactly one version survives"
    );
}

#[test]
fn rectification_replaces_old_values_everywhere_and_destroys_them() {
    let _serial = SERIAL.lock();
    use shredlog::{CompactOptions, Rectification};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let v = common::visitor(7);
    let old_name = v.name.clone().unwrap();
    let old_phone = v.phone.clone().unwrap();
    let mut first = common::message(7, "t-x", 0, 1_000);
    first.body = Body::Text(format!("I am {old_name}, call {old_phone}"));
    store.append(&first).unwrap();
    store.append(&common::message(7, "t-x", 3, 2_000)).unwrap(); // a form with the name
    let mut other = common::message(7, "t-y", 0, 3_000);
    other.body = Body::Text("second chat".into());
    store.append(&other).unwrap();
    let keyring_before = std::fs::read(dir.path().join("keyring")).unwrap();

    let fix = Rectification::new(
        Some("Ann.New@Example.org".into()),
        Some("Ann Newname".into()),
        Some("+44 20 7946 0000".into()),
    );
    let report = store.rectify_visitor(&v.email, &fix, "T-16").unwrap();
    assert_eq!(report.op, "rectification");
    assert_eq!(report.transcripts, 2);
    assert!(
        store
            .transcripts_by_email(&v.email, None, None)
            .unwrap()
            .is_empty()
    );
    let listed = store
        .transcripts_by_email("ann.new@example.org", None, None)
        .unwrap();
    assert_eq!(listed.len(), 2);
    let msgs = store.transcript("t-x").unwrap();
    let vis = msgs[0].visitor.clone().unwrap();
    assert_eq!(vis.email, "Ann.New@Example.org");
    assert_eq!(vis.name.as_deref(), Some("Ann Newname"));
    assert_eq!(text_of(&msgs[0]), "I am Ann Newname, call +44 20 7946 0000");
    let Body::Form(form) = &msgs[1].body else {
        panic!("form expected")
    };
    assert!(form.values().all(|x| !x.contains(&old_name)), "{form:?}");
    // Old keys are gone, and after compaction so is their ciphertext; the old
    // values never were on disk in plaintext.
    store.compact(&CompactOptions::everything()).unwrap();
    let keyring_after = std::fs::read(dir.path().join("keyring")).unwrap();
    for slot in common::keyring_slots(&keyring_before) {
        if slot.kind == 2 {
            let k = &slot.payload[16..48];
            assert!(!common::contains(&keyring_after, k), "old PII key survived");
        }
    }
    for (name, bytes) in common::dir_bytes(dir.path()) {
        for old in [&old_name, &old_phone, &v.email.to_lowercase()] {
            assert!(!common::contains(&bytes, old.as_bytes()), "{old} in {name}");
        }
    }
    assert!(store.verify().unwrap().is_ok());
    // The new email is taken: another visitor cannot rectify to it.
    store.append(&common::message(8, "t-z", 0, 4_000)).unwrap();
    let steal = Rectification::new(Some("ann.new@example.org".into()), None, None);
    assert!(
        store
            .rectify_visitor(&common::visitor(8).email, &steal, "x")
            .is_err()
    );
}

/// A rectification writes the directory entry anew where the new email's
/// hash puts it in the directory's table, with the next revision, and wipes
/// the old one, whether the new email is longer or shorter. Either way the
/// store finds the visitor by the new
/// email only, after a reopen too, and the old email is gone from the
/// keyring's bytes.
#[test]
fn rectification_to_a_longer_or_shorter_email_moves_the_entry() {
    use shredlog::Rectification;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    common::populate(&store, 3, 6, 3);
    let slot_of = |email: &str| {
        let k = std::fs::read(dir.path().join("keyring")).unwrap();
        common::keyring_slots(&k)
            .into_iter()
            .find_map(|s| match s.visitor() {
                Some((_, e, revision)) if e == email.as_bytes() => {
                    Some((s.index, s.cells, revision))
                }
                _ => None,
            })
    };
    let old = common::visitor(1).email.to_lowercase();
    let (at, cells, revision) = slot_of(&old).unwrap();
    assert_eq!(revision, 0);
    let long = format!(
        "{}@{}.example.org",
        "long.address".repeat(5),
        "sub".repeat(20)
    );
    let fix = Rectification::new(Some(long.clone()), None, None);
    store.rectify_visitor(&old, &fix, "R-1").unwrap();
    let (moved, moved_cells, revision) = slot_of(&long).expect("the new entry");
    assert!(moved != at && moved_cells > cells && revision == 1);
    let short = "s@example.org";
    let fix = Rectification::new(Some(short.into()), None, None);
    store.rectify_visitor(&long, &fix, "R-2").unwrap();
    let (again, again_cells, revision) = slot_of(short).expect("the newer entry");
    assert!(again != moved && again_cells < moved_cells && revision == 2);
    assert_eq!(slot_of(&long), None, "the longer entry is wiped");
    let check = |store: &Store| {
        assert_eq!(
            store.transcripts_by_email(short, None, None).unwrap().len(),
            2
        );
        for gone in [&old, &long] {
            assert!(
                store
                    .transcripts_by_email(gone, None, None)
                    .unwrap()
                    .is_empty()
            );
        }
        assert!(store.verify().unwrap().is_ok());
    };
    check(&store);
    store.close().unwrap();
    check(&Store::open(dir.path(), Options::default()).unwrap());
    let k = std::fs::read(dir.path().join("keyring")).unwrap();
    for gone in [&old, &long] {
        assert!(
            !common::contains(&k, gone.as_bytes()),
            "{gone} left in the keyring"
        );
    }
}
