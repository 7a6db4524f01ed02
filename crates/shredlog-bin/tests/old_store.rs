//! A store written by the `shredlog` command before record-location files
//! (format 2 with a version-3 checkpoint; `crates/shredlog/tests/fixtures/
//! v2-cli`, see its README) prints exactly what the build that wrote it
//! printed: read-only (writing nothing), and after the first writable open
//! has written the location file of its sealed segment.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value, json};

fn fixture_named(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shredlog/tests/fixtures")
        .join(name)
}

fn copy_store_of(fixture: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture.join("store")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

/// A copy of fixture `name`'s store, checked to print its `expected.json`
/// read-only without writing a byte; returns that expectation and the copy.
fn read_only_as_written(name: &str) -> (Value, tempfile::TempDir) {
    let fixture = fixture_named(name);
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixture.join("expected.json")).unwrap()).unwrap();
    let dir = copy_store_of(&fixture);
    let before = files(dir.path());
    assert_eq!(printed(dir.path(), &expected), expected);
    assert!(files(dir.path()) == before, "a read-only command wrote");
    (expected, dir)
}

/// The key-encryption key of the `v3-kek` fixture (`5e` × 32).
const V3_KEK: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

fn run(data: &Path, args: &[&str]) -> Value {
    // The v3 fixture's keyring is wrapped; the others ignore a KEK they do
    // not need only if none is given, so give it only there.
    let wrapped = std::fs::read(data.join("keyring")).is_ok_and(|k| k.get(12) == Some(&1));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shredlog"));
    cmd.arg("--data")
        .arg(data)
        .args(args)
        .env_remove("SHREDLOG_CONFIG")
        .env_remove("SHREDLOG_KEK")
        .env_remove("SHREDLOG_KEY_FILE");
    if wrapped {
        cmd.env("SHREDLOG_KEK", V3_KEK);
    }
    let out = cmd.output().unwrap();
    let status = out.status.code().unwrap_or(-1);
    let stdout = if status == 0 {
        String::from_utf8(out.stdout).unwrap()
    } else {
        String::new()
    };
    json!({"status": status, "stdout": stdout})
}

/// What this build prints, in the shape of `expected.json`.
fn printed(data: &Path, expected: &Value) -> Value {
    let mut shows = Map::new();
    for t in expected["show"].as_object().unwrap().keys() {
        shows.insert(t.clone(), run(data, &["show", t]));
    }
    let mut lists = Map::new();
    for e in expected["transcripts"].as_object().unwrap().keys() {
        lists.insert(e.clone(), run(data, &["transcripts", "--email", e]));
    }
    json!({"show": shows, "transcripts": lists, "stats": run(data, &["stats"])})
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `expected` with the `stats` keyring line of this store's keyring once
/// rewritten in format 4, checked to be smaller than the old one.
fn upgraded(expected: &Value) -> Value {
    let mut want = expected.clone();
    let old = expected["stats"]["stdout"].as_str().unwrap();
    let line = |s: &str| -> (u64, String) {
        let l = s
            .lines()
            .find(|l| l.starts_with("keyring:"))
            .unwrap()
            .to_owned();
        let bytes = l.split_whitespace().nth(1).unwrap().parse().unwrap();
        (bytes, l)
    };
    let (old_bytes, old_line) = line(old);
    assert!(old_line.contains("30 slots used"), "{old_line}");
    // 30 slots of 512 bytes: 12 transcripts (2 cells each) and 11 PII keys
    // (1 cell each) of 64 bytes, packed from byte 1024 and rounded up to a
    // whole sector; then the directory's smallest table (8 sectors, a
    // header cell and 7 slot cells each) holding the 7 visitors (1 cell
    // each).
    let keys = (2 * 12 + 11_u64).div_ceil(8) * 8;
    let new_bytes = 1024 + keys * 64 + 8 * 512;
    let new_line = format!(
        "keyring:          {new_bytes} bytes, 42 cells used, {} free",
        (keys - 35) + (8 * 7 - 7)
    );
    assert!(new_bytes < old_bytes / 4);
    want["stats"]["stdout"] = old.replace(&old_line, &new_line).into();
    want
}

#[test]
fn a_store_written_before_location_files_reads_as_its_writer_read_it() {
    // Read-only commands: the same output, and not a byte written (the
    // location file of segment 1 is built in memory).
    let (expected, dir) = read_only_as_written("v2-cli");
    assert_eq!(run(dir.path(), &["verify"])["status"], 0);
    // The first writable open writes it (and a version-4 checkpoint).
    let store = shredlog::Store::open(dir.path(), shredlog::Options::default()).unwrap();
    assert!(
        store.recovery_report().checkpoint_used,
        "a version-3 checkpoint is read"
    );
    store.close().unwrap();
    assert!(dir.path().join("000000000001.idx").exists());
    assert!(
        !dir.path().join("000000000002.idx").exists(),
        "the last segment has none"
    );
    // It also rewrote the keyring in format 4 (64-byte cells): every
    // answer is the same but the keyring line of `stats`, which is smaller.
    let expected = upgraded(&expected);
    assert_eq!(printed(dir.path(), &expected), expected);
    // Without the checkpoint, only the last segment is scanned.
    std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
    assert_eq!(printed(dir.path(), &expected), expected);
    let store = shredlog::Store::open(dir.path(), shredlog::Options::default()).unwrap();
    let scanned = store.recovery_report().records_scanned;
    let total = store.stats().unwrap().messages;
    assert!(
        scanned > 0 && scanned < total,
        "{scanned} of {total} scanned"
    );
    assert!(store.verify().unwrap().is_ok());
}

/// A store written by the `shredlog` command in keyring format 3, wrapped
/// under a KEK (`crates/shredlog/tests/fixtures/v3-kek`, see its README):
/// read-only it prints what its writer printed and writes nothing; the
/// first writable open rewrites the keyring in format 4 (its directory
/// entries moved into the directory's table), after which every answer is
/// the same but the keyring line of `stats`, lookups by every spelling
/// included, and the store verifies.
#[test]
fn a_format_3_keyring_reads_as_its_writer_read_it_and_is_rewritten_in_format_4() {
    let keyring_version = |d: &Path| {
        let k = std::fs::read(d.join("keyring")).unwrap();
        u16::from_le_bytes([k[8], k[9]])
    };
    let (expected, dir) = read_only_as_written("v3-kek");
    assert_eq!(keyring_version(dir.path()), 3);
    // The first writable command rewrites it.
    assert_eq!(run(dir.path(), &["verify"])["status"], 0);
    let kek = shredlog::KeyEncryptionKey::from_hex(V3_KEK).unwrap();
    let store = shredlog::Store::open(
        dir.path(),
        shredlog::Options {
            kek: Some(kek),
            ..shredlog::Options::default()
        },
    )
    .unwrap();
    assert!(store.verify().unwrap().is_ok());
    store.close().unwrap();
    assert_eq!(keyring_version(dir.path()), 4);
    let now = printed(dir.path(), &expected);
    let without_keyring_line = |v: &Value| -> String {
        v["stats"]["stdout"]
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("keyring:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(now["show"], expected["show"]);
    assert_eq!(now["transcripts"], expected["transcripts"]);
    assert_eq!(without_keyring_line(&now), without_keyring_line(&expected));
    assert_eq!(now["stats"]["status"], 0);
    // The entries (emails) are sealed under the KEK: no address in the clear.
    let k = std::fs::read(dir.path().join("keyring")).unwrap();
    assert!(!k.windows(9).any(|w| w == b"@example."));
}

/// A store written by the release command of an earlier build of this
/// format (keyring format 4, plaintext; `fixtures/v4-plain`, see its
/// README): this build prints what that one printed, read-only (writing
/// nothing) and after a writable open and close, lookups by every spelling
/// and a legal hold by caller id included, and the store verifies.
#[test]
fn a_format_4_store_reads_as_its_writer_read_it() {
    let (expected, dir) = read_only_as_written("v4-plain");
    // Its record-location files are of version 1 (no finder blocks, docs/
    // FORMAT.md §7a.1): read as they are, never rewritten.
    let idx = |d: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        files(d)
            .into_iter()
            .filter(|(n, _)| n.ends_with(".idx"))
            .collect()
    };
    let old_idx = idx(dir.path());
    assert!(!old_idx.is_empty());
    assert!(old_idx.iter().all(|(_, b)| b[8..10] == [1, 0]));
    assert_eq!(run(dir.path(), &["verify"])["status"], 0);
    let store = shredlog::Store::open(dir.path(), shredlog::Options::default()).unwrap();
    assert!(store.verify().unwrap().is_ok());
    store.close().unwrap();
    assert_eq!(printed(dir.path(), &expected), expected);
    let now = idx(dir.path());
    for old in &old_idx {
        assert!(now.contains(old), "{} was rewritten", old.0);
    }
    // The hold placed on t-1005 still holds: deleting it is refused.
    let held = run(dir.path(), &["delete", "--transcript", "t-1005"]);
    assert_ne!(held["status"], 0, "a held transcript was deleted");
    assert_eq!(
        run(dir.path(), &["show", "t-1005"]),
        expected["show"]["t-1005"]
    );
}
