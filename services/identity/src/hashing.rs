//! Password hashing: argon2id, run off the async runtime because it is slow on purpose.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use portal_runtime::vocab::Password;
use secrecy::{ExposeSecret, SecretString};

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

/// Hashes a new password.
pub async fn hash_password(password: Password) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash(password.expose())).await?
}

/// Whether `password` matches `hash`; with no hash (no such account) it verifies against the
/// dummy hash and is false.
pub async fn verify_password(password: SecretString, hash: Option<String>) -> anyhow::Result<bool> {
    Ok(tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify(password.expose_secret(), &hash),
        None => {
            let _ = verify(password.expose_secret(), &DUMMY_HASH);
            false
        }
    })
    .await?)
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
        assert!(!verify_password(password, None).await.unwrap());
    }
}
