//! Recovery at open: the index from the keyring's slots, the checkpoint,
//! the scan of what it does not cover, torn tails.

use super::*;

/// Builds the index's key and directory part from the keyring's slots, fed
/// one at a time as the keyring is read ([`SlotIndexer::add`]); then
/// [`SlotIndexer::finish`] also returns the slots to wipe: PII slots no
/// transcript slot names (left by a deletion cut short) and second copies
/// left by a keyring compaction cut short.
///
/// Runs at every open over every slot, so it moves what it takes out of the
/// slots instead of copying it.
#[derive(Default)]
pub(super) struct SlotIndexer {
    index: Index,
    pii: HashMap<u32, PiiSlot, std::hash::BuildHasherDefault<crate::index::IdHasher>>,
    transcripts: Vec<(u32, TranscriptSlot)>,
    wipe: Vec<u32>,
}

impl SlotIndexer {
    /// Takes slot `i`.
    pub(super) fn add(&mut self, i: u32, slot: Slot) {
        let index = &mut self.index;
        match slot {
            Slot::Transcript(t) => self.transcripts.push((i, t)),
            Slot::Pii(p) => {
                self.pii.insert(i, p);
            }
            Slot::Visitor(v) if index.visitors.contains_key(&v.vid) => self.wipe.push(i),
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

    /// The index, and the slots to wipe.
    pub(super) fn finish(self) -> (Index, Vec<u32>) {
        let SlotIndexer {
            mut index,
            mut pii,
            transcripts,
            mut wipe,
        } = self;
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
        index.by_caller.reserve(transcripts.len());
        for ((slot, t), keep) in transcripts.into_iter().zip(keep) {
            if !keep {
                continue;
            }
            // A transcript takes its PII key out of the map; what is left at the
            // end is named by no transcript.
            let pii_key = match pii.remove(&t.pii_slot) {
                Some(p) if p.tid == t.tid => Some(p.pii_key),
                Some(p) => {
                    pii.insert(t.pii_slot, p);
                    None
                }
                None => None,
            };
            // If two generations share a caller id, the newer wins.
            match index.by_caller.entry(t.caller_id.clone()) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(t.tid);
                }
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let newer = index
                        .transcripts
                        .get(e.get())
                        .is_none_or(|old| old.created_millis <= t.created_millis);
                    if newer {
                        e.insert(t.tid);
                    }
                }
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
        wipe.extend(pii.keys().copied());
        (index, wipe)
    }
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
        index.load_checkpoint_records(ckpt.transcripts);
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
                // Zero-filled space after the data (preallocated, or left by a
                // crash) is cut off by `reopen`: appends continue right after
                // the last record.
                active = Some(Active::reopen(path.clone(), id, scan.end)?);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(tid: u8, vid: u8, pii_slot: u32, caller: &str, created: i64) -> Slot {
        Slot::Transcript(TranscriptSlot {
            tid: [tid; 16],
            vid: [vid; 16],
            content_key: Key::random().unwrap(),
            pii_slot,
            rules_version: 1,
            created_millis: created,
            caller_id: caller.into(),
        })
    }

    fn pii(tid: u8) -> Slot {
        Slot::Pii(PiiSlot {
            tid: [tid; 16],
            pii_key: Key::random().unwrap(),
        })
    }

    fn visitor(vid: u8, email: &str) -> Slot {
        Slot::Visitor(VisitorSlot {
            vid: [vid; 16],
            email: email.into(),
        })
    }

    #[test]
    fn slots_become_the_index_and_leftovers_are_listed_for_wiping() {
        let slots = vec![
            (2, visitor(9, "ann@example.com")),
            (3, pii(1)),
            // Transcript 1 and a second copy of it (a keyring compaction cut
            // short) whose PII slot does not resolve: the copy goes.
            (4, transcript(1, 9, 3, "t-1", 10)),
            (5, transcript(1, 9, 6, "t-1", 10)),
            // A PII key no transcript names (a deletion cut short).
            (6, pii(7)),
            // Transcript 2 with a PII key, and an older generation of the same
            // caller id without one: the newer generation gets the caller id.
            (8, transcript(2, 9, 10, "t-2", 30)),
            (10, pii(2)),
            (11, transcript(3, 9, 0, "t-2", 20)),
            // A second directory entry for visitor 9.
            (12, visitor(9, "ann@example.com")),
            // Two copies again, this time the higher one resolves its PII key.
            (13, transcript(4, 9, 99, "t-4", 40)),
            (14, transcript(4, 9, 15, "t-4", 40)),
            (15, pii(4)),
        ];
        let mut indexer = SlotIndexer::default();
        for (i, slot) in slots {
            indexer.add(i, slot);
        }
        let (index, mut wipe) = indexer.finish();
        wipe.sort_unstable();
        assert_eq!(wipe, vec![5, 6, 12, 13]);
        assert_eq!(index.transcripts.len(), 4);
        let t4 = &index.transcripts[&[4; 16]];
        assert_eq!((t4.content_slot, t4.pii_slot), (14, 15));
        let t1 = &index.transcripts[&[1; 16]];
        assert_eq!((t1.content_slot, t1.pii_slot), (4, 3));
        assert!(t1.pii_key.is_some());
        let t3 = &index.transcripts[&[3; 16]];
        assert_eq!((t3.pii_slot, t3.pii_key.is_none()), (0, true));
        assert_eq!(index.by_caller["t-1"], [1; 16]);
        assert_eq!(index.by_caller["t-2"], [2; 16], "the newer generation");
        assert_eq!(index.by_email["ann@example.com"], [9; 16]);
        let v = &index.visitors[&[9; 16]];
        assert_eq!((v.slot, v.tids.len()), (2, 4));
    }
}
