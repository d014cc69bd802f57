//! The services and transports the invitation service calls: identity ([`identity`]) and
//! subscription ([`subscription`]) over gRPC with this service's token, in domain types, their
//! failures mapped to this service's [`Error`]; and outgoing mail ([`mail`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use portal_runtime::client::is_unavailable;
use tonic::Status;

use crate::error::Error;

pub mod identity;
pub mod mail;
pub mod subscription;

pub use identity::Identity;
pub use mail::Mailer;
pub use subscription::Subscription;

/// How long catalogue, schools and names are reused.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// Maps a failed call to another service: unreachable, overloaded or too slow is UNAVAILABLE
/// (retry later); anything else is an internal error (logged, not sent).
fn remote(service: &'static str, status: Status) -> Error {
    if is_unavailable(&status) {
        Error::Unavailable(format!(
            "the {service} service is unreachable or did not answer in time; retry later"
        ))
    } else {
        Error::Internal(anyhow::anyhow!(
            "{service} answered {:?}: {}",
            status.code(),
            status.message()
        ))
    }
}

/// A value read from another service, and when.
struct Cached<T> {
    at: Instant,
    value: T,
}

impl<T: Clone> Cached<T> {
    fn new(value: T) -> Self {
        Self {
            at: Instant::now(),
            value,
        }
    }

    /// The value, while younger than [`CACHE_TTL`].
    fn fresh(entry: Option<&Self>) -> Option<T> {
        entry
            .filter(|c| c.at.elapsed() < CACHE_TTL)
            .map(|c| c.value.clone())
    }
}

/// Values read from another service, per key: each kept for `ttl`, at most `limit` of them.
/// When full, expired entries go first, then the oldest, so callers naming ever new trusts or
/// accounts cannot grow it.
struct Recent<K, V> {
    entries: HashMap<K, Cached<V>>,
    ttl: Duration,
    limit: usize,
}

impl<K: Eq + Hash + Copy, V: Clone> Recent<K, V> {
    fn new(ttl: Duration, limit: usize) -> Self {
        Self {
            entries: HashMap::new(),
            ttl,
            limit: limit.max(1),
        }
    }

    /// The value of `key`, while younger than the ttl.
    fn get(&self, key: &K) -> Option<V> {
        self.entries
            .get(key)
            .filter(|c| c.at.elapsed() < self.ttl)
            .map(|c| c.value.clone())
    }

    fn insert(&mut self, key: K, value: V) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.limit {
            let ttl = self.ttl;
            self.entries.retain(|_, c| c.at.elapsed() < ttl);
            if self.entries.len() >= self.limit
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, c)| c.at)
                    .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, Cached::new(value));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A cache's lock; one poisoned by a panic elsewhere is still sound (entries are replaced
/// whole).
fn locked<T>(cache: &Mutex<T>) -> MutexGuard<'_, T> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_drops_its_oldest_entry_for_a_new_one() {
        let mut cache = Recent::new(CACHE_TTL, 3);
        for key in 0..100u32 {
            cache.insert(key, key * 10);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&99), Some(990));
        assert_eq!(cache.get(&98), Some(980));
        assert_eq!(cache.get(&0), None);
        cache.insert(99, 1);
        assert_eq!(cache.len(), 3, "replacing a key evicts nothing");
        assert_eq!(cache.get(&97), Some(970));
    }

    #[test]
    fn an_entry_past_its_ttl_is_not_answered() {
        let mut cache = Recent::new(Duration::ZERO, 3);
        cache.insert(1u32, "one");
        assert_eq!(cache.get(&1), None);
    }
}
