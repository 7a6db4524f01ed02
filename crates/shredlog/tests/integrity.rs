//! Recovery never destroys what it cannot prove was unacknowledged; every file
//! checks itself; read-only opens write nothing; retries never duplicate.
//! One test per defect of issue 12 (each fails on the store before it).

mod common;

use std::path::Path;

use common::*;
use shredlog::{
    CompactOptions, Error, HoldTarget, Message, Options, Store, Timestamp, interchange,
};

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Every file of a directory with its bytes, by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = dir_bytes(dir);
    files.sort();
    files
}

fn read_only() -> Options {
    Options {
        read_only: true,
        ..Options::default()
    }
}

fn expect_corrupt(r: shredlog::Result<Store>, file: &str) -> String {
    match r {
        Err(e @ Error::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(file), "names {file}: {msg}");
            msg
        }
        Err(e) => panic!("expected corruption in {file}, got {e}"),
        Ok(_) => panic!("damage to {file} went unnoticed"),
    }
}

/// Every transcript of `all` reads back exactly as written.
fn assert_reads_back(store: &Store, all: &[Message]) {
    let mut ids: Vec<&str> = all.iter().map(|m| m.transcript.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let want: Vec<Message> = all.iter().filter(|m| m.transcript == id).cloned().collect();
        assert_eq!(store.transcript(id).unwrap(), want, "{id}");
    }
}

// 1. A checkpoint from before a compaction is never trusted for the rewritten
// segment.
#[test]
fn a_checkpoint_older_than_a_compaction_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        populate(&store, 3, 6, 4)
    };
    // Closed while segment 1 was active and shorter: this checkpoint covers
    // segment 1 up to its length then.
    let stale = std::fs::read(dir.path().join("index.ckpt")).unwrap();
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        for t in 6..12 {
            let id = format!("t-{t}");
            let batch: Vec<Message> = (0..4)
                .map(|i| message(t % 3, &id, i, 1_800_000_000_000 + (t * 10 + i) as i64))
                .collect();
            store.append_batch(&batch).unwrap();
            all.extend(batch);
        }
        store.delete_transcript("t-1", "x").unwrap();
        all.retain(|m| m.transcript != "t-1");
        // Seals segment 1 and rewrites it without t-1's records.
        store.compact(&CompactOptions::everything()).unwrap();
    }
    // A crash between the rename and the new checkpoint leaves the old one.
    std::fs::write(dir.path().join("index.ckpt"), &stale).unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert!(
        !store.recovery_report().checkpoint_used,
        "stale checkpoint used"
    );
    assert_reads_back(&store, &all);
    assert!(store.verify().unwrap().is_ok());
}

// 2 and 6. The last segment of a closed store cut below what the checkpoint
// and the keyring record is lost data: an error for every command, and
// nothing is rewritten (keys and directory entries survive for a restore).
#[test]
fn a_cut_last_segment_is_an_error_and_destroys_nothing() {
    let src = tempfile::tempdir().unwrap();
    {
        let store = Store::open(src.path(), Options::default()).unwrap();
        populate(&store, 5, 10, 6);
    }
    let seg = src.path().join("000000000001.seg");
    let len = std::fs::metadata(&seg).unwrap().len();
    for checkpoint in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        if !checkpoint {
            std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("000000000001.seg"))
            .unwrap();
        f.set_len(len / 2).unwrap();
        drop(f);
        let damaged = snapshot(dir.path());
        let msg = expect_corrupt(
            Store::open(dir.path(), Options::default()),
            "000000000001.seg",
        );
        assert!(!msg.contains("torn"), "{msg}");
        expect_corrupt(Store::open(dir.path(), read_only()), "000000000001.seg");
        assert_eq!(
            snapshot(dir.path()),
            damaged,
            "an open wrote to a damaged store"
        );
        // Restoring the segment from a copy gives everything back.
        std::fs::copy(&seg, dir.path().join("000000000001.seg")).unwrap();
        let store = Store::open(dir.path(), read_only()).unwrap();
        assert!(store.verify().unwrap().is_ok());
        assert_eq!(store.stats().unwrap().messages, 60);
    }
}

// 3. A keyring cut at a slot boundary or inside a slot is an error for every
// command (no partial answers), and no command destroys a key because of it.
#[test]
fn a_cut_keyring_is_an_error_for_every_command() {
    let src = tempfile::tempdir().unwrap();
    let all = {
        let store = Store::open(src.path(), Options::default()).unwrap();
        let all = populate(&store, 20, 40, 3);
        store.restrict_visitor(&visitor(3).email, "R-1").unwrap();
        all
    };
    let keyring = std::fs::read(src.path().join("keyring")).unwrap();
    // The last slot in use, at its boundary and inside it.
    let last = keyring_slots(&keyring).last().unwrap().index;
    for cut in [last * 64, last * 64 + 100, 3 * 512] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        std::fs::write(dir.path().join("keyring"), &keyring[..cut]).unwrap();
        let damaged = snapshot(dir.path());
        for options in [Options::default(), read_only()] {
            expect_corrupt(Store::open(dir.path(), options), "keyring");
        }
        assert_eq!(snapshot(dir.path()), damaged, "cut {cut}: an open wrote");
        // Salvage reads what is left without writing, and says it is damaged.
        let salvage = Options {
            salvage: true,
            ..Options::default()
        };
        let store = Store::open(dir.path(), salvage).unwrap();
        assert!(!store.verify().unwrap().is_ok());
        assert!(matches!(
            store.compact(&CompactOptions::everything()),
            Err(Error::ReadOnly)
        ));
        drop(store);
        assert_eq!(snapshot(dir.path()), damaged, "cut {cut}: salvage wrote");
    }
    // The undamaged copy is whole.
    let store = Store::open(src.path(), read_only()).unwrap();
    assert_eq!(store.stats().unwrap().messages, all.len() as u64);
}

// 4. The audit log: a complete last line that fails its check, or a log cut
// short or emptied, is lost acknowledged data.
#[test]
fn a_damaged_or_cut_audit_log_is_an_error() {
    let src = tempfile::tempdir().unwrap();
    {
        let store = Store::open(src.path(), Options::default()).unwrap();
        populate(&store, 4, 4, 2);
        store.redact_visitor(&visitor(0).email, "T-1").unwrap();
        store.redact_visitor(&visitor(1).email, "T-2").unwrap();
    }
    let audit = std::fs::read(src.path().join("audit.log")).unwrap();
    let first_line = audit.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut flipped = audit.clone();
    let at = audit.len() - 30;
    flipped[at] ^= 0x01;
    // A flipped line whose operation the keyring records as done is not read
    // by open (open time must not grow with the log); `verify` and `audit`
    // read every line and say it is damaged.
    {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        std::fs::write(dir.path().join("audit.log"), &flipped).unwrap();
        let store = Store::open(dir.path(), read_only()).unwrap();
        let report = store.verify().unwrap();
        assert!(
            report.problems.iter().any(|p| p.contains("audit.log")),
            "{:?}",
            report.problems
        );
        let err = store.audit_log().unwrap_err();
        assert!(err.to_string().contains("audit.log"), "{err}");
    }
    for (what, bytes) in [
        ("the last line gone", audit[..first_line].to_vec()),
        ("the last line cut", audit[..audit.len() - 10].to_vec()),
        ("an empty log", Vec::new()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        std::fs::write(dir.path().join("audit.log"), &bytes).unwrap();
        for options in [Options::default(), read_only()] {
            expect_corrupt(Store::open(dir.path(), options), "audit.log");
        }
        assert_eq!(
            std::fs::read(dir.path().join("audit.log")).unwrap(),
            bytes,
            "{what}: the log was cut"
        );
    }
}

// 5. The policy file checks itself, and verify notices holds and restrictions
// that name nothing.
#[test]
fn a_changed_policy_file_is_an_error_and_verify_checks_what_it_names() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        populate(&store, 3, 3, 2);
        store.restrict_visitor(&visitor(1).email, "R-1").unwrap();
        store
            .place_hold(HoldTarget::Transcript("t-2"), "CASE-1")
            .unwrap();
    }
    let path = dir.path().join("policy.json");
    let policy = std::fs::read_to_string(&path).unwrap();
    // One hex digit of the restricted visitor's id changed.
    let digit = policy.find("\"restricted\"").unwrap();
    let at = policy[digit..]
        .find(|c: char| c.is_ascii_hexdigit())
        .unwrap()
        + digit;
    let mut changed = policy.clone().into_bytes();
    changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, &changed).unwrap();
    expect_corrupt(Store::open(dir.path(), read_only()), "policy.json");
    // Written back intact, the store opens; a restriction of a visitor the
    // store does not have (checksum fixed up, as a careless edit would) is
    // reported by verify.
    std::fs::write(&path, &policy).unwrap();
    let store = Store::open(dir.path(), read_only()).unwrap();
    assert!(store.verify().unwrap().is_ok());
    drop(store);
    let mut v: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let top = v.as_object_mut().unwrap();
    top.remove("crc32");
    top["policy"]["restricted"].as_object_mut().unwrap().insert(
        "ab".repeat(16),
        serde_json::json!({"reference": "R-9", "since": "2024-01-01T00:00:00.000Z"}),
    );
    top["policy"]["transcript-holds"]
        .as_object_mut()
        .unwrap()
        .insert(
            "t-nope".into(),
            serde_json::json!({"reference": "C", "since": "2024-01-01T00:00:00.000Z"}),
        );
    let crc = crc32fast::hash(v.to_string().as_bytes());
    v.as_object_mut()
        .unwrap()
        .insert("crc32".into(), crc.into());
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let store = Store::open(dir.path(), read_only()).unwrap();
    let report = store.verify().unwrap();
    let problems = report.problems.join("\n");
    assert!(
        problems.contains("restriction name no visitor"),
        "{problems}"
    );
    assert!(
        problems.contains("legal holds name no transcript"),
        "{problems}"
    );
}

// Read-only opens and commands write no byte, even when there is something a
// writing open would finish (an erasure cut short) or cut (a torn tail).
#[test]
fn read_only_opens_write_nothing_and_see_logged_erasures() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store, 4, 8, 3);
    store.close().unwrap();
    // An erasure whose entry is logged but whose wipes never happened: the
    // store as a crash right after the entry leaves it.
    let before_keyring = std::fs::read(dir.path().join("keyring")).unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    store.redact_visitor(&visitor(2).email, "T-1").unwrap();
    store.close().unwrap();
    std::fs::write(dir.path().join("keyring"), &before_keyring).unwrap();
    let files = snapshot(dir.path());
    let ro = Store::open(dir.path(), read_only()).unwrap();
    assert_eq!(ro.recovery_report().finished.len(), 1);
    assert!(
        ro.transcripts_by_email(&visitor(2).email, None, None)
            .unwrap()
            .is_empty()
    );
    let t2 = ro.transcript("t-2").unwrap();
    assert_eq!(t2[0].visitor.as_ref().unwrap().email, shredlog::REDACTED);
    ro.export(&visitor(1).email).unwrap();
    ro.stats().unwrap();
    ro.audit_log().unwrap();
    assert!(matches!(
        ro.append(&message(1, "t-1", 9, 1)),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(
        ro.redact_visitor(&visitor(1).email, "x"),
        Err(Error::ReadOnly)
    ));
    drop(ro);
    assert_eq!(snapshot(dir.path()), files, "a read-only open wrote");
    // A writing open finishes it.
    let store = Store::open(dir.path(), Options::default()).unwrap();
    drop(store);
    let keyring = std::fs::read(dir.path().join("keyring")).unwrap();
    assert!(!contains(
        &keyring,
        visitor(2).email.to_lowercase().as_bytes()
    ));
}

#[test]
fn a_directory_without_a_store_is_not_made_one_by_reading() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    for options in [
        read_only(),
        Options {
            create: false,
            ..Options::default()
        },
    ] {
        assert!(matches!(
            Store::open(&missing, options),
            Err(Error::NotAStore(_))
        ));
    }
    assert!(!missing.exists());
    // An empty directory stays empty.
    assert!(matches!(
        Store::open(dir.path(), read_only()),
        Err(Error::NotAStore(_))
    ));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

// 9. Retries: a message whose id its transcript holds is stored once.
#[test]
fn a_retried_append_with_message_ids_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let with_ids: Vec<Message> = (0..6)
        .map(|i| {
            let mut m = message(
                1,
                if i < 3 { "t-a" } else { "t-b" },
                i % 3,
                1_000 + i as i64,
            );
            m.id = Some(format!("m-{i}"));
            if i == 3 {
                m.visitor = Some(visitor(1));
            }
            m
        })
        .collect();
    let first = store.append_batch(&with_ids).unwrap();
    assert_eq!((first.stored, first.already_stored), (6, 0));
    // The whole batch again, and again with one new message.
    let again = store.append_batch(&with_ids).unwrap();
    assert_eq!((again.stored, again.already_stored), (0, 6));
    let mut more = with_ids.clone();
    let mut new = message(1, "t-a", 3, 2_000);
    new.id = Some("m-new".into());
    more.push(new.clone());
    // A duplicate inside one batch is stored once too.
    more.push(new.clone());
    let third = store.append_batch(&more).unwrap();
    assert_eq!((third.stored, third.already_stored), (1, 7));
    let t_a = store.transcript("t-a").unwrap();
    assert_eq!(t_a.len(), 4);
    assert_eq!(t_a[3], new);
    // Ids survive a reopen (from the checkpoint, and from a scan without it)
    // and come back in the interchange format.
    store.close().unwrap();
    for keep_checkpoint in [true, false] {
        if !keep_checkpoint {
            std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
        }
        let store = Store::open(dir.path(), Options::default()).unwrap();
        assert_eq!(store.append_batch(&more).unwrap().stored, 0);
        let line = interchange::to_line(&store.transcript("t-a").unwrap()[0]);
        assert!(line.contains(r#""id":"m-0""#), "{line}");
        assert_eq!(interchange::parse_line(&line).unwrap(), with_ids[0]);
        store.close().unwrap();
    }
    // Messages without ids are stored every time (nothing to tell a retry by).
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let plain = message(1, "t-a", 9, 3_000);
    store.append(&plain).unwrap();
    assert_eq!(store.append(&plain).unwrap().stored, 1);
}

// 10b. Consent: the current state is the latest event by time, across
// transcripts that overlap in time.
#[test]
fn consent_state_is_the_latest_event_across_overlapping_transcripts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let consent = |t: &str, ts: i64, granted: bool| Message {
        transcript: t.into(),
        id: None,
        ts: Timestamp::from_unix_millis(ts),
        from: Some(shredlog::Sender::Visitor),
        visitor: None,
        body: shredlog::Body::Consent {
            granted,
            prompt: "May we keep this chat?".into(),
        },
    };
    // T1 starts first but its withdrawal comes last; T2's grant lies between.
    let mut first = message(7, "t-1", 0, 1_000);
    first.visitor = Some(visitor(7));
    let mut second = message(7, "t-2", 0, 2_000);
    second.visitor = Some(visitor(7));
    store
        .append_batch(&[first, consent("t-1", 20_000, false)])
        .unwrap();
    store
        .append_batch(&[second, consent("t-2", 10_000, true)])
        .unwrap();
    let state = store.consent(&visitor(7).email).unwrap();
    let times: Vec<&str> = state.history.iter().map(|e| e.ts.as_str()).collect();
    assert_eq!(
        times,
        ["1970-01-01T00:00:10.000Z", "1970-01-01T00:00:20.000Z"],
        "oldest first"
    );
    assert_eq!(state.current, Some(false), "withdrawn last");
}

// 10d. Retention redacts what is strictly older than the period, not what is
// exactly as old.
#[test]
fn retention_takes_what_is_older_than_the_period_not_as_old() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let now = 10_000_000i64;
    let period = 1_000i64;
    let cutoff = now - period;
    for (t, last) in [
        ("t-older", cutoff - 1),
        ("t-as-old", cutoff),
        ("t-newer", cutoff + 1),
    ] {
        let mut m = message(1, t, 0, last);
        m.visitor = Some(visitor(1));
        store.append(&m).unwrap();
    }
    let entry = store.apply_retention(period, false, now, "RET").unwrap();
    assert_eq!(entry.transcripts, 1);
    let redacted = |t: &str| {
        store.transcript(t).unwrap()[0]
            .visitor
            .as_ref()
            .is_some_and(|v| v.email == shredlog::REDACTED)
    };
    assert!(redacted("t-older"));
    assert!(!redacted("t-as-old"));
    assert!(!redacted("t-newer"));
}

/// A keyring that is gone or empty while segments exist is corruption named
/// at the keyring (no record could be read without it), never a new store
/// over the old segments; nothing in the directory is written.
#[test]
fn a_missing_or_empty_keyring_beside_segments_is_reported() {
    for how in ["removed", "emptied"] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        populate(&store, 2, 3, 4);
        store.close().unwrap();
        let keyring = dir.path().join("keyring");
        match how {
            "removed" => std::fs::remove_file(&keyring).unwrap(),
            _ => std::fs::write(&keyring, b"").unwrap(),
        }
        let before = dir_bytes(dir.path());
        match Store::open(dir.path(), Options::default()) {
            Err(Error::Corrupt { path, .. }) => assert_eq!(path, keyring, "{how}"),
            Err(e) => panic!("{how}: expected corruption at the keyring, got {e}"),
            Ok(_) => panic!("{how}: opened without its keyring"),
        }
        let mut after = dir_bytes(dir.path());
        let mut before = before;
        // The lock file open takes may appear; nothing else changes.
        after.retain(|(n, _)| n != "LOCK");
        before.retain(|(n, _)| n != "LOCK");
        after.sort();
        before.sort();
        assert_eq!(after, before, "{how}: the directory changed");
    }
}
