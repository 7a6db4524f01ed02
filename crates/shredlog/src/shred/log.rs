//! The audit log: one JSON line per privacy operation, written and synced
//! *before* the operation touches the keyring, so that it doubles as the redo
//! log: each entry carries its [`Intent`], and at open every logged operation
//! whose effects are not all on disk is finished (`shred::redo`).
//!
//! Each line is `{"entry":{...},"crc32":N}` where `crc32` is CRC-32/ISO-HDLC of
//! the entry's JSON text. Entries name random visitor ids, caller transcript
//! ids, counts and the caller's reference, never personal data. The keyring's
//! state slot records how much of the log was durable and how much of it has
//! all its effects on disk, so that open reads only the tail after that.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::intent::Intent;
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
    /// `release-hold`, `reapply` (an earlier entry's intent carried out
    /// again: [`crate::Store::reapply_audit_log`]).
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
    /// What the operation destroys or changes, for open to finish it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) intent: Option<Intent>,
}

impl AuditEntry {
    /// What the operation destroys or changes: the entry's intent, or for an
    /// entry written before intents, what its text says.
    pub(crate) fn intent(&self) -> Option<Intent> {
        match &self.intent {
            Some(i) => Some(i.clone()),
            None => Intent::of_legacy(&self.op, &self.subject, self.detail.as_deref()),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Line {
    entry: serde_json::Value,
    crc32: u32,
}

pub(crate) struct AuditLog {
    path: PathBuf,
    /// `None` when the store is open read-only.
    file: Option<File>,
    next_seq: u64,
    /// Bytes of whole entries in the file.
    len: u64,
}

/// How much of the log was acknowledged, and how much of it has all its
/// effects on disk (from the keyring's state).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AuditMarks {
    pub entries: u64,
    pub bytes: u64,
    pub done_entries: u64,
    pub done_bytes: u64,
}

/// What open found in the log besides its entries.
#[derive(Debug, Default)]
pub(crate) struct AuditRecovery {
    /// A last line cut short by a crash (never acknowledged): (offset, bytes).
    /// Cut off unless the store is read-only.
    pub torn: Option<(u64, u64)>,
    /// Damaged lines skipped in salvage mode: (offset, reason).
    pub damage: Vec<(u64, String)>,
}

/// How to open the log.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AuditMode {
    pub read_only: bool,
    pub salvage: bool,
}

impl AuditLog {
    /// Opens the log and returns its entries after the `done` marks (those
    /// before have all their effects on disk; open need not read them).
    ///
    /// Every complete line (ended by `\n`) must check and carry the next
    /// sequence number; a last piece without `\n` is a write cut short by a
    /// crash, and is cut off, but only if it lies after every byte `marks`
    /// says was acknowledged. Fewer entries or bytes than the marks is lost
    /// acknowledged data. Damage is an error, or in salvage mode reported.
    pub(crate) fn open(
        dir: &Path,
        marks: AuditMarks,
        mode: AuditMode,
    ) -> Result<(AuditLog, Vec<AuditEntry>, AuditRecovery)> {
        let path = dir.join(AUDIT_FILE);
        let mut recovery = AuditRecovery::default();
        let (skip, bytes) = read_tail(&path, marks, mode, &mut recovery)?;
        let base = skip.1 as usize;
        let mut entries: Vec<AuditEntry> = Vec::new();
        let fail = |recovery: &mut AuditRecovery, at: usize, reason: String| -> Result<()> {
            if mode.salvage {
                recovery.damage.push((at as u64, reason));
                Ok(())
            } else {
                Err(Error::corrupt(&path, at as u64, reason))
            }
        };
        // Offsets below are absolute (in the file); `bytes` starts at `base`.
        let end_of_file = base + bytes.len();
        let mut good_end = base;
        let mut pos = base;
        while pos < end_of_file {
            let rest = bytes.get(pos - base..).unwrap_or_default();
            let Some(end) = rest.iter().position(|&b| b == b'\n').map(|i| pos + i) else {
                if (pos as u64) < marks.bytes {
                    fail(
                        &mut recovery,
                        pos,
                        "an acknowledged audit entry is cut short".into(),
                    )?;
                } else {
                    recovery.torn = Some((pos as u64, (end_of_file - pos) as u64));
                }
                break;
            };
            let line = bytes.get(pos - base..end - base).unwrap_or_default();
            let expected = entries.last().map_or(skip.0 + 1, |e| e.seq + 1);
            match parse_line(line) {
                Some(e) if e.seq == expected || (mode.salvage && e.seq > expected) => {
                    entries.push(e);
                }
                Some(e) => fail(
                    &mut recovery,
                    pos,
                    format!(
                        "audit entry {} where entry {expected} belongs: entries are missing or out of order",
                        e.seq
                    ),
                )?,
                None => fail(
                    &mut recovery,
                    pos,
                    "audit entry checksum mismatch (or not an audit entry)".into(),
                )?,
            }
            pos = end + 1;
            good_end = pos;
        }
        let count = entries.last().map_or(skip.0, |e| e.seq);
        if count < marks.entries || (good_end as u64) < marks.bytes {
            fail(
                &mut recovery,
                good_end,
                format!(
                    "the audit log ends after entry {count} ({good_end} bytes) but {} entries ({} bytes) were acknowledged: its end is missing (cut short?)",
                    marks.entries, marks.bytes
                ),
            )?;
        }
        let file = if mode.read_only {
            None
        } else {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .at(&path)?;
            let cut = good_end < end_of_file && recovery.torn.is_some();
            if cut {
                file.set_len(good_end as u64).at(&path)?;
            }
            // Entries a killed process wrote but did not sync are made
            // durable before anything records them as acknowledged. A log
            // whose every byte was acknowledged (a clean close) holds none.
            if cut || end_of_file as u64 > marks.bytes {
                crate::failpoint::check("audit.reopen.sync").at(&path)?;
                file.sync_all().at(&path)?;
            }
            Some(file)
        };
        Ok((
            AuditLog {
                path,
                file,
                next_seq: count + 1,
                len: good_end as u64,
            },
            entries,
            recovery,
        ))
    }

    /// Entries (the last sequence number) and bytes written so far.
    pub(crate) fn marks(&self) -> (u64, u64) {
        (self.next_seq - 1, self.len)
    }

    /// Reads every entry of the log in `dir` (for `audit` and `verify`),
    /// skipping damaged lines (reported in the recovery).
    pub(crate) fn read_all(
        dir: &Path,
        marks: AuditMarks,
    ) -> Result<(Vec<AuditEntry>, AuditRecovery)> {
        let marks = AuditMarks {
            done_entries: 0,
            done_bytes: 0,
            ..marks
        };
        let mode = AuditMode {
            read_only: true,
            salvage: true,
        };
        let (_, entries, recovery) = AuditLog::open(dir, marks, mode)?;
        Ok((entries, recovery))
    }

    /// Appends an entry durably; fills in `seq`.
    pub(crate) fn append(&mut self, mut entry: AuditEntry) -> Result<AuditEntry> {
        let file = self.file.as_mut().ok_or(Error::ReadOnly)?;
        entry.seq = self.next_seq;
        let value = serde_json::to_value(&entry)
            .map_err(|e| Error::Internal(format!("audit entry: {e}")))?;
        let text = value.to_string();
        let line = serde_json::json!({"entry": value, "crc32": crc32fast::hash(text.as_bytes())});
        let mut out = line.to_string();
        out.push('\n');
        crate::failpoint::check("audit.write").at(&self.path)?;
        file.write_all(out.as_bytes()).at(&self.path)?;
        crate::failpoint::check("audit.sync").at(&self.path)?;
        file.sync_data().at(&self.path)?;
        crate::failpoint::synced(&self.path, file);
        self.next_seq += 1;
        self.len += out.len() as u64;
        Ok(entry)
    }
}

/// Reads the log from the `done` marks on: returns where that is (entries,
/// bytes) and the bytes after it. The marks must fall on a line boundary
/// inside the file; otherwise (damage, or a log that is not the one the marks
/// were taken of) the whole log is read and checked.
fn read_tail(
    path: &Path,
    marks: AuditMarks,
    mode: AuditMode,
    recovery: &mut AuditRecovery,
) -> Result<((u64, u64), Vec<u8>)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(((0, 0), Vec::new())),
        Err(e) => return Err(Error::io(path, e)),
    };
    let len = file.metadata().at(path)?.len();
    let mut skip = (marks.done_entries, marks.done_bytes);
    if skip.1 > 0 {
        let mut before = [0u8; 1];
        let boundary = skip.1 <= len
            && file.seek(SeekFrom::Start(skip.1 - 1)).is_ok()
            && file.read_exact(&mut before).is_ok()
            && before[0] == b'\n';
        if !boundary {
            let reason =
                "the audit log does not match the keyring's record of it (cut short, or replaced)";
            if !mode.salvage {
                return Err(Error::corrupt(path, len.min(skip.1), reason));
            }
            recovery.damage.push((len.min(skip.1), reason.into()));
            skip = (0, 0);
        }
    }
    file.seek(SeekFrom::Start(skip.1)).at(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).at(path)?;
    Ok((skip, bytes))
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
            intent: None,
        }
    }

    const RW: AuditMode = AuditMode {
        read_only: false,
        salvage: false,
    };

    fn none() -> AuditMarks {
        AuditMarks::default()
    }

    #[test]
    fn append_reopen_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, e, _) = AuditLog::open(dir.path(), none(), RW).unwrap();
        assert!(e.is_empty());
        log.append(entry("erasure")).unwrap();
        log.append(entry("retention")).unwrap();
        let (entries, bytes) = log.marks();
        drop(log);
        let marks = AuditMarks {
            entries,
            bytes,
            ..AuditMarks::default()
        };
        let path = dir.path().join(AUDIT_FILE);
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(b"{\"entry\":{\"se");
        std::fs::write(&path, &torn).unwrap();
        // Read-only: reported, left in place.
        let ro = AuditMode {
            read_only: true,
            salvage: false,
        };
        let (_, e, r) = AuditLog::open(dir.path(), marks, ro).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(r.torn, Some((whole.len() as u64, 13)));
        assert_eq!(std::fs::read(&path).unwrap(), torn);
        let (mut log, e, _) = AuditLog::open(dir.path(), marks, RW).unwrap();
        assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(std::fs::read(&path).unwrap(), whole, "torn piece cut");
        assert_eq!(log.append(entry("x")).unwrap().seq, 3);
        // Damage in the middle is reported.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(AuditLog::open(dir.path(), none(), RW).is_err());
    }

    #[test]
    fn a_complete_last_line_that_fails_its_check_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = AuditLog::open(dir.path(), none(), RW).unwrap();
        log.append(entry("erasure")).unwrap();
        log.append(entry("erasure")).unwrap();
        drop(log);
        let path = dir.path().join(AUDIT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 20;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = AuditLog::open(dir.path(), none(), RW).err().unwrap();
        assert!(err.to_string().contains("checksum"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing cut");
    }

    #[test]
    fn fewer_entries_than_acknowledged_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = AuditLog::open(dir.path(), none(), RW).unwrap();
        log.append(entry("erasure")).unwrap();
        let first = log.marks();
        log.append(entry("erasure")).unwrap();
        let (entries, bytes) = log.marks();
        drop(log);
        let marks = AuditMarks {
            entries,
            bytes,
            ..AuditMarks::default()
        };
        let path = dir.path().join(AUDIT_FILE);
        let whole = std::fs::read(&path).unwrap();
        // Cut at the line boundary, inside the last line, or the whole file.
        for cut in [first.1 as usize, whole.len() - 5, 0] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let err = AuditLog::open(dir.path(), marks, RW).err().unwrap();
            assert!(err.to_string().contains("acknowledged"), "cut {cut}: {err}");
            assert_eq!(std::fs::read(&path).unwrap().len(), cut, "nothing cut");
        }
        // Missing altogether.
        std::fs::remove_file(&path).unwrap();
        assert!(AuditLog::open(dir.path(), marks, RW).is_err());
        // Entries out of sequence.
        let mut swapped = Vec::new();
        let lines: Vec<&[u8]> = whole.split_inclusive(|&b| b == b'\n').collect();
        swapped.extend_from_slice(lines[1]);
        swapped.extend_from_slice(lines[0]);
        std::fs::write(&path, &swapped).unwrap();
        let err = AuditLog::open(dir.path(), none(), RW).err().unwrap();
        assert!(err.to_string().contains("out of order"), "{err}");
    }

    #[test]
    fn open_reads_only_after_what_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = AuditLog::open(dir.path(), none(), RW).unwrap();
        for _ in 0..5 {
            log.append(entry("erasure")).unwrap();
        }
        let done = log.marks();
        log.append(entry("retention")).unwrap();
        let (entries, bytes) = log.marks();
        drop(log);
        let marks = AuditMarks {
            entries,
            bytes,
            done_entries: done.0,
            done_bytes: done.1,
        };
        let (mut log, tail, _) = AuditLog::open(dir.path(), marks, RW).unwrap();
        assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [6]);
        assert_eq!(log.append(entry("x")).unwrap().seq, 7);
        drop(log);
        // Damage before the done mark is not read at open; verify reads it.
        let path = dir.path().join(AUDIT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(AuditLog::open(dir.path(), marks, RW).is_ok());
        let (all, recovery) = AuditLog::read_all(dir.path(), marks).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(recovery.damage.len(), 1);
        // A done mark that is not a line boundary of this log is corruption.
        let off = AuditMarks {
            done_bytes: done.1 - 3,
            ..marks
        };
        assert!(AuditLog::open(dir.path(), off, RW).is_err());
    }
}
