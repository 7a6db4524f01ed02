//! Lookups in the keyring's table without the writer's lock, read from the
//! keyring, never from memory: by email (the directory entries an address
//! may name), by caller transcript id (the caller slots of its
//! generations) and by visitor id (its transcript slots). Each reads the
//! sectors of one probe (usually one, [`super::table`]). A keyring of an
//! older format opened read-only is read as converted to format 5 in
//! memory, so there is one way to look.
//!
//! A lookup by email returns the entries whose address is the query's (same
//! canonical form; for an entry stored before emails were checked, the same
//! trimmed, lower-case spelling), with their slots; the caller keeps those
//! its index still names, and [`choose`] picks one.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use parking_lot::RwLock;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{SlotReader, VisitorSlot, cells, slot, table};
use crate::error::{Error, Result};

/// Where lookups go: shared by the keyring and every [`DirectoryReader`].
/// A lookup holds it (read) for its whole probe; the keyring holds it
/// (write) while it writes into the table, and changes it when the table
/// moves.
pub(crate) type SharedView = Arc<RwLock<View>>;

/// What a lookup reads: the table, the hashes that place its slots, and
/// the young area after it (slots written since the table was last
/// rebuilt, side by side): by hash, the cells of its slots.
pub(crate) struct View {
    pub hasher: table::Hasher,
    pub region: table::Region,
    pub young: std::collections::HashMap<u64, Vec<u32>>,
}

impl View {
    /// Notes a young slot at `cell` with hash `hash`.
    pub(crate) fn add_young(&mut self, hash: u64, cell: u32) {
        self.young.entry(hash).or_default().push(cell);
    }
}

/// Keyed digests of addresses in their [`placement`] form, under a key
/// drawn for this process and never stored: a map keyed by them holds no
/// email, and cannot be checked against guessed addresses without the key.
pub(crate) struct Digests {
    mac: Hmac<Sha256>,
}

impl Default for Digests {
    fn default() -> Digests {
        // Should the OS generator fail, a key from std's randomly seeded
        // hasher does the same job (the digests never leave the process).
        let key: Zeroizing<[u8; 32]> =
            Zeroizing::new(crate::seal::random_array().unwrap_or_else(|_| {
                use std::hash::BuildHasher;
                let s = std::hash::RandomState::new();
                let mut k = [0u8; 32];
                for (i, chunk) in k.chunks_exact_mut(8).enumerate() {
                    chunk.copy_from_slice(&s.hash_one(i).to_le_bytes());
                }
                k
            }));
        Digests {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&key[..])
                .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length")),
        }
    }
}

impl Digests {
    /// The digest of an address in placement form.
    pub(crate) fn of(&self, placed: &str) -> [u8; 16] {
        let mut m = self.mac.clone();
        m.update(placed.as_bytes());
        let full = m.finalize().into_bytes();
        let mut d = [0u8; 16];
        d.copy_from_slice(&full[..16]);
        d
    }
}

/// What an address is placed and compared by: its canonical form, or for
/// a string that is not an email address (stored before emails were
/// checked) its trimmed, lower-case spelling.
pub(crate) fn placement(email: &str) -> String {
    Query::new(email).placed
}

/// Whether `email`'s [`placement`] is `placed`, without a copy when `email`
/// is in canonical form already (as entries are stored): a lookup asks it
/// of every entry in the sectors it reads.
fn placed_as(email: &str, placed: &str) -> bool {
    match crate::email::canonical(email) {
        Ok(c) => c == placed,
        Err(_) => email.trim().to_lowercase() == placed,
    }
}

/// An address to look up, in the forms a lookup compares.
pub(crate) struct Query {
    /// Trimmed and lower-cased: how entries were stored before canonical
    /// emails.
    spelled: String,
    /// Its [`placement`].
    placed: String,
    /// Whether it is an email address (else `placed` is `spelled`).
    pub is_email: bool,
}

impl Query {
    pub(crate) fn new(email: &str) -> Query {
        match crate::email::canonical(email) {
            Ok(c) => {
                let placed = c.into_owned();
                let spelled = if placed == email {
                    placed.clone()
                } else {
                    email.trim().to_lowercase()
                };
                Query {
                    spelled,
                    placed,
                    is_email: true,
                }
            }
            Err(_) => {
                let spelled = email.trim().to_lowercase();
                Query {
                    placed: spelled.clone(),
                    spelled,
                    is_email: false,
                }
            }
        }
    }
}

/// Reads directory entries without the writer's lock.
#[derive(Clone)]
pub(crate) struct DirectoryReader {
    pub(super) slots: SlotReader,
    pub(super) view: SharedView,
}

impl DirectoryReader {
    /// The entries whose address is `email`'s, with their slots.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the keyring and offset of a damaged
    /// sector or entry on the way; [`Error::Io`].
    pub(crate) fn find(&self, query: &Query) -> Result<Vec<(u32, VisitorSlot)>> {
        let wanted = &query.placed;
        let mut out = Vec::new();
        self.probe(
            |h| h.placed(wanted),
            slot::KIND_VISITOR,
            |index, s| {
                if let super::Slot::Visitor(v) = s
                    && (v.email == *wanted || placed_as(&v.email, wanted))
                {
                    out.push((index, v));
                }
            },
        )?;
        Ok(out)
    }

    /// The caller slots the probe of `caller_id` reaches (each names a
    /// generation whose transcript slot may hold the id: compare it there).
    ///
    /// # Errors
    /// As [`DirectoryReader::find`].
    pub(crate) fn callers(&self, caller_id: &str) -> Result<Vec<super::CallerSlot>> {
        let mut out = Vec::new();
        self.probe(
            |h| h.caller(caller_id),
            slot::KIND_CALLER,
            |_, s| {
                if let super::Slot::Caller(c) = s {
                    out.push(c);
                }
            },
        )?;
        Ok(out)
    }

    /// The transcript slots of visitor `vid`, with their slots.
    ///
    /// # Errors
    /// As [`DirectoryReader::find`].
    #[cfg(test)]
    pub(crate) fn transcripts_of(
        &self,
        vid: &crate::record::Vid,
    ) -> Result<Vec<(u32, super::TranscriptSlot)>> {
        let mut out = Vec::new();
        self.probe(
            |h| h.transcript(vid),
            slot::KIND_TRANSCRIPT,
            |index, s| {
                if let super::Slot::Transcript(t) = s
                    && t.vid == *vid
                {
                    out.push((index, t));
                }
            },
        )?;
        Ok(out)
    }

    /// Hands `each` every slot of `kind` in the sectors the probe of the
    /// hash `hash` gives reads (slots of other kinds are passed over
    /// unopened: their kind byte is in the clear), holding the lookups' lock
    /// throughout.
    fn probe(
        &self,
        hash: impl FnOnce(&table::Hasher) -> u64,
        kind: u8,
        mut each: impl FnMut(u32, super::Slot),
    ) -> Result<()> {
        let view = self.view.read();
        let region = view.region;
        let hash = hash(&view.hasher);
        // The young area first: its slots of this hash, by the index.
        for &cell in view.young.get(&hash).into_iter().flatten() {
            let bytes = self.slots.read_cells(cell)?;
            match cells::unframe(cell, &bytes) {
                Ok(Some(f)) if f.kind == kind => {
                    let s = slot::open_payload(
                        self.slots.kek.as_ref(),
                        &self.slots.keyring_id,
                        cell,
                        f.kind,
                        &f.payload,
                    )
                    .map_err(|reason| {
                        Error::corrupt(
                            &self.slots.path,
                            u64::from(cell) * cells::CELL as u64,
                            format!("keyring slot {cell}: {reason}"),
                        )
                    })?;
                    each(cell, s);
                }
                // Wiped since, or another kind.
                Ok(_) => {}
                Err(reason) => {
                    return Err(Error::corrupt(
                        &self.slots.path,
                        u64::from(cell) * cells::CELL as u64,
                        format!("keyring slot {cell}: {reason}"),
                    ));
                }
            }
        }
        for sector in region.probe(hash) {
            let first = region.header_cell(sector);
            let bytes = self.slots.read_cells(first)?;
            let corrupt = |at: u32, reason: &str| {
                Error::corrupt(
                    &self.slots.path,
                    u64::from(at) * cells::CELL as u64,
                    format!("keyring table sector at cell {at}: {reason}"),
                )
            };
            let header = table::parse_header_cell(&bytes).map_err(|r| corrupt(first, r))?;
            let mut damage = None;
            cells::scan(&bytes, first, first + 1, |index, _, found| {
                let found = found.and_then(|f| {
                    f.filter(|f| f.kind == kind)
                        .map(|f| {
                            slot::open_payload(
                                self.slots.kek.as_ref(),
                                &self.slots.keyring_id,
                                index,
                                f.kind,
                                &f.payload,
                            )
                        })
                        .transpose()
                });
                match found {
                    Ok(Some(s)) => each(index, s),
                    Ok(None) => {}
                    Err(reason) => {
                        damage.get_or_insert((index, reason));
                    }
                }
            });
            if let Some((index, reason)) = damage {
                return Err(corrupt(index, reason));
            }
            // On only if a slot of this hash was placed past this sector.
            if !header.passes(hash) {
                break;
            }
        }
        Ok(())
    }
}

/// Of the entries found for `query` (those the index still names), the one
/// it means: the entry stored under exactly that spelling (trimmed,
/// lower-case: two spellings of one address stored before canonical emails
/// are each found by their own), else the one stored in canonical form,
/// else the lowest slot.
pub(crate) fn choose<T: Copy>(query: &Query, found: &[(u32, &VisitorSlot, T)]) -> Option<T> {
    found
        .iter()
        .find(|(_, v, _)| v.email == query.spelled)
        .or_else(|| found.iter().find(|(_, v, _)| v.email == query.placed))
        .or_else(|| found.iter().min_by_key(|(slot, _, _)| *slot))
        .map(|f| f.2)
}

/// Keeps the key out of reach of a debug print.
impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "View({:?})", self.region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(email: &str) -> VisitorSlot {
        VisitorSlot {
            vid: [0; 16],
            email: email.into(),
            revision: 0,
        }
    }

    #[test]
    fn placed_as_agrees_with_placement() {
        for email in [
            "ann@example.com",
            " Ann@EXAMPLE.com ",
            "MAILTO:ann@example.com.",
            "jose\u{301}@B\u{dc}CHER.example",
            "not an address",
            "  Not An Address ",
        ] {
            let placed = placement(email);
            assert!(placed_as(email, &placed), "{email:?}");
            assert!(!placed_as(email, "bob@example.com"), "{email:?}");
        }
    }

    #[test]
    fn the_spelling_then_the_canonical_entry_then_the_lowest_slot_is_chosen() {
        let a = v("ann@x.example");
        let b = v("ann@x.example.");
        let m = v("mailto:ann@x.example");
        let found = [(9, &b, 'b'), (4, &a, 'a'), (2, &m, 'm')];
        let q = Query::new;
        assert_eq!(choose(&q("ANN@x.example"), &found), Some('a'));
        assert_eq!(choose(&q("ann@x.example."), &found), Some('b'));
        assert_eq!(choose(&q(" Ann@X.Example "), &found), Some('a'));
        let found = [(9, &b, 'b'), (2, &m, 'm')];
        assert_eq!(choose(&q("ann@x.example"), &found), Some('m'));
        assert_eq!(choose(&q("ann@x.example"), &[]), None::<char>);
        assert!(q("ann@x.example").is_email && !q(" Bob ").is_email);
    }

    #[test]
    fn placement_is_the_canonical_form_or_the_trimmed_lower_case_spelling() {
        assert_eq!(placement(" MAILTO:Ann@X.example. "), "ann@x.example");
        assert_eq!(placement(" Bob "), "bob");
    }
}
