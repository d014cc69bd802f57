//! Who may call what: service tokens by name, and users who administer the trust, as told by
//! the identity service (which owns grants).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use portal_proto::identity::v1::grant_service_client::GrantServiceClient;
use portal_proto::identity::v1::{AdministratorDecision, CheckAdministratorRequest};
use portal_runtime::client::AuthedChannel;
use portal_runtime::{ApiError, Principal, SharedClock};
use tonic::Code;

use crate::error::{Error, Result};

/// The only caller that writes subscriptions.
pub const BILLING: &str = "billing";
/// Services that read subscriptions and eligibility.
pub const READERS: &[&str] = &["invitation", "billing"];
/// Services that ask eligibility (the invitation flow).
pub const ELIGIBILITY_READERS: &[&str] = &["invitation"];

/// How long a positive administrator answer is reused: revoking an administrator takes
/// effect here within this time, and the hot path skips a round trip to identity.
pub const ADMIN_CACHE_TTL: Duration = Duration::seconds(30);

/// Bounds the cache; expired entries are dropped when it is reached.
const ADMIN_CACHE_LIMIT: usize = 10_000;

pub struct Access {
    identity: Option<GrantServiceClient<AuthedChannel>>,
    clock: SharedClock,
    /// (trust id, account id) -> until when the account is known to administer the trust.
    administrators: Mutex<HashMap<(String, String), DateTime<Utc>>>,
}

impl Access {
    /// `identity`: where to check administrators; `None` refuses every user token.
    pub fn new(identity: Option<GrantServiceClient<AuthedChannel>>, clock: SharedClock) -> Self {
        Self {
            identity,
            clock,
            administrators: Mutex::new(HashMap::new()),
        }
    }

    /// Only the billing service writes.
    pub fn require_writer(&self, principal: &Principal) -> Result<()> {
        principal.require_service(&[BILLING])?;
        Ok(())
    }

    /// One of `services`, or a user administering `trust_id`.
    pub async fn require_reader(
        &self,
        principal: &Principal,
        services: &[&str],
        trust_id: &str,
    ) -> Result<()> {
        match principal {
            Principal::Service { .. } => {
                principal.require_service(services)?;
                Ok(())
            }
            Principal::User { account_id } => {
                self.require_administrator(&account_id.to_string(), trust_id)
                    .await
            }
        }
    }

    async fn require_administrator(&self, account_id: &str, trust_id: &str) -> Result<()> {
        let key = (trust_id.to_string(), account_id.to_string());
        let now = self.clock.now();
        if self.lock().get(&key).is_some_and(|until| now < *until) {
            return Ok(());
        }
        let Some(identity) = &self.identity else {
            return Err(ApiError::permission_denied(
                "USER_TOKENS_NOT_ACCEPTED",
                "this server cannot check administrators (no identity service configured); \
                 call it with a service token",
            )
            .into());
        };
        let answer = identity
            .clone()
            .check_administrator(CheckAdministratorRequest {
                trust_id: trust_id.to_string(),
                account_id: account_id.to_string(),
            })
            .await;
        let response = match answer {
            Ok(response) => response.into_inner(),
            // Identity does not know the trust: nobody administers it.
            Err(status) if status.code() == Code::NotFound => return Err(not_administrator()),
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
                ) =>
            {
                return Err(Error::IdentityUnavailable(format!(
                    "{:?}: {}",
                    status.code(),
                    status.message()
                )));
            }
            Err(status) => {
                return Err(Error::IdentityFailed(format!(
                    "{:?}: {}",
                    status.code(),
                    status.message()
                )));
            }
        };
        if response.administrator {
            let mut cache = self.lock();
            if cache.len() >= ADMIN_CACHE_LIMIT {
                cache.retain(|_, until| now < *until);
            }
            if cache.len() < ADMIN_CACHE_LIMIT {
                cache.insert(key, now + ADMIN_CACHE_TTL);
            }
            return Ok(());
        }
        Err(match AdministratorDecision::try_from(response.decision) {
            Ok(AdministratorDecision::SchoolLevelOnly) => ApiError::permission_denied(
                "SCHOOL_LEVEL_ADMINISTRATOR",
                "you administer schools of this trust but not the trust itself; \
                 sign in to the trust-level account",
            )
            .into(),
            Ok(AdministratorDecision::OtherTrust) => ApiError::permission_denied(
                "OTHER_TRUST_ADMINISTRATOR",
                "you administer another trust, not this one",
            )
            .into(),
            _ => not_administrator(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), DateTime<Utc>>> {
        self.administrators
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn not_administrator() -> Error {
    ApiError::permission_denied(
        "NOT_TRUST_ADMINISTRATOR",
        "only an administrator of the trust (Portal Account Owner or Account Admin at trust \
         level) may see its subscriptions",
    )
    .into()
}
