//! Password hashing: argon2id, run off the async runtime because it is slow on purpose.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use portal_runtime::vocab::Password;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Hashes with argon2id and a random salt (PHC string format).
fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// True when `password` matches `hash`; a malformed hash never matches.
fn verify(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash no password matches in practice, verified against when an email has no account so
/// that an unknown email costs the same time as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let secret = uuid::Uuid::new_v4().to_string();
    hash(&secret).unwrap_or_default()
});

/// Computes the dummy hash now, so the first unknown-email sign-in is not slower than the
/// others.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// Hashes a new password outside any server (operator commands, demo data).
pub async fn hash_password(password: Password) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash(password.expose())).await?
}

/// Why a hash was not computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every slot busy and the queue full, or no slot freed in time: retry in a moment.
    #[error("too many passwords are being checked at once")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Password hashing within a memory budget: at most `concurrency` hashes at once (each takes
/// 19 MiB: argon2id's default m=19456 KiB), at most `queue` callers waiting for a slot, each for at most `wait`;
/// any caller beyond is refused at once, so a flood of sign-ins costs bounded memory.
pub struct Hasher {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    wait: Duration,
}

/// A place in the queue, given back however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hasher {
    pub fn new(concurrency: usize, queue: usize, wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
            wait,
        }
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, HashError> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        let _place = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            return Err(HashError::Busy);
        }
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(HashError::Busy),
        }
    }

    /// Hashes a new password.
    pub async fn hash_password(&self, password: Password) -> Result<String, HashError> {
        let slot = self.slot().await?;
        let hashed = tokio::task::spawn_blocking(move || {
            let hashed = hash(password.expose());
            drop(slot);
            hashed
        })
        .await
        .map_err(anyhow::Error::from)??;
        Ok(hashed)
    }

    /// Whether `password` matches `hash`; with no hash (no such account) it verifies against
    /// the dummy hash and is false.
    pub async fn verify_password(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        let slot = self.slot().await?;
        let valid = tokio::task::spawn_blocking(move || {
            let valid = match hash {
                Some(hash) => verify(password.expose_secret(), &hash),
                None => {
                    let _ = verify(password.expose_secret(), &DUMMY_HASH);
                    false
                }
            };
            drop(slot);
            valid
        })
        .await
        .map_err(anyhow::Error::from)?;
        Ok(valid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert_ne!(h, hash("correct horse battery").unwrap(), "salts differ");
    }

    #[tokio::test]
    async fn without_a_hash_no_password_verifies() {
        let password = SecretString::from("correct horse battery");
        let hasher = Hasher::new(1, 0, Duration::from_secs(1));
        assert!(!hasher.verify_password(password, None).await.unwrap());
    }

    #[tokio::test]
    async fn a_check_beyond_the_slots_and_the_queue_is_refused_at_once() {
        let hasher = Hasher::new(1, 1, Duration::from_secs(60));
        let busy = hasher.slots.clone().try_acquire_owned().unwrap();
        // The one place in the queue is taken by a check that waits for the slot.
        let waiting = hasher.verify_password("correct horse battery".into(), None);
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        let refused = hasher
            .verify_password("correct horse battery".into(), None)
            .await;
        assert!(matches!(refused, Err(HashError::Busy)), "{refused:?}");
        drop(busy);
        assert!(!waiting.await.unwrap());
    }

    #[tokio::test]
    async fn a_check_that_waits_too_long_for_a_slot_is_refused() {
        let hasher = Hasher::new(1, 4, Duration::ZERO);
        let _busy = hasher.slots.clone().try_acquire_owned().unwrap();
        let refused = hasher
            .verify_password("correct horse battery".into(), None)
            .await;
        assert!(matches!(refused, Err(HashError::Busy)), "{refused:?}");
    }
}
