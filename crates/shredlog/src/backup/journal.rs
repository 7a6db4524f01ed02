//! The erasure journal at a backup destination (`journal/FROM-TO`): what
//! every erasure, deletion, retention run and rewrite (rectifications are
//! rewrites) destroyed, as the random ids of the audit entries' intents — no
//! email, no caller id, no reference, no personal data.
//!
//! An object covers the audit entries `FROM..=TO` (20-digit decimal numbers)
//! and lists the key-destroying ones among them: a body line of compact JSON
//! `{"format":1,"from":F,"to":T,"records":[{"seq":S,"intent":{…}}]}` and a
//! line with the body's SHA-256 in hex. Objects are only ever added; they
//! cover the log without gaps from the first audit entry on, so a restore can
//! tell a missing object from a quiet period.

use serde::{Deserialize, Serialize};

use super::{Target, damaged, sha256_hex, split_last_line};
use crate::error::{Error, Result};
use crate::shred::{AuditEntry, Intent};

pub(crate) const JOURNAL_PREFIX: &str = "journal/";

/// One key-destroying operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    /// The audit entry's sequence number in the store the journal belongs to.
    pub seq: u64,
    pub intent: Intent,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    format: u32,
    from: u64,
    to: u64,
    records: Vec<Record>,
}

/// The journal as found at a destination.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// (from, to, object name) of every object, sorted by `from`.
    pub objects: Vec<(u64, u64, String)>,
}

fn object_name(from: u64, to: u64) -> String {
    format!("{JOURNAL_PREFIX}{from:020}-{to:020}")
}

fn parse_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix(JOURNAL_PREFIX)?;
    let (a, b) = rest.split_once('-')?;
    if a.len() != 20 || b.len() != 20 {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl Journal {
    /// Lists the journal's objects.
    pub(crate) fn list(target: &dyn Target) -> Result<Journal> {
        let mut objects: Vec<(u64, u64, String)> = target
            .list(JOURNAL_PREFIX)?
            .into_iter()
            .filter_map(|n| parse_name(&n).map(|(a, b)| (a, b, n)))
            .collect();
        objects.sort();
        Ok(Journal { objects })
    }

    /// The last audit entry the journal covers without a gap from its first
    /// object on (0 for an empty journal). Pruning removes objects from the
    /// front only; a gap (an object deleted by hand) ends it, and the next
    /// sync covers the gap again from the store's own log.
    pub(crate) fn end(&self) -> u64 {
        let mut end: Option<u64> = None;
        for (from, to, _) in &self.objects {
            end = match end {
                None => Some(*to),
                Some(e) if *from <= e + 1 => Some(e.max(*to)),
                Some(_) => break,
            };
        }
        end.unwrap_or(0)
    }

    /// Reads the records after `after`, checking that the objects cover
    /// every entry from `after + 1` through `through` and that each is
    /// intact (an error naming the object otherwise). Records come sorted
    /// by `seq`, each once.
    pub(crate) fn records_after(
        &self,
        target: &dyn Target,
        after: u64,
        through: u64,
    ) -> Result<Vec<Record>> {
        let mut covered = after;
        let mut records = std::collections::BTreeMap::new();
        for (from, to, name) in &self.objects {
            if *to <= after {
                continue;
            }
            if *from > covered + 1 {
                break;
            }
            let bytes = target.get(name)?.ok_or_else(|| Error::BackupDamaged {
                object: name.clone(),
                reason: "is missing (listed, then gone)".into(),
            })?;
            for r in parse(name, &bytes, *from, *to)? {
                if r.seq > after {
                    records.insert(r.seq, r);
                }
            }
            covered = covered.max(*to);
        }
        if covered < through {
            return Err(Error::BackupDamaged {
                object: object_name(covered + 1, through),
                reason: format!(
                    "is missing: the erasure journal must cover audit entries {} to {through} (a journal object was deleted?)",
                    covered + 1
                ),
            });
        }
        Ok(records.into_values().collect())
    }

    /// Appends an object covering `entries` with `seq` in `(end, through]`
    /// (nothing if there are none). Returns the records written.
    pub(crate) fn append(
        &self,
        target: &dyn Target,
        entries: &[AuditEntry],
        through: u64,
    ) -> Result<usize> {
        let from = self.end() + 1;
        if through < from {
            return Ok(0);
        }
        let records: Vec<Record> = entries
            .iter()
            .filter(|e| e.seq >= from && e.seq <= through)
            .filter_map(|e| {
                let intent = e.intent()?;
                intent
                    .destroys_keys()
                    .then_some(Record { seq: e.seq, intent })
            })
            .collect();
        let body = serde_json::to_vec(&Body {
            format: 1,
            from,
            to: through,
            records,
        })
        .map_err(|e| Error::Internal(format!("journal encoding: {e}")))?;
        let mut out = body.clone();
        out.push(b'\n');
        out.extend_from_slice(sha256_hex(&body).as_bytes());
        out.push(b'\n');
        let n = serde_json::from_slice::<Body>(&body)
            .map(|b| b.records.len())
            .unwrap_or(0);
        target.put(&object_name(from, through), &out)?;
        Ok(n)
    }

    /// Deletes the objects that only cover entries up to `upto` (no retained
    /// point needs them). Returns how many.
    pub(crate) fn prune(&self, target: &dyn Target, upto: u64) -> Result<usize> {
        let mut n = 0;
        for (_, to, name) in &self.objects {
            if *to <= upto {
                target.delete(name)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

fn parse(name: &str, bytes: &[u8], from: u64, to: u64) -> Result<Vec<Record>> {
    let (body, sum) = split_last_line(name, bytes)?;
    if sha256_hex(body).as_bytes() != sum {
        return Err(damaged(
            name,
            "does not match its checksum (altered or cut short)",
        ));
    }
    let b: Body =
        serde_json::from_slice(body).map_err(|_| damaged(name, "does not parse (altered?)"))?;
    if b.format != 1 || b.from != from || b.to != to {
        return Err(damaged(name, "does not cover what its name says"));
    }
    Ok(b.records)
}
