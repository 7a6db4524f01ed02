//! Writes the checked-in fixture stores (temporary generator; see tests/fixtures/README.md).
use std::collections::BTreeMap;

use shredlog::{
    Body, CompactOptions, FileUpload, HoldTarget, KeyEncryptionKey, Message, Options,
    Rectification, Sender, Store, Timestamp, Visitor, interchange,
};

fn visitor(n: u32) -> Visitor {
    Visitor {
        email: format!("Fixture.Visitor{n}@Example.com"),
        name: Some(format!("Fixture Person{n}")),
        phone: Some(format!("+44 20 7946 01{n:02}")),
        id: Some(format!("v-fx-{n}")),
        ip: Some(format!("198.51.100.{}", n + 10)),
    }
}

fn msg(t: &str, v: u32, i: u32, ts: i64, first: bool) -> Message {
    let body = match i % 5 {
        1 => Body::Form(BTreeMap::from([
            ("name".to_string(), format!("Fixture Person{v}")),
            ("order".to_string(), format!("ORD-{v}{i}")),
        ])),
        2 => Body::File(FileUpload {
            name: format!("receipt-{v}-{i}.pdf"),
            mime: "application/pdf".into(),
            data: (0..(200 + 37 * i)).map(|b| (b * 31 + v) as u8).collect(),
        }),
        3 => Body::Consent {
            granted: (v + i) % 2 == 0,
            prompt: "May we keep this chat for 90 days?".into(),
        },
        _ => Body::Text(format!(
            "message {i}: reach me at other{v}@mail.example or +33 1 23 45 67 {:02} from 192.0.2.{v}, order {v}-{i}",
            i % 100
        )),
    };
    Message {
        transcript: t.into(),
        ts: Timestamp::from_unix_millis(ts),
        from: Some(if i % 2 == 0 { Sender::Visitor } else { Sender::Operator }),
        visitor: first.then(|| visitor(v)),
        body,
    }
}

fn build(dir: &std::path::Path, kek: Option<KeyEncryptionKey>) {
    let options = Options {
        segment_size: 4096,
        kek,
        ..Options::default()
    };
    let store = Store::open(dir, options).unwrap();
    let base = 1_714_644_903_120i64; // 2024-05-02T10:15:03.120Z
    // Transcripts t-1..t-12 over visitors 1..6, several messages each.
    for t in 1..=12u32 {
        let v = (t - 1) % 6 + 1;
        let id = format!("t-{t}");
        let batch: Vec<Message> = (0..6)
            .map(|i| msg(&id, v, i, base + i64::from(t) * 86_400_000 + i64::from(i) * 60_000, i == 0))
            .collect();
        store.append_batch(&batch).unwrap();
    }
    store.redact_visitor("fixture.visitor1@example.com", "TICKET-1").unwrap();
    store.delete_transcript("t-3", "TICKET-2").unwrap();
    store.delete_visitor("fixture.visitor2@example.com", "TICKET-3").unwrap();
    store
        .rewrite_transcript("t-4", &["order 4-0".to_string()], "TICKET-4")
        .unwrap();
    store
        .rectify_visitor(
            "fixture.visitor5@example.com",
            &Rectification::new(None, Some("Fixture Renamed5".into()), None),
            "TICKET-5",
        )
        .unwrap();
    store
        .place_hold(HoldTarget::Email("fixture.visitor6@example.com"), "CASE-6")
        .unwrap();
    store.place_hold(HoldTarget::Transcript("t-11"), "CASE-11").unwrap();
    // Retention with a fixed clock: everything whose last message is before
    // t-6's is redacted (t-5 is visitor 5's, t-6 is held).
    let now = base + 6 * 86_400_000 + 10 * 60_000;
    store.apply_retention(10 * 60_000 + 1, false, now, "RET-1").unwrap();
    store.compact(&CompactOptions::everything()).unwrap();
    // A little more after compaction, in the active segment.
    let more: Vec<Message> = (6..9)
        .map(|i| msg("t-12", 6, i, base + 12 * 86_400_000 + i64::from(i) * 60_000, false))
        .collect();
    store.append_batch(&more).unwrap();
    store
        .append(&msg("t-13", 3, 0, base + 13 * 86_400_000, true))
        .unwrap();
    store
        .restrict_visitor("fixture.visitor4@example.com", "RESTRICT-4")
        .unwrap();
    store.close().unwrap();
}

fn expected(dir: &std::path::Path, kek: Option<KeyEncryptionKey>) -> serde_json::Value {
    let store = Store::open(
        dir,
        Options {
            kek,
            ..Options::default()
        },
    )
    .unwrap();
    let mut shows = serde_json::Map::new();
    for t in 1..=13 {
        let id = format!("t-{t}");
        let v = match store.transcript(&id) {
            Ok(ms) => serde_json::Value::Array(
                ms.iter()
                    .map(|m| serde_json::Value::String(interchange::to_line(m)))
                    .collect(),
            ),
            Err(e) => serde_json::Value::String(format!("error: {e}")),
        };
        shows.insert(id, v);
    }
    let mut lists = serde_json::Map::new();
    for v in 1..=6 {
        let email = format!("fixture.visitor{v}@example.com");
        let v = match store.transcripts_by_email(&email, None, None) {
            Ok(l) => serde_json::Value::Array(
                l.iter()
                    .map(|i| serde_json::json!([i.id, i.messages, i.redacted, i.first.as_str(), i.last.as_str()]))
                    .collect(),
            ),
            Err(e) => serde_json::Value::String(format!("error: {e}")),
        };
        lists.insert(email, v);
    }
    let consent = store.consent("fixture.visitor6@example.com").unwrap();
    let audit: Vec<serde_json::Value> = store
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|e| serde_json::json!([e.seq, e.op, e.subject, e.transcripts, e.keys_destroyed, e.reference]))
        .collect();
    let stats = store.stats();
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    serde_json::json!({
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

fn main() {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    for (name, kek) in [
        ("v1-plain", None),
        ("v1-kek", Some("5e".repeat(32))),
    ] {
        let dir = out.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let k = || kek.as_deref().map(|h| KeyEncryptionKey::from_hex(h).unwrap());
        build(&dir.join("store"), k());
        // A throwaway copy for reading the expectations, so the fixture keeps
        // exactly the bytes the writer left.
        let copy = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(dir.join("store")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), copy.path().join(e.file_name())).unwrap();
        }
        let exp = expected(copy.path(), k());
        std::fs::write(
            dir.join("expected.json"),
            serde_json::to_string_pretty(&exp).unwrap() + "\n",
        )
        .unwrap();
    }
}
