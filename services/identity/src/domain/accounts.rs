//! Accounts: one per normalised email (rule R12), signed in to with a password.

use chrono::{DateTime, Utc};
use portal_runtime::auth::IssuedToken;
use portal_runtime::vocab::{AccountId, Email, InvitationId, Password};
use secrecy::SecretString;

use super::OrganizationAccess;

/// Longest password tried at sign-in: the policy applies when a password is chosen, so this
/// only keeps a caller from making the hash work on megabytes.
pub const MAX_SIGN_IN_PASSWORD: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
    pub create_time: DateTime<Utc>,
}

/// A person signing up: the password meets the policy and is not hashed yet.
#[derive(Debug, Clone)]
pub struct Registration {
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
    pub password: Password,
    /// The invitation the person signs up through, when there is one.
    pub invitation_id: Option<InvitationId>,
}

/// An account to store; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
    pub password_hash: String,
    pub invitation_id: Option<InvitationId>,
}

/// A sign-in attempt.
#[derive(Debug)]
pub struct SignIn {
    pub email: Email,
    pub password: SecretString,
}

/// The account signed in to and its user token.
#[derive(Debug)]
pub struct SignedIn {
    pub account: Account,
    pub token: IssuedToken,
}

/// A signed-in person's account and the access they hold.
#[derive(Debug)]
pub struct CurrentAccount {
    pub account: Account,
    pub access: Vec<OrganizationAccess>,
}

/// The password of a sign-in: present and bounded, nothing more.
pub fn parse_sign_in_password(raw: &str) -> Result<SecretString, String> {
    if raw.is_empty() {
        Err("is required".into())
    } else if raw.chars().count() > MAX_SIGN_IN_PASSWORD {
        Err(format!("is longer than {MAX_SIGN_IN_PASSWORD} characters"))
    } else {
        Ok(SecretString::from(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_10_to_128_characters() {
        assert!(Password::parse("k7#pWq2!x").is_err());
        assert!(Password::parse("k7#pWq2!xZ").is_ok());
        assert!(Password::parse(&"xy".repeat(64)).is_ok());
        assert!(Password::parse(&"xy".repeat(65)).is_err());
        // Long enough, but the first a guesser tries.
        assert!(Password::parse("1234567890").is_err());
        assert!(Password::parse("").is_err());
    }

    #[test]
    fn a_sign_in_password_needs_only_to_be_present_and_bounded() {
        assert_eq!(parse_sign_in_password("").unwrap_err(), "is required");
        assert!(parse_sign_in_password("short").is_ok());
        assert!(parse_sign_in_password(&"p".repeat(MAX_SIGN_IN_PASSWORD + 1)).is_err());
    }
}
