//! Who may call: service tokens by name, and users who administer the trust, as identity
//! says (it owns grants), with its positive answers reused for a while.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use portal_runtime::Principal;
use portal_runtime::vocab::{AccountId, TrustId};

use super::App;
use crate::domain::access::{READERS, WRITERS};
use crate::error::{Error, Result};
use portal_runtime::auth::admin::AdminDecision;

/// How long a positive administrator answer is reused: withdrawing an administrator's role
/// takes effect here within this time (as at the invitation service), and the hot path skips
/// a round trip to identity.
pub const ADMIN_CACHE_TTL: Duration = Duration::seconds(5);

/// Bounds the cache; expired entries are dropped when it is reached.
const ADMIN_CACHE_LIMIT: usize = 10_000;

/// The service allowed to write subscriptions, by the name its token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billing {
    pub(super) caller: String,
}

/// A caller who may read a subscription once its trust is known: a reading service, or a
/// signed-in user (checked against the trust then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionReader(pub(super) Principal);

/// Until when each (trust, account) is known to administer the trust.
#[derive(Debug, Default)]
pub(super) struct Administrators(Mutex<HashMap<(TrustId, AccountId), DateTime<Utc>>>);

impl Administrators {
    fn lock(&self) -> MutexGuard<'_, HashMap<(TrustId, AccountId), DateTime<Utc>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn known(&self, key: &(TrustId, AccountId), now: DateTime<Utc>) -> bool {
        self.lock().get(key).is_some_and(|until| now < *until)
    }

    fn remember(&self, key: (TrustId, AccountId), now: DateTime<Utc>) {
        let mut cache = self.lock();
        if cache.len() >= ADMIN_CACHE_LIMIT {
            cache.retain(|_, until| now < *until);
        }
        if cache.len() < ADMIN_CACHE_LIMIT {
            cache.insert(key, now + ADMIN_CACHE_TTL);
        }
    }
}

impl App {
    /// Only the billing service writes; asked before a write request is read.
    pub fn billing(&self, principal: &Principal) -> Result<Billing> {
        let caller = principal.require_service(WRITERS)?;
        Ok(Billing {
            caller: caller.to_string(),
        })
    }

    /// A reading service, or any user (whose trust is checked with the subscription); asked
    /// before a read request is read.
    pub fn subscription_reader(&self, principal: Principal) -> Result<SubscriptionReader> {
        if let Principal::Service { .. } = principal {
            principal.require_service(READERS)?;
        }
        Ok(SubscriptionReader(principal))
    }

    /// One of `services`, or a user administering `trust_id`.
    pub(super) async fn require_reader(
        &self,
        principal: &Principal,
        services: &[&str],
        trust_id: TrustId,
    ) -> Result<()> {
        match principal {
            Principal::Service { .. } => {
                principal.require_service(services)?;
                Ok(())
            }
            Principal::User { account_id } => {
                self.require_administrator(*account_id, trust_id).await
            }
        }
    }

    async fn require_administrator(&self, account_id: AccountId, trust_id: TrustId) -> Result<()> {
        let key = (trust_id, account_id);
        let now = self.clock.now();
        if self.administrators.known(&key, now) {
            return Ok(());
        }
        let Some(identity) = &self.identity else {
            return Err(Error::UserTokensNotAccepted);
        };
        match identity.administration(trust_id, account_id).await? {
            AdminDecision::Administrator => {
                self.administrators.remember(key, now);
                Ok(())
            }
            AdminDecision::SchoolLevelOnly => Err(Error::SchoolLevelAdministrator),
            AdminDecision::OtherTrust => Err(Error::OtherTrustAdministrator),
            AdminDecision::NotAdministrator => Err(Error::NotAdministrator),
        }
    }
}
