//! The one place that knows about bincode: encoding of sealed payloads and of the
//! index checkpoint (bincode 2, standard configuration: little-endian, variable
//! length integers; see docs/FORMAT.md).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest payload we agree to decode (guards allocations from hostile lengths).
const LIMIT: usize = 1 << 30;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<LIMIT>()
}

/// Encodes `value` into a buffer allocated once at its exact size (no
/// reallocation, so no stray copies of a large plaintext are left behind in
/// freed memory).
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut size = bincode::enc::write::SizeWriter::default();
    // Serialising plain data structs cannot fail.
    if bincode::serde::encode_into_writer(value, &mut size, config()).is_err() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(size.bytes_written);
    if bincode::serde::encode_into_std_write(value, &mut out, config()).is_err() {
        out.clear();
    }
    out
}

/// Bytes that serialise as one byte string (bincode: a varint length and the
/// raw bytes, exactly as a `Vec<u8>` sequence encodes, but written at once
/// instead of byte by byte).
#[derive(Default)]
pub(crate) struct Bytes<'a>(pub &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Serialises a `Vec<u8>` field as [`Bytes`] (`#[serde(serialize_with)]`).
pub(crate) fn as_bytes<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    Bytes(v).serialize(s)
}

/// Deserialises a `Vec<u8>` written as a byte string or as a sequence (the
/// two encode alike) at once instead of byte by byte.
pub(crate) fn byte_buf<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
    d.deserialize_byte_buf(Visitor)
}

/// Decodes a value that must fill `bytes` exactly.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match bincode::serde::decode_from_slice::<T, _>(bytes, config()) {
        Ok((value, used)) if used == bytes.len() => Some(value),
        _ => None,
    }
}

/// `value` framed as the index's small files are (the checkpoint, the
/// manifest): `magic[8] | version u32 | len u64 | crc32 u32 (of the
/// payload) | payload`, the payload `value` encoded.
pub(crate) fn framed<T: Serialize>(magic: &[u8; 8], version: u32, value: &T) -> Vec<u8> {
    frame(magic, version, &encode(value))
}

/// `payload` framed as [`framed`] frames an encoded value.
pub(crate) fn frame(magic: &[u8; 8], version: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The value [`framed`] wrote, if `bytes` are whole, of `magic` and of a
/// version `accept` takes (`None` otherwise).
pub(crate) fn unframed<T: DeserializeOwned>(
    bytes: &[u8],
    magic: &[u8; 8],
    accept: impl Fn(u32) -> bool,
) -> Option<T> {
    decode(unframe(bytes, magic, accept)?.1)
}

/// The version and the payload of a frame ([`frame`]), if `bytes` are
/// whole, of `magic` and of a version `accept` takes (`None` otherwise).
pub(crate) fn unframe<'a>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    accept: impl Fn(u32) -> bool,
) -> Option<(u32, &'a [u8])> {
    if bytes.get(0..8)? != magic {
        return None;
    }
    let version = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
    if !accept(version) {
        return None;
    }
    let len = usize::try_from(u64::from_le_bytes(bytes.get(12..20)?.try_into().ok()?)).ok()?;
    let crc = u32::from_le_bytes(bytes.get(20..24)?.try_into().ok()?);
    let payload = bytes.get(24..)?;
    if payload.len() != len || crc32fast::hash(payload) != crc {
        return None;
    }
    Some((version, payload))
}
