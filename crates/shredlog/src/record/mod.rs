//! On-disk record layout: framing, CRC, versioned encode/decode. No I/O.
//!
//! A frame is `len: u32 LE | crc: u32 LE | body[len]` where `crc` is CRC-32/ISO-HDLC
//! (crc32fast) over the four length bytes followed by the body. A frame whose
//! length field is zero marks the end of data. A body is a message record
//! ([`RecordHeader`], then the sealed parts) or a segment's seal footer
//! ([`Footer`]). The layouts are in docs/FORMAT.md.

use crate::seal::{NONCE_LEN, TAG_LEN};

mod sealed;
#[cfg(feature = "fuzzing")]
pub(crate) use sealed::fuzz_sealed;
pub(crate) use sealed::{MessageKeys, OpenError, PiiPlain, Placement, open_message, seal_message};

/// Bytes of frame header (length + CRC).
pub(crate) const FRAME_HEADER: usize = 8;
/// Bytes of the fixed record header inside the body.
pub(crate) const RECORD_HEADER: usize = 80;
/// Record format version written now: version 1 plus an optional message-id
/// digest ([`FLAG_MSG_ID`]).
pub(crate) const RECORD_VERSION: u8 = 2;
/// The first record format version (still read; written by shredlog 0.1 before
/// format 2).
pub(crate) const RECORD_VERSION_1: u8 = 1;
/// Record kind: one chat message.
pub(crate) const KIND_MESSAGE: u8 = 1;
/// Frame kind: the footer that ends a sealed segment.
pub(crate) const KIND_FOOTER: u8 = 2;
/// Flag bit: the record carries a PII part.
pub(crate) const FLAG_PII: u16 = 1;
/// Flag bit (version 2): a 16-byte message-id digest follows the fixed header.
pub(crate) const FLAG_MSG_ID: u16 = 2;
/// Flag bit (version 2): the last record of an append batch. In a segment
/// of version 3, recovery drops records after the last such one (a batch a
/// crash cut short: never acknowledged), so a batch is all or none.
pub(crate) const FLAG_BATCH_END: u16 = 4;
/// Bytes of a message-id digest.
pub(crate) const MSG_ID_LEN: usize = 16;
/// Bytes of a footer's body.
const FOOTER_BODY: usize = 24;
/// Bytes of a whole footer frame.
pub(crate) const FOOTER_FRAME: usize = FRAME_HEADER + FOOTER_BODY;
/// Largest body accepted (a message with a file upload of up to 64 MiB plus parts).
pub(crate) const MAX_BODY: usize = 80 << 20;

/// Random 128-bit id of a transcript's key generation (not the caller's id).
pub(crate) type Tid = [u8; 16];
/// Random 128-bit visitor id.
pub(crate) type Vid = [u8; 16];
/// Keyed digest of a caller's message id (see `store::write`).
pub(crate) type MsgIdDigest = [u8; MSG_ID_LEN];

/// The header of a message record, in plaintext and authenticated as
/// associated data of both sealed parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub version: u8,
    pub kind: u8,
    pub flags: u16,
    pub tid: Tid,
    pub vid: Vid,
    pub seq: u32,
    pub ts_millis: i64,
    pub content_len: u32,
    pub pii_len: u32,
    pub content_nonce: [u8; NONCE_LEN],
    pub pii_nonce: [u8; NONCE_LEN],
    /// Version 2 with [`FLAG_MSG_ID`]: digest of the caller's message id.
    pub msg_id: Option<MsgIdDigest>,
}

impl RecordHeader {
    /// Bytes of header in the body: the fixed part and the digest, if any.
    pub(crate) fn len(&self) -> usize {
        RECORD_HEADER + if self.msg_id.is_some() { MSG_ID_LEN } else { 0 }
    }
}

/// A decoded record borrowing its ciphertexts from the frame body.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub header: RecordHeader,
    pub content: &'a [u8],
    pub pii: &'a [u8],
}

/// The last frame of a sealed segment: states the segment's own length, so
/// that a sealed segment cut short at a frame boundary is told from a whole one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footer {
    /// Generation of the segment file (as in its header).
    pub generation: u32,
    /// Offset of this footer frame: the bytes of header and records before it.
    pub data_len: u64,
    /// The segment's id (as in its header and file name).
    pub segment: u64,
}

/// What a frame holds.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    Record(Record<'a>),
    Footer(Footer),
}

/// Why a frame or record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Fewer bytes remain than the frame header or its length needs.
    Truncated,
    /// The length field is zero: end of data.
    End,
    /// The length field exceeds the limit.
    TooLong,
    /// CRC mismatch.
    Crc,
    /// Unknown version.
    Version(u8),
    /// Unknown kind.
    Kind(u8),
    /// The body's internal lengths do not add up.
    Layout,
}

impl DecodeError {
    pub(crate) fn describe(self) -> String {
        match self {
            DecodeError::Truncated => "record truncated".into(),
            DecodeError::End => "end of data".into(),
            DecodeError::TooLong => "record length field out of range".into(),
            DecodeError::Crc => "record checksum mismatch".into(),
            DecodeError::Version(v) => format!("unknown record version {v}"),
            DecodeError::Kind(k) => format!("unknown record kind {k}"),
            DecodeError::Layout => "record lengths do not add up".into(),
        }
    }
}

/// Associated data binding a sealed part to its record (docs/FORMAT.md §4.3).
pub(crate) struct Aad {
    buf: [u8; 47 + MSG_ID_LEN],
    len: usize,
}

impl AsRef<[u8]> for Aad {
    fn as_ref(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// The associated data binding a sealed part to its record: domain byte
/// (`b'C'` content, `b'P'` PII), version, kind, tid, vid, seq, ts, and in
/// version 2 the message-id digest when there is one.
pub(crate) fn aad(part: u8, h: &RecordHeader) -> Aad {
    let mut out = Aad {
        buf: [0u8; 47 + MSG_ID_LEN],
        len: 0,
    };
    let mut w = Writer(&mut out.buf, 0);
    w.put(&[part, h.version, h.kind]);
    w.put(&h.tid);
    w.put(&h.vid);
    w.put(&h.seq.to_le_bytes());
    w.put(&h.ts_millis.to_le_bytes());
    if let Some(d) = &h.msg_id {
        w.put(d);
    }
    out.len = w.1;
    out
}

struct Writer<'a>(&'a mut [u8], usize);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.0.get_mut(self.1..self.1 + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.1 += bytes.len();
    }
}

/// Appends one framed record to `out`. The header's flags must say what the
/// header holds (`FLAG_PII` iff `pii` is not empty, `FLAG_MSG_ID` iff a digest).
pub(crate) fn encode(h: &RecordHeader, content: &[u8], pii: &[u8], out: &mut Vec<u8>) {
    let start = begin_frame(h, content.len() + pii.len(), out);
    out.extend_from_slice(content);
    out.extend_from_slice(pii);
    seal_frame(out, start);
}

/// Appends a frame's header and `h` for a body of `h.len() + parts` bytes,
/// whose parts the caller appends next, then calls [`seal_frame`] with the
/// returned start. Reserves room for the whole frame first, so that the
/// parts never move once written.
pub(crate) fn begin_frame(h: &RecordHeader, parts: usize, out: &mut Vec<u8>) -> usize {
    let body_len = h.len() + parts;
    out.reserve(FRAME_HEADER + body_len);
    let start = out.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(h.version);
    out.push(h.kind);
    out.extend_from_slice(&h.flags.to_le_bytes());
    out.extend_from_slice(&h.tid);
    out.extend_from_slice(&h.vid);
    out.extend_from_slice(&h.seq.to_le_bytes());
    out.extend_from_slice(&h.ts_millis.to_le_bytes());
    out.extend_from_slice(&h.content_len.to_le_bytes());
    out.extend_from_slice(&h.pii_len.to_le_bytes());
    out.extend_from_slice(&h.content_nonce);
    out.extend_from_slice(&h.pii_nonce);
    if let Some(d) = &h.msg_id {
        out.extend_from_slice(d);
    }
    start
}

/// Fills in the CRC of the frame that starts at `start` and runs to the end.
pub(crate) fn seal_frame(out: &mut [u8], start: usize) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(out.get(start..start + 4).unwrap_or_default());
    hasher.update(out.get(start + FRAME_HEADER..).unwrap_or_default());
    let crc = hasher.finalize();
    if let Some(dst) = out.get_mut(start + 4..start + 8) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
}

/// The footer frame of a sealed segment.
pub(crate) fn encode_footer(f: &Footer) -> [u8; FOOTER_FRAME] {
    let mut out = Vec::with_capacity(FOOTER_FRAME);
    out.extend_from_slice(&(FOOTER_BODY as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&[RECORD_VERSION, KIND_FOOTER, 0, 0]);
    out.extend_from_slice(&f.generation.to_le_bytes());
    out.extend_from_slice(&f.data_len.to_le_bytes());
    out.extend_from_slice(&f.segment.to_le_bytes());
    seal_frame(&mut out, 0);
    let mut frame = [0u8; FOOTER_FRAME];
    frame.copy_from_slice(out.get(..FOOTER_FRAME).unwrap_or(&[0; FOOTER_FRAME]));
    frame
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the frame at the start of `buf`: its body and the frame's total size.
pub(crate) fn decode_frame(buf: &[u8]) -> Result<(&[u8], usize), DecodeError> {
    let len = u32_at(buf, 0).ok_or(DecodeError::Truncated)? as usize;
    if len == 0 {
        return Err(DecodeError::End);
    }
    if len > MAX_BODY {
        return Err(DecodeError::TooLong);
    }
    let crc = u32_at(buf, 4).ok_or(DecodeError::Truncated)?;
    let body = buf
        .get(FRAME_HEADER..FRAME_HEADER + len)
        .ok_or(DecodeError::Truncated)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(buf.get(0..4).ok_or(DecodeError::Truncated)?);
    hasher.update(body);
    if hasher.finalize() != crc {
        return Err(DecodeError::Crc);
    }
    Ok((body, FRAME_HEADER + len))
}

/// Parses a footer body.
fn decode_footer(body: &[u8]) -> Result<Footer, DecodeError> {
    if body.len() != FOOTER_BODY || body.get(2..4) != Some(&[0, 0]) {
        return Err(DecodeError::Layout);
    }
    Ok(Footer {
        generation: u32_at(body, 4).ok_or(DecodeError::Layout)?,
        data_len: u64_at(body, 8).ok_or(DecodeError::Layout)?,
        segment: u64_at(body, 16).ok_or(DecodeError::Layout)?,
    })
}

/// Parses a frame body into a record or a footer.
pub(crate) fn decode_body(body: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let version = body.first().copied().ok_or(DecodeError::Layout)?;
    let kind = body.get(1).copied().ok_or(DecodeError::Layout)?;
    match (version, kind) {
        (RECORD_VERSION_1 | RECORD_VERSION, KIND_MESSAGE) => {}
        (RECORD_VERSION, KIND_FOOTER) => return decode_footer(body).map(Frame::Footer),
        (RECORD_VERSION_1 | RECORD_VERSION, k) => return Err(DecodeError::Kind(k)),
        (v, _) => return Err(DecodeError::Version(v)),
    }
    let head = body.get(..RECORD_HEADER).ok_or(DecodeError::Layout)?;
    let arr = |at: usize| -> [u8; 16] {
        let mut a = [0u8; 16];
        if let Some(s) = body.get(at..at + 16) {
            a.copy_from_slice(s);
        }
        a
    };
    let nonce = |at: usize| -> [u8; NONCE_LEN] {
        let mut a = [0u8; NONCE_LEN];
        if let Some(s) = head.get(at..at + NONCE_LEN) {
            a.copy_from_slice(s);
        }
        a
    };
    let flags = u16::from_le_bytes([
        head.get(2).copied().unwrap_or(0),
        head.get(3).copied().unwrap_or(0),
    ]);
    let known = if version == RECORD_VERSION_1 {
        FLAG_PII
    } else {
        FLAG_PII | FLAG_MSG_ID | FLAG_BATCH_END
    };
    if flags & !known != 0 {
        return Err(DecodeError::Layout);
    }
    let seq = u32_at(head, 36).ok_or(DecodeError::Layout)?;
    let ts_millis = i64::from_le_bytes(
        head.get(40..48)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Layout)?,
    );
    let content_len = u32_at(head, 48).ok_or(DecodeError::Layout)?;
    let pii_len = u32_at(head, 52).ok_or(DecodeError::Layout)?;
    let msg_id = (flags & FLAG_MSG_ID != 0).then(|| arr(RECORD_HEADER));
    let h = RECORD_HEADER + if msg_id.is_some() { MSG_ID_LEN } else { 0 };
    let c = content_len as usize;
    let p = pii_len as usize;
    if h.checked_add(c)
        .and_then(|n| n.checked_add(p))
        .is_none_or(|n| n != body.len())
        || c < TAG_LEN
        || (p != 0 && p < TAG_LEN)
    {
        return Err(DecodeError::Layout);
    }
    if (flags & FLAG_PII != 0) != (p != 0) {
        return Err(DecodeError::Layout);
    }
    Ok(Frame::Record(Record {
        header: RecordHeader {
            version,
            kind,
            flags,
            tid: arr(4),
            vid: arr(20),
            seq,
            ts_millis,
            content_len,
            pii_len,
            content_nonce: nonce(56),
            pii_nonce: nonce(68),
            msg_id,
        },
        content: body.get(h..h + c).ok_or(DecodeError::Layout)?,
        pii: body.get(h + c..).ok_or(DecodeError::Layout)?,
    }))
}

/// Decodes the frame at the start of `buf`: a record or a footer.
pub(crate) fn decode_any(buf: &[u8]) -> Result<(Frame<'_>, usize), DecodeError> {
    let (body, size) = decode_frame(buf)?;
    Ok((decode_body(body)?, size))
}

/// Decodes the frame at the start of `buf`, which must be a message record.
pub(crate) fn decode(buf: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    match decode_any(buf)? {
        (Frame::Record(r), size) => Ok((r, size)),
        (Frame::Footer(_), _) => Err(DecodeError::Kind(KIND_FOOTER)),
    }
}

/// Fuzz entry point: decoding arbitrary bytes never panics, and whatever
/// decodes re-encodes to the same bytes.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_decode(data: &[u8]) {
    match decode_any(data) {
        Ok((Frame::Record(rec), size)) => {
            let mut again = Vec::new();
            encode(&rec.header, rec.content, rec.pii, &mut again);
            assert_eq!(again.as_slice(), &data[..size], "re-encoding differs");
        }
        Ok((Frame::Footer(f), size)) => {
            assert_eq!(&encode_footer(&f)[..], &data[..size], "re-encoding differs");
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: u8, pii: bool, id: bool) -> (RecordHeader, Vec<u8>, Vec<u8>) {
        let content = vec![7u8; 40];
        let p = if pii { vec![9u8; 20] } else { vec![] };
        let mut flags = if pii { FLAG_PII } else { 0 };
        if id {
            flags |= FLAG_MSG_ID;
        }
        (
            RecordHeader {
                version,
                kind: KIND_MESSAGE,
                flags,
                tid: [1; 16],
                vid: [2; 16],
                seq: 3,
                ts_millis: -5,
                content_len: 40,
                pii_len: p.len() as u32,
                content_nonce: [4; 12],
                pii_nonce: [5; 12],
                msg_id: id.then_some([8; MSG_ID_LEN]),
            },
            content,
            p,
        )
    }

    fn shapes() -> Vec<(RecordHeader, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for pii in [false, true] {
            out.push(sample(RECORD_VERSION_1, pii, false));
            out.push(sample(RECORD_VERSION, pii, false));
            out.push(sample(RECORD_VERSION, pii, true));
        }
        out
    }

    #[test]
    fn roundtrip() {
        for (h, c, p) in shapes() {
            let mut buf = Vec::new();
            encode(&h, &c, &p, &mut buf);
            assert_eq!(buf.len(), FRAME_HEADER + h.len() + c.len() + p.len());
            let (rec, size) = decode(&buf).unwrap();
            assert_eq!(size, buf.len());
            assert_eq!(rec.header, h);
            assert_eq!(rec.content, c.as_slice());
            assert_eq!(rec.pii, p.as_slice());
        }
    }

    #[test]
    fn a_version_1_record_cannot_claim_a_message_id() {
        let (mut h, c, p) = sample(RECORD_VERSION_1, true, true);
        h.version = RECORD_VERSION_1;
        let mut buf = Vec::new();
        encode(&h, &c, &p, &mut buf);
        assert_eq!(decode(&buf).unwrap_err(), DecodeError::Layout);
    }

    #[test]
    fn the_digest_and_the_version_are_bound_into_the_associated_data() {
        let (h, _, _) = sample(RECORD_VERSION, true, true);
        let base = aad(b'C', &h);
        assert_eq!(base.as_ref().len(), 47 + MSG_ID_LEN);
        let mut other = h.clone();
        other.msg_id = Some([9; MSG_ID_LEN]);
        assert_ne!(aad(b'C', &other).as_ref(), base.as_ref());
        let mut v1 = h.clone();
        v1.version = RECORD_VERSION_1;
        v1.msg_id = None;
        assert_eq!(aad(b'C', &v1).as_ref().len(), 47);
        assert_ne!(aad(b'P', &h).as_ref(), base.as_ref());
    }

    #[test]
    fn footers_roundtrip_and_are_not_records() {
        let f = Footer {
            generation: 3,
            data_len: 4096,
            segment: 12,
        };
        let frame = encode_footer(&f);
        match decode_any(&frame).unwrap() {
            (Frame::Footer(g), size) => assert_eq!((g, size), (f, FOOTER_FRAME)),
            other => panic!("{other:?}"),
        }
        assert_eq!(decode(&frame).unwrap_err(), DecodeError::Kind(KIND_FOOTER));
    }

    #[test]
    fn every_flip_and_truncation_is_caught() {
        let mut frames = Vec::new();
        for (h, c, p) in shapes() {
            let mut buf = Vec::new();
            encode(&h, &c, &p, &mut buf);
            frames.push(buf);
        }
        frames.push(
            encode_footer(&Footer {
                generation: 1,
                data_len: 32,
                segment: 1,
            })
            .to_vec(),
        );
        for buf in frames {
            for i in 0..buf.len() {
                for bit in 0..8 {
                    let mut bad = buf.clone();
                    bad[i] ^= 1 << bit;
                    assert!(
                        decode_any(&bad).is_err(),
                        "flip at {i} bit {bit} undetected"
                    );
                }
            }
            for n in 0..buf.len() {
                assert!(decode_any(&buf[..n]).is_err());
            }
        }
        assert_eq!(decode(&[0u8; 16]).unwrap_err(), DecodeError::End);
    }

    #[test]
    fn fuzz_entry_accepts_garbage() {
        for seed in 0u32..2000 {
            let data: Vec<u8> = (0..(seed % 200))
                .map(|i| (seed.wrapping_mul(31).wrapping_add(i * 7)) as u8)
                .collect();
            fuzz_decode(&data);
        }
    }
}
