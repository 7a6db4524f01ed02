//! Backups that forget (issue 17), against a directory and against a real
//! S3-compatible server (`moto_server`, started here on the loopback
//! address; `.ci/run` installs it). Each scenario: a backup taken while a
//! writer and an eraser run; a visitor erased after it; a restore into a
//! fresh directory that verifies, holds every message acknowledged before
//! the backup, reads `<redacted>` for the erased visitor and holds none of
//! their strings or key bytes; `apply-erasures`, after which no object at
//! the destination holds those key bytes either (not even inside the sealed
//! copies: a restore without the journal finds none); a tampered or missing
//! object refused by name; a backup killed part way leaving earlier points
//! restorable.

// The engine's test helpers (here: its reader of the keyring's cells).
#[path = "../../shredlog/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shredlog::backup::{self, BackupKey, BackupOptions, DirTarget, Point, Target};
use shredlog::{Error, Options, REDACTED, Store, interchange};

const KEY_HEX: &str = "5b1d0c7e9f2a4b6c8d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e";

fn key() -> BackupKey {
    BackupKey::from_hex(KEY_HEX).unwrap()
}

fn email(v: u64) -> String {
    format!("visitor{v}.zq{v}x@example.com")
}

fn phone(v: u64) -> String {
    format!("+44 20 7946 {:04}", 1000 + v)
}

fn line(v: u64, t: u64, i: u64) -> String {
    let ts =
        shredlog::Timestamp::from_unix_millis(1_700_000_000_000 + (t * 1000 + i) as i64 * 1000);
    format!(
        r#"{{"transcript":"t-{v}-{t}","id":"m{i}","ts":"{}","from":"visitor","visitor":{{"email":"{}","name":"Name{v}qq","phone":"{}"}},"kind":"text","text":"message {i} of t{t}: call me at {} or mail {}"}}"#,
        ts.as_str(),
        email(v),
        phone(v),
        phone(v),
        email(v)
    )
}

fn append(store: &Store, v: u64, t: u64, i: u64) {
    store
        .append(&interchange::parse_line(&line(v, t, i)).unwrap())
        .unwrap();
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out
}

/// The PII keys of a visitor, read from a plaintext keyring as
/// docs/FORMAT.md §6 lays it out (the engine's test reader of format-3 cells).
fn pii_keys_of(keyring: &[u8], email: &str) -> Vec<Vec<u8>> {
    let raw = common::keyring_slots(keyring);
    let vid = raw
        .iter()
        .find_map(|s| {
            s.visitor()
                .filter(|v| v.1 == email.as_bytes())
                .map(|v| v.0.to_vec())
        })
        .expect("visitor in the keyring");
    let slots: std::collections::HashMap<usize, (u8, Vec<u8>)> = raw
        .into_iter()
        .map(|s| (s.index, (s.kind, s.payload)))
        .collect();
    let mut keys = Vec::new();
    for (kind, p) in slots.values() {
        if *kind == 1 && p[16..32] == vid[..] {
            let tid = &p[0..16];
            let at = u32::from_le_bytes(p[64..68].try_into().unwrap()) as usize;
            let (pk, pp) = &slots[&at];
            assert_eq!(*pk, 2);
            assert_eq!(&pp[0..16], tid);
            keys.push(pp[16..48].to_vec());
        }
    }
    assert!(!keys.is_empty());
    keys
}

/// A running `moto_server` on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Option<Moto> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(60)
            || moto.child.try_wait().ok().flatten().is_some()
        {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(moto)
}

fn s3_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

fn create_bucket(endpoint: &str, bucket: &str) {
    ureq::put(&format!("{endpoint}/{bucket}"))
        .call()
        .expect("create the bucket");
}

fn every_object(target: &dyn Target) -> Vec<(String, Vec<u8>)> {
    target
        .list("")
        .unwrap()
        .into_iter()
        .map(|n| {
            let b = target.get(&n).unwrap().unwrap();
            (n, b)
        })
        .collect()
}

/// The whole scenario against one destination. `dest` is what the CLI is
/// given (a directory or an s3:// URL).
fn scenario(dest: &str, env: &[(&'static str, String)]) {
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let target = shredlog_backup::open_target_with(dest, &vars).unwrap();
    let target = &*target;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let options = Options {
        segment_size: 1 << 16,
        ..Options::default()
    };
    let store = Arc::new(Store::open(&data, options.clone()).unwrap());
    // Visitors 1..=20 with 3 transcripts of 10 messages; visitor 7 is the
    // one erased after the backup.
    for v in 1..=20 {
        for t in 0..3 {
            for i in 0..10 {
                append(&store, v, t, i);
            }
        }
    }
    let x = 7u64;
    let x_keys = pii_keys_of(&std::fs::read(data.join("keyring")).unwrap(), &email(x));
    // A writer (new transcripts of visitors 100..) and an eraser (visitors
    // 11..=20) run while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(u64, u64, u64)>>> = Arc::default();
    let writer = {
        let (store, stop, acked) = (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&acked));
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 5000 {
                let v = 100 + n % 13;
                append(&store, v, n / 13, n % 7);
                acked.lock().unwrap().push((v, n / 13, n % 7));
                n += 1;
            }
        })
    };
    let eraser = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        std::thread::spawn(move || {
            for v in 11..=20 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                store.redact_visitor(&email(v), "T-ERASE").unwrap();
            }
        })
    };
    while acked.lock().unwrap().len() < 50 {
        std::thread::yield_now();
    }
    let before: Vec<(u64, u64, u64)> = acked.lock().unwrap().clone();
    let first = store
        .backup(target, &key(), &BackupOptions::default())
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    eraser.join().unwrap();
    // An erasure between the points, then a second, incremental point: its
    // new pieces are only the changed tail.
    store.redact_visitor(&email(8), "T-8").unwrap();
    for i in 10..12 {
        append(&store, 1, 0, i);
    }
    let second = store
        .backup(target, &key(), &BackupOptions::default())
        .unwrap();
    assert!(
        second.objects_reused > 0,
        "the second backup reused nothing: {second:?}"
    );
    // Visitor x erased after both backups; the journal learns of it.
    store.redact_visitor(&email(x), "T-7").unwrap();
    assert_eq!(store.sync_backup_journal(target).unwrap(), 1);

    // Restore the first point (CLI) into a fresh directory.
    let restored = tmp.path().join("restored");
    let bin = env!("CARGO_BIN_EXE_shredlog");
    let out = Command::new(bin)
        .arg("--data")
        .arg(&restored)
        .args(["restore", "--from", dest, "--point", &first.point])
        .env("SHREDLOG_BACKUP_KEY", KEY_HEX)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin)
        .arg("--data")
        .arg(&restored)
        .arg("verify")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r = Store::open(
        &restored,
        Options {
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    for v in 1..=10 {
        for t in 0..3 {
            let msgs = r.transcript(&format!("t-{v}-{t}")).unwrap();
            assert_eq!(msgs.len(), 10, "t-{v}-{t}");
        }
    }
    let mut by_t: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
    for (v, t, i) in &before {
        by_t.entry((*v, *t)).or_default().push(*i);
    }
    for (v, t) in by_t.keys() {
        let msgs = r.transcript(&format!("t-{v}-{t}")).unwrap();
        for m in &msgs {
            assert!(m.id.is_some());
        }
        let ids: Vec<String> = msgs.iter().filter_map(|m| m.id.clone()).collect();
        for (vv, tt, i) in &before {
            if (vv, tt) == (v, t) {
                assert!(
                    ids.contains(&format!("m{i}")),
                    "acknowledged message m{i} of t-{v}-{t} lost"
                );
            }
        }
    }
    let xs = interchange::to_line(&r.transcript(&format!("t-{x}-0")).unwrap()[0]);
    assert!(xs.contains(REDACTED), "{xs}");
    assert!(!xs.contains(&email(x)));
    assert!(
        r.transcripts_by_email(&email(x), None, None)
            .unwrap_or_default()
            .is_empty()
    );
    drop(r);
    let strings = [email(x), phone(x), format!("Name{x}qq")];
    for (name, bytes) in dir_bytes(&restored) {
        for s in &strings {
            assert!(!contains(&bytes, s.as_bytes()), "{name} holds {s}");
        }
        for k in &x_keys {
            assert!(
                !contains(&bytes, k),
                "{name} holds a PII key of the erased visitor"
            );
        }
    }

    // apply-erasures: no object holds the keys, not even sealed.
    let out = Command::new(bin)
        .args(["backup", "apply-erasures", "--from", dest])
        .env("SHREDLOG_BACKUP_KEY", KEY_HEX)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "apply-erasures: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, bytes) in every_object(target) {
        for k in &x_keys {
            assert!(
                !contains(&bytes, k),
                "object {name} holds a PII key of the erased visitor"
            );
        }
    }
    // Without the journal, the keyring copies alone must have forgotten.
    let journal: Vec<String> = target.list("journal/").unwrap();
    let saved: Vec<(String, Vec<u8>)> = journal
        .iter()
        .map(|n| (n.clone(), target.get(n).unwrap().unwrap()))
        .collect();
    for n in &journal {
        target.delete(n).unwrap();
    }
    let bare = tmp.path().join("bare");
    let rep = backup::restore(target, &key(), &Point::Latest, &bare, Options::default()).unwrap();
    assert_eq!(rep.erasures_applied, 0);
    for (name, bytes) in dir_bytes(&bare) {
        for k in &x_keys {
            assert!(
                !contains(&bytes, k),
                "{name} (restored without the journal) holds an erased key"
            );
        }
        assert!(
            !contains(&bytes, email(x).as_bytes()),
            "{name} holds the erased email"
        );
    }
    for (n, b) in &saved {
        target.put(n, b).unwrap();
    }

    // A deleted journal object that a later point's range needs is noticed.
    let oldest = backup::list_points(target).unwrap()[0].audit_seq;
    let needed = format!("journal/{:020}-", oldest + 1);
    let (n, b) = saved.iter().find(|(n, _)| n.starts_with(&needed)).unwrap();
    target.delete(n).unwrap();
    let e = backup::restore(
        target,
        &key(),
        &Point::Oldest,
        &tmp.path().join("j"),
        Options::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::BackupDamaged { .. }), "{e}");
    target.put(n, b).unwrap();

    // One object altered, then missing: restore refuses, naming it, and
    // leaves no store behind.
    let oldest_id = backup::list_points(target).unwrap()[0].id.clone();
    let text = String::from_utf8(
        target
            .get(&format!("points/{oldest_id}/manifest"))
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let at = text.find("chunks/").unwrap();
    let chunk = text[at..at + 7 + 64].to_owned();
    let good = target.get(&chunk).unwrap().unwrap();
    let mut bad = good.clone();
    bad[100] ^= 1;
    target.put(&chunk, &bad).unwrap();
    for (i, what) in ["altered", "missing"].iter().enumerate() {
        if i == 1 {
            target.delete(&chunk).unwrap();
        }
        let into = tmp.path().join(format!("refused-{what}"));
        let out = Command::new(bin)
            .arg("--data")
            .arg(&into)
            .args(["restore", "--from", dest, "--point", "oldest"])
            .env("SHREDLOG_BACKUP_KEY", KEY_HEX)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "a restore from a backup with a {what} object succeeded"
        );
        assert!(
            err.contains(&chunk),
            "the error does not name {chunk}: {err}"
        );
        assert!(!into.join("keyring").exists());
    }
    target.put(&chunk, &good).unwrap();
    // A directory that holds anything is refused, and what it holds is left
    // alone (a failed restore removes what is in its directory).
    let busy = tmp.path().join("not-empty");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let out = Command::new(bin)
        .arg("--data")
        .arg(&busy)
        .args(["restore", "--from", dest, "--point", "oldest"])
        .env("SHREDLOG_BACKUP_KEY", KEY_HEX)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(busy.join("notes.txt")).unwrap(), b"mine");
    assert!(!busy.join("keyring").exists());
    // The manifest altered: refused, naming it.
    let manifest = format!("points/{}/manifest", first.point);
    let m = target.get(&manifest).unwrap().unwrap();
    let mut m2 = m.clone();
    let at = m2.iter().position(|&b| b == b'"').unwrap() + 1;
    m2[at] ^= 0x20;
    target.put(&manifest, &m2).unwrap();
    let e = backup::restore(
        target,
        &key(),
        &Point::Id(first.point.clone()),
        &tmp.path().join("m"),
        Options::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains(&manifest), "{e}");
    target.put(&manifest, &m).unwrap();

    // Killed during a backup: every earlier point still restores.
    let points_before = backup::list_points(target).unwrap().len();
    drop(store);
    for (i, fp) in ["backup.chunk=abort@1", "backup.manifest=abort"]
        .iter()
        .enumerate()
    {
        let out = Command::new(bin)
            .arg("--data")
            .arg(&data)
            .args(["backup", "--to", dest])
            .env("SHREDLOG_BACKUP_KEY", KEY_HEX)
            .env("SHREDLOG_FAILPOINTS", fp)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{fp}: the backup was not killed");
        assert_eq!(
            backup::list_points(target).unwrap().len(),
            points_before,
            "{fp}"
        );
        for p in backup::list_points(target).unwrap() {
            let into = tmp.path().join(format!("after-kill-{i}-{}", p.id));
            backup::restore(
                target,
                &key(),
                &Point::Id(p.id.clone()),
                &into,
                Options::default(),
            )
            .unwrap_or_else(|e| panic!("{fp}: point {} does not restore: {e}", p.id));
        }
    }
    // Real SIGKILLs at varying moments of a backup (wherever it lands).
    for delay_ms in [0u64, 2, 10, 40] {
        let mut child = Command::new(bin)
            .arg("--data")
            .arg(&data)
            .args(["backup", "--to", dest])
            .env("SHREDLOG_BACKUP_KEY", KEY_HEX)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    for p in backup::list_points(target).unwrap() {
        let into = tmp.path().join(format!("after-sigkill-{}", p.id));
        backup::restore(
            target,
            &key(),
            &Point::Id(p.id.clone()),
            &into,
            Options::default(),
        )
        .unwrap_or_else(|e| panic!("after SIGKILL: point {} does not restore: {e}", p.id));
    }
    // Retention: keep 1 point; the rest and their unneeded pieces go, and
    // the kept one still restores.
    let r = backup::prune(target, &"1".parse().unwrap(), i64::MAX).unwrap();
    assert!(!r.points.is_empty());
    assert_eq!(backup::list_points(target).unwrap().len(), 1);
    backup::restore(
        target,
        &key(),
        &Point::Latest,
        &tmp.path().join("kept"),
        Options::default(),
    )
    .unwrap();
    // Rotating the backup key re-seals the kept point.
    let new = BackupKey::from_hex(&"77".repeat(32)).unwrap();
    assert_eq!(backup::rotate_backup_key(target, &key(), &new).unwrap(), 1);
    let e = backup::restore(
        target,
        &key(),
        &Point::Latest,
        &tmp.path().join("oldkey"),
        Options::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::BackupDamaged { .. }), "{e}");
    backup::restore(
        target,
        &new,
        &Point::Latest,
        &tmp.path().join("newkey"),
        Options::default(),
    )
    .unwrap();
}

#[test]
fn backup_to_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dest: PathBuf = tmp.path().join("backups");
    scenario(dest.to_str().unwrap(), &[]);
    // DirTarget lists nothing of writes in progress.
    assert!(
        DirTarget::new(&dest)
            .list("")
            .unwrap()
            .iter()
            .all(|n| !n.contains(".tmp"))
    );
}

#[test]
fn backup_to_s3() {
    let Some(moto) = start_moto() else {
        eprintln!(
            "\n\n*** SKIPPED backup_to_s3: moto_server could not be started (pip install 'moto[server]'; .ci/run installs it) ***\n\n"
        );
        assert!(
            std::env::var("CI").is_err(),
            "CI must run the S3 test: moto_server is missing"
        );
        return;
    };
    create_bucket(&moto.endpoint, "shredlog-test");
    scenario("s3://shredlog-test/backups", &s3_env(&moto.endpoint));
}

#[test]
fn backup_refuses_without_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    drop(Store::open(&data, Options::default()).unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_shredlog"))
        .arg("--data")
        .arg(&data)
        .args(["backup", "--to"])
        .arg(tmp.path().join("b"))
        .env_remove("SHREDLOG_BACKUP_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("backup key"));
    assert!(!tmp.path().join("b").exists());
}

/// The CLI with a `[backup]` table: an erasure is recorded at the
/// destination when it is made, so a restore from a point taken before it
/// forgets the visitor without another backup; a destination that holds
/// another store's backups is refused, and the error says the erasure is
/// done all the same.
#[test]
fn cli_erasures_reach_the_configured_destination_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_shredlog");
    let data = tmp.path().join("data");
    let dest = tmp.path().join("dest");
    let config = tmp.path().join("shredlog.toml");
    std::fs::write(&config, format!("[backup]\nto = \"{}\"\n", dest.display())).unwrap();
    {
        let store = Store::open(&data, Options::default()).unwrap();
        for v in 1..=3 {
            for i in 0..4 {
                append(&store, v, 0, i);
            }
        }
    }
    let shredlog = |args: &[&str], data: &Path| {
        Command::new(bin)
            .arg("--config")
            .arg(&config)
            .arg("--data")
            .arg(data)
            .args(args)
            .env("SHREDLOG_BACKUP_KEY", KEY_HEX)
            .output()
            .unwrap()
    };
    let dest_arg = dest.to_str().unwrap();
    let out = shredlog(&["backup", "--to", dest_arg], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = shredlog(
        &["redact", "--email", &email(2), "--reference", "T-9"],
        &data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("1 erasure record(s) added to the backup journal"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = tmp.path().join("restored");
    let out = shredlog(&["restore", "--from", dest_arg], &restored);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = Store::open(
        &restored,
        Options {
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert!(
        r.transcripts_by_email(&email(2), None, None)
            .unwrap()
            .is_empty()
    );
    let msgs = r.transcript("t-2-0").unwrap();
    assert_eq!(msgs.len(), 4);
    assert!(!format!("{msgs:?}").contains(&email(2)));
    assert_eq!(
        r.transcripts_by_email(&email(1), None, None).unwrap().len(),
        1
    );
    drop(r);
    for (name, bytes) in dir_bytes(&restored) {
        assert!(
            !contains(&bytes, email(2).as_bytes()),
            "{name} holds the erased email"
        );
    }

    // Another store with the same configuration: its erasure is done, but
    // the destination (this store's backups) refuses its journal.
    let other = tmp.path().join("other");
    {
        let store = Store::open(&other, Options::default()).unwrap();
        append(&store, 7, 0, 0);
    }
    let out = shredlog(
        &["redact", "--email", &email(7), "--reference", "T-10"],
        &other,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("the operation is done"), "{err}");
    assert!(err.contains("another store"), "{err}");
    let o = Store::open(
        &other,
        Options {
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert!(
        o.transcripts_by_email(&email(7), None, None)
            .unwrap()
            .is_empty()
    );
}

/// The server: `POST /v1/backup` takes a point of the caller's tenant at
/// the `[backup]` destination, and the journal loop records an erasure at
/// the destination without a backup.
#[test]
fn server_backup_route_and_journal() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dest = tmp.path().join("dest");
    let config = tmp.path().join("shredlog.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n[backup]\nto = \"{}\"\njournal-interval = \"1s\"\n",
            dest.display()
        ),
    )
    .unwrap();
    let token = "a".repeat(40);
    let mut child = Command::new(env!("CARGO_BIN_EXE_shredlog"))
        .arg("--data")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("SHREDLOG_TOKEN", &token)
        .env("SHREDLOG_BACKUP_KEY", KEY_HEX)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut addr = String::new();
    for _ in 0..50 {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap() == 0 {
            break;
        }
        if let Some(a) = l.trim().strip_prefix("shredlog: listening on ") {
            addr = a.to_owned();
            break;
        }
    }
    assert!(!addr.is_empty(), "the server did not start");
    let auth = format!("Bearer {token}");
    let post = |path: &str, body: &str| {
        ureq::post(&format!("{addr}{path}"))
            .set("Authorization", &auth)
            .set("Content-Type", "application/json")
            .send_string(body)
            .map_err(|e| e.to_string())
    };
    for v in 1..=3 {
        post("/v1/messages", &line(v, 0, 0)).unwrap();
    }
    let r: serde_json::Value =
        serde_json::from_str(&post("/v1/backup", "").unwrap().into_string().unwrap()).unwrap();
    let point = r["point"].as_str().unwrap().to_owned();
    let target = DirTarget::new(dest.join("tenants/default"));
    assert_eq!(backup::list_points(&target).unwrap()[0].id, point);
    post(
        "/v1/visitors/erase",
        &format!(r#"{{"email":"{}","reference":"T-2"}}"#, email(2)),
    )
    .unwrap();
    // Within a few journal intervals the erasure is at the destination.
    let mut found = false;
    for _ in 0..600 {
        if !target.list("journal/").unwrap().is_empty() {
            found = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        found,
        "the erasure never reached the journal at the destination"
    );
    let restored = tmp.path().join("restored");
    let rep = backup::restore(
        &target,
        &key(),
        &Point::Latest,
        &restored,
        Options::default(),
    )
    .unwrap();
    assert_eq!(rep.erasures_applied, 1);
    for (name, bytes) in dir_bytes(&restored) {
        assert!(
            !contains(&bytes, email(2).as_bytes()),
            "{name} holds the erased email"
        );
    }
}
