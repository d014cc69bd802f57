//! The invitation's domain: statuses, the outcome of a create, and sign-up link tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use portal_runtime::types::Email;

/// Lifecycle of an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Granted,
    Accepted,
    Expired,
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Granted => "GRANTED",
            Status::Accepted => "ACCEPTED",
            Status::Expired => "EXPIRED",
            Status::Revoked => "REVOKED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "PENDING" => Status::Pending,
            "GRANTED" => Status::Granted,
            "ACCEPTED" => Status::Accepted,
            "EXPIRED" => Status::Expired,
            "REVOKED" => Status::Revoked,
            _ => return None,
        })
    }
}

/// What the invitation email carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// The invitee has no account: a single-use sign-up link.
    SignUpLink,
    /// The invitee has an account: a notice that new access is available.
    NewProductNotice,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::SignUpLink => "SIGN_UP_LINK",
            Delivery::NewProductNotice => "NEW_PRODUCT_NOTICE",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "SIGN_UP_LINK" => Some(Delivery::SignUpLink),
            "NEW_PRODUCT_NOTICE" => Some(Delivery::NewProductNotice),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrgKind {
    Trust,
    School,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantState {
    Pending,
    Active,
    AlreadyHeld,
}

/// One access an invitation grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedAccess {
    pub org_kind: OrgKind,
    pub org_id: String,
    pub product_key: String,
    pub role_key: String,
    pub state: GrantState,
}

/// One (school, product) pair asked for but not granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedAccess {
    pub school_id: String,
    pub product_key: String,
    pub reason: String,
    pub detail: String,
}

/// The trust product and role offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustAccess {
    pub product_key: String,
    pub role_key: String,
}

/// School products at schools of the trust, all with one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolAccess {
    pub product_keys: Vec<String>,
    pub role_key: String,
    pub school_ids: Vec<String>,
}

/// A parsed CreateInvitation request.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub trust_id: String,
    pub staff_id: String,
    pub trust_access: TrustAccess,
    pub school_access: Option<SchoolAccess>,
    pub request_id: Option<String>,
    pub validate_only: bool,
}

/// A stored invitation.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: String,
    pub trust_id: String,
    pub trust_name: String,
    pub staff_id: String,
    pub staff_email: Email,
    pub staff_given_name: String,
    pub inviter_account_id: String,
    pub trust_access: TrustAccess,
    pub school_access: Option<SchoolAccess>,
    pub status: Status,
    pub delivery: Delivery,
    pub granted: Vec<GrantedAccess>,
    pub skipped: Vec<SkippedAccess>,
    pub expire_time: Option<DateTime<Utc>>,
    pub current_link_hash: Option<String>,
    pub accepting: bool,
    pub account_id: Option<String>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

impl Invitation {
    /// The status as of `now`: a PENDING invitation past its expiry is EXPIRED even before the
    /// sweeper has recorded it.
    pub fn status_at(&self, now: DateTime<Utc>) -> Status {
        match (self.status, self.expire_time) {
            (Status::Pending, Some(expire)) if now >= expire => Status::Expired,
            (status, _) => status,
        }
    }

    /// Every product the invitation offers, the trust product first.
    pub fn product_keys(&self) -> Vec<String> {
        let mut keys = vec![self.trust_access.product_key.clone()];
        if let Some(school) = &self.school_access {
            for key in &school.product_keys {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
        keys
    }
}

/// Why a link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    Used,
    Revoked,
    Superseded,
    Expired,
}

impl LinkRefusal {
    pub fn reason(self) -> &'static str {
        match self {
            LinkRefusal::Used => "LINK_USED",
            LinkRefusal::Revoked => "LINK_REVOKED",
            LinkRefusal::Superseded => "LINK_SUPERSEDED",
            LinkRefusal::Expired => "LINK_EXPIRED",
        }
    }

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
        }
    }
}

/// Decides whether the link with `hash` of `invitation` can be used at `now`.
pub fn check_link(
    invitation: &Invitation,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), LinkRefusal> {
    let current = invitation
        .current_link_hash
        .as_deref()
        .is_some_and(|current| hashes_equal(current, hash));
    if !current {
        return Err(LinkRefusal::Superseded);
    }
    match invitation.status_at(now) {
        Status::Pending => Ok(()),
        Status::Accepted | Status::Granted => Err(LinkRefusal::Used),
        Status::Revoked => Err(LinkRefusal::Revoked),
        Status::Expired => Err(LinkRefusal::Expired),
    }
}

/// A fresh sign-up link token: 256 random bits from the OS, base64url without padding.
pub fn new_link_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a link token: SHA-256, hex.
pub fn hash_link_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two link hashes in constant time.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Parses a link token as it appears in an email: 32 bytes, base64url.
pub fn parse_link_token(raw: &str) -> Result<String, String> {
    let token = raw.trim();
    if token.is_empty() {
        return Err("is required".into());
    }
    match URL_SAFE_NO_PAD.decode(token) {
        Ok(bytes) if bytes.len() == 32 => Ok(token.to_string()),
        _ => Err("is not an invitation link token".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invitation(status: Status, expire: DateTime<Utc>, link: &str) -> Invitation {
        Invitation {
            id: "i".into(),
            trust_id: "t".into(),
            trust_name: "T".into(),
            staff_id: "s".into(),
            staff_email: Email::parse("a@b.org").unwrap(),
            staff_given_name: "A".into(),
            inviter_account_id: "x".into(),
            trust_access: TrustAccess {
                product_key: "portal".into(),
                role_key: "full-edit".into(),
            },
            school_access: None,
            status,
            delivery: Delivery::SignUpLink,
            granted: vec![],
            skipped: vec![],
            expire_time: Some(expire),
            current_link_hash: Some(hash_link_token(link)),
            accepting: false,
            account_id: None,
            create_time: expire,
            update_time: expire,
        }
    }

    #[test]
    fn a_link_token_carries_256_random_bits_and_is_stored_hashed() {
        let a = new_link_token();
        let b = new_link_token();
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_eq!(parse_link_token(&a), Ok(a.clone()));
        let hash = hash_link_token(&a);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&a));
        assert!(parse_link_token("short").is_err());
    }

    #[test]
    fn a_link_is_refused_for_each_final_state_with_its_own_reason() {
        let now = Utc::now();
        let later = now + chrono::Duration::days(1);
        let token = new_link_token();
        let hash = hash_link_token(&token);
        assert_eq!(
            check_link(&invitation(Status::Pending, later, &token), &hash, now),
            Ok(())
        );
        assert_eq!(
            check_link(&invitation(Status::Accepted, later, &token), &hash, now),
            Err(LinkRefusal::Used)
        );
        assert_eq!(
            check_link(&invitation(Status::Revoked, later, &token), &hash, now),
            Err(LinkRefusal::Revoked)
        );
        assert_eq!(
            check_link(&invitation(Status::Pending, now, &token), &hash, now),
            Err(LinkRefusal::Expired)
        );
        let newer = new_link_token();
        assert_eq!(
            check_link(&invitation(Status::Pending, later, &newer), &hash, now),
            Err(LinkRefusal::Superseded)
        );
    }
}
