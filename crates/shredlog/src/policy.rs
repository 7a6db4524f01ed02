//! Operator policy kept next to the data: retention, legal holds, restrictions.
//! Stored as `policy.json`, replaced atomically, versioned and checksummed
//! (docs/FORMAT.md §9). Holds and restrictions name random visitor ids and
//! caller transcript ids, never emails.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub(crate) const POLICY_FILE: &str = "policy.json";

/// A retention policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Transcripts whose latest message is older than this many milliseconds
    /// are redacted (or deleted).
    pub older_than_ms: i64,
    /// Delete instead of redact.
    pub delete: bool,
}

/// A legal hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Hold {
    /// Why (e.g. a case number).
    pub reference: String,
    /// When it was placed (RFC 3339).
    pub since: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Policy {
    pub retention: Option<RetentionPolicy>,
    /// Holds on visitors, by visitor id (hex).
    pub visitor_holds: BTreeMap<String, Hold>,
    /// Holds on transcripts, by caller transcript id.
    pub transcript_holds: BTreeMap<String, Hold>,
    /// Restricted visitors (Art. 18), by visitor id (hex).
    pub restricted: BTreeMap<String, Hold>,
    /// Whether legal holds also refuse erasure requests.
    pub holds_block_erasure: bool,
    /// Sequence number of the audit entry whose change this file holds last
    /// (0: none); hold and restriction entries after it are applied at open.
    #[serde(skip)]
    pub audit_seq: u64,
    /// Loaded from a version-1 file (written after its entries were logged,
    /// so it holds all of them).
    #[serde(skip)]
    pub legacy: bool,
}

/// Format of `policy.json` written now.
const POLICY_VERSION: u64 = 2;

impl Policy {
    /// Loads the policy: absent = defaults. Version 2 is checked against its
    /// CRC; a file without a version is the unchecked version 1.
    pub(crate) fn load(dir: &Path) -> Result<Policy> {
        let path = dir.join(POLICY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Policy::default()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let bad = |offset: u64, why: &str| {
            Error::corrupt(&path, offset, format!("policy file does not parse: {why}"))
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| bad(e.column() as u64, e.classify_name()))?;
        let serde_json::Value::Object(mut top) = value else {
            return Err(bad(0, "not a JSON object"));
        };
        if !top.contains_key("version") {
            // Version 1: the policy object itself.
            let mut policy: Policy = serde_json::from_value(serde_json::Value::Object(top))
                .map_err(|e| bad(0, e.classify_name()))?;
            policy.legacy = true;
            return Ok(policy);
        }
        let crc = top
            .remove("crc32")
            .and_then(|c| c.as_u64())
            .ok_or_else(|| bad(0, "no crc32"))?;
        let text = serde_json::Value::Object(top.clone()).to_string();
        if u64::from(crc32fast::hash(text.as_bytes())) != crc {
            return Err(Error::corrupt(&path, 0, "policy file checksum mismatch"));
        }
        let file: PolicyFile = serde_json::from_value(serde_json::Value::Object(top))
            .map_err(|e| bad(0, e.classify_name()))?;
        if file.version != POLICY_VERSION {
            return Err(Error::UnsupportedVersion {
                path,
                version: u32::try_from(file.version).unwrap_or(u32::MAX),
            });
        }
        let mut policy = file.policy;
        policy.audit_seq = file.audit_seq;
        policy.legacy = false;
        Ok(policy)
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let internal = |e: serde_json::Error| Error::Internal(format!("policy: {e}"));
        let mut top = serde_json::Map::new();
        top.insert("version".into(), POLICY_VERSION.into());
        top.insert("audit-seq".into(), self.audit_seq.into());
        top.insert(
            "policy".into(),
            serde_json::to_value(self).map_err(internal)?,
        );
        let crc = crc32fast::hash(
            serde_json::Value::Object(top.clone())
                .to_string()
                .as_bytes(),
        );
        top.insert("crc32".into(), crc.into());
        let mut bytes =
            serde_json::to_vec_pretty(&serde_json::Value::Object(top)).map_err(internal)?;
        bytes.push(b'\n');
        crate::fsutil::write_atomic(dir, POLICY_FILE, &bytes)
    }
}

/// `policy.json`, version 2 (its `crc32` taken off).
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct PolicyFile {
    version: u64,
    audit_seq: u64,
    policy: Policy,
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected content",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Policy {
        let hold = Hold {
            reference: "CASE-1".into(),
            since: "2024-01-01T00:00:00.000Z".into(),
        };
        Policy {
            restricted: [("ab".repeat(16), hold.clone())].into(),
            transcript_holds: [("t-1".to_string(), hold)].into(),
            audit_seq: 7,
            ..Policy::default()
        }
    }

    #[test]
    fn roundtrip_and_every_flip_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let p = sample();
        p.save(dir.path()).unwrap();
        assert_eq!(Policy::load(dir.path()).unwrap(), p);
        let path = dir.path().join(POLICY_FILE);
        let bytes = std::fs::read(&path).unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            // Either an error, or (a flip in insignificant whitespace) the same policy.
            if let Ok(q) = Policy::load(dir.path()) {
                assert_eq!(q, p, "flip at {i} changed the policy silently");
            }
        }
        // Cut short.
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(Policy::load(dir.path()).is_err());
    }

    #[test]
    fn version_1_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = r#"{"retention":null,"visitor-holds":{},"transcript-holds":{},"restricted":{},"holds-block-erasure":true}"#;
        std::fs::write(dir.path().join(POLICY_FILE), v1).unwrap();
        let p = Policy::load(dir.path()).unwrap();
        assert!(p.holds_block_erasure);
        assert_eq!((p.audit_seq, p.legacy), (0, true));
    }
}
