//! The use cases: each authorises its caller first, then does its work through the store.
//! Domain types in and out; the gRPC edge converts.

mod access;
mod accounts;
mod directory;
mod grants;
mod guessing;
mod staff;

use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use portal_runtime::auth::{Principal, TokenIssuer, callers};
use portal_runtime::clock::SharedClock;
use portal_runtime::error::ApiError;
use portal_runtime::vocab::TrustId;

use crate::domain::{AdminDecision, Trust, decide_administrator};
use crate::error::{Error, Result};
use crate::hashing::Hasher;
use crate::store::Store;
pub use guessing::Guessing;

/// A kind of call only other services make, and the services that make it (by the name
/// their token carries).
pub trait ServiceCall {
    const CALLERS: &'static [&'static str];
}

/// Creating trusts and schools.
pub enum DirectoryWrites {}
/// Replacing a trust's staff directory with a snapshot.
pub enum StaffSync {}
/// Following the staff status changes of every trust.
pub enum StaffFeed {}
/// Registering and looking up accounts.
pub enum Accounts {}
/// Making, activating and revoking an invitation's grants.
pub enum Grants {}
/// Reading trusts and schools.
pub enum DirectoryReads {}
/// Reading a trust's staff directory.
pub enum StaffReads {}
/// Listing a person's access.
pub enum AccessReads {}
/// Asking whether an account administers a trust.
pub enum AdministratorChecks {}

impl ServiceCall for DirectoryReads {
    const CALLERS: &'static [&'static str] = &[callers::INVITATION, callers::OPERATOR];
}

impl ServiceCall for StaffReads {
    const CALLERS: &'static [&'static str] = &[callers::INVITATION, callers::OPERATOR];
}

impl ServiceCall for AccessReads {
    const CALLERS: &'static [&'static str] = &[callers::INVITATION];
}

impl ServiceCall for AdministratorChecks {
    const CALLERS: &'static [&'static str] = &[callers::INVITATION, callers::SUBSCRIPTION];
}

impl ServiceCall for DirectoryWrites {
    const CALLERS: &'static [&'static str] = &[callers::OPERATOR];
}

impl ServiceCall for StaffSync {
    const CALLERS: &'static [&'static str] = &[callers::MIS_SYNC, callers::OPERATOR];
}

impl ServiceCall for StaffFeed {
    const CALLERS: &'static [&'static str] = &[callers::INVITATION];
}

impl ServiceCall for Accounts {
    const CALLERS: &'static [&'static str] = &[callers::INVITATION];
}

impl ServiceCall for Grants {
    const CALLERS: &'static [&'static str] = &[callers::INVITATION];
}

/// A caller admitted to calls of kind `C` ([`App::admit`]); the use cases of `C` take it, so
/// none runs for a caller that was not.
pub struct Admitted<C: ServiceCall>(PhantomData<C>);

/// The identity service's use cases over one store.
pub struct App {
    store: Arc<dyn Store>,
    clock: SharedClock,
    issuer: TokenIssuer,
    user_token_ttl: chrono::Duration,
    hasher: Hasher,
    guessing: Guessing,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        clock: SharedClock,
        issuer: TokenIssuer,
        user_token_ttl: chrono::Duration,
        hasher: Hasher,
        guessing: Guessing,
    ) -> Self {
        Self {
            store,
            clock,
            issuer,
            user_token_ttl,
            hasher,
            guessing,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Admits the services that make calls of kind `C`, and refuses every other caller
    /// (PERMISSION_DENIED). The edge asks before it reads the request, so a caller that may
    /// not make the call learns nothing of its input, and a refused staff stream is not read.
    pub fn admit<C: ServiceCall>(&self, caller: &Principal) -> Result<Admitted<C>> {
        caller.require_service(C::CALLERS)?;
        Ok(Admitted(PhantomData))
    }

    /// The services that read staff, and administrators of the trust; other callers get
    /// PERMISSION_DENIED.
    async fn require_trust_admin_or_service(
        &self,
        caller: &Principal,
        trust_id: TrustId,
    ) -> Result<()> {
        let Principal::User { account_id } = caller else {
            caller.require_service(StaffReads::CALLERS)?;
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

    /// The services that read the directory read any trust; users only trusts where they hold
    /// access. Everything else is
    /// answered exactly like an unknown trust.
    async fn require_trust_visible(&self, caller: &Principal, trust_id: TrustId) -> Result<()> {
        let Principal::User { account_id } = caller else {
            caller.require_service(DirectoryReads::CALLERS)?;
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
    async fn require_trust(&self, trust_id: TrustId) -> Result<Trust> {
        self.store
            .get_trust(trust_id)
            .await?
            .ok_or(Error::TrustNotFound(trust_id))
    }
}
