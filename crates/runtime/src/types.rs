//! The string-typed helpers the services used before [`crate::vocab`]; removed once every
//! service speaks in typed ids.

pub use crate::vocab::{Email, IdHasher, IdMap, IdSet, parse_name, truncate};

/// Parses a resource id (a UUID in canonical lower-case form).
pub fn parse_id(raw: &str) -> Result<String, String> {
    crate::vocab::TrustId::parse(raw).map(|id| id.to_string())
}

/// Checks a resource id like [`parse_id`] and returns only its 128-bit value.
pub fn parse_id_key(raw: &str) -> Result<u128, String> {
    crate::vocab::TrustId::parse(raw).map(|id| id.as_u128())
}

/// The canonical spelling of the id whose key [`parse_id_key`] gave.
pub fn id_of_key(key: u128) -> String {
    uuid::Uuid::from_u128(key).hyphenated().to_string()
}

/// The map key of a stored id: its UUID value.
pub fn id_key(id: &str) -> u128 {
    match uuid::Uuid::try_parse(id) {
        Ok(uuid) => uuid.as_u128(),
        Err(_) => {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut hasher);
            u128::from(hasher.finish()) << 64
        }
    }
}

/// A new time-ordered id (UUID v7), each one greater than the last made by this process.
pub fn new_id() -> String {
    crate::vocab::TrustId::generate().to_string()
}
