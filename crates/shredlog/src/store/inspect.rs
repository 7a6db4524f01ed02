//! `verify` and `stats`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Store;
use super::read::read_message;
use crate::error::{IoContext, Result};
use crate::ids::{IdMap, parse_hex};
use crate::index::{RecordRef, SegmentUsage, TranscriptEntry};
use crate::keyring::SLOT_SIZE;
use crate::pii::RULES_VERSION;
use crate::policy::{POLICY_FILE, Policy};
use crate::segment::{self, SEGMENT_HEADER, Segment};
use crate::shred::residue::{Destroyed, Residue};
use crate::shred::{AUDIT_FILE, AuditLog, AuditMarks};

impl Store {
    /// Checks every file: every keyring slot and the keyring's length, every
    /// segment (headers, frames, footers, what was acknowledged), every live
    /// record (decrypted and joined), the audit log (checksums, sequence,
    /// acknowledged length) and the policy file (checksum, and that its
    /// holds and restrictions name visitors and transcripts that exist). On
    /// a store opened in salvage mode it also lists what open skipped.
    ///
    /// # Errors
    /// [`crate::Error::Io`] if files cannot be read; damage is reported in the report.
    pub fn verify(&self) -> Result<VerifyReport> {
        let engine = &*self.engine;
        let mut report = VerifyReport::default();
        let mut problems = Problems::default();
        for (path, offset, bytes, reason) in &engine.report.skipped {
            let size = if *bytes > 0 {
                format!(" ({bytes} bytes)")
            } else {
                String::new()
            };
            problems.push(format!(
                "corruption in {} at offset {offset}: {reason}{size}",
                path.display()
            ));
        }
        for (slot, offset, reason) in &engine.report.damaged_slots {
            problems.push(format!(
                "corruption in {} at offset {offset}: keyring slot {slot}: {reason}",
                engine.keyring_path.display(),
            ));
        }
        // Keyring: every slot as it is on disk now, and its length.
        let marks = {
            let w = engine.writer.lock();
            let bytes = std::fs::read(&engine.keyring_path).at(&engine.keyring_path)?;
            let check = w.keyring.check_copy(&bytes);
            report.keyring_slots = check.in_use;
            let path = engine.keyring_path.display();
            for d in &check.damaged {
                problems.push(format!(
                    "corruption in {path} at offset {}: keyring slot {}: {}",
                    d.offset, d.index, d.reason
                ));
            }
            let marks = match check.state {
                Some(Ok(m)) => Some(m),
                Some(Err(reason)) => {
                    problems.push(format!(
                        "corruption in {path} at offset {SLOT_SIZE}: keyring state slot: {reason}"
                    ));
                    None
                }
                None => None,
            };
            if (bytes.len() as u64) < check.needed {
                problems.push(format!(
                    "corruption in {path} at offset {}: the keyring is shorter than the {} bytes it held durably: its end is missing",
                    bytes.len(),
                    check.needed
                ));
            }
            marks
        };
        // Every live generation with its records (read from the record-
        // location files, each block checked), and every location file whole.
        type Listed = (TranscriptEntry, Vec<RecordRef>);
        let (index_records, entries): (u64, IdMap<Listed>) = {
            let index = engine.index.read();
            for sidecar in index.sidecars() {
                if let Err(e) = sidecar.check_all() {
                    problems.push(e.to_string());
                }
            }
            let n = match index.record_count() {
                Ok(n) => n,
                Err(e) => {
                    problems.push(e.to_string());
                    0
                }
            };
            // Every directory slot the index names holds that visitor's
            // entry (the index's run is derived data: a mismatch is a bug,
            // and removing index.manifest makes open rebuild the index).
            for v in index.directory() {
                match v {
                    Ok((vid, slot)) => {
                        let holds = matches!(
                            engine.keys.read_slot(slot),
                            Ok(Some(s)) if crate::shred::Owner::Visitor(vid).holds(&s)
                        );
                        if !holds {
                            problems.push(format!(
                                "the index names keyring slot {slot} as the directory entry of visitor {}, which it is not",
                                crate::ids::hex(&vid)
                            ));
                        }
                    }
                    Err(e) => {
                        problems.push(e.to_string());
                        break;
                    }
                }
            }
            // Every listing row of the run says what its generation's
            // records add up to (listing reads them instead).
            match index.stale_listings() {
                Ok(stale) => {
                    let run = index
                        .run_path()
                        .map_or_else(String::new, |p| p.display().to_string());
                    for (l, now) in stale {
                        let said = |l: &crate::index::Listing| {
                            format!(
                                "{} records from {} to {}",
                                l.count, l.ts_range.0, l.ts_range.1
                            )
                        };
                        problems.push(format!(
                            "{run}: the listing row of generation {} says {}, its records {}; the index run is derived data: remove index.manifest and open the store writable to rebuild it",
                            crate::ids::hex(&l.tid),
                            said(&l),
                            now.map_or_else(|| "are gone".to_owned(), |n| format!("say {}", said(&n)))
                        ));
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
            let mut entries = IdMap::default();
            for t in index.transcripts() {
                let t = match t {
                    Ok(t) => t,
                    Err(e) => {
                        problems.push(e.to_string());
                        break;
                    }
                };
                match index.records(&t) {
                    Ok(records) => {
                        entries.insert(t.tid, (t.into_owned(), records));
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
            (n, entries)
        };
        let segs: Vec<(u64, Arc<Segment>)> = engine
            .segments
            .read()
            .iter()
            .map(|(k, v)| (*k, Arc::clone(v)))
            .collect();
        let (last_id, last_len) = engine.writer.lock().last_segment();
        let mut seen_live = 0u64;
        for (id, seg) in segs {
            let bytes = match &*seg {
                Segment::Sealed { path, .. } => {
                    // A segment not read since open is opened and checked
                    // now: what fails is a problem found, like a bad header.
                    let file = match seg.file() {
                        Ok(f) => f,
                        Err(e) => {
                            problems.push(e.to_string());
                            continue;
                        }
                    };
                    let len = file.metadata().at(path)?.len();
                    seg.read(0, usize::try_from(len).unwrap_or(usize::MAX))?
                        .into_owned()
                }
                Segment::Active { .. } => seg.read(0, last_len as usize)?.into_owned(),
            };
            let header = match segment::check_header(seg.path(), &bytes, id) {
                Ok(h) => h,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            let rules = segment::ScanRules {
                id,
                header,
                last: id == last_id,
                salvage: true,
                acknowledged: marks
                    .filter(|m| m.segment == id)
                    .map_or(0, |m| m.segment_len),
            };
            let mut records = Vec::new();
            let scan = segment::scan(
                seg.path(),
                &bytes,
                SEGMENT_HEADER,
                rules,
                |off, size, rec| {
                    records.push((off, size, rec.header.tid, rec.header.seq));
                },
            )?;
            for d in scan.damage {
                problems.push(format!(
                    "corruption in {} at offset {}: {}{}",
                    seg.path().display(),
                    d.offset,
                    d.reason,
                    if d.skipped > 0 {
                        format!(" ({} bytes)", d.skipped)
                    } else {
                        String::new()
                    }
                ));
            }
            for (off, size, tid, seq) in records {
                report.records += 1;
                let Some((t, t_records)) = entries.get(&tid) else {
                    report.dead_records += 1;
                    continue;
                };
                let Some(r) = t_records
                    .iter()
                    .find(|r| r.seq == seq && r.loc.seg == id && r.loc.off == off)
                else {
                    report.dead_records += 1;
                    continue;
                };
                debug_assert_eq!(r.loc.len as usize, size);
                seen_live += 1;
                // The current entry, under the index's lock: the slots it
                // names are the ones on disk.
                let keys = match engine.index.read().transcript(&tid) {
                    Ok(Some(current)) => engine.keys.get(&current),
                    Ok(None) => {
                        report.dead_records += 1;
                        continue;
                    }
                    Err(e) => Err(e),
                };
                let keys = match keys {
                    Ok(keys) => keys,
                    Err(e) => {
                        problems.push(e.to_string());
                        continue;
                    }
                };
                match read_message(&seg, r, t, &keys) {
                    Ok(_) => report.live_records += 1,
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        if seen_live != index_records {
            problems.push(format!(
                "index lists {index_records} live records but the segments hold {seen_live}"
            ));
        }
        // The audit log as it is on disk now.
        let audit_marks = marks.map_or(AuditMarks::default(), |m| AuditMarks {
            entries: m.audit_entries,
            bytes: m.audit_bytes,
            ..AuditMarks::default()
        });
        let audit_path = engine.dir.join(AUDIT_FILE);
        let (audit, recovery) = AuditLog::read_all(&engine.dir, audit_marks)?;
        report.audit_entries = audit.len() as u64;
        for (offset, reason) in recovery.damage {
            problems.push(format!(
                "corruption in {} at offset {offset}: {reason}",
                audit_path.display()
            ));
        }
        // What the log destroyed, held against the generations listed above;
        // each found is looked up again under the writer's lock, so that an
        // operation logged since the listing and still under way is not
        // taken for one that left keys behind.
        let destroyed = Destroyed::of(&audit);
        let found: Vec<_> = entries
            .values()
            .filter_map(|(t, _)| destroyed.residue(t))
            .collect();
        if !found.is_empty() {
            let _w = engine.writer.lock();
            let index = engine.index.read();
            for r in found {
                if let Ok(Some(t)) = index.transcript(&r.tid)
                    && let Some(r) = destroyed.residue(&t)
                {
                    problems.push(residue_problem(&engine.keyring_path, &destroyed, &r));
                }
            }
        }
        // The policy file as it is on disk now, and what it names.
        match Policy::load(&engine.dir) {
            Err(e) => problems.push(e.to_string()),
            Ok(policy) => {
                let index = engine.index.read();
                let policy_path = engine.dir.join(POLICY_FILE);
                let unknown_visitor = |hex: &str| {
                    parse_hex(hex).is_none_or(|v| !index.knows_visitor(&v).unwrap_or(true))
                };
                for (what, map) in [
                    ("a legal hold", &policy.visitor_holds),
                    ("a restriction", &policy.restricted),
                ] {
                    let dangling = map.keys().filter(|k| unknown_visitor(k)).count();
                    if dangling > 0 {
                        problems.push(format!(
                            "{}: {dangling} entries of {what} name no visitor of this store",
                            policy_path.display()
                        ));
                    }
                }
                let dangling = policy
                    .transcript_holds
                    .keys()
                    .filter(|id| index.by_caller(id).is_ok_and(|t| t.is_none()))
                    .count();
                if dangling > 0 {
                    problems.push(format!(
                        "{}: {dangling} legal holds name no transcript of this store",
                        policy_path.display()
                    ));
                }
            }
        }
        report.problems = problems.0;
        Ok(report)
    }

    /// Sizes, counts and garbage.
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] if a record-location file it reads the message
    /// counts from is damaged, [`crate::Error::Io`] if one cannot be read.
    pub fn stats(&self) -> Result<Stats> {
        let engine = &*self.engine;
        let (units, unit, (used, free), active) = {
            let w = engine.writer.lock();
            (
                u64::from(w.keyring.len()),
                w.keyring.unit_bytes(),
                w.keyring.cell_counts(),
                w.last_segment(),
            )
        };
        let mut s = Stats {
            keyring_bytes: units * unit,
            keyring_unit_bytes: unit,
            keyring_slots_free: free,
            keyring_slots_used: used,
            current_rules_version: RULES_VERSION,
            ..Stats::default()
        };
        let index = engine.index.read();
        for t in index.transcripts() {
            let t = t?;
            if t.is_empty() {
                continue;
            }
            s.transcripts += 1;
            if !t.has_pii() {
                s.transcripts_redacted += 1;
            }
            *s.rules_versions.entry(t.rules_version).or_default() += 1;
        }
        s.messages = index.record_count()?;
        s.visitors = index.directory_len() as u64;
        for id in engine.segments.read().keys() {
            // The active segment's file runs on with preallocated zeros.
            let bytes = if *id == active.0 {
                active.1
            } else {
                std::fs::metadata(engine.dir.join(segment::file_name(*id))).map_or(0, |m| m.len())
            };
            let usage = index.usage().get(id).copied().unwrap_or_default();
            s.segments += 1;
            s.segment_bytes += bytes;
            s.live_bytes += usage.live;
            s.dead_bytes += usage.dead;
            s.per_segment.push((*id, bytes, usage));
        }
        Ok(s)
    }
}

/// Sizes and counts.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Number of segment files.
    pub segments: usize,
    /// Bytes of data in segment files (without the zeros written ahead of
    /// the active segment's data).
    pub segment_bytes: u64,
    /// Bytes of records that can still be read.
    pub live_bytes: u64,
    /// Bytes of records that can never be read again (reclaimable by compaction).
    pub dead_bytes: u64,
    /// Bytes of the keyring file.
    pub keyring_bytes: u64,
    /// Keyring cells in use (64 bytes each; a slot takes 1 to 8 of them).
    /// For a keyring of format 1 or 2 (opened read-only, so not yet
    /// rewritten), 512-byte slots.
    pub keyring_slots_used: u64,
    /// Keyring cells free for reuse (of the same size).
    pub keyring_slots_free: u64,
    /// Bytes of the unit the two counts above are in: 64 (a cell), or 512
    /// (a slot of a keyring of format 1 or 2).
    pub keyring_unit_bytes: u64,
    /// Live transcripts.
    pub transcripts: u64,
    /// Transcripts whose PII key is destroyed.
    pub transcripts_redacted: u64,
    /// Visitors in the directory.
    pub visitors: u64,
    /// Live message records.
    pub messages: u64,
    /// Transcripts per detection-rules version.
    pub rules_versions: BTreeMap<u16, u64>,
    /// The current detection-rules version.
    pub current_rules_version: u16,
    /// Per segment: (id, data bytes, usage).
    pub per_segment: Vec<(u64, u64, SegmentUsage)>,
}

/// What `verify` found.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records read and checked (frames, checksums).
    pub records: u64,
    /// Live records decrypted and joined successfully.
    pub live_records: u64,
    /// Records that can never be read again (not an error).
    pub dead_records: u64,
    /// Keyring slots in use, each decoded and checked.
    pub keyring_slots: u64,
    /// Audit log entries checked.
    pub audit_entries: u64,
    /// Every problem found, naming file and offset. Empty means sound.
    pub problems: Vec<String>,
}

/// The problem of keys the audit log says were destroyed and that are
/// still there.
fn residue_problem(keyring: &std::path::Path, destroyed: &Destroyed, r: &Residue) -> String {
    let op = destroyed.entry(r.seq).map_or("?", |e| e.op.as_str());
    let slots: Vec<String> = r.slots.iter().map(u32::to_string).collect();
    format!(
        "{}: keyring slot(s) {} still hold keys of transcript generation {} (visitor {}) that audit entry {} ({op}) destroyed; `shredlog reapply` destroys them again",
        keyring.display(),
        slots.join(", "),
        crate::ids::hex(&r.tid),
        crate::ids::hex(&r.vid),
        r.seq
    )
}

/// Problems in the order found, each once.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, p: String) {
        if !self.0.contains(&p) {
            self.0.push(p);
        }
    }
}

impl VerifyReport {
    /// Whether the store is sound.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}
