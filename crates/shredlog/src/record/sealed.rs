//! A sealed message record: the header of a message, its content plaintext
//! sealed under the transcript's content key and its PII plaintext under the
//! PII key, each bound to the header by its associated data (docs/FORMAT.md
//! §4.3). Pure: no I/O, no knowledge of what the plaintexts mean.

use crate::secret::SecretVec;

use super::{
    DecodeError, FLAG_BATCH_END, FLAG_MSG_ID, FLAG_PII, KIND_MESSAGE, MsgIdDigest, RECORD_VERSION,
    RecordHeader, Tid, Vid, aad, begin_frame, decode, seal_frame,
};
use crate::error::{Error, Result};
use crate::seal::{Cipher, Key, Nonces, TAG_LEN};

/// The keys of a message's transcript, made ready to seal and open (once
/// for all the records of a transcript read together). `pii` is `None` once
/// the PII key is destroyed (or for a transcript written without one).
pub(crate) struct MessageKeys {
    pub content: Cipher,
    pub pii: Option<Cipher>,
}

impl MessageKeys {
    pub(crate) fn new(content: &Key, pii: Option<&Key>) -> MessageKeys {
        MessageKeys {
            content: content.cipher(),
            pii: pii.map(Key::cipher),
        }
    }
}

/// Where a message goes: its transcript generation, visitor, position, time,
/// and the digest of the caller's message id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Placement {
    pub tid: Tid,
    pub vid: Vid,
    pub seq: u32,
    pub ts_millis: i64,
    pub msg_id: Option<MsgIdDigest>,
    /// The last record of its append batch.
    pub batch_end: bool,
}

/// What sealing wrote: the frame's size and its PII part's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sealed {
    pub frame_len: u32,
    pub pii_len: u32,
}

/// Seals one message and appends its frame to `out`. `pii` is the PII
/// plaintext, `None` when the message holds no personal data (then the record
/// has no PII part). Each part gets a fresh nonce from `nonces`.
///
/// # Errors
/// [`Error::Invalid`] if the message holds personal data but its transcript
/// has no PII key; [`Error::Limit`] for a part too large to seal.
pub(crate) fn seal_message(
    place: &Placement,
    keys: &MessageKeys,
    content: &[u8],
    pii: Option<&[u8]>,
    nonces: &mut Nonces,
    out: &mut Vec<u8>,
) -> Result<Sealed> {
    let too_large = || Error::Limit("message too large for a record".into());
    let mut header = RecordHeader {
        version: RECORD_VERSION,
        kind: KIND_MESSAGE,
        flags: if place.msg_id.is_some() {
            FLAG_MSG_ID
        } else {
            0
        } | if place.batch_end { FLAG_BATCH_END } else { 0 },
        tid: place.tid,
        vid: place.vid,
        seq: place.seq,
        ts_millis: place.ts_millis,
        content_len: u32::try_from(content.len() + TAG_LEN).map_err(|_| too_large())?,
        pii_len: 0,
        content_nonce: [0; 12],
        pii_nonce: [0; 12],
        msg_id: place.msg_id,
    };
    header.content_nonce = nonces.next()?;
    let content_aad = aad(b'C', &header);
    let mut pii_aad = None;
    if let Some(pii) = pii {
        if keys.pii.is_none() {
            return Err(Error::invalid(
                "this transcript's personal data was erased; start a new transcript",
            ));
        }
        header.flags |= FLAG_PII;
        header.pii_len = u32::try_from(pii.len() + TAG_LEN).map_err(|_| too_large())?;
        header.pii_nonce = nonces.next()?;
        pii_aad = Some(aad(b'P', &header));
    }
    // Each plaintext is copied once, into the frame, and encrypted there.
    let parts = header.content_len as usize + header.pii_len as usize;
    let start = begin_frame(&header, parts, out);
    let mut seal_part = |key: &Cipher, nonce, aad: &[u8], plain: &[u8]| -> Result<()> {
        let at = out.len();
        out.extend_from_slice(plain);
        match key.seal_in_place(nonce, aad, out.get_mut(at..).unwrap_or_default()) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(e) => {
                // Never leave plaintext behind in the caller's buffer.
                zeroize::Zeroize::zeroize(out.get_mut(start..).unwrap_or_default());
                out.truncate(start);
                Err(e)
            }
        }
    };
    seal_part(
        &keys.content,
        header.content_nonce,
        content_aad.as_ref(),
        content,
    )?;
    if let (Some(pii), Some(key), Some(pii_aad)) = (pii, &keys.pii, pii_aad) {
        seal_part(key, header.pii_nonce, pii_aad.as_ref(), pii)?;
    }
    seal_frame(out, start);
    Ok(Sealed {
        frame_len: u32::try_from(out.len() - start).map_err(|_| too_large())?,
        pii_len: header.pii_len,
    })
}

/// The PII plaintext of an opened record.
#[derive(Debug)]
pub(crate) enum PiiPlain {
    /// The PII key lives and the record has a PII part: its plaintext.
    Open(SecretVec),
    /// The PII key lives but the record holds no personal data.
    None,
    /// The PII key is destroyed: the personal data reads as redacted.
    Gone,
}

/// An opened record: its header and plaintexts.
#[derive(Debug)]
pub(crate) struct Opened {
    pub header: RecordHeader,
    pub content: SecretVec,
    pub pii: PiiPlain,
}

/// Why a record did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The frame does not decode.
    Decode(DecodeError),
    /// A sealed part does not authenticate (altered bytes, or another
    /// record's part, or the wrong key).
    Content,
    Pii,
}

impl OpenError {
    pub(crate) fn describe(self) -> String {
        match self {
            OpenError::Decode(e) => e.describe(),
            OpenError::Content => "record content does not authenticate".into(),
            OpenError::Pii => "record PII part does not authenticate".into(),
        }
    }
}

/// Decodes the frame at the start of `frame` and opens its parts.
pub(crate) fn open_message(frame: &[u8], keys: &MessageKeys) -> Result<(Opened, usize), OpenError> {
    let (rec, size) = decode(frame).map_err(OpenError::Decode)?;
    let h = rec.header;
    let content = SecretVec::new(
        keys.content
            .open(&h.content_nonce, aad(b'C', &h).as_ref(), rec.content)
            .ok_or(OpenError::Content)?,
    );
    let pii = match (&keys.pii, rec.pii.is_empty()) {
        (None, _) => PiiPlain::Gone,
        (Some(_), true) => PiiPlain::None,
        (Some(key), false) => PiiPlain::Open(SecretVec::new(
            key.open(&h.pii_nonce, aad(b'P', &h).as_ref(), rec.pii)
                .ok_or(OpenError::Pii)?,
        )),
    };
    Ok((
        Opened {
            header: h,
            content,
            pii,
        },
        size,
    ))
}

/// Fuzz entry point: opening arbitrary bytes never panics, and a message
/// sealed from them opens to the same plaintexts.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_sealed(data: &[u8]) {
    let content_key = Key::from_bytes([3; 32]);
    let pii_key = Key::from_bytes([5; 32]);
    let keys = MessageKeys::new(&content_key, Some(&pii_key));
    let _ = open_message(data, &keys);
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (content, pii) = data.split_at(split);
    let place = Placement {
        tid: [1; 16],
        vid: [2; 16],
        seq: data.len() as u32,
        ts_millis: -7,
        msg_id: data.len().is_multiple_of(2).then_some([9; 16]),
        batch_end: data.len().is_multiple_of(3),
    };
    let Ok(mut nonces) = Nonces::new(2) else {
        return;
    };
    let mut frame = Vec::new();
    let pii = (!pii.is_empty()).then_some(pii);
    let Ok(sealed) = seal_message(&place, &keys, content, pii, &mut nonces, &mut frame) else {
        return;
    };
    assert_eq!(sealed.frame_len as usize, frame.len());
    let (opened, size) = open_message(&frame, &keys).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(size, frame.len());
    assert_eq!(opened.content.as_slice(), content);
    match (opened.pii, pii) {
        (PiiPlain::Open(p), Some(want)) => assert_eq!(p.as_slice(), want),
        (PiiPlain::None, None) => {}
        (got, want) => panic!("PII part {got:?}, sealed {want:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (Key, Key) {
        (Key::random().unwrap(), Key::random().unwrap())
    }

    fn place(msg_id: Option<MsgIdDigest>) -> Placement {
        Placement {
            tid: [1; 16],
            vid: [2; 16],
            seq: 4,
            ts_millis: 99,
            msg_id,
            batch_end: false,
        }
    }

    #[test]
    fn sealed_messages_open_with_their_keys_only() {
        let (ck, pk) = keys();
        let k = MessageKeys::new(&ck, Some(&pk));
        for msg_id in [None, Some([7; 16])] {
            let mut frame = Vec::new();
            let mut nonces = Nonces::new(2).unwrap();
            let s = seal_message(
                &place(msg_id),
                &k,
                b"view",
                Some(b"fill"),
                &mut nonces,
                &mut frame,
            )
            .unwrap();
            assert_eq!(s.frame_len as usize, frame.len());
            assert_eq!(s.pii_len as usize, 4 + TAG_LEN);
            let (o, _) = open_message(&frame, &k).unwrap();
            assert_eq!(o.content.as_slice(), b"view");
            assert!(matches!(o.pii, PiiPlain::Open(ref p) if p.as_slice() == b"fill"));
            assert_eq!(o.header.msg_id, msg_id);
            // Without the PII key: redacted, content still readable.
            let redacted = MessageKeys::new(&ck, None);
            assert!(matches!(
                open_message(&frame, &redacted).unwrap().0.pii,
                PiiPlain::Gone
            ));
            // Another transcript's keys open nothing.
            let (ck2, pk2) = keys();
            let wrong = MessageKeys::new(&ck2, Some(&pk2));
            assert_eq!(
                open_message(&frame, &wrong).unwrap_err(),
                OpenError::Content
            );
        }
    }

    #[test]
    fn personal_data_needs_a_pii_key() {
        let (ck, _) = keys();
        let k = MessageKeys::new(&ck, None);
        let mut nonces = Nonces::new(2).unwrap();
        let mut frame = Vec::new();
        assert!(seal_message(&place(None), &k, b"v", Some(b"p"), &mut nonces, &mut frame).is_err());
        let s = seal_message(&place(None), &k, b"v", None, &mut nonces, &mut frame).unwrap();
        assert_eq!(s.pii_len, 0);
        assert!(matches!(
            open_message(&frame, &k).unwrap().0.pii,
            PiiPlain::Gone
        ));
    }

    #[test]
    fn fuzz_entry_accepts_garbage() {
        for seed in 0u32..500 {
            let data: Vec<u8> = (0..(seed % 300))
                .map(|i| (seed.wrapping_mul(17).wrapping_add(i * 13)) as u8)
                .collect();
            fuzz_sealed(&data);
        }
    }
}
