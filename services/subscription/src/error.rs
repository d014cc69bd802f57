//! The subscription service's errors and their mapping to gRPC statuses.

use portal_runtime::ApiError;

/// The ErrorInfo domain of this service.
pub const DOMAIN: &str = "subscription.portal";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, or a refused caller, already in API terms.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("subscription {0} not found")]
    SubscriptionNotFound(String),
    #[error("product {0} not found")]
    ProductNotFound(String),
    #[error("subscription {0} is expired")]
    SubscriptionExpired(String),
    /// Concurrent changes kept winning the optimistic-concurrency race.
    #[error("subscription {0} is being changed concurrently")]
    Contended(String),
    #[error("the identity service is unavailable: {0}")]
    IdentityUnavailable(String),
    #[error("the identity service refused or failed the administrator check: {0}")]
    IdentityFailed(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Api(api) => api,
            Error::SubscriptionNotFound(id) => ApiError::not_found("subscription", id),
            Error::ProductNotFound(key) => ApiError::not_found("product", key),
            Error::SubscriptionExpired(id) => ApiError::FailedPrecondition {
                reason: "SUBSCRIPTION_EXPIRED",
                message: format!(
                    "subscription {id} is expired; an expired subscription cannot be cancelled"
                ),
                metadata: vec![("subscription_id", id)],
            },
            Error::Contended(id) => ApiError::Unavailable {
                message: format!("subscription {id} is being changed by another call; retry"),
            },
            Error::IdentityUnavailable(detail) => {
                tracing::warn!(%detail, "identity unavailable for an administrator check");
                ApiError::Unavailable {
                    message: "the identity service could not confirm the caller is an administrator; retry later".into(),
                }
            }
            Error::IdentityFailed(detail) => {
                ApiError::internal(anyhow::anyhow!("administrator check failed: {detail}"))
            }
            Error::Database(error) => ApiError::from(error),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        ApiError::from(error).into_status(DOMAIN)
    }
}

/// The result of an RPC body.
pub type Result<T, E = Error> = std::result::Result<T, E>;
