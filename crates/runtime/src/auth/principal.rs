//! Who is calling: the principal the auth layer attaches to every call that carries a token.

use crate::error::ApiError;
use crate::vocab::AccountId;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A person signed in with email and password; the id of their account.
    User { account_id: AccountId },
    /// Another service, named by the operator who issued its token.
    Service { name: String },
}

impl Principal {
    /// The account id of a signed-in user, or PERMISSION_DENIED for a service.
    pub fn require_user(&self) -> Result<AccountId, ApiError> {
        match self {
            Principal::User { account_id } => Ok(*account_id),
            Principal::Service { name } => Err(ApiError::permission_denied(
                "USER_TOKEN_REQUIRED",
                format!("this call is made by a signed-in user, not by the service `{name}`"),
            )),
        }
    }

    /// The service name when it is one of `allowed`, otherwise PERMISSION_DENIED.
    pub fn require_service(&self, allowed: &[&str]) -> Result<&str, ApiError> {
        match self {
            Principal::Service { name } if allowed.contains(&name.as_str()) => Ok(name),
            Principal::Service { name } => Err(ApiError::permission_denied(
                "CALLER_NOT_ALLOWED",
                format!(
                    "the service `{name}` may not make this call; allowed callers: {}",
                    allowed.join(", ")
                ),
            )),
            Principal::User { .. } => Err(ApiError::permission_denied(
                "SERVICE_TOKEN_REQUIRED",
                format!(
                    "this is an internal call for the services: {}",
                    allowed.join(", ")
                ),
            )),
        }
    }

    pub fn service_name(&self) -> Option<&str> {
        match self {
            Principal::Service { name } => Some(name),
            Principal::User { .. } => None,
        }
    }

    pub fn account_id(&self) -> Option<AccountId> {
        match self {
            Principal::User { account_id } => Some(*account_id),
            Principal::Service { .. } => None,
        }
    }
}

/// The principal the auth layer attached to a request, or UNAUTHENTICATED.
pub fn principal_of<T>(request: &tonic::Request<T>) -> Result<Principal, ApiError> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::Unauthenticated {
            reason: "TOKEN_MISSING",
            message: "a bearer token is required".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_checked_by_name() {
        let p = Principal::Service {
            name: "billing".into(),
        };
        assert!(p.require_service(&["billing"]).is_ok());
        assert!(p.require_service(&["invitation"]).is_err());
        assert!(p.require_user().is_err());
        let user = Principal::User {
            account_id: AccountId::generate(),
        };
        assert!(user.require_service(&["billing"]).is_err());
        assert_eq!(user.require_user().ok(), user.account_id());
    }
}
