//! The subscription service's errors, and their one mapping to API errors and gRPC statuses.

use portal_runtime::ApiError;
use portal_runtime::error::Violation;
use portal_runtime::vocab::{OrgKind, ProductKey, RoleKey, SubscriptionId};

use crate::domain::{EmptyPeriod, Misplaced, Organization};

/// The ErrorInfo domain of this service.
pub const DOMAIN: &str = "subscription.portal";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, or a refused caller, already in API terms.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("subscription {0} not found")]
    SubscriptionNotFound(SubscriptionId),
    #[error("product {0} not found")]
    ProductNotFound(ProductKey),
    /// A list filter names a product the catalogue does not have.
    #[error("product {0} is not in the catalogue")]
    UnknownProductFilter(ProductKey),
    #[error("product {product} defines no role {role}")]
    RoleNotDefined { product: ProductKey, role: RoleKey },
    #[error("subscription {0} is expired")]
    SubscriptionExpired(SubscriptionId),
    /// An update would leave the period empty.
    #[error("the update empties the period ({})", <&str>::from(*.0))]
    EmptyPeriod(EmptyPeriod),
    /// A create's request id was used before for a different request.
    #[error("the request id was used for a different request")]
    RequestIdReused,
    /// A create names an organisation already known with another trust or kind.
    #[error("organisation {} is already a {} of trust {}", .known.id, .known.kind, .known.trust_id)]
    OrganizationTaken { known: Organization, asked: OrgKind },
    /// Organisations of an eligibility question that belong elsewhere.
    #[error("organisations of the question belong elsewhere: {0:?}")]
    Misplaced(Vec<Misplaced>),
    /// Concurrent changes kept winning the optimistic-concurrency race.
    #[error("subscription {0} is being changed concurrently")]
    Contended(SubscriptionId),
    #[error("the caller does not administer the trust")]
    NotAdministrator,
    #[error("the caller administers schools of the trust, not the trust")]
    SchoolLevelAdministrator,
    #[error("the caller administers another trust")]
    OtherTrustAdministrator,
    /// No identity service is configured, so no user can be checked.
    #[error("user tokens are not accepted without an identity service")]
    UserTokensNotAccepted,
    #[error("the identity service is unavailable: {0}")]
    IdentityUnavailable(String),
    #[error("the identity service refused or failed the administrator check: {0}")]
    IdentityFailed(String),
}

impl Error {
    /// Whether the caller was refused: who may not see a trust's subscriptions may not learn
    /// that one exists either.
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self,
            Error::NotAdministrator
                | Error::SchoolLevelAdministrator
                | Error::OtherTrustAdministrator
                | Error::UserTokensNotAccepted
                | Error::Api(ApiError::PermissionDenied { .. })
        )
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Api(api) => api,
            Error::Database(error) => ApiError::from(error),
            Error::SubscriptionNotFound(id) => ApiError::not_found("subscription", id.to_string()),
            Error::ProductNotFound(key) => ApiError::not_found("product", key.into_string()),
            Error::UnknownProductFilter(key) => {
                ApiError::invalid("product_key", format!("`{key}` is not a catalogue product"))
            }
            Error::RoleNotDefined { product, role } => ApiError::invalid(
                "role_key",
                format!("product `{product}` defines no role `{role}`"),
            ),
            Error::SubscriptionExpired(id) => ApiError::FailedPrecondition {
                reason: "SUBSCRIPTION_EXPIRED",
                message: format!(
                    "subscription {id} is expired; an expired subscription cannot be cancelled"
                ),
                metadata: vec![("subscription_id", id.to_string())],
            },
            Error::EmptyPeriod(field) => ApiError::invalid(
                format!("subscription.{}", <&str>::from(field)),
                "would leave the period empty: end_time must be after start_time",
            ),
            Error::RequestIdReused => ApiError::invalid(
                "request_id",
                "was already used for a different request; use a new request id",
            ),
            Error::OrganizationTaken { known, asked } => ApiError::invalid(
                "subscription.organization_id",
                match known.kind {
                    _ if known.kind == asked => "already belongs to another trust",
                    OrgKind::Trust => "is a trust, not a school",
                    OrgKind::School => "is a school, not a trust",
                },
            ),
            Error::Misplaced(misplaced) => ApiError::InvalidArgument(
                misplaced
                    .into_iter()
                    .map(|organization| {
                        let (field, description) = match organization {
                            Misplaced::TrustIsASchool => {
                                ("trust_id".to_string(), "names a school, not a trust")
                            }
                            Misplaced::SchoolIsATrust(index) => (
                                format!("school_ids[{index}]"),
                                "names a trust, not a school",
                            ),
                            Misplaced::SchoolOfAnotherTrust(index) => {
                                (format!("school_ids[{index}]"), "belongs to another trust")
                            }
                        };
                        Violation {
                            field,
                            description: description.to_string(),
                        }
                    })
                    .collect(),
            ),
            Error::Contended(id) => ApiError::Unavailable {
                message: format!("subscription {id} is being changed by another call; retry"),
            },
            Error::NotAdministrator => ApiError::permission_denied(
                "NOT_TRUST_ADMINISTRATOR",
                "only an administrator of the trust (Portal Account Owner or Account Admin at \
                 trust level) may see its subscriptions",
            ),
            Error::SchoolLevelAdministrator => ApiError::permission_denied(
                "SCHOOL_LEVEL_ADMINISTRATOR",
                "you administer schools of this trust but not the trust itself; \
                 sign in to the trust-level account",
            ),
            Error::OtherTrustAdministrator => ApiError::permission_denied(
                "OTHER_TRUST_ADMINISTRATOR",
                "you administer another trust, not this one",
            ),
            Error::UserTokensNotAccepted => ApiError::permission_denied(
                "USER_TOKENS_NOT_ACCEPTED",
                "this server cannot check administrators (no identity service configured); \
                 call it with a service token",
            ),
            Error::IdentityUnavailable(detail) => {
                tracing::warn!(%detail, "identity unavailable for an administrator check");
                ApiError::Unavailable {
                    message: "the identity service could not confirm the caller is an \
                              administrator; retry later"
                        .into(),
                }
            }
            Error::IdentityFailed(detail) => {
                ApiError::internal(anyhow::anyhow!("administrator check failed: {detail}"))
            }
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        ApiError::from(error).into_status(DOMAIN)
    }
}

/// The result of a use case or a storage call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
