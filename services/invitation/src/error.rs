//! The invitation service's errors and their gRPC answers.

use portal_runtime::error::{ApiError, Violation};

use crate::domain::{LinkRefusal, Status};

/// ErrorInfo domain of this service.
pub const DOMAIN: &str = "invitation.portal";

#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error("invalid request")]
    Invalid(Vec<Violation>),
    #[error("not a trust administrator")]
    NotTrustAdministrator,
    #[error("school-level administrator")]
    SchoolLevelAdministrator,
    #[error("administrator of another trust")]
    OtherTrustAdministrator,
    #[error("staff member not in the trust MIS")]
    StaffNotInTrustMis,
    #[error("trust not subscribed to {product_name}")]
    TrustNotSubscribed { product_name: String },
    #[error("a pending invitation exists: {invitation_id}")]
    PendingInvitationExists { invitation_id: String },
    #[error("invitation not found")]
    NotFound { id: String },
    #[error("invitation is {status:?}")]
    NotPending { status: Status },
    #[error("link not found")]
    LinkNotFound,
    #[error("link refused: {0:?}")]
    Link(LinkRefusal),
    #[error("account exists")]
    AccountExists,
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Api(ApiError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<ApiError> for InvitationError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::InvalidArgument(violations) => InvitationError::Invalid(violations),
            ApiError::Unavailable { message } => InvitationError::Unavailable(message),
            other => InvitationError::Api(other),
        }
    }
}

impl From<sqlx::Error> for InvitationError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::from(error).into()
    }
}

impl From<InvitationError> for ApiError {
    fn from(error: InvitationError) -> Self {
        use InvitationError as E;
        match error {
            E::Invalid(violations) => ApiError::InvalidArgument(violations),
            E::NotTrustAdministrator => ApiError::permission_denied(
                "NOT_TRUST_ADMINISTRATOR",
                "only an administrator of the trust (Portal Account Owner or Account Admin at \
                 trust level) may do this",
            ),
            E::SchoolLevelAdministrator => ApiError::permission_denied(
                "SCHOOL_LEVEL_ADMINISTRATOR",
                "you are an administrator at school level only; sign in to the trust-level \
                 (MAT) account to invite staff",
            ),
            E::OtherTrustAdministrator => ApiError::permission_denied(
                "OTHER_TRUST_ADMINISTRATOR",
                "you are an administrator of another trust, not of this one",
            ),
            E::StaffNotInTrustMis => ApiError::failed_precondition(
                "STAFF_NOT_IN_TRUST_MIS",
                "this staff member is not in the trust's MIS; add them to the MIS of the \
                 trust (not of a school) first, and invite them once they have been synced",
            ),
            E::TrustNotSubscribed { product_name } => ApiError::failed_precondition(
                "TRUST_NOT_SUBSCRIBED",
                format!(
                    "the trust holds no subscription in force to {product_name}; staff can be \
                     invited to it once the trust subscribes"
                ),
            ),
            E::PendingInvitationExists { invitation_id } => ApiError::AlreadyExists {
                reason: "PENDING_INVITATION_EXISTS",
                message: format!(
                    "this staff member already has a pending invitation to this product \
                     ({invitation_id}); resend it instead"
                ),
                metadata: vec![("invitation_id", invitation_id)],
            },
            E::NotFound { id } => ApiError::not_found("invitation", id),
            E::NotPending { status } => ApiError::FailedPrecondition {
                reason: "INVITATION_NOT_PENDING",
                message: match status {
                    Status::Expired => "the invitation has expired; create a new invitation \
                                        for this staff member"
                        .into(),
                    other => format!(
                        "the invitation is {} and no longer pending",
                        other.as_str().to_lowercase()
                    ),
                },
                metadata: vec![("status", status.as_str().to_string())],
            },
            E::LinkNotFound => ApiError::not_found("invitation link", "(the given token)"),
            E::Link(refusal) => ApiError::failed_precondition(refusal.reason(), refusal.message()),
            E::AccountExists => ApiError::AlreadyExists {
                reason: "ACCOUNT_EXISTS",
                message: "an account with this email address already exists; sign in instead"
                    .into(),
                metadata: Vec::new(),
            },
            E::Unavailable(message) => ApiError::Unavailable { message },
            E::Api(api) => api,
            E::Internal(error) => ApiError::Internal(error),
        }
    }
}

impl From<InvitationError> for tonic::Status {
    fn from(error: InvitationError) -> Self {
        ApiError::from(error).into_status(DOMAIN)
    }
}

pub type Result<T, E = InvitationError> = std::result::Result<T, E>;
