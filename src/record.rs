//! On-disk record layout: framing, CRC, versioned encode/decode. No I/O.
//!
//! A frame is `len: u32 LE | crc: u32 LE | body[len]` where `crc` is CRC-32/ISO-HDLC
//! (crc32fast) over the four length bytes followed by the body. A frame whose
//! length field is zero marks the end of data. The body layout is in
//! docs/FORMAT.md and [`RecordHeader`].

use crate::seal::{NONCE_LEN, TAG_LEN};

/// Bytes of frame header (length + CRC).
pub(crate) const FRAME_HEADER: usize = 8;
/// Bytes of record header inside the body.
pub(crate) const RECORD_HEADER: usize = 80;
/// Current record format version.
pub(crate) const RECORD_VERSION: u8 = 1;
/// Record kind: one chat message.
pub(crate) const KIND_MESSAGE: u8 = 1;
/// Flag bit: the record carries a PII part.
pub(crate) const FLAG_PII: u16 = 1;
/// Largest body accepted (a message with a file upload of up to 64 MiB plus parts).
pub(crate) const MAX_BODY: usize = 80 << 20;

/// Random 128-bit id of a transcript's key generation (not the caller's id).
pub(crate) type Tid = [u8; 16];
/// Random 128-bit visitor id.
pub(crate) type Vid = [u8; 16];

/// The fixed header of a message record, in plaintext and authenticated as
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
}

/// A decoded record borrowing its ciphertexts from the frame body.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub header: RecordHeader,
    pub content: &'a [u8],
    pub pii: &'a [u8],
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

/// The associated data binding a sealed part to its record: domain byte
/// (`b'C'` content, `b'P'` PII), version, kind, tid, vid, seq, ts.
pub(crate) fn aad(part: u8, h: &RecordHeader) -> [u8; 47] {
    let mut out = [0u8; 47];
    let mut w = Writer(&mut out, 0);
    w.put(&[part, h.version, h.kind]);
    w.put(&h.tid);
    w.put(&h.vid);
    w.put(&h.seq.to_le_bytes());
    w.put(&h.ts_millis.to_le_bytes());
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

/// Appends one framed record to `out`.
pub(crate) fn encode(h: &RecordHeader, content: &[u8], pii: &[u8], out: &mut Vec<u8>) {
    let body_len = RECORD_HEADER + content.len() + pii.len();
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
    out.extend_from_slice(content);
    out.extend_from_slice(pii);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&out[start..start + 4]);
    hasher.update(&out[start + FRAME_HEADER..]);
    let crc = hasher.finalize();
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
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

/// Parses a frame body into a record.
pub(crate) fn decode_body(body: &[u8]) -> Result<Record<'_>, DecodeError> {
    let head = body.get(..RECORD_HEADER).ok_or(DecodeError::Layout)?;
    let arr = |at: usize| -> [u8; 16] {
        let mut a = [0u8; 16];
        if let Some(s) = head.get(at..at + 16) {
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
    let version = head.first().copied().ok_or(DecodeError::Layout)?;
    if version != RECORD_VERSION {
        return Err(DecodeError::Version(version));
    }
    let kind = head.get(1).copied().ok_or(DecodeError::Layout)?;
    if kind != KIND_MESSAGE {
        return Err(DecodeError::Kind(kind));
    }
    let flags = u16::from_le_bytes([
        head.get(2).copied().unwrap_or(0),
        head.get(3).copied().unwrap_or(0),
    ]);
    let seq = u32_at(head, 36).ok_or(DecodeError::Layout)?;
    let ts_millis = i64::from_le_bytes(
        head.get(40..48)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Layout)?,
    );
    let content_len = u32_at(head, 48).ok_or(DecodeError::Layout)?;
    let pii_len = u32_at(head, 52).ok_or(DecodeError::Layout)?;
    let c = content_len as usize;
    let p = pii_len as usize;
    if RECORD_HEADER + c + p != body.len() || c < TAG_LEN || (p != 0 && p < TAG_LEN) {
        return Err(DecodeError::Layout);
    }
    if (flags & FLAG_PII != 0) != (p != 0) || flags & !FLAG_PII != 0 {
        return Err(DecodeError::Layout);
    }
    Ok(Record {
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
        },
        content: body
            .get(RECORD_HEADER..RECORD_HEADER + c)
            .ok_or(DecodeError::Layout)?,
        pii: body.get(RECORD_HEADER + c..).ok_or(DecodeError::Layout)?,
    })
}

/// Decodes the frame at the start of `buf` fully.
pub(crate) fn decode(buf: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    let (body, size) = decode_frame(buf)?;
    Ok((decode_body(body)?, size))
}

/// Fuzz entry point: decoding arbitrary bytes never panics, and whatever
/// decodes re-encodes to the same bytes.
pub(crate) fn fuzz_decode(data: &[u8]) {
    if let Ok((rec, size)) = decode(data) {
        let mut again = Vec::new();
        encode(&rec.header, rec.content, rec.pii, &mut again);
        assert_eq!(again.as_slice(), &data[..size], "re-encoding differs");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pii: bool) -> (RecordHeader, Vec<u8>, Vec<u8>) {
        let content = vec![7u8; 40];
        let p = if pii { vec![9u8; 20] } else { vec![] };
        (
            RecordHeader {
                version: RECORD_VERSION,
                kind: KIND_MESSAGE,
                flags: if pii { FLAG_PII } else { 0 },
                tid: [1; 16],
                vid: [2; 16],
                seq: 3,
                ts_millis: -5,
                content_len: 40,
                pii_len: p.len() as u32,
                content_nonce: [4; 12],
                pii_nonce: [5; 12],
            },
            content,
            p,
        )
    }

    #[test]
    fn roundtrip() {
        for pii in [false, true] {
            let (h, c, p) = sample(pii);
            let mut buf = Vec::new();
            encode(&h, &c, &p, &mut buf);
            assert_eq!(buf.len(), FRAME_HEADER + RECORD_HEADER + c.len() + p.len());
            let (rec, size) = decode(&buf).unwrap();
            assert_eq!(size, buf.len());
            assert_eq!(rec.header, h);
            assert_eq!(rec.content, c.as_slice());
            assert_eq!(rec.pii, p.as_slice());
        }
    }

    #[test]
    fn every_flip_and_truncation_is_caught() {
        let (h, c, p) = sample(true);
        let mut buf = Vec::new();
        encode(&h, &c, &p, &mut buf);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad).is_err(), "flip at {i} bit {bit} undetected");
            }
        }
        for n in 0..buf.len() {
            assert!(decode(&buf[..n]).is_err());
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
