//! A backup point's manifest (`points/ID/manifest`), and the sealed objects
//! it names (docs/BACKUP.md, "Layout at the destination").
//!
//! The manifest is two lines: the body, compact JSON, and the hex of a
//! nonce and an AES-256-GCM tag over an empty plaintext whose associated data
//! is `shredlog-backup-manifest:` followed by the body's bytes (a GMAC under
//! the backup key): a manifest cannot be altered or forged without the key.
//! It is written last, so a point without one was cut short and is not a
//! point.

use crate::secret::SecretVec;
use serde::{Deserialize, Serialize};

use super::{BackupKey, damaged, hex_bytes, parse_hex_vec, sha256_hex, split_last_line};
use crate::error::{Error, Result};
use crate::seal::{NONCE_LEN, TAG_LEN};

/// Format version of manifests written now.
pub(crate) const MANIFEST_FORMAT: u32 = 1;
const MANIFEST_AAD: &[u8] = b"shredlog-backup-manifest:";

/// An object a point needs, with its checksum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ObjectRef {
    pub object: String,
    pub len: u64,
    /// SHA-256 of the object's bytes, hex.
    pub sha256: String,
}

/// A file of the store, as the chunks that hold it, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct FileRef {
    pub name: String,
    pub len: u64,
    pub chunks: Vec<ObjectRef>,
}

/// What a point holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Manifest {
    pub format: u32,
    pub point: String,
    /// When the snapshot was taken (ms since the epoch).
    pub created_ms: i64,
    /// The store's keyring id, hex: the store the point belongs to.
    pub keyring_id: String,
    /// Whether the keyring copy is wrapped under a key-encryption key.
    pub wrapped: bool,
    /// The last audit entry the point holds (erasure journal records after
    /// it are applied at restore).
    pub audit_seq: u64,
    /// Journal records up to this audit entry are wiped from the keyring copy.
    pub erasures_applied: u64,
    /// Segment files.
    pub files: Vec<FileRef>,
    /// The keyring, sealed under the backup key.
    pub keyring: ObjectRef,
    /// The audit log, sealed.
    pub audit: ObjectRef,
    /// `policy.json`, sealed, if the store had one.
    pub policy: Option<ObjectRef>,
}

/// The manifest's object name.
pub(crate) fn manifest_name(point: &str) -> String {
    format!("points/{point}/manifest")
}

impl Manifest {
    /// The two-line encoding, authenticated under `key`.
    pub(crate) fn encode(&self, key: &BackupKey) -> Result<Vec<u8>> {
        let body = serde_json::to_vec(self)
            .map_err(|e| Error::Internal(format!("manifest encoding: {e}")))?;
        let mut aad = MANIFEST_AAD.to_vec();
        aad.extend_from_slice(&body);
        let (nonce, tag) = key.0.seal(&aad, &[])?;
        let mut out = body;
        out.push(b'\n');
        out.extend_from_slice(hex_bytes(&nonce).as_bytes());
        out.extend_from_slice(hex_bytes(&tag).as_bytes());
        out.push(b'\n');
        Ok(out)
    }

    /// Parses a manifest without checking its tag (for listing, which needs
    /// no key).
    pub(crate) fn parse_unverified(name: &str, bytes: &[u8]) -> Result<Manifest> {
        let (body, _) = split_last_line(name, bytes)?;
        let m: Manifest = serde_json::from_slice(body)
            .map_err(|_| damaged(name, "does not parse (altered or cut short)"))?;
        if m.format != MANIFEST_FORMAT {
            return Err(damaged(name, "is of an unknown format version"));
        }
        Ok(m)
    }

    /// Parses and authenticates a manifest under `key`.
    pub(crate) fn parse(name: &str, bytes: &[u8], key: &BackupKey) -> Result<Manifest> {
        let m = Manifest::parse_unverified(name, bytes)?;
        let (body, tag) = split_last_line(name, bytes)?;
        let tag = parse_hex_vec(tag).filter(|t| t.len() == NONCE_LEN + TAG_LEN);
        let ok = tag.is_some_and(|t| {
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&t[..NONCE_LEN]);
            let mut aad = MANIFEST_AAD.to_vec();
            aad.extend_from_slice(body);
            key.0.open(&nonce, &aad, &t[NONCE_LEN..]).is_some()
        });
        if !ok {
            return Err(Error::BackupDamaged {
                object: name.to_owned(),
                reason: "does not authenticate under this backup key (a wrong key, or the manifest was altered)".into(),
            });
        }
        if m.point.is_empty() || name != manifest_name(&m.point) {
            return Err(Error::BackupDamaged {
                object: name.to_owned(),
                reason: "names another point (moved?)".into(),
            });
        }
        Ok(m)
    }

    /// The point's sealed copies, by role: keyring, audit log, and the
    /// policy if the store had one.
    pub(crate) fn sealed_copies(&self) -> Vec<(&'static str, ObjectRef)> {
        let mut out = vec![
            ("keyring", self.keyring.clone()),
            ("audit", self.audit.clone()),
        ];
        out.extend(self.policy.clone().map(|p| ("policy", p)));
        out
    }

    /// Every object the point needs.
    pub(crate) fn objects(&self) -> impl Iterator<Item = &ObjectRef> {
        self.files
            .iter()
            .flat_map(|f| f.chunks.iter())
            .chain(std::iter::once(&self.keyring))
            .chain(std::iter::once(&self.audit))
            .chain(self.policy.iter())
    }
}

/// The associated data of a sealed object: its role and its point.
fn sealed_aad(role: &str, point: &str) -> Vec<u8> {
    format!("shredlog-backup:{role}:{point}").into_bytes()
}

/// Seals `plain` as the `role` object of `point`: nonce ‖ ciphertext ‖ tag.
pub(crate) fn seal(key: &BackupKey, role: &str, point: &str, plain: &[u8]) -> Result<Vec<u8>> {
    let (nonce, ct) = key.0.seal(&sealed_aad(role, point), plain)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a sealed object; an error naming it if it does not authenticate.
pub(crate) fn unseal(
    key: &BackupKey,
    role: &str,
    point: &str,
    object: &str,
    sealed: &[u8],
) -> Result<SecretVec> {
    let bad = || Error::BackupDamaged {
        object: object.to_owned(),
        reason: "does not authenticate under this backup key (altered, or a wrong key)".into(),
    };
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(bad());
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[..NONCE_LEN]);
    key.0
        .open(&nonce, &sealed_aad(role, point), &sealed[NONCE_LEN..])
        .map(SecretVec::new)
        .ok_or_else(bad)
}

/// Seals `plain` as the `role` copy of `point` and stores it under a new
/// random name (objects are never rewritten in place).
pub(crate) fn put_sealed(
    target: &dyn super::Target,
    key: &BackupKey,
    role: &str,
    point: &str,
    plain: &[u8],
) -> Result<ObjectRef> {
    let sealed = seal(key, role, point, plain)?;
    let r: [u8; 8] = crate::seal::random_array()?;
    let object = format!("points/{point}/{role}-{}", hex_bytes(&r));
    target.put(&object, &sealed)?;
    Ok(ObjectRef {
        object,
        len: sealed.len() as u64,
        sha256: sha256_hex(&sealed),
    })
}

/// Fetches the `role` copy of `point` at `r`, checks it and opens it.
pub(crate) fn fetch_sealed(
    target: &dyn super::Target,
    key: &BackupKey,
    role: &str,
    point: &str,
    r: &ObjectRef,
) -> Result<SecretVec> {
    unseal(key, role, point, &r.object, &fetch(target, r)?)
}

/// Fetches an object and checks it against its reference: an error naming
/// it when it is missing or altered.
pub(crate) fn fetch(target: &dyn super::Target, r: &ObjectRef) -> Result<Vec<u8>> {
    let bytes = target.get(&r.object)?.ok_or_else(|| Error::BackupDamaged {
        object: r.object.clone(),
        reason: "is missing".into(),
    })?;
    if bytes.len() as u64 != r.len || sha256_hex(&bytes) != r.sha256 {
        return Err(Error::BackupDamaged {
            object: r.object.clone(),
            reason: "does not match its checksum (altered or cut short)".into(),
        });
    }
    Ok(bytes)
}
