//! Operator policy kept next to the data: retention, legal holds, restrictions.
//! Stored as `policy.json`, replaced atomically. Holds and restrictions name
//! random visitor ids and caller transcript ids, never emails.

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
}

impl Policy {
    pub(crate) fn load(dir: &Path) -> Result<Policy> {
        let path = dir.join(POLICY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::corrupt(
                    &path,
                    e.column() as u64,
                    format!("policy file does not parse: {}", e.classify_name()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Policy::default()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::invalid(e.to_string()))?;
        crate::fsutil::write_atomic(dir, POLICY_FILE, &bytes)
    }
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

/// Hex of a 16-byte id.
pub(crate) fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}
