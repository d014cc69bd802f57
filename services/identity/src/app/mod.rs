//! The use cases: each authorises its caller first, then does its work through the store.
//! Domain types in and out; the gRPC edge converts.

mod accounts;
mod directory;
mod grants;
mod staff;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use portal_runtime::auth::{Principal, TokenIssuer, callers};
use portal_runtime::clock::SharedClock;
use portal_runtime::error::ApiError;
use portal_runtime::vocab::TrustId;

use crate::domain::{AdminDecision, decide_administrator};
use crate::error::{Error, Result};
use crate::store::Store;

/// The calls only other services make, each answered to the services named here whatever
/// the request says, so they are checked before a request is read: a caller that may not
/// make the call learns nothing of its input, and a refused staff stream is not read.
#[derive(Debug, Clone, Copy)]
pub enum ServiceCall {
    /// Creating trusts and schools.
    DirectoryWrite,
    /// Replacing a trust's staff directory with a snapshot.
    StaffSync,
    /// Registering and looking up accounts.
    Accounts,
    /// Making, activating and revoking an invitation's grants.
    Grants,
}

impl ServiceCall {
    fn callers(self) -> &'static [&'static str] {
        match self {
            ServiceCall::DirectoryWrite => &[callers::OPERATOR],
            ServiceCall::StaffSync => &[callers::MIS_SYNC, callers::OPERATOR],
            ServiceCall::Accounts | ServiceCall::Grants => &[callers::INVITATION],
        }
    }
}

/// The identity service's use cases over one store.
pub struct App {
    store: Arc<dyn Store>,
    clock: SharedClock,
    issuer: TokenIssuer,
    user_token_ttl: chrono::Duration,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        clock: SharedClock,
        issuer: TokenIssuer,
        user_token_ttl: chrono::Duration,
    ) -> Self {
        Self {
            store,
            clock,
            issuer,
            user_token_ttl,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Refuses every caller but the services that make `call` (PERMISSION_DENIED).
    pub fn admit(&self, caller: &Principal, call: ServiceCall) -> Result<()> {
        caller.require_service(call.callers())?;
        Ok(())
    }

    /// Services, and administrators of the trust; other users get PERMISSION_DENIED.
    async fn require_trust_admin_or_service(
        &self,
        caller: &Principal,
        trust_id: TrustId,
    ) -> Result<()> {
        let Principal::User { account_id } = caller else {
            return Ok(());
        };
        let grants = self.store.admin_grants(*account_id).await?;
        if decide_administrator(&grants, trust_id).decision == AdminDecision::Administrator {
            return Ok(());
        }
        Err(ApiError::permission_denied(
            "NOT_TRUST_ADMINISTRATOR",
            "only administrators of the trust (Portal account owner or account admin at trust \
             level) may read its staff directory",
        )
        .into())
    }

    /// Services read any trust; users only trusts where they hold access. Everything else is
    /// answered exactly like an unknown trust.
    async fn require_trust_visible(&self, caller: &Principal, trust_id: TrustId) -> Result<()> {
        let Principal::User { account_id } = caller else {
            return Ok(());
        };
        if self
            .store
            .has_access_in_trust(*account_id, trust_id)
            .await?
        {
            Ok(())
        } else {
            Err(Error::TrustNotFound(trust_id))
        }
    }

    /// The trust, or TrustNotFound.
    async fn require_trust(&self, trust_id: TrustId) -> Result<crate::domain::Trust> {
        self.store
            .get_trust(trust_id)
            .await?
            .ok_or(Error::TrustNotFound(trust_id))
    }
}
