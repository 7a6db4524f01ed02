//! Taking a backup point, listing the points, syncing the erasure journal.

use std::collections::HashSet;

use super::journal::Journal;
use super::manifest::{self, FileRef, MANIFEST_FORMAT, Manifest, ObjectRef, manifest_name};
use super::upkeep::{Keep, PruneReport, prune};
use super::{BackupKey, CHUNK, Target, Versioning, hex_bytes, sha256_hex};
use crate::error::{Error, Result};
use crate::keyring::rekey::Image;
use crate::message::Timestamp;
use crate::seal::random_array;
use crate::store::Store;

/// How to take a backup.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct BackupOptions {
    /// After the new point is written, delete the points this does not keep
    /// (and what only they needed). Default: keep every point.
    pub keep: Option<Keep>,
}

impl BackupOptions {
    /// Options that keep the points `keep` says.
    pub fn keeping(keep: Option<Keep>) -> BackupOptions {
        BackupOptions { keep }
    }
}

/// What a backup did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BackupReport {
    /// The new point's id.
    pub point: String,
    /// Bytes of the store the point holds (segments, keyring, audit log, policy).
    pub bytes: u64,
    /// Bytes uploaded (new segment pieces and the sealed copies).
    pub uploaded: u64,
    /// Objects uploaded.
    pub objects_uploaded: usize,
    /// Segment pieces already at the destination, not uploaded again.
    pub objects_reused: usize,
    /// Erasure journal records written.
    pub journal_records: usize,
    /// Whether the destination keeps old versions of objects (then deleting
    /// an object does not remove it: docs/BACKUP.md).
    pub versioning: Versioning,
    /// What retention removed (when asked to).
    pub pruned: Option<PruneReport>,
}

/// A backup point as listed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PointInfo {
    /// The point's id (sorts by time).
    pub id: String,
    /// When its snapshot was taken.
    pub created: Timestamp,
    /// The last audit entry it holds.
    pub audit_seq: u64,
    /// Erasure journal records up to this audit entry are wiped from its
    /// keyring copy.
    pub erasures_applied: u64,
    /// Bytes of the store it holds.
    pub bytes: u64,
}

/// A new point id: the time, then random hex (no personal data).
fn new_point_id(now: &Timestamp) -> Result<String> {
    let t: String = now
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let r: [u8; 3] = random_array()?;
    Ok(format!("{t}-{}", hex_bytes(&r)))
}

/// The manifests at the destination (unverified: listing needs no key).
pub(crate) fn manifests_unverified(target: &dyn Target) -> Result<Vec<(String, Manifest)>> {
    let mut out = Vec::new();
    for name in target.list("points/")? {
        if !name.ends_with("/manifest") {
            continue;
        }
        let Some(bytes) = target.get(&name)? else {
            continue;
        };
        let m = Manifest::parse_unverified(&name, &bytes)?;
        out.push((name, m));
    }
    out.sort_by(|a, b| (a.1.created_ms, &a.1.point).cmp(&(b.1.created_ms, &b.1.point)));
    Ok(out)
}

/// Lists the backup points at a destination, oldest first. Needs no key;
/// points cut short (no manifest) are not points and are not listed.
///
/// # Errors
/// [`Error::Target`]; [`Error::BackupDamaged`] naming a manifest that does
/// not parse.
pub fn list_points(target: &dyn Target) -> Result<Vec<PointInfo>> {
    Ok(manifests_unverified(target)?
        .into_iter()
        .map(|(_, m)| PointInfo {
            created: Timestamp::from_unix_millis(m.created_ms),
            audit_seq: m.audit_seq,
            erasures_applied: m.erasures_applied,
            bytes: m.files.iter().map(|f| f.len).sum::<u64>() + m.keyring.len + m.audit.len,
            id: m.point,
        })
        .collect())
}

/// Uploads an object unless it is known to be there.
fn put_once(
    target: &dyn Target,
    known: &mut HashSet<String>,
    bytes: &[u8],
    report: &mut BackupReport,
) -> Result<ObjectRef> {
    let sha256 = sha256_hex(bytes);
    let object = format!("chunks/{sha256}");
    if known.contains(&object) {
        report.objects_reused += 1;
    } else {
        target.put(&object, bytes)?;
        report.uploaded += bytes.len() as u64;
        report.objects_uploaded += 1;
        known.insert(object.clone());
    }
    Ok(ObjectRef {
        object,
        len: bytes.len() as u64,
        sha256,
    })
}

fn put_sealed(
    target: &dyn Target,
    key: &BackupKey,
    role: &str,
    point: &str,
    plain: &[u8],
    report: &mut BackupReport,
) -> Result<ObjectRef> {
    let r = manifest::put_sealed(target, key, role, point, plain)?;
    report.uploaded += r.len;
    report.objects_uploaded += 1;
    Ok(r)
}

impl Store {
    /// Takes a backup point at `target` (docs/BACKUP.md): hot — appends and
    /// erasures go on, waiting only while the small files are copied — and
    /// incremental — segment pieces already at the destination are not
    /// uploaded again. The keyring, audit log and policy copies are sealed
    /// under `key`; the erasure journal at the destination is brought up to
    /// date first; the point's manifest is written last, so a backup cut
    /// short leaves every earlier point as it was. Writes nothing to the
    /// store (a read-only store can be backed up).
    ///
    /// ```
    /// use shredlog::backup::{BackupKey, BackupOptions, DirTarget};
    /// # let dir = tempfile::tempdir()?;
    /// let store = shredlog::Store::open(dir.path().join("data"), shredlog::Options::default())?;
    /// let key = BackupKey::from_hex(&"cd".repeat(32))?;
    /// let dest = DirTarget::new(dir.path().join("backups"));
    /// let report = store.backup(&dest, &key, &BackupOptions::default())?;
    /// assert_eq!(shredlog::backup::list_points(&dest)?[0].id, report.point);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Target`] if the destination fails; [`Error::Invalid`] if it
    /// holds the backups of another store; [`Error::Io`].
    pub fn backup(
        &self,
        target: &dyn Target,
        key: &BackupKey,
        options: &BackupOptions,
    ) -> Result<BackupReport> {
        let existing = manifests_unverified(target)?;
        let mut known: HashSet<String> = target.list("chunks/")?.into_iter().collect();
        let now = Timestamp::now();
        let point = new_point_id(&now)?;
        let mut report = BackupReport {
            point: point.clone(),
            bytes: 0,
            uploaded: 0,
            objects_uploaded: 0,
            objects_reused: 0,
            journal_records: 0,
            versioning: target.versioning()?,
            pruned: None,
        };
        let snap = self.engine.snapshot()?;
        let keyring_id = {
            let what = self.engine.keyring_path.clone();
            let kek = self.engine.options.kek.as_ref().map(|k| &k.0);
            let image = Image::parse(snap.keyring.clone(), kek, &what)?;
            hex_bytes(&image.keyring_id())
        };
        if let Some((name, _)) = existing.iter().find(|(_, m)| m.keyring_id != keyring_id) {
            return Err(Error::invalid(format!(
                "{} holds the backups of another store ({name}); back this store up to another destination or prefix",
                target.describe()
            )));
        }
        // The journal first: it must cover every entry the points hold.
        let entries = self.audit_log()?;
        report.journal_records = Journal::list(target)?.append(target, &entries, snap.audit_seq)?;
        let mut files = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        for seg in &snap.segments {
            let mut chunks = Vec::new();
            let mut off = 0u64;
            while off < seg.len {
                let n = (seg.len - off).min(CHUNK as u64) as usize;
                let piece = buf.get_mut(..n).unwrap_or_default();
                seg.read_at(off, piece)?;
                chunks.push(put_once(target, &mut known, piece, &mut report)?);
                crate::failpoint::check("backup.chunk").map_err(|e| Error::Target {
                    object: "chunks/".into(),
                    reason: e.to_string(),
                })?;
                off += n as u64;
            }
            report.bytes += seg.len;
            files.push(FileRef {
                name: seg.name.clone(),
                len: seg.len,
                chunks,
            });
        }
        let keyring_bytes = snap.keyring.clone();
        let audit = snap.audit.clone();
        let policy = snap.policy.clone();
        let audit_seq = snap.audit_seq;
        drop(snap);
        report.bytes +=
            (keyring_bytes.len() + audit.len() + policy.as_ref().map_or(0, Vec::len)) as u64;
        let keyring = put_sealed(target, key, "keyring", &point, &keyring_bytes, &mut report)?;
        let audit = put_sealed(target, key, "audit", &point, &audit, &mut report)?;
        let policy = match policy {
            Some(p) => Some(put_sealed(target, key, "policy", &point, &p, &mut report)?),
            None => None,
        };
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            point: point.clone(),
            created_ms: now.unix_millis(),
            keyring_id,
            wrapped: Image::is_wrapped(&keyring_bytes),
            audit_seq,
            erasures_applied: audit_seq,
            files,
            keyring,
            audit,
            policy,
        };
        crate::failpoint::check("backup.manifest").map_err(|e| Error::Target {
            object: manifest_name(&point),
            reason: e.to_string(),
        })?;
        target.put(&manifest_name(&point), &manifest.encode(key)?)?;
        if let Some(keep) = &options.keep {
            report.pruned = Some(prune(target, keep, Timestamp::now().unix_millis())?);
        }
        Ok(report)
    }

    /// Brings the erasure journal at `target` up to date with the audit
    /// log: every erasure, deletion, retention run and rewrite logged since
    /// the journal's end is recorded there (random ids only). Run it after
    /// each erasure (the server does, for a configured destination) so that
    /// the destination knows at once; a backup does it anyway. Needs no key.
    /// Returns the records written.
    ///
    /// # Errors
    /// [`Error::Invalid`] if `target` holds the backups of another store;
    /// [`Error::Target`]; [`Error::Io`] reading the audit log.
    pub fn sync_backup_journal(&self, target: &dyn Target) -> Result<usize> {
        // Audit sequence numbers mean something only in their own store.
        let keyring_id = hex_bytes(&self.engine.writer.lock().keyring.id());
        if let Some((name, _)) = manifests_unverified(target)?
            .iter()
            .find(|(_, m)| m.keyring_id != keyring_id)
        {
            return Err(Error::invalid(format!(
                "{} holds the backups of another store ({name}); this store's erasures are not recorded there",
                target.describe()
            )));
        }
        let entries = self.audit_log()?;
        let last = entries.last().map_or(0, |e| e.seq);
        Journal::list(target)?.append(target, &entries, last)
    }
}
