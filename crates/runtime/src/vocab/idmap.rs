//! Maps and sets keyed by an id's 128-bit value.
//!
//! Ids reach these maps from callers (a request may name a thousand schools), so the hash is
//! keyed with a secret drawn at random for each map (SipHash through std's `RandomState`): a
//! caller cannot choose ids that land in one bucket, as it could with an unkeyed multiply
//! (100,000 such ids once cost 13 s of one core).

use std::hash::RandomState;

/// A map keyed by id value ([`super::Id::as_u128`]).
pub type IdMap<V> = std::collections::HashMap<u128, V, RandomState>;
/// A set of id values.
pub type IdSet = std::collections::HashSet<u128, RandomState>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

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

    #[test]
    fn two_id_sets_hash_the_same_id_with_different_keys() {
        let id = TrustId::parse("7f3c2a10-0000-4000-8000-000000000001")
            .unwrap()
            .as_u128();
        let (first, second) = (IdSet::default(), IdSet::default());
        assert_ne!(first.hasher().hash_one(id), second.hasher().hash_one(id));
    }

    #[test]
    fn ids_made_to_collide_under_a_folding_hash_spread_over_the_buckets() {
        // Each id's halves fold (low ^ high rotated) to the same word: the collisions a
        // caller could once choose.
        let set = IdSet::default();
        let hashes: std::collections::HashSet<u64> = (0..10_000u64)
            .map(|high| {
                let low = 0x5eed_u64 ^ high.rotate_left(32);
                (u128::from(high) << 64) | u128::from(low)
            })
            .map(|id| set.hasher().hash_one(id) & 0xffff)
            .collect();
        assert!(hashes.len() > 5_000, "{} distinct buckets", hashes.len());
    }
}
