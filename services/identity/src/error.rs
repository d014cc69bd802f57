//! The identity service's errors and their one mapping to gRPC statuses.

use portal_runtime::error::{ApiError, Violation};
use portal_runtime::vocab::{AccountId, SchoolId, StaffId, TrustId};
use tonic::Status;

/// The ErrorInfo domain of every identity refusal.
pub const DOMAIN: &str = "identity.portal";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Already mapped (authentication, authorisation, field violations).
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("trust {0} not found")]
    TrustNotFound(TrustId),
    #[error("school {0} not found")]
    SchoolNotFound(SchoolId),
    #[error("staff member {0} not found")]
    StaffNotFound(StaffId),
    /// Withdrawing access would leave the trust without an active Account Owner.
    #[error("last account owner")]
    LastAccountOwner,
    #[error("account {0} not found")]
    AccountNotFound(AccountId),
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
    /// Too many failed sign-ins for the account or from the address.
    #[error("too many failed sign-ins")]
    TooManyFailedSignIns { retry_after: std::time::Duration },
    /// Every password-hashing slot busy: retry in a moment.
    #[error("too many passwords are being checked at once")]
    HashingBusy,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0:#}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Api(api) => api,
            Error::TrustNotFound(id) => ApiError::not_found("trust", id),
            Error::SchoolNotFound(id) => ApiError::not_found("school", id),
            Error::StaffNotFound(id) => ApiError::not_found("staff member", id),
            Error::LastAccountOwner => ApiError::failed_precondition(
                "LAST_ACCOUNT_OWNER",
                "this would remove the trust's last active Account Owner; make someone else \
                 Account Owner first",
            ),
            Error::AccountNotFound(id) => ApiError::not_found("account", id),
            Error::SchoolUrnExists(urn) => ApiError::AlreadyExists {
                reason: "SCHOOL_URN_EXISTS",
                message: format!("another school already has the URN {urn}"),
                metadata: vec![("urn", urn)],
            },
            Error::AccountExists => ApiError::AlreadyExists {
                reason: "ACCOUNT_EXISTS",
                message: "an account already exists for this email".into(),
                metadata: Vec::new(),
            },
            Error::InvalidCredentials => ApiError::Unauthenticated {
                reason: "INVALID_CREDENTIALS",
                message: "the email or password is wrong".into(),
            },
            Error::NoAccountForEmail => ApiError::failed_precondition(
                "ACCOUNT_NOT_FOUND",
                "no account has the invitee's email, so the grants cannot be made active; \
                 make them pending instead",
            ),
            Error::AccountEmailMismatch => ApiError::failed_precondition(
                "ACCOUNT_EMAIL_MISMATCH",
                "the account's email is not the email the invitation's grants were made to",
            ),
            Error::ForeignOrganizations(indices) => ApiError::InvalidArgument(
                indices
                    .into_iter()
                    .map(|i| Violation {
                        field: format!("grants[{i}].organization_id"),
                        description: "is not a school of the request's trust".into(),
                    })
                    .collect(),
            ),
            Error::TooManyFailedSignIns { retry_after } => ApiError::ResourceExhausted {
                reason: "TOO_MANY_FAILED_SIGN_INS",
                message: format!(
                    "too many failed sign-ins; try again in {} s",
                    retry_after.as_secs().max(1)
                ),
                retry_after,
            },
            Error::HashingBusy => ApiError::Busy {
                reason: "PASSWORD_CHECKS_BUSY",
                message: "too many sign-ins are being checked at once; retry in a moment".into(),
                retry_after: std::time::Duration::from_secs(1),
            },
            Error::Database(error) => ApiError::from(error),
            Error::Internal(error) => ApiError::Internal(error),
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        ApiError::from(error).into_status(DOMAIN)
    }
}

impl From<crate::hashing::HashError> for Error {
    fn from(error: crate::hashing::HashError) -> Self {
        match error {
            crate::hashing::HashError::Busy => Error::HashingBusy,
            crate::hashing::HashError::Failed(error) => Error::Internal(error),
        }
    }
}
