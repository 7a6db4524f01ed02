//! Integration tests of the storage core: round trips, listing, reopen,
//! checkpoints, rolling, encryption at rest, concurrency.

mod common;

use std::sync::Arc;

use common::*;
use shredlog::{Durability, Error, KeyEncryptionKey, Options, Store, interchange};

fn small_segments() -> Options {
    Options {
        segment_size: 16 << 10,
        ..Options::default()
    }
}

fn by_transcript(all: &[shredlog::Message], id: &str) -> Vec<shredlog::Message> {
    all.iter().filter(|m| m.transcript == id).cloned().collect()
}

#[test]
fn append_read_reopen_roundtrip_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let all = {
        let store = Store::open(dir.path(), small_segments()).unwrap();
        let all = populate(&store, 5, 20, 9);
        for t in 0..20 {
            let id = format!("t-{t}");
            assert_eq!(store.transcript(&id).unwrap(), by_transcript(&all, &id));
        }
        store.close().unwrap();
        all
    };
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() > 5,
        "segments rolled"
    );
    for checkpoint in [true, false] {
        if !checkpoint {
            std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
        }
        let store = Store::open(dir.path(), small_segments()).unwrap();
        assert_eq!(store.recovery_report().checkpoint_used, checkpoint);
        for t in 0..20 {
            let id = format!("t-{t}");
            assert_eq!(
                store.transcript(&id).unwrap(),
                by_transcript(&all, &id),
                "{id}"
            );
        }
        assert!(store.verify().unwrap().is_ok());
        // Dropped without close: the next round must not depend on a fresh checkpoint.
        drop(store);
    }
    // Appending after reopen continues the transcript.
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let more = message(0, "t-0", 9, 1_800_000_000_000);
    store.append(&more).unwrap();
    assert_eq!(store.transcript("t-0").unwrap().last(), Some(&more));
    drop(store);
    let store = Store::open(dir.path(), small_segments()).unwrap();
    assert_eq!(store.transcript("t-0").unwrap().len(), 10);
}

#[test]
fn checkpoint_and_scan_give_the_same_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_segments()).unwrap();
    let all = populate(&store, 4, 12, 8);
    store.close().unwrap();
    let with = Store::open(dir.path(), small_segments()).unwrap();
    assert!(with.recovery_report().checkpoint_used);
    assert_eq!(
        with.recovery_report().records_scanned,
        0,
        "the checkpoint covers everything"
    );
    let listed_with: Vec<_> = (0..4)
        .map(|v| {
            with.transcripts_by_email(&format!("visitor.{v}@example.com"), None, None)
                .unwrap()
        })
        .collect();
    drop(with);
    // Without the checkpoint, only the last segment is scanned: the sealed
    // ones have their record-location files.
    std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
    let sidecars = Store::open(dir.path(), small_segments()).unwrap();
    let scanned = sidecars.recovery_report().records_scanned;
    assert!(scanned > 0 && scanned < all.len() as u64, "{scanned}");
    drop(sidecars);
    // Without them either, the whole log is scanned (and they are rebuilt).
    std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "idx") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let without = Store::open(dir.path(), small_segments()).unwrap();
    assert!(!without.recovery_report().checkpoint_used);
    assert_eq!(without.recovery_report().records_scanned, all.len() as u64);
    let listed_without: Vec<_> = (0..4)
        .map(|v| {
            without
                .transcripts_by_email(&format!("visitor.{v}@example.com"), None, None)
                .unwrap()
        })
        .collect();
    assert_eq!(listed_with, listed_without);
}

#[test]
fn a_damaged_checkpoint_falls_back_to_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let all = populate(&store, 2, 4, 5);
    store.close().unwrap();
    let path = dir.path().join("index.ckpt");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert!(!store.recovery_report().checkpoint_used);
    assert_eq!(store.transcript("t-3").unwrap(), by_transcript(&all, "t-3"));
}

#[test]
fn listing_is_newest_first_case_insensitive_and_filtered_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store, 3, 9, 3);
    let list = store
        .transcripts_by_email("  VISITOR.1@example.COM ", None, None)
        .unwrap();
    let ids: Vec<_> = list.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["t-7", "t-4", "t-1"]);
    assert!(
        list.windows(2)
            .all(|w| w[0].last.unix_millis() >= w[1].last.unix_millis())
    );
    // t-4's messages are at 1_700_000_000_000 + (4000..4003) s.
    let from = 1_700_000_000_000 + 4_000 * 1000;
    let to = 1_700_000_000_000 + 4_002 * 1000;
    let ranged = store
        .transcripts_by_email("visitor.1@example.com", Some(from), Some(to))
        .unwrap();
    assert_eq!(
        ranged.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t-4"]
    );
    assert!(
        store
            .transcripts_by_email("nobody@example.com", None, None)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.transcript("t-404"),
        Err(Error::TranscriptNotFound)
    ));
}

#[test]
fn rules_of_appending_are_enforced_without_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let mut first = message(1, "t-a", 1, 1_000);
    assert!(first.visitor.is_none());
    let err = store.append(&first).unwrap_err();
    assert!(err.to_string().contains("must name the visitor"), "{err}");
    first.visitor = Some(visitor(1));
    let mut other = message(2, "t-a", 0, 2_000);
    other.visitor = Some(visitor(2));
    // A batch whose second message names another visitor is refused whole.
    let err = store
        .append_batch(&[first.clone(), other.clone()])
        .unwrap_err();
    assert!(err.to_string().contains("different visitor"), "{err}");
    assert!(matches!(
        store.transcript("t-a"),
        Err(Error::TranscriptNotFound)
    ));
    store.append(&first).unwrap();
    assert!(store.append(&other).is_err());
    assert_eq!(store.transcript("t-a").unwrap().len(), 1);
    // Error messages never carry the values.
    assert!(!err.to_string().contains("Example.com"));
}

#[test]
fn long_batches_are_prepared_in_parallel_with_sequential_semantics() {
    // Long enough to be split over threads (128 messages and up).
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_message_bytes: 64 << 10,
        ..Options::default()
    };
    let store = Store::open(dir.path(), options).unwrap();
    let batch: Vec<_> = (0..600u64)
        .map(|i| {
            let mut m = message(i % 7, &format!("t-{}", i % 40), i / 40, i as i64 * 10);
            if i < 40 {
                m.visitor = Some(visitor(i % 7));
            }
            m
        })
        .collect();
    // The error is the one of the first failing message, even when a later
    // chunk fails too, and nothing of the batch is written.
    let mut bad = batch.clone();
    bad[450].transcript.clear();
    bad[250].body = shredlog::Body::Text("x".repeat(100 << 10));
    let err = store.append_batch(&bad).unwrap_err();
    assert!(err.to_string().contains("larger than the limit"), "{err}");
    bad[250] = batch[250].clone();
    let err = store.append_batch(&bad).unwrap_err();
    assert!(err.to_string().contains("`transcript` is empty"), "{err}");
    assert!(matches!(
        store.transcript("t-0"),
        Err(Error::TranscriptNotFound)
    ));
    store.append_batch(&batch).unwrap();
    for t in 0..40 {
        let id = format!("t-{t}");
        assert_eq!(store.transcript(&id).unwrap(), by_transcript(&batch, &id));
    }
}

#[test]
fn large_batches_are_sealed_in_parallel_and_read_back_whole() {
    // Over a MiB to seal (the threshold is 256 KiB): split into runs sealed
    // on several threads and joined in order. Every record must land where
    // the index says, with a nonce of its own, readable now and after a
    // reopen that scans the segment (no checkpoint).
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        checkpoint: false,
        ..Options::default()
    };
    let batch: Vec<_> = (0..240u64)
        .map(|i| {
            let mut m = message(i % 9, &format!("t-{}", i % 30), i / 30, i as i64 * 10);
            if i < 30 {
                m.visitor = Some(visitor(i % 9));
            }
            if i % 3 == 0 {
                // Long text with personal data in it, so both parts are large.
                m.body = shredlog::Body::Text(format!(
                    "{} call me on +44 20 7946 {:04} {}",
                    "lorem ipsum ".repeat(1400 + i as usize),
                    i,
                    "dolor sit amet ".repeat(300)
                ));
            }
            m
        })
        .collect();
    {
        let store = Store::open(dir.path(), options.clone()).unwrap();
        store.append_batch(&batch[..5]).unwrap();
        store.append_batch(&batch[5..]).unwrap();
        for t in 0..30 {
            let id = format!("t-{t}");
            assert_eq!(store.transcript(&id).unwrap(), by_transcript(&batch, &id));
        }
        store.close().unwrap();
    }
    let store = Store::open(dir.path(), options).unwrap();
    for t in 0..30 {
        let id = format!("t-{t}");
        assert_eq!(store.transcript(&id).unwrap(), by_transcript(&batch, &id));
    }
    let report = store.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn stats_count_data_bytes_not_the_zeros_written_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    populate(&store, 3, 6, 5);
    let check = |store: &Store| {
        let s = store.stats().unwrap();
        let headers = 32 * s.segments as u64;
        assert_eq!(s.segment_bytes, headers + s.live_bytes + s.dead_bytes);
        s.segment_bytes
    };
    let open_bytes = check(&store);
    // The file itself is longer while the store is open, and exactly the
    // data once it is closed.
    let seg = dir.path().join("000000000001.seg");
    assert!(std::fs::metadata(&seg).unwrap().len() > open_bytes);
    store.close().unwrap();
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), open_bytes);
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(check(&store), open_bytes);
}

#[test]
fn nothing_personal_is_stored_in_plaintext() {
    for kek in [
        None,
        Some(KeyEncryptionKey::from_hex(&"5a".repeat(32)).unwrap()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let wrapped = kek.is_some();
        let opts = Options {
            kek,
            ..small_segments()
        };
        let store = Store::open(dir.path(), opts).unwrap();
        populate(&store, 3, 6, 7);
        store.close().unwrap();
        for (name, bytes) in dir_bytes(dir.path()) {
            for v in 0..3 {
                let vis = visitor(v);
                let mut needles = vec![
                    vis.name.clone().unwrap(),
                    vis.phone.clone().unwrap(),
                    vis.id.clone().unwrap(),
                    vis.ip.clone().unwrap(),
                    format!("typed.{v}@mail.example"),
                    "message 1 of the conversation".to_string(),
                    "May we keep this chat".to_string(),
                    format!("scan-{v}.png"),
                ];
                if name != "keyring" || wrapped {
                    needles.push(vis.email.to_lowercase());
                }
                for n in needles {
                    assert!(
                        !contains(&bytes, n.as_bytes()),
                        "{n:?} in plaintext in {name}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_wrapped_keyring_needs_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let kek = KeyEncryptionKey::from_hex(&"11".repeat(32)).unwrap();
    let store = Store::open(
        dir.path(),
        Options {
            kek: Some(kek.clone()),
            ..Options::default()
        },
    )
    .unwrap();
    let all = populate(&store, 1, 1, 3);
    drop(store);
    assert!(matches!(
        Store::open(dir.path(), Options::default()),
        Err(Error::Kek(_))
    ));
    let wrong = KeyEncryptionKey::from_hex(&"22".repeat(32)).unwrap();
    assert!(matches!(
        Store::open(
            dir.path(),
            Options {
                kek: Some(wrong),
                ..Options::default()
            }
        ),
        Err(Error::Kek(_))
    ));
    let store = Store::open(
        dir.path(),
        Options {
            kek: Some(kek),
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(store.transcript("t-0").unwrap(), all);
}

#[test]
fn a_second_process_cannot_open_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(dir.path(), Options::default()).unwrap();
    // A second open in this process takes the lock through another file description.
    assert!(matches!(
        Store::open(dir.path(), Options::default()),
        Err(Error::Locked(_))
    ));
}

#[test]
fn concurrent_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), small_segments()).unwrap());
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let id = format!("t-w{w}");
                for i in 0..40 {
                    store
                        .append(&message(w, &id, i, (w * 1000 + i) as i64))
                        .unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for _ in 0..200 {
                for w in 0..8u64 {
                    if let Ok(msgs) = store.transcript(&format!("t-w{w}")) {
                        // Never a torn view: always a prefix, in order.
                        for (i, m) in msgs.iter().enumerate() {
                            assert_eq!(
                                *m,
                                message(
                                    w,
                                    &format!("t-w{w}"),
                                    i as u64,
                                    (w * 1000 + i as u64) as i64
                                )
                            );
                        }
                    }
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    for w in 0..8u64 {
        assert_eq!(store.transcript(&format!("t-w{w}")).unwrap().len(), 40);
    }
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn batched_durability_keeps_everything_after_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        durability: Durability::Batched { interval_ms: 5 },
        ..Options::default()
    };
    let store = Store::open(dir.path(), opts.clone()).unwrap();
    let all = populate(&store, 2, 4, 6);
    std::thread::sleep(std::time::Duration::from_millis(20));
    store.sync().unwrap();
    drop(store);
    let store = Store::open(dir.path(), opts).unwrap();
    assert_eq!(store.transcript("t-2").unwrap(), by_transcript(&all, "t-2"));
}

#[test]
fn interchange_lines_round_trip_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let lines = [
        r#"{"transcript":"t-1001","ts":"2024-05-02T10:15:03.120Z","from":"visitor","visitor":{"email":"Ann.Lee@example.com","name":"Ann Lee","phone":"+44 20 7946 0958","id":"v-88172","ip":"203.0.113.9"},"kind":"text","text":"hi, my other address is ann@work.example"}"#,
        r#"{"transcript":"t-1001","ts":"2024-05-02T10:15:04Z","from":"operator","kind":"text","text":"Hello! 日本語 ann@example.jp も大丈夫"}"#,
        r#"{"transcript":"t-1001","ts":"2024-05-02T10:15:05.000+02:00","kind":"form","form":{"email":"x@y.example","note":""}}"#,
        r#"{"transcript":"t-1001","ts":"2024-05-02T10:15:06.5Z","from":"visitor","visitor":{"email":"ANN.LEE@EXAMPLE.COM"},"kind":"file","file":{"name":"a.txt","mime":"text/plain","data":""}}"#,
        r#"{"transcript":"t-1001","ts":"2024-05-02T10:15:07.120Z","from":"system","kind":"consent","consent":{"granted":false,"prompt":""}}"#,
    ];
    for l in lines {
        store.append(&interchange::parse_line(l).unwrap()).unwrap();
    }
    let back: Vec<String> = store
        .transcript("t-1001")
        .unwrap()
        .iter()
        .map(interchange::to_line)
        .collect();
    for (a, b) in back.iter().zip(lines) {
        let a: serde_json::Value = serde_json::from_str(a).unwrap();
        let b: serde_json::Value = serde_json::from_str(b).unwrap();
        assert_eq!(a, b);
    }
}
