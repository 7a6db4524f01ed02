//! `--dry-run` on `redact`, `delete` and `retention` (DESIGN §5): it prints
//! what the operation would do, which is what the operation then does, and
//! changes no byte of the store; a retention period of 0 needs
//! `--confirm-zero`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sample.jsonl")
}

fn run(data: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shredlog"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SHREDLOG_") {
            c.env_remove(k);
        }
    }
    c.arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(data: &Path, args: &[&str]) -> Value {
    let o = run(data, args);
    assert!(
        o.status.success(),
        "shredlog {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
}

/// Every file of the store with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            let m = e.metadata().unwrap().modified().unwrap();
            out.insert(e.path(), (std::fs::read(e.path()).unwrap(), m));
        }
    }
    out
}

/// The fields a dry run and the audit entry of the operation share.
fn same_counts(preview: &Value, entry: &Value) {
    for k in ["op", "subject", "transcripts", "keys_destroyed"] {
        assert_eq!(preview[k], entry[k], "{k}: {preview} vs {entry}");
    }
}

const MARIA: &str = "gomez.mariajose@example.com";

#[test]
fn dry_runs_say_what_happens_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let o = run(&d, &["import", sample_path().to_str().unwrap()]);
    assert!(o.status.success());
    ok(
        &d,
        &["hold", "--transcript", "t-1001", "--reference", "CASE-1"],
    );
    let before = snapshot(&d);

    let erase = ok(
        &d,
        &["redact", "--email", &MARIA.to_uppercase(), "--dry-run"],
    );
    assert_eq!(erase["op"], "erasure");
    assert!(erase["transcripts"].as_u64().unwrap() >= 1, "{erase}");
    let del = ok(&d, &["delete", "--email", MARIA, "--dry-run"]);
    assert_eq!(del["op"], "delete-visitor");
    let del_t = ok(&d, &["delete", "--transcript", "t-1004", "--dry-run"]);
    assert_eq!(
        (del_t["op"].as_str(), del_t["transcripts"].as_u64()),
        (Some("delete-transcript"), Some(1))
    );
    let ret = ok(&d, &["retention", "--older-than", "1d", "--dry-run"]);
    assert_eq!(
        (ret["op"].as_str(), ret["held"].as_u64()),
        (Some("retention"), Some(1))
    );
    // Zero needs no confirmation to be previewed.
    let zero = ok(
        &d,
        &["retention", "--older-than", "0d", "--delete", "--dry-run"],
    );
    assert_eq!(zero["held"], 1);

    // A dry run the hold would refuse says so, and fails as the deletion would.
    let o = run(&d, &["delete", "--transcript", "t-1001", "--dry-run"]);
    assert!(!o.status.success());
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["refused_by_hold"], true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("would be refused: a legal hold"), "{err}");
    // Unknown visitors fail as the operation would, naming no address.
    let o = run(
        &d,
        &["redact", "--email", "nobody@example.org", "--dry-run"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("visitor not found"),
        "{err}"
    );
    assert!(!err.contains("nobody@"), "{err}");

    // Not a byte changed, not even a modification time.
    assert_eq!(snapshot(&d), before);

    // What the dry runs said is what the operations do.
    same_counts(
        &erase,
        &ok(&d, &["redact", "--email", MARIA, "--reference", "DSR-1"]),
    );
    same_counts(
        &del_t,
        &ok(
            &d,
            &["delete", "--transcript", "t-1004", "--reference", "DEL-1"],
        ),
    );
    let ret = ok(&d, &["retention", "--older-than", "1d", "--dry-run"]);
    same_counts(&ret, &ok(&d, &["retention", "--older-than", "1d"]));
}

#[test]
fn a_retention_period_of_zero_needs_confirming() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    assert!(
        run(&d, &["import", sample_path().to_str().unwrap()])
            .status
            .success()
    );
    let before = snapshot(&d);
    for args in [
        &["retention", "--older-than", "0d"][..],
        &["retention", "--older-than", "0s", "--delete"][..],
    ] {
        let o = run(&d, args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--confirm-zero"), "{err}");
    }
    assert_eq!(snapshot(&d), before);
    let r = ok(&d, &["retention", "--older-than", "0d", "--confirm-zero"]);
    assert_eq!(r["op"], "retention");
    assert!(r["transcripts"].as_u64().unwrap() > 0);
}
