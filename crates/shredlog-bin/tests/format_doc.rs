//! docs/FORMAT.md §13.4 is code a reader can run: this runs it, as the
//! document prints it, against a store the `shredlog` command writes, so
//! that the worked example (and the placement rules of §6.12 it follows)
//! stays true. Needs `python3` (standard library only).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The `python` block of §13.4.
fn documented_reader() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/FORMAT.md"))
            .unwrap();
    let section = &doc[doc.find("### 13.4 The same in Python").unwrap()..];
    let start = section.find("```python\n").unwrap() + "```python\n".len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].to_owned()
}

fn shredlog(data: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_shredlog"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("SHREDLOG_CONFIG")
        .env_remove("SHREDLOG_KEK")
        .env_remove("SHREDLOG_KEY_FILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shredlog {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the documented `locate` finds for each caller id: its transcript
/// slot, PII slot index, whether it found the PII key, and how many records;
/// or the error it raised.
fn located(data: &Path, ids: &[&str], script: &Path) -> Value {
    let driver = format!(
        r#"
import json, sys
sys.path.insert(0, {dir:?})
from reader import locate
out = {{}}
for caller_id in {ids:?}:
    try:
        t, p, key_at, key, records = locate({data:?}, caller_id)
        out[caller_id] = dict(slot=t, pii_slot=p, key=key is not None and len(key) == 32,
                              key_at=key_at, records=len(records))
    except Exception as e:
        out[caller_id] = type(e).__name__
print(json.dumps(out))
"#,
        dir = script.parent().unwrap().to_str().unwrap(),
        data = data.to_str().unwrap(),
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&driver)
        .output()
        .expect("python3 is needed to run the reader of docs/FORMAT.md §13.4");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_documented_reader_finds_keys_and_records_and_sees_them_destroyed() {
    let tmp = tempfile::tempdir().unwrap();
    let script: PathBuf = tmp.path().join("reader.py");
    std::fs::write(&script, documented_reader()).unwrap();
    let data = tmp.path().join("store");
    let input = tmp.path().join("in.jsonl");
    let mut lines = Vec::new();
    for i in 0..5 {
        let visitor = if i == 0 {
            r#""visitor":{"email":"ann@example.com"},"#
        } else {
            ""
        };
        lines.push(format!(
            r#"{{"transcript":"t-1001","ts":"2024-05-02T10:1{i}:03.120Z","from":"visitor",{visitor}"kind":"text","text":"message {i} from 10.1.2.{i}"}}"#
        ));
    }
    lines.push(r#"{"transcript":"t-2002","ts":"2024-05-03T10:15:03.120Z","from":"visitor","visitor":{"email":"bob@example.com"},"kind":"text","text":"hello"}"#.into());
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    shredlog(&data, &["import", input.to_str().unwrap()]);

    let ids = ["t-1001", "t-2002", "t-3003"];
    let found = located(&data, &ids, &script);
    for (id, records) in [("t-1001", 5), ("t-2002", 1)] {
        let f = &found[id];
        assert_eq!(f["records"], records, "{id}: {found}");
        assert_eq!(f["key"], true, "{id}: {found}");
        // The key is inside the PII slot the transcript slot names.
        let p = f["pii_slot"].as_u64().unwrap();
        assert_eq!(f["key_at"].as_u64().unwrap(), p * 64 + 25, "{id}");
        assert_ne!(f["slot"], f["pii_slot"]);
    }
    assert_eq!(found["t-3003"], "TypeError", "an unknown id is not found");

    // Erasure destroys bob's PII key (the records stay); deleting t-1001
    // destroys its transcript and caller slots, so it is no longer found.
    shredlog(&data, &["redact", "--email", "bob@example.com"]);
    shredlog(&data, &["delete", "--transcript", "t-1001"]);
    let found = located(&data, &ids, &script);
    assert_eq!(found["t-2002"]["key"], false, "{found}");
    assert_eq!(found["t-2002"]["records"], 1, "{found}");
    assert_eq!(found["t-1001"], "TypeError", "{found}");
}
