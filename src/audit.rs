//! The audit log: one JSON line per privacy operation, written and synced
//! *before* the operation touches the keyring, so that it doubles as the
//! operation's intent record: at open, every logged operation whose effects are
//! not all on disk is finished (see `Store::open`).
//!
//! Each line is `{"entry":{...},"crc32":N}` where `crc32` is CRC-32/ISO-HDLC of
//! the entry's JSON text. Entries name random visitor ids, caller transcript
//! ids, counts and the caller's reference, never personal data.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

pub(crate) const AUDIT_FILE: &str = "audit.log";

/// One audited operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it was logged (RFC 3339 UTC).
    pub at: String,
    /// `erasure`, `delete-transcript`, `delete-visitor`, `retention`,
    /// `rectification`, `restriction`, `lift-restriction`, `rewrite`, `hold`,
    /// `release-hold`.
    pub op: String,
    /// The subject: `visitor:<random visitor id>` or `transcript:<id>`.
    pub subject: String,
    /// Transcripts affected.
    pub transcripts: u64,
    /// Keys destroyed.
    pub keys_destroyed: u64,
    /// The caller's reference (e.g. a ticket number).
    pub reference: String,
    /// Operation-specific facts without personal data (e.g. a retention cutoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Line {
    entry: serde_json::Value,
    crc32: u32,
}

pub(crate) struct AuditLog {
    path: PathBuf,
    file: File,
    next_seq: u64,
}

impl AuditLog {
    /// Opens the log, cutting off a torn last line; returns the entries.
    pub(crate) fn open(dir: &Path, salvage: bool) -> Result<(AuditLog, Vec<AuditEntry>)> {
        let path = dir.join(AUDIT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut entries = Vec::new();
        let mut good_end = 0usize;
        let mut pos = 0usize;
        while pos < bytes.len() {
            let end = bytes
                .get(pos..)
                .and_then(|r| r.iter().position(|&b| b == b'\n'))
                .map(|i| pos + i);
            let Some(end) = end else {
                // No newline: a torn last line.
                break;
            };
            let line = bytes.get(pos..end).unwrap_or_default();
            match parse_line(line) {
                Some(e) => entries.push(e),
                None if salvage => {}
                None => {
                    let is_last = end + 1 >= bytes.len();
                    if !is_last {
                        return Err(Error::corrupt(
                            &path,
                            pos as u64,
                            "audit entry checksum mismatch",
                        ));
                    }
                    break;
                }
            }
            pos = end + 1;
            good_end = pos;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .at(&path)?;
        if good_end < bytes.len() {
            file.set_len(good_end as u64).at(&path)?;
            file.sync_all().at(&path)?;
        }
        let next_seq = entries.last().map_or(1, |e| e.seq + 1);
        Ok((
            AuditLog {
                path,
                file,
                next_seq,
            },
            entries,
        ))
    }

    /// Appends an entry durably; fills in `seq`.
    pub(crate) fn append(&mut self, mut entry: AuditEntry) -> Result<AuditEntry> {
        entry.seq = self.next_seq;
        let value = serde_json::to_value(&entry).map_err(|e| Error::invalid(e.to_string()))?;
        let text = value.to_string();
        let line = serde_json::json!({"entry": value, "crc32": crc32fast::hash(text.as_bytes())});
        let mut out = line.to_string();
        out.push('\n');
        crate::failpoint::check("audit.write").at(&self.path)?;
        self.file.write_all(out.as_bytes()).at(&self.path)?;
        crate::failpoint::check("audit.sync").at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        crate::failpoint::synced(&self.path, &self.file);
        self.next_seq += 1;
        Ok(entry)
    }
}

fn parse_line(line: &[u8]) -> Option<AuditEntry> {
    let l: Line = serde_json::from_slice(line).ok()?;
    if crc32fast::hash(l.entry.to_string().as_bytes()) != l.crc32 {
        return None;
    }
    serde_json::from_value(l.entry).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: &str) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: "2024-01-01T00:00:00.000Z".into(),
            op: op.into(),
            subject: "visitor:00".into(),
            transcripts: 1,
            keys_destroyed: 1,
            reference: "T-1".into(),
            detail: None,
        }
    }

    #[test]
    fn append_reopen_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, e) = AuditLog::open(dir.path(), false).unwrap();
        assert!(e.is_empty());
        log.append(entry("erasure")).unwrap();
        log.append(entry("retention")).unwrap();
        drop(log);
        let path = dir.path().join(AUDIT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"{\"entry\":{\"se");
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, e) = AuditLog::open(dir.path(), false).unwrap();
        assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(log.append(entry("x")).unwrap().seq, 3);
        // Damage in the middle is reported.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(AuditLog::open(dir.path(), false).is_err());
    }
}
