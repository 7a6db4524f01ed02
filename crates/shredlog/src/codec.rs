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

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain data structs into a Vec cannot fail.
    bincode::serde::encode_to_vec(value, config()).unwrap_or_default()
}

/// Decodes a value that must fill `bytes` exactly.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match bincode::serde::decode_from_slice::<T, _>(bytes, config()) {
        Ok((value, used)) if used == bytes.len() => Some(value),
        _ => None,
    }
}
