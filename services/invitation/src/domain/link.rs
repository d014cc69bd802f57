//! Sign-up links: the token an email carries, the hash stored in its place, and why a link
//! cannot be used (R9–R11).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use portal_runtime::vocab::{AccountId, Password, RequestId};

/// The random bytes of a link token.
const TOKEN_BYTES: usize = 32;
/// Their length in base64url without padding.
const TOKEN_CHARS: usize = 43;

/// A sign-up link's token: 256 random bits, base64url without padding. It exists only in
/// memory and in the email; `Debug` does not show it.
#[derive(Clone)]
pub struct LinkToken(SecretString);

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkToken(***)")
    }
}

impl LinkToken {
    /// A fresh token, its bits from the OS.
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes).into())
    }

    /// Parses a token as it appears in an email: 32 bytes, base64url.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let token = raw.trim();
        if token.is_empty() {
            return Err("is required".into());
        }
        let not_a_token = || "is not an invitation link token".to_string();
        // The length is checked before anything is decoded.
        if token.len() != TOKEN_CHARS {
            return Err(not_a_token());
        }
        match URL_SAFE_NO_PAD.decode(token) {
            Ok(bytes) if bytes.len() == TOKEN_BYTES => Ok(Self(token.into())),
            _ => Err(not_a_token()),
        }
    }

    /// The stored form: SHA-256, hex.
    pub fn hash(&self) -> LinkHash {
        LinkHash(
            Sha256::digest(self.expose().as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// The token's text, for the email that carries it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// The SHA-256 (hex) of a link token: how links are stored and looked up. Not a secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct LinkHash(String);

impl LinkHash {
    /// The hex text, for a column bound where the database may store none.
    pub fn to_text(&self) -> String {
        self.0.clone()
    }

    /// Compares two hashes in constant time.
    pub fn matches(&self, other: &LinkHash) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }
}

/// Why a link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    Used,
    Revoked,
    Superseded,
    Expired,
    /// The invitee has an account and the invitation's access is already theirs (settled
    /// when they registered through another link, or granted on a resend).
    SignIn,
    /// The invitee is no longer in the trust's MIS.
    StaffLeft,
}

impl LinkRefusal {
    /// The ErrorInfo reason a caller sees.
    pub fn reason(self) -> &'static str {
        match self {
            LinkRefusal::Used => "LINK_USED",
            LinkRefusal::Revoked => "LINK_REVOKED",
            LinkRefusal::Superseded => "LINK_SUPERSEDED",
            LinkRefusal::Expired => "LINK_EXPIRED",
            LinkRefusal::SignIn => "SIGN_IN_INSTEAD",
            LinkRefusal::StaffLeft => "STAFF_LEFT",
        }
    }

    /// What the invitee is told to do.
    pub fn message(self) -> &'static str {
        match self {
            LinkRefusal::Used => {
                "this invitation link has already been used; sign in with the account it created"
            }
            LinkRefusal::Revoked => {
                "this invitation was withdrawn by an administrator; ask them to invite you again"
            }
            LinkRefusal::Superseded => {
                "a newer invitation email was sent; use the link in the most recent email"
            }
            LinkRefusal::Expired => {
                "this invitation link has expired; ask an administrator to invite you again"
            }
            LinkRefusal::SignIn => {
                "you already have an account and this invitation's access is already yours; \
                 sign in to use it"
            }
            LinkRefusal::StaffLeft => {
                "this invitation was withdrawn because the trust's MIS no longer lists you; \
                 ask the trust to add you to its MIS and invite you again"
            }
        }
    }
}

/// A parsed AcceptInvitation request (R11).
#[derive(Debug, Clone)]
pub struct AcceptInput {
    pub token: LinkToken,
    pub request_id: Option<RequestId>,
    pub accepter: Accepter,
}

/// Who accepts a link.
#[derive(Debug, Clone)]
pub enum Accepter {
    /// The invitee signs up: an account is registered with these details.
    NewAccount(NewAccountDetails),
    /// The invitee already has an account and is signed in to it: the link's access becomes
    /// that account's. `bearer` is their token, to read their account with.
    SignedIn {
        account_id: AccountId,
        bearer: SecretString,
    },
}

/// What a sign-up registers besides the staff email.
#[derive(Debug, Clone)]
pub struct NewAccountDetails {
    pub given_name: String,
    pub family_name: String,
    pub password: Password,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_token_carries_256_random_bits_and_is_stored_hashed() {
        let a = LinkToken::generate();
        let b = LinkToken::generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(), 32);
        assert_eq!(LinkToken::parse(a.expose()).unwrap().expose(), a.expose());
        let hash = a.hash();
        assert_eq!(hash.0.len(), 64);
        assert!(!hash.0.contains(a.expose()));
        assert!(LinkToken::parse("short").is_err());
        assert!(LinkToken::parse(&"A".repeat(44)).is_err());
        assert!(LinkToken::parse(&"A".repeat(43)).is_ok());
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
