//! Recovery at open: the index from the keyring's slots, the checkpoint,
//! the scan of what it does not cover, torn tails.

use super::*;

/// Builds the index's key and directory part from the keyring's slots; also
/// returns slots to wipe: PII slots no transcript slot names (left by a
/// deletion cut short) and second copies left by a keyring compaction cut short.
///
/// Runs at every open over every slot, so it moves what it takes out of the
/// slots instead of copying it.
pub(super) fn index_from_slots(slots: Vec<(u32, Slot)>) -> (Index, Vec<u32>) {
    let mut index = Index::default();
    let mut pii: HashMap<u32, PiiSlot, std::hash::BuildHasherDefault<crate::index::IdHasher>> =
        HashMap::default();
    let mut transcripts: Vec<(u32, TranscriptSlot)> = Vec::new();
    let mut wipe = Vec::new();
    for (i, slot) in slots {
        match slot {
            Slot::Transcript(t) => transcripts.push((i, t)),
            Slot::Pii(p) => {
                pii.insert(i, p);
            }
            Slot::Visitor(v) if index.visitors.contains_key(&v.vid) => wipe.push(i),
            Slot::Visitor(v) => {
                index.by_email.insert(v.email.clone(), v.vid);
                index.visitors.insert(
                    v.vid,
                    VisitorEntry {
                        email: v.email,
                        slot: i,
                        transcripts: Default::default(),
                        tids: Default::default(),
                    },
                );
            }
        }
    }
    // Of two copies of one transcript slot (a keyring compaction cut short),
    // keep the one whose PII key resolves, else the lower slot. Copies are
    // rare: find them with a map from tid to the chosen copy's position.
    let resolves = |t: &TranscriptSlot| pii.get(&t.pii_slot).is_some_and(|p| p.tid == t.tid);
    let mut chosen: crate::index::IdMap<usize> = Default::default();
    chosen.reserve(transcripts.len());
    let mut keep = vec![true; transcripts.len()];
    for (pos, (slot, t)) in transcripts.iter().enumerate() {
        let Some(&other) = chosen.get(&t.tid) else {
            chosen.insert(t.tid, pos);
            continue;
        };
        let (other_slot, other_t) = &transcripts[other];
        let better = (!resolves(t), *slot) < (!resolves(other_t), *other_slot);
        let loser = if better {
            chosen.insert(t.tid, pos);
            other
        } else {
            pos
        };
        keep[loser] = false;
        wipe.push(transcripts[loser].0);
    }
    drop(chosen);
    index.transcripts.reserve(transcripts.len());
    let mut named = std::collections::HashSet::with_capacity(transcripts.len());
    for ((slot, t), keep) in transcripts.into_iter().zip(keep) {
        if !keep {
            continue;
        }
        let pii_key = match pii.get(&t.pii_slot) {
            Some(p) if p.tid == t.tid => {
                named.insert(t.pii_slot);
                Some(p.pii_key.clone())
            }
            _ => None,
        };
        // If two generations share a caller id, the newer wins.
        let newer = index
            .by_caller
            .get(&t.caller_id)
            .and_then(|old| index.transcripts.get(old))
            .is_none_or(|old| old.created_millis <= t.created_millis);
        if newer {
            index.by_caller.insert(t.caller_id.clone(), t.tid);
        }
        index.insert_transcript(TranscriptEntry {
            tid: t.tid,
            vid: t.vid,
            pii_slot: if pii_key.is_some() { t.pii_slot } else { 0 },
            content_slot: slot,
            content_key: t.content_key,
            pii_key,
            rules_version: t.rules_version,
            created_millis: t.created_millis,
            caller_id: t.caller_id,
            records: Vec::new(),
            ts_range: None,
        });
    }
    wipe.extend(pii.keys().copied().filter(|s| !named.contains(s)));
    (index, wipe)
}

/// Loads the checkpoint, scans what it does not cover, truncates a torn tail,
/// and opens the segments for reading and appending.
pub(super) fn recover_segments(
    dir: &Path,
    options: &Options,
    checkpoint: Option<Checkpoint>,
    index: &mut Index,
    report: &mut RecoveryReport,
) -> Result<(Active, BTreeMap<u64, Arc<Segment>>)> {
    // A compaction cut short leaves its unfinished output behind.
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.to_str().is_some_and(|p| p.ends_with(".seg.tmp")) {
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    let mut ids = segment::list(dir)?;
    // A last segment too short to hold its header was cut off while being
    // created (or truncated): it holds no records.
    while let Some(&last) = ids.last() {
        let path = dir.join(segment::file_name(last));
        let len = std::fs::metadata(&path).at(&path)?.len();
        if len >= SEGMENT_HEADER {
            break;
        }
        std::fs::remove_file(&path).at(&path)?;
        crate::fsutil::sync_dir(dir)?;
        report.truncated = Some((path, 0, len));
        ids.pop();
    }
    if ids.is_empty() {
        let active = Active::create(dir, 1)?;
        let mut segs = BTreeMap::new();
        segs.insert(1, Arc::new(active.reader()));
        return Ok((active, segs));
    }

    // Where scanning starts: (segment id, offset).
    let mut start: (u64, u64) = (ids.first().copied().unwrap_or(1), SEGMENT_HEADER);
    if let Some(ckpt) = checkpoint.filter(|c| checkpoint_fits(dir, c, &ids)) {
        for (tid, recs) in ckpt.transcripts {
            index.load_records(&tid, recs);
        }
        for (id, dead, since) in ckpt.dead {
            let u = index.usage.entry(id).or_default();
            u.dead += dead;
            u.dead_since = since;
        }
        if let Some(&(id, len)) = ckpt.segments.last() {
            start = (id, len);
        }
        report.checkpoint_used = true;
    }

    let mut segs = BTreeMap::new();
    let last_id = ids.last().copied().unwrap_or(1);
    let mut active = None;
    for &id in &ids {
        let path = dir.join(segment::file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(id == last_id)
            .open(&path)
            .at(&path)?;
        let is_last = id == last_id;
        if id >= start.0 {
            let map = segment::map(&path, &file)?;
            segment::check_header(&path, &map, id)?;
            let from = if id == start.0 {
                start.1
            } else {
                SEGMENT_HEADER
            };
            let mut scanned = 0u64;
            let scan = segment::scan(
                &path,
                &map,
                from,
                is_last,
                options.salvage,
                |off, size, rec| {
                    scanned += 1;
                    let r = RecordRef {
                        seq: rec.header.seq,
                        ts: rec.header.ts_millis,
                        loc: Loc {
                            seg: id,
                            off,
                            len: size as u32,
                        },
                        pii_len: rec.header.pii_len,
                    };
                    // A record already indexed (from the checkpoint, or a second
                    // copy left by a compaction cut short) counts as dead.
                    index.add_record(&rec.header.tid, r);
                },
            )?;
            report.records_scanned += scanned;
            for d in scan.damage {
                report
                    .skipped
                    .push((path.clone(), d.offset, d.skipped, d.reason));
            }
            let file_len = map.len() as u64;
            drop(map);
            if let Some(at) = scan.torn_at {
                file.set_len(at).at(&path)?;
                file.sync_all().at(&path)?;
                report.truncated = Some((path.clone(), at, file_len - at));
            }
            if is_last {
                active = Some(Active::reopen(path.clone(), id, scan.end)?);
                if scan.end < file_len && scan.torn_at.is_none() {
                    // Zero-filled space after the data: cut it off so appends
                    // continue right after the last record.
                    file.set_len(scan.end).at(&path)?;
                    file.sync_all().at(&path)?;
                }
            }
        }
        if is_last {
            if active.is_none() {
                // Covered by the checkpoint up to its end: append after it.
                let len = file.metadata().at(&path)?.len();
                active = Some(Active::reopen(path.clone(), id, len)?);
            }
            if let Some(a) = &active {
                segs.insert(id, Arc::new(a.reader()));
            }
        } else {
            let map = segment::map(&path, &file)?;
            if id < start.0 {
                segment::check_header(&path, &map, id)?;
            }
            segs.insert(id, Arc::new(Segment::Sealed { path, map }));
        }
    }
    let active = active.ok_or_else(|| Error::corrupt(dir, 0, "no active segment"))?;
    Ok((active, segs))
}

/// A checkpoint is usable only if every segment it covers still exists, at
/// least as long as it was, and no older segment is missing from it.
fn checkpoint_fits(dir: &Path, ckpt: &Checkpoint, ids: &[u64]) -> bool {
    let Some(&(last_covered, _)) = ckpt.segments.last() else {
        return false;
    };
    let covered: Vec<u64> = ckpt.segments.iter().map(|s| s.0).collect();
    let older: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|&id| id <= last_covered)
        .collect();
    if covered != older {
        return false;
    }
    ckpt.segments.iter().all(|(id, len)| {
        std::fs::metadata(dir.join(segment::file_name(*id))).is_ok_and(|m| m.len() >= *len)
            && *len >= SEGMENT_HEADER
    })
}
