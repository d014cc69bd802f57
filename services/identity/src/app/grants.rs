//! Grants: made, activated and revoked for invitations; read by their holders, by trust
//! administrators and by services.

use portal_runtime::auth::Principal;
use portal_runtime::error::ApiError;
use portal_runtime::vocab::{AccountId, InvitationId};

use super::{AccessReads, AdministratorChecks, Admitted, App, Grants, ServiceCall};
use crate::domain::{
    AccessQuery, Administration, AdministratorCheck, Grant, GrantBatch, GrantResult,
    OrganizationAccess, administered_trusts, decide_administrator, group_access,
};
use crate::error::{Error, Result};

impl App {
    /// Makes an invitation's grants.
    pub async fn batch_grant(
        &self,
        _: &Admitted<Grants>,
        batch: GrantBatch,
    ) -> Result<Vec<GrantResult>> {
        self.store.batch_grant(batch, self.now()).await
    }

    /// Activates an invitation's pending grants for the account its invitee registered.
    pub async fn activate_grants(
        &self,
        _: &Admitted<Grants>,
        invitation_id: InvitationId,
        account_id: AccountId,
    ) -> Result<Vec<Grant>> {
        self.store
            .activate_grants(invitation_id, account_id, self.now())
            .await
    }

    /// Revokes an invitation's grants; returns how many changed.
    pub async fn revoke_grants(
        &self,
        _: &Admitted<Grants>,
        invitation_id: InvitationId,
        pending_only: bool,
    ) -> Result<u64> {
        self.store
            .revoke_grants(invitation_id, pending_only, self.now())
            .await
    }

    /// A page of what a person holds. The invitation service and the person see all of it; an
    /// administrator of a trust sees only that trust's part; anyone else nothing.
    pub async fn list_access(
        &self,
        caller: &Principal,
        query: &AccessQuery,
    ) -> Result<Vec<OrganizationAccess>> {
        // Which trusts the caller may see of the account (None: all).
        let scope = match caller {
            Principal::User { account_id } if *account_id != query.account_id => {
                let trusts = administered_trusts(&self.store.admin_grants(*account_id).await?);
                if trusts.is_empty() {
                    return Err(ApiError::permission_denied(
                        "NOT_TRUST_ADMINISTRATOR",
                        "a user may list only their own access unless they administer a trust",
                    )
                    .into());
                }
                Some(trusts)
            }
            Principal::User { .. } => None,
            Principal::Service { .. } => {
                caller.require_service(AccessReads::CALLERS)?;
                None
            }
        };
        let account = self
            .store
            .get_account(query.account_id)
            .await?
            .ok_or(Error::AccountNotFound(query.account_id))?;
        let mut grants = self.store.access_grants(&account).await?;
        if let Some(trusts) = &scope {
            grants.retain(|g| trusts.contains(&g.trust_id.as_u128()));
            if grants.is_empty() {
                return Err(ApiError::permission_denied(
                    "NOT_TRUST_ADMINISTRATOR",
                    "this person has no access in a trust you administer",
                )
                .into());
            }
        }
        Ok(group_access(&grants)
            .into_iter()
            .filter(|a| query.after.as_ref().is_none_or(|after| a.key() > *after))
            .take(usize::try_from(query.limit).unwrap_or(usize::MAX))
            .collect())
    }

    /// Whether an account administers a trust, and why not. Users may ask only about
    /// themselves.
    pub async fn check_administrator(
        &self,
        caller: &Principal,
        check: AdministratorCheck,
    ) -> Result<Administration> {
        if let Principal::Service { .. } = caller {
            caller.require_service(AdministratorChecks::CALLERS)?;
        }
        if let Principal::User { account_id } = caller
            && *account_id != check.account_id
        {
            return Err(ApiError::permission_denied(
                "OTHER_ACCOUNT",
                "a user may check only their own administrator status",
            )
            .into());
        }
        self.require_trust(check.trust_id).await?;
        let grants = self.store.admin_grants(check.account_id).await?;
        Ok(decide_administrator(&grants, check.trust_id))
    }
}
