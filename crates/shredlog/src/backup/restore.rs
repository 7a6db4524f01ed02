//! Restoring a backup point into a new directory, erasures first.
//!
//! Order (each step durable before the next), so that a crash at any moment
//! leaves either no store (no keyring) or one that forgets everyone erased
//! after the point before it serves a read:
//! 1. every object checked and the segments written;
//! 2. the audit log written, then the journal's records after the point
//!    appended to it as audit entries (a later open finishes them, as it
//!    finishes any logged erasure: docs/FORMAT.md §8.2);
//! 3. the policy;
//! 4. the keyring, with the slots those records destroyed already zeroed in
//!    memory — the only file whose presence makes the directory a store;
//! 5. a writing open of the restored store, which applies the appended
//!    entries by the store's own rules and syncs.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::journal::{Journal, Record};
use super::manifest::{Manifest, fetch, fetch_sealed, manifest_name};
use super::run::manifests_unverified;
use super::{BackupKey, Target, wipe};
use crate::config::Options;
use crate::error::{Error, IoContext, Result};
use crate::ids::hex;
use crate::keyring::rekey::Image;
use crate::message::Timestamp;
use crate::shred::{AUDIT_FILE, AuditEntry, AuditLog, AuditMarks, AuditMode, Intent};
use crate::store::Store;

/// Which point to restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Point {
    /// The newest point.
    Latest,
    /// The oldest point.
    Oldest,
    /// The point with this id.
    Id(String),
}

impl std::str::FromStr for Point {
    type Err = Error;

    fn from_str(s: &str) -> Result<Point> {
        Ok(match s {
            "latest" => Point::Latest,
            "oldest" => Point::Oldest,
            "" => {
                return Err(Error::invalid(
                    "a point is `latest`, `oldest` or a point id",
                ));
            }
            id => Point::Id(id.to_owned()),
        })
    }
}

/// What a restore did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The point restored.
    pub point: String,
    /// Bytes written.
    pub bytes: u64,
    /// Erasure journal records after the point, applied before the store
    /// served a read.
    pub erasures_applied: usize,
    /// Keyring slots they zeroed in the copy.
    pub slots_wiped: usize,
}

/// Restores a backup point into `dir` (which must hold no store; it is
/// created if missing), re-applying every erasure recorded in the erasure
/// journal after the point before the store is ever opened for reading.
/// Every object is checked against the manifest's checksums, and the
/// manifest and sealed copies against the backup key: a missing or altered
/// object is refused, naming it. `options` open the restored store (its
/// key-encryption key, if the keyring was wrapped).
///
/// # Errors
/// [`Error::BackupDamaged`] naming the object; [`Error::BackupKey`];
/// [`Error::Invalid`] if `dir` is not empty or there is no such point;
/// [`Error::Target`]; [`Error::Io`].
pub fn restore(
    target: &dyn Target,
    key: &BackupKey,
    point: &Point,
    dir: &Path,
    options: Options,
) -> Result<RestoreReport> {
    std::fs::create_dir_all(dir).at(dir)?;
    // Only into an empty directory: a failed restore removes what is in it.
    if std::fs::read_dir(dir).at(dir)?.next().is_some() {
        return Err(Error::invalid(format!(
            "{} is not empty; restore into a new, empty directory",
            dir.display()
        )));
    }
    let all = manifests_unverified(target)?;
    let chosen = match point {
        Point::Latest => all.last(),
        Point::Oldest => all.first(),
        Point::Id(id) => all.iter().find(|(_, m)| &m.point == id),
    };
    let Some((name, _)) = chosen else {
        return Err(Error::invalid(format!(
            "{} holds no such backup point (see `shredlog backup --list`)",
            target.describe()
        )));
    };
    let bytes = target.get(name)?.ok_or_else(|| Error::BackupDamaged {
        object: name.clone(),
        reason: "is missing".into(),
    })?;
    let m = Manifest::parse(name, &bytes, key)?;
    let through = all.iter().map(|(_, m)| m.audit_seq).max().unwrap_or(0);
    let journal = Journal::list(target)?;
    let records = journal.records_after(target, m.audit_seq, through.max(journal.end()))?;
    let result = write_store(target, key, &m, &records, dir, options);
    if result.is_err() {
        remove_partial(dir);
    }
    result
}

/// Removes what a failed restore wrote into the directory, which was empty
/// (the keyring first: without it the directory is no store).
fn remove_partial(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("keyring"));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn write_file(dir: &Path, name: &str, parts: &[&[u8]], mode: u32) -> Result<()> {
    let path = dir.join(name);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .at(&path)?;
    for p in parts {
        f.write_all(p).at(&path)?;
    }
    f.sync_all().at(&path)
}

fn write_store(
    target: &dyn Target,
    key: &BackupKey,
    m: &Manifest,
    records: &[Record],
    dir: &Path,
    options: Options,
) -> Result<RestoreReport> {
    let mut report = RestoreReport {
        point: m.point.clone(),
        bytes: 0,
        erasures_applied: records.len(),
        slots_wiped: 0,
    };
    // The sealed copies first: a wrong key fails before any download.
    let keyring = fetch_sealed(target, key, "keyring", &m.point, &m.keyring)?;
    let audit = fetch_sealed(target, key, "audit", &m.point, &m.audit)?;
    let policy = match &m.policy {
        Some(r) => Some(fetch_sealed(target, key, "policy", &m.point, r)?),
        None => None,
    };
    // Step 1: the segments.
    for f in &m.files {
        let path = dir.join(&f.name);
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        let mut len = 0u64;
        for c in &f.chunks {
            let b = fetch(target, c)?;
            out.write_all(&b).at(&path)?;
            len += b.len() as u64;
        }
        if len != f.len {
            return Err(Error::BackupDamaged {
                object: manifest_name(&m.point),
                reason: format!(
                    "lists pieces of {} that do not add up to its length",
                    f.name
                ),
            });
        }
        out.sync_all().at(&path)?;
        report.bytes += len;
    }
    // Step 2: the audit log, and the journal's records after the point.
    write_file(dir, AUDIT_FILE, &[&audit], 0o666)?;
    crate::fsutil::sync_dir(dir)?;
    if !records.is_empty() {
        let mode = AuditMode {
            read_only: false,
            salvage: false,
        };
        let (mut log, _, _) = AuditLog::open(dir, AuditMarks::default(), mode)?;
        for r in records {
            log.append(entry_of(r))?;
        }
    }
    // Step 3: the policy.
    if let Some(p) = &policy {
        write_file(dir, crate::policy::POLICY_FILE, &[p], 0o666)?;
    }
    // Step 4: the keyring, with the destroyed slots already zeroed.
    let what = Path::new(&m.keyring.object);
    let kek = options.kek.as_ref().map(|k| &k.0);
    let mut image = Image::parse(keyring, kek, what)?;
    report.slots_wiped = wipe::apply(&mut image, what, records)?;
    write_file(dir, "keyring", &[image.bytes()], 0o600)?;
    crate::fsutil::sync_dir(dir)?;
    drop(image);
    // Step 5: a writing open finishes the appended entries by the store's
    // own rules (and cuts nothing: every file ends with whole records).
    let mut options = options;
    options.read_only = false;
    options.salvage = false;
    options.create = false;
    Store::open(dir, options)?.close()?;
    report.bytes += audit.len() as u64;
    Ok(report)
}

/// The audit entry a restore logs for a journal record: the same intent, so
/// that open finishes it; no caller ids or references (the journal has none).
fn entry_of(r: &Record) -> AuditEntry {
    let (op, subject) = match &r.intent {
        Intent::EraseVisitor { visitor } => ("erasure", format!("visitor:{}", hex(&visitor.0))),
        Intent::DeleteVisitor { visitor } => {
            ("delete-visitor", format!("visitor:{}", hex(&visitor.0)))
        }
        Intent::DeleteTranscript { .. } => ("delete-transcript", "store".to_owned()),
        Intent::Retention { .. } => ("retention", "store".to_owned()),
        Intent::Rewrite { .. } => ("rewrite", "store".to_owned()),
        Intent::Hold { .. } => ("hold", "store".to_owned()),
        Intent::Restriction { .. } => ("restriction", "store".to_owned()),
    };
    AuditEntry {
        seq: 0,
        at: Timestamp::now().as_str().to_owned(),
        op: op.to_owned(),
        subject,
        transcripts: 0,
        keys_destroyed: 0,
        reference: format!("restore: backup erasure journal entry {}", r.seq),
        detail: Some(format!("from-backup-journal:{}", r.seq)),
        intent: Some(r.intent.clone()),
    }
}
