//! Maps and sets keyed by an id's 128-bit value.

/// Hashes a UUID key with one multiply: the ids are made by the services (never chosen by a
/// caller), so SipHash's protection is not needed where a request looks up hundreds of them.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u128(&mut self, value: u128) {
        let folded = (value as u64) ^ ((value >> 64) as u64).rotate_left(32);
        self.0 = folded.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by id value ([`super::Id::as_u128`]).
pub type IdMap<V> = std::collections::HashMap<u128, V, std::hash::BuildHasherDefault<IdHasher>>;
/// A set of id values.
pub type IdSet = std::collections::HashSet<u128, std::hash::BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::TrustId;

    #[test]
    fn an_id_key_is_its_uuid_value_whatever_the_case() {
        let upper = TrustId::parse(" 7F3C2A10-0000-4000-8000-000000000001").unwrap();
        let lower = TrustId::parse("7f3c2a10-0000-4000-8000-000000000001").unwrap();
        assert_eq!(upper.as_u128(), lower.as_u128());
        assert_eq!(upper.to_string(), "7f3c2a10-0000-4000-8000-000000000001");
        let other = TrustId::parse("7f3c2a10-0000-4000-8000-000000000002").unwrap();
        assert_ne!(other.as_u128(), lower.as_u128());
        let mut map = IdMap::default();
        map.insert(upper.as_u128(), "trust");
        assert_eq!(map.get(&lower.as_u128()), Some(&"trust"));
        let mut set = IdSet::default();
        assert!(set.insert(lower.as_u128()));
        assert!(!set.insert(upper.as_u128()));
    }
}
