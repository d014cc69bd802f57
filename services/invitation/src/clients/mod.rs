//! The services and transports the invitation service calls: identity ([`identity`]) and
//! subscription ([`subscription`]) over gRPC with this service's token, in domain types, their
//! failures mapped to this service's [`Error`]; and outgoing mail ([`mail`]).

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

/// A cache's lock; one poisoned by a panic elsewhere is still sound (entries are replaced
/// whole).
fn locked<T>(cache: &Mutex<T>) -> MutexGuard<'_, T> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}
