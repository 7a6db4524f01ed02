//! Lookup by email: the directory entries an address may name, read from
//! the keyring, never from memory.
//!
//! In a format-4 keyring the entries live in the directory's table
//! ([`super::table`]): a lookup reads the sectors of one probe (usually
//! one). A keyring of an older format, opened read-only and so not
//! rewritten, has its entries among the other slots; for it open builds a
//! map from a keyed digest of each entry's address (under a key drawn for
//! the process, never stored) to its slots, so that no email is held.
//!
//! Either way a lookup returns the entries whose address is the query's
//! (same canonical form; for an entry stored before emails were checked,
//! the same trimmed, lower-case spelling), with their slots; the caller
//! keeps those its index still names, and [`choose`] picks one.

use std::collections::HashMap;
use std::fs::File;
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

/// What a lookup reads.
pub(crate) enum View {
    /// The table of a format-4 keyring, and the key of its hash; with a
    /// map of the table when one could be made.
    Table {
        key: Zeroizing<[u8; 32]>,
        region: table::Region,
        map: Option<TableMap>,
    },
    /// The entries of an older keyring: digest of the address → slots.
    Legacy {
        digests: Digests,
        slots: HashMap<[u8; 16], Vec<u32>>,
    },
}

impl View {
    /// The table in `region` of `file`, with the key of its hash.
    pub(crate) fn table(key: Zeroizing<[u8; 32]>, region: table::Region, file: &File) -> View {
        View::Table {
            key,
            region,
            map: TableMap::of(file, region),
        }
    }

    /// Whether this is a table with a map of that table (not of a region
    /// it has moved from), whose first and last sectors it slices.
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        match self {
            View::Table {
                region,
                map: Some(m),
                ..
            } => {
                let last = region.header_cell(region.sectors - 1);
                m.start == region.start
                    && m.sector(region.start).is_some()
                    && m.sector(last).is_some()
                    && m.sector(region.end()).is_none()
            }
            _ => false,
        }
    }

    /// An empty map for an older keyring, under a fresh key.
    pub(crate) fn legacy() -> View {
        View::Legacy {
            digests: Digests::default(),
            slots: HashMap::new(),
        }
    }

    /// Notes an older keyring's entry at `slot` (at open).
    pub(crate) fn add_legacy(&mut self, email: &str, slot: u32) {
        if let View::Legacy { digests, slots } = self {
            let d = digests.of(&placement(email));
            slots.entry(d).or_default().push(slot);
        }
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
    /// emails; `None` when it is `placed` (the common case, no copy).
    spelled: Option<String>,
    /// Its [`placement`].
    placed: String,
    /// Whether it is an email address (else `placed` is the spelling).
    pub is_email: bool,
}

impl Query {
    pub(crate) fn new(email: &str) -> Query {
        match crate::email::canonical(email) {
            Ok(c) => {
                let placed = c.into_owned();
                let spelled = (placed != email)
                    .then(|| email.trim().to_lowercase())
                    .filter(|s| *s != placed);
                Query {
                    spelled,
                    placed,
                    is_email: true,
                }
            }
            Err(_) => Query {
                placed: email.trim().to_lowercase(),
                spelled: None,
                is_email: false,
            },
        }
    }

    /// How entries were stored before canonical emails: trimmed and
    /// lower-cased.
    fn spelled(&self) -> &str {
        self.spelled.as_deref().unwrap_or(&self.placed)
    }
}

/// The largest directory table that is mapped: the directory of some
/// 20,000–40,000 visitors (a table is a power of two of sectors, at most
/// half full; an entry takes one or two cells). A fault maps up to 16 pages
/// around the one touched, whatever `madvise` says (Linux's fault-around),
/// so with the table in the page cache a map of it becomes resident whole
/// after enough lookups; this bounds what it adds to the process's resident
/// memory. A larger table is read a sector at a time (about 1 µs more a
/// lookup).
pub(crate) const MAP_LIMIT: u64 = 8 << 20;

/// The directory table's bytes, mapped read-only from the keyring when it
/// is at most [`MAP_LIMIT`] bytes: a lookup slices its sector out of the
/// page cache instead of reading it with a system call into a buffer of its
/// own. Only the table is mapped (a few bytes a visitor); an erasure's wipe,
/// written into the file, is what the map shows from then on.
pub(crate) struct TableMap {
    map: memmap2::Mmap,
    /// The table's first cell.
    start: u32,
}

impl TableMap {
    /// Maps `region` of `file`; `None` when it is larger than
    /// [`MAP_LIMIT`] or cannot be mapped (lookups then read each sector
    /// from the file).
    fn of(file: &File, region: table::Region) -> Option<TableMap> {
        if region.is_none() {
            return None;
        }
        let offset = u64::from(region.start) * cells::CELL as u64;
        let len = u64::from(region.end() - region.start) * cells::CELL as u64;
        if len > MAP_LIMIT || file.metadata().ok()?.len() < offset.checked_add(len)? {
            return None;
        }
        let options = {
            let mut o = memmap2::MmapOptions::new();
            o.offset(offset).len(usize::try_from(len).ok()?);
            o
        };
        #[expect(unsafe_code, reason = "memory-mapping the keyring's directory table")]
        // SAFETY: shredlog writes into the table only through the keyring,
        // which holds the view's write lock while it does (`write_raw`),
        // and lookups read the map only under its read lock, so no read
        // overlaps a write of the bytes it reads. The table's cells are never
        // free, so they are never cut off the file (`truncate_free_tail` cuts
        // only free cells); when the table moves, the view holding this map
        // is replaced under the write lock before the old region is zeroed
        // and freed. Changes by another program are outside the contract
        // (the store's lock file keeps other shredlogs out; docs/FORMAT.md).
        let map = unsafe { options.map(file) }.ok()?;
        // No read-ahead from the device around a sector looked up (the
        // kernel still maps the cached pages around it: see `MAP_LIMIT`).
        let _ = map.advise(memmap2::Advice::Random);
        Some(TableMap {
            map,
            start: region.start,
        })
    }

    /// The bytes of the sector whose first cell is `first`.
    fn sector(&self, first: u32) -> Option<&[u8]> {
        let at = usize::try_from(first.checked_sub(self.start)?).ok()? * cells::CELL;
        self.map
            .get(at..at + cells::SECTOR_CELLS as usize * cells::CELL)
    }
}

/// How a lookup reads the table's sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sectors {
    /// Through the map of the table, when there is one: lookups one at a
    /// time (a query, an erasure).
    Mapped,
    /// With a positioned read each: an append's lookups, which over an
    /// import reach every sector and through the map would make the whole
    /// table part of the process's resident memory.
    Read,
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
    pub(crate) fn find(&self, query: &Query, how: Sectors) -> Result<Vec<(u32, VisitorSlot)>> {
        let wanted = &query.placed;
        let view = self.view.read();
        let mut out = Vec::new();
        match &*view {
            View::Legacy { digests, slots } => {
                for &slot in slots.get(&digests.of(wanted)).into_iter().flatten() {
                    if let Some(super::Slot::Visitor(v)) = self.slots.read(slot)?
                        && (v.email == *wanted || placed_as(&v.email, wanted))
                    {
                        out.push((slot, v));
                    }
                }
            }
            View::Table { key, region, map } => {
                for sector in region.probe(table::placed_hash(key, wanted)) {
                    let first = region.header_cell(sector);
                    let read;
                    let mapped = map.as_ref().filter(|_| how == Sectors::Mapped);
                    let bytes: &[u8] = match mapped.and_then(|m| m.sector(first)) {
                        Some(b) => b,
                        None => {
                            read = self.slots.read_cells(first)?;
                            &read
                        }
                    };
                    let corrupt = |at: u32, reason: &str| {
                        Error::corrupt(
                            &self.slots.path,
                            u64::from(at) * cells::CELL as u64,
                            format!("keyring directory sector at cell {at}: {reason}"),
                        )
                    };
                    let spilled = table::parse_header_cell(bytes).map_err(|r| corrupt(first, r))?;
                    let mut damage = None;
                    cells::scan(bytes, first, first + 1, |index, _, found| {
                        // An entry of another address in canonical form (as
                        // entries are stored) is passed over undecoded.
                        if self.slots.kek.is_none()
                            && let Ok(Some(f)) = &found
                            && f.kind == slot::KIND_VISITOR
                            && slot::plain_visitor_email(&f.payload).is_some_and(|e| {
                                e != wanted.as_str() && crate::email::is_plain_canonical(e)
                            })
                        {
                            return;
                        }
                        let found = found.and_then(|f| {
                            f.map(|f| {
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
                            Ok(Some(super::Slot::Visitor(v))) => {
                                if v.email == *wanted || placed_as(&v.email, wanted) {
                                    out.push((index, v));
                                }
                            }
                            Ok(None) => {}
                            Ok(Some(_)) => {
                                damage.get_or_insert((
                                    index,
                                    "a key slot inside the directory table",
                                ));
                            }
                            Err(reason) => {
                                damage.get_or_insert((index, reason));
                            }
                        }
                    });
                    if let Some((index, reason)) = damage {
                        return Err(corrupt(index, reason));
                    }
                    if !spilled {
                        break;
                    }
                }
            }
        }
        Ok(out)
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
        .find(|(_, v, _)| v.email == query.spelled())
        .or_else(|| found.iter().find(|(_, v, _)| v.email == query.placed))
        .or_else(|| found.iter().min_by_key(|(slot, _, _)| *slot))
        .map(|f| f.2)
}

/// Keeps only the key's bytes out of reach of a debug print.
impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            View::Table { region, .. } => write!(f, "View::Table({region:?})"),
            View::Legacy { slots, .. } => write!(f, "View::Legacy({} addresses)", slots.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_mapped_up_to_the_limit_and_read_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("k"))
            .unwrap();
        // A sparse file: the map is made, nothing is read.
        file.set_len(2 * MAP_LIMIT + (1 << 20)).unwrap();
        let sector_bytes = u64::from(cells::SECTOR_CELLS) * cells::CELL as u64;
        let region = |bytes: u64| table::Region {
            start: 16,
            sectors: (bytes / sector_bytes) as u32,
        };
        let at_limit = TableMap::of(&file, region(MAP_LIMIT)).expect("mapped");
        assert_eq!(at_limit.map.len() as u64, MAP_LIMIT);
        assert!(at_limit.sector(16).is_some());
        assert!(TableMap::of(&file, region(MAP_LIMIT + sector_bytes)).is_none());
        assert!(TableMap::of(&file, region(2 * MAP_LIMIT)).is_none());
        // Nor past the file's end.
        file.set_len(MAP_LIMIT / 2).unwrap();
        assert!(TableMap::of(&file, region(MAP_LIMIT)).is_none());
    }

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
