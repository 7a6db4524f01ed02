//! Keyring compaction: live slots above the smallest size that could hold
//! them are copied into free slots below it, the copies are synced, then the
//! originals are wiped and the file is truncated.
//!
//! A crash between the two syncs leaves two copies of a slot: two transcript
//! slots with one tid, or two directory entries with one visitor id. Open keeps
//! one of each and wipes the other (see `index_from_slots`); a PII slot that no
//! kept transcript slot names is wiped as an orphan. Both copies hold the same
//! keys, so nothing is lost either way.

use crate::error::Result;
use crate::index::Index;
use crate::keyring::{FIRST_DATA_SLOT, Keyring, PiiSlot, Slot, TranscriptSlot, VisitorSlot};

pub(super) fn relocate(keyring: &mut Keyring, index: &mut Index) -> Result<()> {
    let free = keyring.free_count() as u32;
    let target = keyring.len().saturating_sub(free).max(FIRST_DATA_SLOT);
    if target >= keyring.len() {
        return Ok(());
    }
    let mut old_slots = Vec::new();
    // Transcripts: both slots move together, so that a crash never leaves a
    // transcript slot naming a PII slot that was already wiped.
    let tids: Vec<_> = index
        .transcripts
        .values()
        .filter(|t| t.content_slot >= target || (t.pii_slot != 0 && t.pii_slot >= target))
        .map(|t| t.tid)
        .collect();
    for tid in tids {
        let Some(t) = index.transcripts.get_mut(&tid) else {
            continue;
        };
        let mut pii_slot = t.pii_slot;
        if let Some(key) = &t.pii_key
            && t.pii_slot >= target
        {
            let new = keyring.allocate()?;
            keyring.write(
                new,
                &Slot::Pii(PiiSlot {
                    tid,
                    pii_key: key.clone(),
                }),
            )?;
            old_slots.push(t.pii_slot);
            pii_slot = new;
        }
        let content = keyring.allocate()?;
        keyring.write(
            content,
            &Slot::Transcript(TranscriptSlot {
                tid,
                vid: t.vid,
                content_key: t.content_key.clone(),
                pii_slot,
                rules_version: t.rules_version,
                created_millis: t.created_millis,
                caller_id: t.caller_id.clone(),
            }),
        )?;
        old_slots.push(t.content_slot);
        t.content_slot = content;
        t.pii_slot = pii_slot;
    }
    for (vid, v) in index.visitors.iter_mut() {
        if v.slot >= target && v.slot != 0 && !v.email.is_empty() {
            let new = keyring.allocate()?;
            keyring.write(
                new,
                &Slot::Visitor(VisitorSlot {
                    vid: *vid,
                    email: v.email.clone(),
                }),
            )?;
            old_slots.push(v.slot);
            v.slot = new;
        }
    }
    keyring.sync()?;
    for slot in old_slots {
        keyring.wipe(slot)?;
    }
    keyring.sync()?;
    keyring.truncate_free_tail()
}
