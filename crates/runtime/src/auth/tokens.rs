//! Bearer tokens: Ed25519-signed JWTs issued by the identity service (user tokens at sign-in)
//! and by an operator (service tokens), verified by every service.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::principal::Principal;
use crate::error::ApiError;
use crate::vocab::AccountId;

const ISSUER: &str = "portal-identity";
const AUDIENCE: &str = "portal";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// `user` or `service`.
    kind: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// A token and when it stops working.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs tokens (held by the identity service and the operator's `portal token issue`).
pub struct TokenIssuer {
    key: EncodingKey,
    kid: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .finish()
    }
}

impl TokenIssuer {
    /// From a PKCS#8 PEM Ed25519 private key.
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let signing = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 PEM private key: {e}"))?;
        Ok(Self {
            key: EncodingKey::from_ed_pem(pem.as_bytes())?,
            kid: key_id(&signing.verifying_key()),
        })
    }

    pub fn issue_user(
        &self,
        account_id: AccountId,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> anyhow::Result<IssuedToken> {
        self.issue(&account_id.to_string(), "user", now, ttl)
    }

    pub fn issue_service(
        &self,
        name: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> anyhow::Result<IssuedToken> {
        self.issue(name, "service", now, ttl)
    }

    fn issue(
        &self,
        sub: &str,
        kind: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> anyhow::Result<IssuedToken> {
        let expires_at = now + ttl;
        let claims = Claims {
            sub: sub.to_string(),
            kind: kind.to_string(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key)?;
        Ok(IssuedToken { token, expires_at })
    }
}

/// Verifies tokens against one or more public keys (several during a key rotation).
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    /// SHA-256 of a token already verified -> its principal and the last second it is good
    /// for. A signature check costs tens of microseconds and every call carries a token,
    /// while a service or a signed-in user sends the same one until it expires.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
}

#[derive(Debug, Clone)]
struct Verified {
    principal: Principal,
    /// `exp` plus the leeway, in Unix seconds.
    usable_until: i64,
}

/// Bounds the verified-token cache; expired entries are dropped when it is reached, and the
/// whole cache if that is not enough.
const VERIFIED_CACHE_LIMIT: usize = 10_000;

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenVerifier {
    /// From SPKI PEM Ed25519 public keys.
    pub fn from_pems<'a>(pems: impl IntoIterator<Item = &'a str>) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        for pem in pems {
            let verifying = VerifyingKey::from_public_key_pem(pem)
                .map_err(|e| anyhow::anyhow!("not an Ed25519 public key PEM: {e}"))?;
            keys.insert(
                key_id(&verifying),
                DecodingKey::from_ed_pem(pem.as_bytes())?,
            );
        }
        anyhow::ensure!(
            !keys.is_empty(),
            "at least one token public key is required"
        );
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Ok(Self {
            keys,
            validation,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Checks signature, issuer, audience and expiry and returns the principal.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        self.verify_at(token, Utc::now().timestamp())
    }

    /// [`Self::verify`], with `now` deciding whether a token verified before has expired.
    fn verify_at(&self, token: &str, now: i64) -> Result<Principal, ApiError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut cache = self.lock_verified();
        match cache.get(&digest) {
            Some(known) if now <= known.usable_until => return Ok(known.principal.clone()),
            Some(_) => {
                cache.remove(&digest);
                return Err(ApiError::Unauthenticated {
                    reason: "TOKEN_EXPIRED",
                    message: "the bearer token has expired; sign in again".into(),
                });
            }
            None => {}
        }
        drop(cache);
        let (principal, exp) = self.verify_signed(token)?;
        let mut cache = self.lock_verified();
        if cache.len() >= VERIFIED_CACHE_LIMIT {
            cache.retain(|_, known| now <= known.usable_until);
            if cache.len() >= VERIFIED_CACHE_LIMIT {
                cache.clear();
            }
        }
        cache.insert(
            digest,
            Verified {
                principal: principal.clone(),
                usable_until: exp.saturating_add(self.validation.leeway as i64),
            },
        );
        Ok(principal)
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Verified>> {
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The full check of a token not seen before: the principal and the token's `exp`.
    fn verify_signed(&self, token: &str) -> Result<(Principal, i64), ApiError> {
        let unauthenticated = |reason: &'static str, message: &str| ApiError::Unauthenticated {
            reason,
            message: message.to_string(),
        };
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("TOKEN_MALFORMED", "the bearer token is malformed"))?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or_else(|| {
                unauthenticated(
                    "TOKEN_KEY_UNKNOWN",
                    "the bearer token was signed by a key this service does not trust",
                )
            })?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => unauthenticated(
                    "TOKEN_EXPIRED",
                    "the bearer token has expired; sign in again",
                ),
                ErrorKind::InvalidSignature => unauthenticated(
                    "TOKEN_SIGNATURE_INVALID",
                    "the bearer token signature is invalid",
                ),
                _ => unauthenticated("TOKEN_INVALID", "the bearer token is not valid"),
            }
        })?;
        let exp = data.claims.exp;
        match data.claims.kind.as_str() {
            // Identity signs user tokens for the accounts it made: the subject is their id.
            "user" => match AccountId::parse(&data.claims.sub) {
                Ok(account_id) => Ok((Principal::User { account_id }, exp)),
                Err(_) => Err(unauthenticated(
                    "TOKEN_INVALID",
                    "the bearer token is not valid",
                )),
            },
            "service" => Ok((
                Principal::Service {
                    name: data.claims.sub,
                },
                exp,
            )),
            _ => Err(unauthenticated(
                "TOKEN_INVALID",
                "the bearer token is not valid",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::auth::keys::generate_keypair;

    fn account() -> AccountId {
        AccountId::parse("7f3c2a10-0000-4000-8000-00000000a001").unwrap()
    }

    fn pair() -> (TokenIssuer, TokenVerifier) {
        let keys = generate_keypair().unwrap();
        (
            TokenIssuer::from_pem(&keys.private_pem).unwrap(),
            TokenVerifier::from_pems([keys.public_pem.as_str()]).unwrap(),
        )
    }

    #[test]
    fn a_user_token_verifies_to_its_account() {
        let (issuer, verifier) = pair();
        let token = issuer
            .issue_user(account(), Utc::now(), Duration::minutes(5))
            .unwrap();
        assert_eq!(
            verifier.verify(&token.token).unwrap(),
            Principal::User {
                account_id: account()
            }
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let (issuer, verifier) = pair();
        let token = issuer
            .issue_service(
                "invitation",
                Utc::now() - Duration::hours(2),
                Duration::hours(1),
            )
            .unwrap();
        assert!(matches!(
            verifier.verify(&token.token),
            Err(ApiError::Unauthenticated {
                reason: "TOKEN_EXPIRED",
                ..
            })
        ));
    }

    #[test]
    fn a_token_verified_once_is_refused_once_it_expires() {
        let (issuer, verifier) = pair();
        let token = issuer
            .issue_user(account(), Utc::now(), Duration::minutes(5))
            .unwrap();
        let now = Utc::now().timestamp();
        assert!(verifier.verify_at(&token.token, now).is_ok());
        // Within the leeway it is still good; past it the remembered answer is not reused.
        let exp = token.expires_at.timestamp();
        assert!(verifier.verify_at(&token.token, exp + 30).is_ok());
        assert!(matches!(
            verifier.verify_at(&token.token, exp + 31),
            Err(ApiError::Unauthenticated {
                reason: "TOKEN_EXPIRED",
                ..
            })
        ));
    }

    #[test]
    fn a_remembered_token_does_not_vouch_for_a_tampered_copy() {
        let (issuer, verifier) = pair();
        let token = issuer
            .issue_user(account(), Utc::now(), Duration::minutes(5))
            .unwrap()
            .token;
        assert!(verifier.verify(&token).is_ok());
        // A character well inside the signature (the last one may only carry padding bits).
        let at = token.len() - 10;
        let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
        let tampered = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
        assert!(verifier.verify(&tampered).is_err());
        assert!(verifier.verify(&token).is_ok());
    }

    #[test]
    fn a_token_from_another_key_is_refused() {
        let (issuer, _) = pair();
        let (_, other_verifier) = pair();
        let token = issuer
            .issue_user(account(), Utc::now(), Duration::minutes(5))
            .unwrap();
        assert!(other_verifier.verify(&token.token).is_err());
    }

    #[test]
    fn a_verifier_trusts_every_key_it_was_given_during_rotation() {
        let old = generate_keypair().unwrap();
        let new = generate_keypair().unwrap();
        let verifier =
            TokenVerifier::from_pems([old.public_pem.as_str(), new.public_pem.as_str()]).unwrap();
        for keys in [&old, &new] {
            let issuer = TokenIssuer::from_pem(&keys.private_pem).unwrap();
            let token = issuer
                .issue_service("billing", Utc::now(), Duration::minutes(5))
                .unwrap();
            assert!(verifier.verify(&token.token).is_ok());
        }
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let (issuer, verifier) = pair();
        let token = issuer
            .issue_user(account(), Utc::now(), Duration::minutes(5))
            .unwrap()
            .token;
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"sub":"acc-2","kind":"service","iss":"portal-identity","aud":"portal","iat":0,"exp":9999999999,"jti":"x"}"#,
        );
        parts[1] = &forged_claims;
        assert!(verifier.verify(&parts.join(".")).is_err());
    }

    #[test]
    fn a_user_token_whose_subject_is_not_an_account_id_is_refused() {
        let (issuer, verifier) = pair();
        let token = issuer
            .issue("acc-1", "user", Utc::now(), Duration::minutes(5))
            .unwrap();
        assert!(matches!(
            verifier.verify(&token.token),
            Err(ApiError::Unauthenticated {
                reason: "TOKEN_INVALID",
                ..
            })
        ));
    }
}
