//! Keyring compaction: live slots above the smallest size that could hold
//! them are copied into the lowest free cells that fit them, the copies are synced, then the
//! originals are wiped and the file is truncated (docs/FORMAT.md §6.9).
//!
//! A crash between the two syncs leaves two copies of a slot: two transcript
//! slots with one tid, or two directory entries with one visitor id. Open uses
//! one of each (see `store::open`); the other is left for the next compaction.
//! Both copies hold the same keys, so nothing is lost either way.
//!
//! The caller says which slots are live; relocation reads their contents from
//! the file, so it needs neither the index nor the keys.

use super::{Keyring, Slot};
use crate::error::{Error, Result};
use crate::record::{Tid, Vid};

/// The live slots of one owner.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LiveSlots {
    /// A transcript generation: its transcript slot, and its PII slot while
    /// the PII key lives.
    Transcript {
        tid: Tid,
        content: u32,
        pii: Option<u32>,
    },
    /// A visitor's directory entry.
    Visitor { vid: Vid, slot: u32 },
}

/// Where a live slot went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Moved {
    Transcript {
        tid: Tid,
        content: u32,
        pii: Option<u32>,
    },
    Visitor {
        vid: Vid,
        slot: u32,
    },
}

/// Moves live slots from the end of the file into the lowest free cells
/// that fit them and cuts the file; returns what moved (the caller updates
/// its index).
pub(crate) fn relocate(keyring: &mut Keyring, live: &[LiveSlots]) -> Result<Vec<Moved>> {
    let free = keyring.free_count() as u32;
    let target = keyring.len().saturating_sub(free).max(keyring.first_data());
    if target >= keyring.len() {
        // Nothing to move: only the hole a growth left ahead is cut.
        keyring.truncate_free_tail()?;
        return Ok(Vec::new());
    }
    let mut old_slots = Vec::new();
    let mut moved = Vec::new();
    // Transcripts first: both slots move together, so that a crash never
    // leaves a transcript slot naming a PII slot that was already wiped.
    for l in live {
        let LiveSlots::Transcript { tid, content, pii } = *l else {
            continue;
        };
        if content < target && pii.is_none_or(|p| p < target) {
            continue;
        }
        let Some(Slot::Transcript(mut t)) = keyring.read_slot(content)? else {
            return Err(Error::Internal(format!(
                "keyring compaction: slot {content} is not the transcript slot the index names"
            )));
        };
        let mut new_pii = pii;
        if let Some(p) = pii.filter(|&p| p >= target) {
            let Some(slot @ Slot::Pii(_)) = keyring.read_slot(p)? else {
                return Err(Error::Internal(format!(
                    "keyring compaction: slot {p} is not the PII slot the index names"
                )));
            };
            if let Some(new) = keyring.allocate_below(&slot, p)? {
                keyring.write(new, &slot)?;
                old_slots.push(p);
                new_pii = Some(new);
            }
        }
        t.pii_slot = new_pii.unwrap_or(0);
        let slot = Slot::Transcript(t);
        let new_content = match keyring.allocate_below(&slot, content)? {
            Some(new) => {
                old_slots.push(content);
                new
            }
            // It stays; it is rewritten in place if its PII slot moved.
            None if new_pii != pii => content,
            None => continue,
        };
        keyring.write(new_content, &slot)?;
        moved.push(Moved::Transcript {
            tid,
            content: new_content,
            pii: new_pii,
        });
    }
    for l in live {
        let LiveSlots::Visitor { vid, slot } = *l else {
            continue;
        };
        // Entries in the directory's table stay where their hash puts them.
        if slot < target || keyring.in_directory_table(slot) {
            continue;
        }
        let Some(v @ Slot::Visitor(_)) = keyring.read_slot(slot)? else {
            return Err(Error::Internal(format!(
                "keyring compaction: slot {slot} is not the directory entry the index names"
            )));
        };
        let Some(new) = keyring.allocate_below(&v, slot)? else {
            continue;
        };
        keyring.write(new, &v)?;
        old_slots.push(slot);
        moved.push(Moved::Visitor { vid, slot: new });
    }
    keyring.sync()?;
    for slot in old_slots {
        keyring.wipe(slot)?;
    }
    keyring.sync()?;
    keyring.truncate_free_tail()?;
    Ok(moved)
}
