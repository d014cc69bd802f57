//! Trusts and their schools, and the organisations grants are made at.

use chrono::{DateTime, Utc};
use portal_runtime::vocab::{Id, RequestId, SchoolId, TrustId, parse_optional_text};

/// Longest display name of a trust or school.
pub const MAX_ORG_NAME: usize = 200;
/// Longest URN (a school's unique reference number).
pub const MAX_URN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    pub id: TrustId,
    pub name: String,
    pub create_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct School {
    pub id: SchoolId,
    pub trust_id: TrustId,
    pub name: String,
    pub urn: Option<String>,
    pub create_time: DateTime<Utc>,
}

/// A trust to create. `request_id` is the AIP-155 idempotency key.
#[derive(Debug, Clone)]
pub struct NewTrust {
    pub name: String,
    pub request_id: Option<RequestId>,
}

/// A school to create in an existing trust; idempotent per `request_id` like [`NewTrust`].
#[derive(Debug, Clone)]
pub struct NewSchool {
    pub trust_id: TrustId,
    pub name: String,
    pub urn: Option<String>,
    pub request_id: Option<RequestId>,
}

/// A page of a trust's schools, in id order.
#[derive(Debug, Clone)]
pub struct SchoolQuery {
    pub trust_id: TrustId,
    /// The last school of the previous page.
    pub after: Option<SchoolId>,
    pub limit: i64,
}

/// What a grant is made at: the trust itself or one of its schools, as its
/// [`OrgKind`](portal_runtime::vocab::OrgKind) says. Marker only: never constructed.
#[derive(Debug)]
pub enum Organization {}

/// The id of a trust or of a school (a grant names either).
pub type OrganizationId = Id<Organization>;

/// A URN: empty means none; otherwise 1 to [`MAX_URN`] letters and digits.
pub fn parse_urn(raw: &str) -> Result<Option<String>, String> {
    let urn = parse_optional_text(raw, MAX_URN)?;
    if urn.is_empty() {
        return Ok(None);
    }
    if !urn.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("must be letters and digits only".into());
    }
    Ok(Some(urn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urn_is_optional_short_and_alphanumeric() {
        assert_eq!(parse_urn("  ").unwrap(), None);
        assert_eq!(parse_urn(" 100101 ").unwrap().as_deref(), Some("100101"));
        assert!(parse_urn("12 34").is_err());
        assert!(parse_urn(&"1".repeat(MAX_URN + 1)).is_err());
    }
}
