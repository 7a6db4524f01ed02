//! Upkeep of the points at a destination: erasures applied to their keyring
//! copies, retention, rotation of the backup key.
//!
//! Each rewrite of a point follows one order: the new sealed object is
//! written, then the point's new manifest naming it, then the old object is
//! deleted. A crash leaves the point whole under its old or its new
//! manifest; objects of a point that its manifest does not name are
//! leftovers, deleted by the next `prune` or `apply_erasures`.

use std::collections::HashSet;
use std::path::Path;

use super::journal::Journal;
use super::manifest::{Manifest, ObjectRef, fetch_sealed, manifest_name, put_sealed};
use super::run::manifests_unverified;
use super::{BackupKey, Target, Versioning, wipe};
use crate::config::KeyEncryptionKey;
use crate::error::{Error, Result};
use crate::keyring::rekey::Image;

/// Which backup points retention keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The newest N points.
    Count(usize),
    /// Points taken within this many milliseconds (the newest point is
    /// always kept).
    Within(u64),
}

impl std::str::FromStr for Keep {
    type Err = Error;

    /// `30d`, `12h`, `90m` (an age) or `7` (a count).
    fn from_str(s: &str) -> Result<Keep> {
        let s = s.trim();
        let bad = || Error::invalid("--keep takes a count (`7`) or an age (`30d`, `12h`, `90m`)");
        if let Ok(n) = s.parse::<usize>() {
            return if n == 0 {
                Err(bad())
            } else {
                Ok(Keep::Count(n))
            };
        }
        let (num, unit) = s.split_at(s.len().saturating_sub(1));
        let n: u64 = num.parse().map_err(|_| bad())?;
        let ms = match unit {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            _ => return Err(bad()),
        };
        Ok(Keep::Within(n.checked_mul(ms).ok_or_else(bad)?))
    }
}

/// What retention removed.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PruneReport {
    /// Points deleted.
    pub points: Vec<String>,
    /// Objects deleted (segment pieces no kept point needs, the deleted
    /// points' objects, leftovers, journal objects no kept point needs).
    pub objects: usize,
}

/// Deletes the points `keep` does not keep, then every object no kept point
/// needs. `now_ms` is the current time. Do not run it while a backup to the
/// same destination is under way (its new pieces are not yet in a manifest).
///
/// # Errors
/// [`Error::Target`]; [`Error::BackupDamaged`] for a manifest that does not
/// parse (nothing is deleted then).
pub fn prune(target: &dyn Target, keep: &Keep, now_ms: i64) -> Result<PruneReport> {
    let all = manifests_unverified(target)?;
    let n = all.len();
    let kept: Vec<bool> = all
        .iter()
        .enumerate()
        .map(|(i, (_, m))| {
            i + 1 == n
                || match keep {
                    Keep::Count(c) => i + c >= n,
                    Keep::Within(ms) => {
                        m.created_ms
                            >= now_ms.saturating_sub(i64::try_from(*ms).unwrap_or(i64::MAX))
                    }
                }
        })
        .collect();
    let mut report = PruneReport::default();
    for ((name, m), k) in all.iter().zip(&kept) {
        if !k {
            // The manifest first: without it the point is gone.
            target.delete(name)?;
            report.points.push(m.point.clone());
            report.objects += 1;
        }
    }
    let retained: Vec<&Manifest> = all
        .iter()
        .zip(&kept)
        .filter(|(_, k)| **k)
        .map(|((_, m), _)| m)
        .collect();
    report.objects += sweep(target, &retained)?;
    if let Some(min) = retained.iter().map(|m| m.audit_seq).min() {
        let journal = Journal::list(target)?;
        // Keep the last object, so that the journal still knows its end.
        let last = journal.objects.last().map(|o| o.1).unwrap_or(0);
        report.objects += journal.prune(target, min.min(last.saturating_sub(1)))?;
    }
    Ok(report)
}

/// Deletes every object under `chunks/` and `points/` that no retained
/// manifest names. Returns how many.
fn sweep(target: &dyn Target, retained: &[&Manifest]) -> Result<usize> {
    let mut needed: HashSet<&str> = HashSet::new();
    for m in retained {
        needed.extend(m.objects().map(|o| o.object.as_str()));
    }
    let manifests: HashSet<String> = retained.iter().map(|m| manifest_name(&m.point)).collect();
    let mut n = 0;
    for prefix in ["chunks/", "points/"] {
        for name in target.list(prefix)? {
            if !needed.contains(name.as_str()) && !manifests.contains(&name) {
                target.delete(&name)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// What [`apply_erasures`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ApplyReport {
    /// Points whose keyring copy was rewritten.
    pub points: usize,
    /// Keyring slots zeroed in those copies.
    pub slots_wiped: usize,
    /// The audit entry up to which every point's copy now forgets.
    pub through: u64,
    /// Whether the destination keeps old versions: then the replaced
    /// copies are not gone (docs/BACKUP.md).
    pub versioning: Versioning,
}

/// Replaces one sealed object of a point: new object, new manifest, old
/// object deleted.
fn replace(
    target: &dyn Target,
    key: &BackupKey,
    m: &mut Manifest,
    role: &str,
    plain: &[u8],
) -> Result<(ObjectRef, ObjectRef)> {
    let new = put_sealed(target, key, role, &m.point, plain)?;
    let old = match role {
        "keyring" => std::mem::replace(&mut m.keyring, new.clone()),
        "audit" => std::mem::replace(&mut m.audit, new.clone()),
        _ => match m.policy.replace(new.clone()) {
            Some(o) => o,
            None => return Err(Error::Internal("replacing a policy the point lacks".into())),
        },
    };
    Ok((old, new))
}

/// Rewrites the keyring copy of every point at the destination with the
/// slots zeroed that the erasure journal says were destroyed after the
/// point: the backups themselves stop holding erased keys. A new sealed copy
/// is written, then the point's manifest, then the old copy is deleted (on a
/// versioned bucket, deleting keeps the old version: see the report's
/// `versioning`). `kek` is the store's key-encryption key, needed when the
/// keyring copies are wrapped.
///
/// # Errors
/// [`Error::BackupKey`] / [`Error::BackupDamaged`] if a manifest or copy
/// does not authenticate; [`Error::Kek`]; [`Error::Target`].
pub fn apply_erasures(
    target: &dyn Target,
    key: &BackupKey,
    kek: Option<&KeyEncryptionKey>,
) -> Result<ApplyReport> {
    let journal = Journal::list(target)?;
    let through = journal.end();
    let mut report = ApplyReport {
        points: 0,
        slots_wiped: 0,
        through,
        versioning: target.versioning()?,
    };
    for (name, _) in manifests_unverified(target)? {
        let bytes = target.get(&name)?.ok_or_else(|| Error::BackupDamaged {
            object: name.clone(),
            reason: "is missing (listed, then gone)".into(),
        })?;
        let mut m = Manifest::parse(&name, &bytes, key)?;
        let after = m.audit_seq.max(m.erasures_applied);
        if after >= through {
            continue;
        }
        let records = journal.records_after(target, after, through)?;
        let what = Path::new(&m.keyring.object).to_owned();
        let plain = fetch_sealed(target, key, "keyring", &m.point, &m.keyring)?;
        if m.wrapped && kek.is_none() {
            return Err(Error::Kek(
                "the keyring copies are wrapped under a key-encryption key; supply it (--key-file or SHREDLOG_KEK) to find the erased keys in them".into(),
            ));
        }
        let mut image = Image::parse(
            plain,
            if m.wrapped { kek.map(|k| &k.0) } else { None },
            &what,
        )?;
        let wiped = wipe::apply(&mut image, &what, &records)?;
        m.erasures_applied = through;
        if wiped == 0 {
            target.put(&name, &m.encode(key)?)?;
            continue;
        }
        let (old, _) = replace(target, key, &mut m, "keyring", image.bytes())?;
        target.put(&name, &m.encode(key)?)?;
        target.delete(&old.object)?;
        report.points += 1;
        report.slots_wiped += wiped;
    }
    Ok(report)
}

/// Re-seals every point at the destination under a new backup key: each
/// sealed copy is written anew under `new`, then the point's manifest, then
/// the old copies are deleted. Points already under `new` (a rotation cut
/// short and run again) are left as they are. Returns the points re-sealed.
///
/// # Errors
/// [`Error::BackupDamaged`] for a point that authenticates under neither
/// key; [`Error::Target`].
pub fn rotate_backup_key(target: &dyn Target, old: &BackupKey, new: &BackupKey) -> Result<usize> {
    let mut n = 0;
    for (name, _) in manifests_unverified(target)? {
        let bytes = target.get(&name)?.ok_or_else(|| Error::BackupDamaged {
            object: name.clone(),
            reason: "is missing (listed, then gone)".into(),
        })?;
        if Manifest::parse(&name, &bytes, new).is_ok() {
            continue;
        }
        let mut m = Manifest::parse(&name, &bytes, old)?;
        let mut olds = Vec::new();
        for (role, r) in m.sealed_copies() {
            let plain = fetch_sealed(target, old, role, &m.point, &r)?;
            let (o, _) = replace(target, new, &mut m, role, &plain)?;
            olds.push(o);
        }
        target.put(&name, &m.encode(new)?)?;
        for o in olds {
            target.delete(&o.object)?;
        }
        n += 1;
    }
    Ok(n)
}
