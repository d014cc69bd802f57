//! The identity service's errors and their one mapping to gRPC statuses.

use portal_runtime::error::{ApiError, Violation};
use tonic::Status;

/// The ErrorInfo domain of every identity refusal.
pub const DOMAIN: &str = "identity.portal";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Already mapped (authentication, authorization, field violations).
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("trust {0} not found")]
    TrustNotFound(String),
    #[error("school {0} not found")]
    SchoolNotFound(String),
    #[error("staff member {0} not found")]
    StaffNotFound(String),
    #[error("account {0} not found")]
    AccountNotFound(String),
    #[error("another school already has this URN")]
    SchoolUrnExists(String),
    #[error("an account already exists for this email")]
    AccountExists,
    #[error("wrong email or password")]
    InvalidCredentials,
    /// BatchGrant with activate=true for an email without an account.
    #[error("no account has the invitee's email")]
    NoAccountForEmail,
    #[error("the account's email is not the email the grants were made to")]
    AccountEmailMismatch,
    /// BatchGrant: these grant indices name an organisation that is not a school of the trust.
    #[error("organisations outside the trust")]
    ForeignOrganizations(Vec<usize>),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0:#}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::Api(api) => api,
            IdentityError::TrustNotFound(id) => ApiError::not_found("trust", id),
            IdentityError::SchoolNotFound(id) => ApiError::not_found("school", id),
            IdentityError::StaffNotFound(id) => ApiError::not_found("staff member", id),
            IdentityError::AccountNotFound(id) => ApiError::not_found("account", id),
            IdentityError::SchoolUrnExists(urn) => ApiError::AlreadyExists {
                reason: "SCHOOL_URN_EXISTS",
                message: format!("another school already has the URN {urn}"),
                metadata: vec![("urn", urn)],
            },
            IdentityError::AccountExists => ApiError::AlreadyExists {
                reason: "ACCOUNT_EXISTS",
                message: "an account already exists for this email".into(),
                metadata: Vec::new(),
            },
            IdentityError::InvalidCredentials => ApiError::Unauthenticated {
                reason: "INVALID_CREDENTIALS",
                message: "the email or password is wrong".into(),
            },
            IdentityError::NoAccountForEmail => ApiError::failed_precondition(
                "ACCOUNT_NOT_FOUND",
                "no account has the invitee's email, so the grants cannot be made active; \
                 make them pending instead",
            ),
            IdentityError::AccountEmailMismatch => ApiError::failed_precondition(
                "ACCOUNT_EMAIL_MISMATCH",
                "the account's email is not the email the invitation's grants were made to",
            ),
            IdentityError::ForeignOrganizations(indices) => ApiError::InvalidArgument(
                indices
                    .into_iter()
                    .map(|i| Violation {
                        field: format!("grants[{i}].organization_id"),
                        description: "is not a school of the request's trust".into(),
                    })
                    .collect(),
            ),
            IdentityError::Database(error) => ApiError::from(error),
            IdentityError::Internal(error) => ApiError::Internal(error),
        }
    }
}

impl IdentityError {
    pub fn into_status(self) -> Status {
        ApiError::from(self).into_status(DOMAIN)
    }
}
