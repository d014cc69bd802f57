//! Access management for trust administrators: a staff member's access at the trust and its
//! schools, and withdrawing it.

use portal_runtime::auth::Principal;
use portal_runtime::error::ApiError;
use portal_runtime::vocab::{ProductKey, StaffId, TrustId};

use super::App;
use crate::domain::{AdminDecision, Grant, OrganizationId, decide_administrator};
use crate::error::{Error, Result};

impl App {
    /// Only a signed-in administrator of the trust manages its staff's access.
    async fn require_trust_administrator(
        &self,
        caller: &Principal,
        trust_id: TrustId,
    ) -> Result<()> {
        if let Principal::User { account_id } = caller {
            let grants = self.store.admin_grants(*account_id).await?;
            if decide_administrator(&grants, trust_id).decision == AdminDecision::Administrator {
                return Ok(());
            }
        }
        Err(ApiError::permission_denied(
            "NOT_TRUST_ADMINISTRATOR",
            "only an administrator of the trust (Portal Account Owner or Account Admin at trust \
             level), signed in, may manage its staff's access",
        )
        .into())
    }

    /// Every grant of a staff member at the trust and its schools that is not revoked.
    pub async fn list_staff_access(
        &self,
        caller: &Principal,
        trust_id: TrustId,
        staff_id: StaffId,
    ) -> Result<Vec<Grant>> {
        self.require_trust_administrator(caller, trust_id).await?;
        self.store
            .staff_grants(trust_id, staff_id)
            .await?
            .ok_or(Error::StaffNotFound(staff_id))
    }

    /// Withdraws one product at one organisation, or everything at the trust.
    pub async fn withdraw_access(
        &self,
        caller: &Principal,
        trust_id: TrustId,
        staff_id: StaffId,
        target: Option<(OrganizationId, ProductKey)>,
    ) -> Result<u64> {
        self.require_trust_administrator(caller, trust_id).await?;
        let withdrawn = self
            .store
            .withdraw_grants(trust_id, staff_id, target, self.now())
            .await?;
        tracing::info!(%trust_id, %staff_id, withdrawn, "access withdrawn");
        Ok(withdrawn)
    }
}
