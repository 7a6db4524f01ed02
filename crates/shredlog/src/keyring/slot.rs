//! What a keyring slot holds, and its payload: the body (docs/FORMAT.md
//! §6.4–6.6), wrapped under the key-encryption key when there is one (§6.3).
//!
//! How payloads are laid out in the file is the framing's business: 64-byte
//! cells in format 3 ([`super::cells`]), one 512-byte slot each in formats 1
//! and 2 ([`super::legacy`]).

use crate::secret::SecretVec;

use crate::error::{Error, Result};
use crate::record::{Tid, Vid};
use crate::seal::{KEY_LEN, Key, NONCE_LEN, TAG_LEN};

/// Longest caller transcript id, in bytes.
pub(crate) const MAX_TRANSCRIPT_ID: usize = 200;
/// Longest email, in bytes.
pub(crate) const MAX_EMAIL: usize = 320;

pub(super) const KIND_FREE: u8 = 0;
pub(super) const KIND_TRANSCRIPT: u8 = 1;
pub(super) const KIND_PII: u8 = 2;
pub(super) const KIND_VISITOR: u8 = 3;
pub(super) const KIND_STATE: u8 = 4;
pub(super) const KIND_LINK: u8 = 5;

/// Bytes of a transcript slot's body before the caller id.
const TRANSCRIPT_FIXED: usize = 79;
const PII_BODY: usize = 48;
const VISITOR_FIXED: usize = 18;
const LINK_BODY: usize = 22;

/// A transcript's content key and identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TranscriptSlot {
    pub tid: Tid,
    pub vid: Vid,
    pub content_key: Key,
    /// Slot of the PII key, 0 when there is none.
    pub pii_slot: u32,
    pub rules_version: u16,
    pub created_millis: i64,
    pub caller_id: String,
}

/// A transcript's PII key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PiiSlot {
    pub tid: Tid,
    pub pii_key: Key,
}

/// A visitor directory entry: normalised email → visitor id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VisitorSlot {
    pub vid: Vid,
    pub email: String,
    /// Which rewrite of the entry this is (0–127, counting on from 127 to 0):
    /// an entry that outgrows its cells is written anew elsewhere with the
    /// next revision before the old one is wiped, and of two entries of one
    /// visitor (a crash between the two) open keeps the newer.
    pub revision: u8,
}

/// Where a directory entry was written: appended with every entry placed in
/// the directory's table (which may be anywhere in the file), so that open
/// finds the entries written since the index's run among the slots above
/// its floor without reading the table. A random visitor id and a cell
/// number: nothing personal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinkSlot {
    pub vid: Vid,
    /// The entry's first cell, and how many cells it takes.
    pub cell: u32,
    pub cells: u8,
    /// The entry's revision ([`VisitorSlot::revision`]).
    pub revision: u8,
}

/// Revisions are counted modulo this.
pub(crate) const REVISIONS: u8 = 128;

/// Whether revision `a` of a directory entry is a later rewrite than `b`.
pub(crate) fn newer_revision(a: u8, b: u8) -> bool {
    let d = a.wrapping_sub(b) % REVISIONS;
    d != 0 && d < REVISIONS / 2
}

/// The decoded content of one slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Transcript(TranscriptSlot),
    Pii(PiiSlot),
    Visitor(VisitorSlot),
    Link(LinkSlot),
}

impl Slot {
    fn kind(&self) -> u8 {
        match self {
            Slot::Transcript(_) => KIND_TRANSCRIPT,
            Slot::Pii(_) => KIND_PII,
            Slot::Visitor(_) => KIND_VISITOR,
            Slot::Link(_) => KIND_LINK,
        }
    }

    /// Bytes of the body; an error for an id or email over its limit.
    fn body_len(&self) -> Result<usize> {
        match self {
            Slot::Transcript(t) => {
                if t.caller_id.len() > MAX_TRANSCRIPT_ID {
                    return Err(Error::invalid(format!(
                        "transcript id longer than {MAX_TRANSCRIPT_ID} bytes"
                    )));
                }
                Ok(TRANSCRIPT_FIXED + t.caller_id.len())
            }
            Slot::Pii(_) => Ok(PII_BODY),
            Slot::Visitor(v) => {
                if v.email.len() > MAX_EMAIL {
                    return Err(Error::invalid(format!(
                        "email longer than {MAX_EMAIL} bytes"
                    )));
                }
                Ok(VISITOR_FIXED + v.email.len())
            }
            Slot::Link(_) => Ok(LINK_BODY),
        }
    }

    /// Bytes of the payload in a keyring wrapped (or not) under a KEK.
    pub(super) fn payload_len(&self, wrapped: bool) -> Result<usize> {
        Ok(self.body_len()? + if wrapped { NONCE_LEN + TAG_LEN } else { 0 })
    }

    fn body(&self) -> Result<SecretVec> {
        let mut b = SecretVec::new(Vec::with_capacity(self.body_len()?));
        match self {
            Slot::Transcript(t) => {
                let id = t.caller_id.as_bytes();
                b.extend_from_slice(&t.tid);
                b.extend_from_slice(&t.vid);
                b.extend_from_slice(t.content_key.as_bytes());
                b.extend_from_slice(&t.pii_slot.to_le_bytes());
                b.extend_from_slice(&t.rules_version.to_le_bytes());
                b.extend_from_slice(&t.created_millis.to_le_bytes());
                b.push(id.len() as u8);
                b.extend_from_slice(id);
            }
            Slot::Pii(p) => {
                b.extend_from_slice(&p.tid);
                b.extend_from_slice(p.pii_key.as_bytes());
            }
            Slot::Visitor(v) => {
                let email = v.email.as_bytes();
                b.extend_from_slice(&v.vid);
                // The email's length (at most 320: 9 bits) and the revision
                // in the 7 bits above it.
                let word = email.len() as u16 | u16::from(v.revision % REVISIONS) << 9;
                b.extend_from_slice(&word.to_le_bytes());
                b.extend_from_slice(email);
            }
            Slot::Link(l) => {
                b.extend_from_slice(&l.vid);
                b.extend_from_slice(&l.cell.to_le_bytes());
                b.push(l.cells);
                b.push(l.revision);
            }
        }
        Ok(b)
    }
}

/// The associated data of a wrapped slot: keyring id, slot index, kind.
fn slot_aad(keyring_id: &[u8; 16], index: u32, kind: u8) -> [u8; 21] {
    let mut aad = [0u8; 21];
    aad[..16].copy_from_slice(keyring_id);
    aad[16..20].copy_from_slice(&index.to_le_bytes());
    aad[20] = kind;
    aad
}

/// The kind and payload of `slot` at `index` of the keyring `keyring_id`:
/// its body, or under `kek` `nonce ‖ AES-256-GCM(body)` (a fresh nonce).
pub(super) fn seal_payload(
    kek: Option<&Key>,
    keyring_id: &[u8; 16],
    index: u32,
    slot: &Slot,
) -> Result<(u8, SecretVec)> {
    let kind = slot.kind();
    let body = slot.body()?;
    let payload = match kek {
        Some(kek) => {
            let (nonce, ct) = kek.seal(&slot_aad(keyring_id, index, kind), &body)?;
            let mut p = SecretVec::new(Vec::with_capacity(NONCE_LEN + ct.len()));
            p.extend_from_slice(&nonce);
            p.extend_from_slice(&ct);
            p
        }
        None => body,
    };
    Ok((kind, payload))
}

/// Decodes the payload of a slot of `kind` at `index`.
pub(super) fn open_payload(
    kek: Option<&Key>,
    keyring_id: &[u8; 16],
    index: u32,
    kind: u8,
    payload: &[u8],
) -> Result<Slot, &'static str> {
    match kek {
        Some(kek) => {
            let nonce: [u8; NONCE_LEN] = payload
                .get(..NONCE_LEN)
                .and_then(|n| n.try_into().ok())
                .ok_or("wrapped slot too short")?;
            let ct = payload.get(NONCE_LEN..).ok_or("wrapped slot too short")?;
            if ct.len() < TAG_LEN {
                return Err("wrapped slot too short");
            }
            let body = SecretVec::new(
                kek.open(&nonce, &slot_aad(keyring_id, index, kind), ct)
                    .ok_or("slot does not authenticate under the key-encryption key")?,
            );
            decode_body(kind, &body)
        }
        None => decode_body(kind, payload),
    }
}

/// The email of a visitor slot's body as stored without a key-encryption
/// key, read in place; `None` if the body is not a well-formed visitor
/// slot's (which decoding it reports).
pub(super) fn plain_visitor_email(b: &[u8]) -> Option<&str> {
    let word = u16::from_le_bytes(b.get(16..18)?.try_into().ok()?);
    let n = usize::from(word & 0x1ff);
    if b.len() != VISITOR_FIXED + n {
        return None;
    }
    std::str::from_utf8(b.get(VISITOR_FIXED..)?).ok()
}

fn arr16(b: &[u8], at: usize) -> Option<[u8; 16]> {
    b.get(at..at + 16)?.try_into().ok()
}

fn decode_body(kind: u8, b: &[u8]) -> Result<Slot, &'static str> {
    const BAD: &str = "slot body malformed";
    let key_at = |at: usize| -> Option<Key> {
        Some(Key::from_bytes(b.get(at..at + KEY_LEN)?.try_into().ok()?))
    };
    match kind {
        KIND_FREE => Err("non-zero free slot"),
        KIND_TRANSCRIPT => {
            let id_len = usize::from(*b.get(TRANSCRIPT_FIXED - 1).ok_or(BAD)?);
            if b.len() != TRANSCRIPT_FIXED + id_len {
                return Err(BAD);
            }
            let caller_id = std::str::from_utf8(b.get(TRANSCRIPT_FIXED..).ok_or(BAD)?)
                .map_err(|_| BAD)?
                .to_owned();
            Ok(Slot::Transcript(TranscriptSlot {
                tid: arr16(b, 0).ok_or(BAD)?,
                vid: arr16(b, 16).ok_or(BAD)?,
                content_key: key_at(32).ok_or(BAD)?,
                pii_slot: u32::from_le_bytes(
                    b.get(64..68).ok_or(BAD)?.try_into().map_err(|_| BAD)?,
                ),
                rules_version: u16::from_le_bytes(
                    b.get(68..70).ok_or(BAD)?.try_into().map_err(|_| BAD)?,
                ),
                created_millis: i64::from_le_bytes(
                    b.get(70..78).ok_or(BAD)?.try_into().map_err(|_| BAD)?,
                ),
                caller_id,
            }))
        }
        KIND_PII => {
            if b.len() != PII_BODY {
                return Err(BAD);
            }
            Ok(Slot::Pii(PiiSlot {
                tid: arr16(b, 0).ok_or(BAD)?,
                pii_key: key_at(16).ok_or(BAD)?,
            }))
        }
        KIND_VISITOR => {
            let email = plain_visitor_email(b).ok_or(BAD)?.to_owned();
            let word = u16::from_le_bytes(b.get(16..18).ok_or(BAD)?.try_into().map_err(|_| BAD)?);
            Ok(Slot::Visitor(VisitorSlot {
                vid: arr16(b, 0).ok_or(BAD)?,
                email,
                revision: (word >> 9) as u8,
            }))
        }
        KIND_LINK => {
            if b.len() != LINK_BODY {
                return Err(BAD);
            }
            Ok(Slot::Link(LinkSlot {
                vid: arr16(b, 0).ok_or(BAD)?,
                cell: u32::from_le_bytes(b.get(16..20).ok_or(BAD)?.try_into().map_err(|_| BAD)?),
                cells: *b.get(20).ok_or(BAD)?,
                revision: *b.get(21).ok_or(BAD)?,
            }))
        }
        _ => Err("unknown slot kind"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory lookup passes over entries of other addresses by the
    /// email read in place: it must be the one decoding gives, and there
    /// must be none where decoding fails.
    #[test]
    fn the_email_read_in_place_is_the_decoded_one() {
        for email in ["ann@example.com", "", "jos\u{e9}@xn--bcher-kva.example"] {
            for revision in [0u8, 1, 127] {
                let slot = Slot::Visitor(VisitorSlot {
                    vid: [7; 16],
                    email: email.into(),
                    revision,
                });
                let body = slot.body().unwrap();
                let Ok(Slot::Visitor(v)) = decode_body(KIND_VISITOR, &body) else {
                    panic!("decodes");
                };
                assert_eq!(plain_visitor_email(&body), Some(v.email.as_str()));
                assert_eq!(v.email, email);
                for cut in [body.len().saturating_sub(1), body.len() + 1] {
                    let mut bad = body.to_vec();
                    bad.resize(cut, b'x');
                    assert!(decode_body(KIND_VISITOR, &bad).is_err());
                    assert_eq!(plain_visitor_email(&bad), None, "{cut}");
                }
            }
        }
        let mut not_utf8 = Slot::Visitor(VisitorSlot {
            vid: [7; 16],
            email: "ab@example.com".into(),
            revision: 0,
        })
        .body()
        .unwrap()
        .to_vec();
        not_utf8[VISITOR_FIXED] = 0xff;
        assert!(decode_body(KIND_VISITOR, &not_utf8).is_err());
        assert_eq!(plain_visitor_email(&not_utf8), None);
    }
}
