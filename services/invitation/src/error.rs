//! The invitation service's errors, and the one mapping of them to gRPC answers.

use portal_runtime::error::ApiError;
use portal_runtime::vocab::InvitationId;

use crate::domain::{CreateRefusal, LinkRefusal, Status};

/// ErrorInfo domain of this service.
pub const DOMAIN: &str = "invitation.portal";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// R1: the caller holds no administrator role at the trust.
    #[error("not a trust administrator")]
    NotTrustAdministrator,
    /// R1: the caller administers schools of the trust, not the trust.
    #[error("school-level administrator")]
    SchoolLevelAdministrator,
    /// R1: the caller administers another trust.
    #[error("administrator of another trust")]
    OtherTrustAdministrator,
    #[error(transparent)]
    Create(#[from] CreateRefusal),
    /// No such invitation, or none the caller may see.
    #[error("invitation {id} not found")]
    NotFound { id: InvitationId },
    /// Resend and revoke change only a PENDING invitation.
    #[error("invitation is {status}")]
    NotPending { status: Status },
    /// Resend and revoke wait for an accept of the invitation's link that committed first.
    #[error("invitation is being accepted")]
    BeingAccepted,
    #[error("link not found")]
    LinkNotFound,
    /// An email quota (resends per invitation, emails per trust) is used up.
    #[error("too many invitation emails")]
    TooManyEmails {
        reason: &'static str,
        retry_after: std::time::Duration,
    },
    /// A create's request id was used before by a create that asked for something else.
    #[error("request id reused for a different request")]
    RequestIdReused,
    /// Too many unknown link tokens from the caller's address.
    #[error("too many unknown links")]
    TooManyLinkGuesses { retry_after: std::time::Duration },
    #[error("link refused: {0:?}")]
    Link(LinkRefusal),
    /// R11: the invitee already has an account.
    #[error("account exists")]
    AccountExists,
    /// A link accepted while signed in to an account of another email.
    #[error("link for another account")]
    LinkForAnotherAccount,
    /// Identity, subscription or the mail relay did not answer; worth retrying.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An email did not go out: refused for good (5xx) or deferred (4xx, no answer).
    #[error(transparent)]
    Mail(#[from] crate::clients::mail::SendError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// R1's refusals: the caller does not administer the trust.
    pub fn is_not_administrator(&self) -> bool {
        matches!(
            self,
            Error::NotTrustAdministrator
                | Error::SchoolLevelAdministrator
                | Error::OtherTrustAdministrator
        )
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Api(api) => api,
            Error::Database(error) => ApiError::from(error),
            Error::NotTrustAdministrator => ApiError::permission_denied(
                "NOT_TRUST_ADMINISTRATOR",
                "only an administrator of the trust (Portal Account Owner or Account Admin at \
                 trust level) may do this",
            ),
            Error::SchoolLevelAdministrator => ApiError::permission_denied(
                "SCHOOL_LEVEL_ADMINISTRATOR",
                "you are an administrator at school level only; sign in to the trust-level \
                 (MAT) account to invite staff",
            ),
            Error::OtherTrustAdministrator => ApiError::permission_denied(
                "OTHER_TRUST_ADMINISTRATOR",
                "you are an administrator of another trust, not of this one",
            ),
            Error::Create(CreateRefusal::StaffNotInTrustMis) => ApiError::failed_precondition(
                "STAFF_NOT_IN_TRUST_MIS",
                "this staff member is not in the trust's MIS; add them to the MIS of the \
                 trust (not of a school) first, and invite them once they have been synced",
            ),
            Error::Create(CreateRefusal::Invalid(api)) => api,
            Error::Create(CreateRefusal::TrustNotSubscribed { product_name }) => {
                ApiError::failed_precondition(
                    "TRUST_NOT_SUBSCRIBED",
                    format!(
                        "the trust holds no subscription in force to {product_name}; staff can \
                         be invited to it once the trust subscribes"
                    ),
                )
            }
            Error::Create(CreateRefusal::PendingInvitationExists { invitation_id }) => {
                ApiError::AlreadyExists {
                    reason: "PENDING_INVITATION_EXISTS",
                    message: format!(
                        "this staff member already has a pending invitation to this product \
                         ({invitation_id}); resend it instead"
                    ),
                    metadata: vec![("invitation_id", invitation_id.to_string())],
                }
            }
            Error::NotFound { id } => ApiError::not_found("invitation", id.to_string()),
            Error::NotPending { status } => ApiError::FailedPrecondition {
                reason: "INVITATION_NOT_PENDING",
                message: match status {
                    Status::Expired => "the invitation has expired; create a new invitation \
                                        for this staff member"
                        .into(),
                    other => format!(
                        "the invitation is {} and no longer pending",
                        other.to_string().to_lowercase()
                    ),
                },
                metadata: vec![("status", status.to_string())],
            },
            Error::BeingAccepted => ApiError::failed_precondition(
                "INVITATION_BEING_ACCEPTED",
                "the invitee is accepting this invitation right now; it will be ACCEPTED in a \
                 moment, and its access can then be withdrawn like any other",
            ),
            Error::LinkNotFound => ApiError::not_found("invitation link", "(the given token)"),
            Error::TooManyEmails {
                reason,
                retry_after,
            } => ApiError::ResourceExhausted {
                reason,
                message: format!(
                    "{}; try again in {} s",
                    if reason == "TOO_MANY_RESENDS" {
                        "this invitation was resent too often"
                    } else {
                        "the trust has sent too many invitation emails"
                    },
                    retry_after.as_secs().max(1)
                ),
                retry_after,
            },
            Error::RequestIdReused => ApiError::invalid(
                "request_id",
                "was already used for a different request (another staff member, trust or \
                 access); use a new request id",
            ),
            Error::TooManyLinkGuesses { retry_after } => ApiError::ResourceExhausted {
                reason: "TOO_MANY_UNKNOWN_LINKS",
                message: format!(
                    "too many unknown invitation links from this address; try again in {} s",
                    retry_after.as_secs().max(1)
                ),
                retry_after,
            },
            Error::Link(refusal) => {
                ApiError::failed_precondition(refusal.reason(), refusal.message())
            }
            Error::AccountExists => ApiError::AlreadyExists {
                reason: "ACCOUNT_EXISTS",
                message: "an account with this email address already exists; sign in, then \
                          accept the link signed in (with your user token) to add its access"
                    .into(),
                metadata: Vec::new(),
            },
            Error::LinkForAnotherAccount => ApiError::permission_denied(
                "LINK_FOR_ANOTHER_ACCOUNT",
                "this invitation was sent to another email address; sign in with the account \
                 of the address it was sent to",
            ),
            Error::Unavailable(message) => ApiError::Unavailable { message },
            Error::Mail(error) if error.is_permanent() => ApiError::Internal(error.into()),
            Error::Mail(error) => ApiError::Unavailable {
                message: error.to_string(),
            },
            Error::Internal(error) => ApiError::Internal(error),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        ApiError::from(error).into_status(DOMAIN)
    }
}
