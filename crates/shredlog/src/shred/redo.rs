//! Finishing, at open, what the log says was started: the key destructions of
//! erasures, deletions, retention runs and committed rewrites whose wipes did
//! not all reach the disk, and holds and restrictions the policy file does not
//! hold yet. This is the only repair an open makes by itself: it completes
//! requests the log shows were made (docs/FORMAT.md §8.2).

use super::apply::Shredder;
use super::intent::Intent;
use super::log::AuditEntry;
use crate::error::Result;
use crate::ids::hex;
use crate::policy::{Hold, Policy};

/// What [`finish_pending`] did.
#[derive(Default)]
pub(crate) struct Redone {
    /// (audit sequence number, operation) of each operation finished.
    pub ops: Vec<(u64, String)>,
    /// Keyring slots were wiped: sync the keyring.
    pub keyring_changed: bool,
    /// The policy changed: save it.
    pub policy_changed: bool,
}

/// Finishes every entry of `entries` (the log's tail after what is known
/// done) on `shredder` and `policy`.
pub(crate) fn finish_pending(
    shredder: &mut Shredder<'_>,
    entries: &[AuditEntry],
    policy: &mut Policy,
) -> Result<Redone> {
    let mut out = Redone::default();
    if policy.legacy {
        // A version-1 policy file was written before its entries were
        // logged: it holds every one of them.
        policy.audit_seq = entries.last().map_or(policy.audit_seq, |e| e.seq);
    }
    for e in entries {
        let Some(intent) = e.intent() else { continue };
        if intent.destroys_keys() {
            let applied = shredder.apply(&intent)?;
            if shredder.wipe.destroyed() && applied {
                out.keyring_changed = true;
                out.ops.push((e.seq, e.op.clone()));
            }
            // A restriction ends with the visitor's personal data.
            if let Intent::EraseVisitor { visitor } | Intent::DeleteVisitor { visitor } = &intent {
                out.policy_changed |= policy.restricted.remove(&hex(&visitor.0)).is_some();
            }
        } else if e.seq > policy.audit_seq && apply_to_policy(policy, e, &intent) {
            policy.audit_seq = e.seq;
            out.policy_changed = true;
            out.ops.push((e.seq, e.op.clone()));
        }
    }
    Ok(out)
}

/// Applies a hold or restriction to the policy (`reference` and `since` from
/// the entry); false for other intents.
pub(crate) fn apply_to_policy(p: &mut Policy, e: &AuditEntry, intent: &Intent) -> bool {
    let hold = || Hold {
        reference: e.reference.clone(),
        since: e.at.clone(),
    };
    match intent {
        Intent::Hold {
            visitor: Some(v),
            place,
            ..
        } => {
            if *place {
                p.visitor_holds.insert(hex(&v.0), hold());
            } else {
                p.visitor_holds.remove(&hex(&v.0));
            }
        }
        Intent::Hold {
            transcript: Some(t),
            place,
            ..
        } => {
            if *place {
                p.transcript_holds.insert(t.clone(), hold());
            } else {
                p.transcript_holds.remove(t);
            }
        }
        Intent::Restriction { visitor, on } => {
            if *on {
                p.restricted.insert(hex(&visitor.0), hold());
            } else {
                p.restricted.remove(&hex(&visitor.0));
            }
        }
        _ => return false,
    }
    true
}
