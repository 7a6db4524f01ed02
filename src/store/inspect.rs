//! `verify` and `stats`.

use super::*;

impl Store {
    /// Checks every record and keyring slot: checksums, decryption, joining.
    ///
    /// # Errors
    /// [`Error::Io`] if files cannot be read; damage is reported in the report.
    pub fn verify(&self) -> Result<VerifyReport> {
        let inner = &*self.inner;
        let mut report = VerifyReport::default();
        // Keyring.
        {
            let w = inner.writer.lock();
            let bytes = std::fs::read(&inner.keyring_path).at(&inner.keyring_path)?;
            for (i, chunk) in bytes.chunks(crate::keyring::SLOT_SIZE).enumerate().skip(1) {
                report.keyring_slots += 1;
                let Ok(slot) = <&[u8; crate::keyring::SLOT_SIZE]>::try_from(chunk) else {
                    report.problems.push(format!("keyring: slot {i} truncated"));
                    continue;
                };
                if let Err(reason) = w.keyring.decode_slot(i as u32, slot) {
                    report.problems.push(format!(
                        "corruption in {} at offset {}: keyring slot {i}: {reason}",
                        inner.keyring_path.display(),
                        i * crate::keyring::SLOT_SIZE
                    ));
                }
            }
        }
        let (index_records, entries): (u64, crate::index::IdMap<TranscriptEntry>) = {
            let index = inner.index.read();
            let n = index
                .transcripts
                .values()
                .map(|t| t.records.len() as u64)
                .sum();
            (n, index.transcripts.clone())
        };
        let segs: Vec<(u64, Arc<Segment>)> = inner
            .segments
            .read()
            .iter()
            .map(|(k, v)| (*k, Arc::clone(v)))
            .collect();
        let active_len = inner.writer.lock().active.len;
        let mut seen_live = 0u64;
        for (id, seg) in segs {
            let bytes = match &*seg {
                Segment::Sealed { map, .. } => map.to_vec(),
                Segment::Active { .. } => seg.read(0, active_len as usize)?.into_owned(),
            };
            if let Err(e) = segment::check_header(seg.path(), &bytes, id) {
                report.problems.push(e.to_string());
                continue;
            }
            let mut records = Vec::new();
            let scan = segment::scan(
                seg.path(),
                &bytes,
                SEGMENT_HEADER,
                false,
                true,
                |off, size, rec| {
                    records.push((off, size, rec.header.tid, rec.header.seq));
                },
            )?;
            for d in scan.damage {
                report.problems.push(format!(
                    "corruption in {} at offset {}: {} ({} bytes)",
                    seg.path().display(),
                    d.offset,
                    d.reason,
                    d.skipped
                ));
            }
            for (off, size, tid, seq) in records {
                report.records += 1;
                let Some(t) = entries.get(&tid) else {
                    report.dead_records += 1;
                    continue;
                };
                let Some(r) = t
                    .records
                    .iter()
                    .find(|r| r.seq == seq && r.loc.seg == id && r.loc.off == off)
                else {
                    report.dead_records += 1;
                    continue;
                };
                debug_assert_eq!(r.loc.len as usize, size);
                seen_live += 1;
                match read_message(&seg, r, t) {
                    Ok(_) => report.live_records += 1,
                    Err(e) => report.problems.push(e.to_string()),
                }
            }
        }
        if seen_live != index_records {
            report.problems.push(format!(
                "index lists {index_records} live records but the segments hold {seen_live}"
            ));
        }
        Ok(report)
    }

    /// Sizes, counts and garbage.
    pub fn stats(&self) -> Stats {
        let inner = &*self.inner;
        let (slots, free, active) = {
            let w = inner.writer.lock();
            (
                u64::from(w.keyring.len()),
                w.keyring.free_count() as u64,
                (w.active.id, w.active.len),
            )
        };
        let mut s = Stats {
            keyring_bytes: slots * crate::keyring::SLOT_SIZE as u64,
            keyring_slots_free: free,
            keyring_slots_used: slots
                .saturating_sub(u64::from(crate::keyring::FIRST_DATA_SLOT) + free),
            current_rules_version: RULES_VERSION,
            ..Stats::default()
        };
        let index = inner.index.read();
        for t in index.transcripts.values() {
            if t.records.is_empty() {
                continue;
            }
            s.transcripts += 1;
            s.messages += t.records.len() as u64;
            if t.pii_key.is_none() {
                s.transcripts_redacted += 1;
            }
            *s.rules_versions.entry(t.rules_version).or_default() += 1;
        }
        s.visitors = index.by_email.len() as u64;
        for id in inner.segments.read().keys() {
            // The active segment's file runs on with preallocated zeros.
            let bytes = if *id == active.0 {
                active.1
            } else {
                std::fs::metadata(inner.dir.join(segment::file_name(*id))).map_or(0, |m| m.len())
            };
            let usage = index.usage.get(id).copied().unwrap_or_default();
            s.segments += 1;
            s.segment_bytes += bytes;
            s.live_bytes += usage.live;
            s.dead_bytes += usage.dead;
            s.per_segment.push((*id, bytes, usage));
        }
        s
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
    /// Keyring slots in use.
    pub keyring_slots_used: u64,
    /// Keyring slots free for reuse.
    pub keyring_slots_free: u64,
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
    /// Keyring slots checked.
    pub keyring_slots: u64,
    /// Every problem found, naming file and offset. Empty means sound.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether the store is sound.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}
