//! The gRPC edge: requests are parsed into domain types, callers authorised, the store called
//! and the answer converted back.

mod account;
mod directory;
mod grant;
mod staff;

use std::sync::Arc;

use portal_proto::identity::v1 as pb;
use portal_runtime::auth::{Principal, TokenIssuer, principal_of};
use portal_runtime::clock::{SharedClock, to_timestamp};
use portal_runtime::error::ApiError;

use crate::domain::{
    Account, AdminDecision, Grant, GrantOutcome, GrantStatus, OrgKind, OrganizationAccess, School,
    StaffMember, StaffStatus, SyncSummary, Trust, decide_administrator,
};
use crate::error::{IdentityError, Result};
use crate::storage::Store;

/// The operator's service token (the `portal` operator commands).
pub const OPERATOR: &str = "operator";
/// The MIS sync job's service token.
pub const MIS_SYNC: &str = "mis-sync";
/// The invitation service's token.
pub const INVITATION: &str = "invitation";

/// Every identity gRPC service, over one store.
#[derive(Clone)]
pub struct IdentityApi {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: SharedClock,
    issuer: TokenIssuer,
    user_token_ttl: chrono::Duration,
}

impl IdentityApi {
    pub fn new(
        store: Arc<dyn Store>,
        clock: SharedClock,
        issuer: TokenIssuer,
        user_token_ttl: chrono::Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                issuer,
                user_token_ttl,
            }),
        }
    }

    fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    /// Whether the account administers the trust (Portal admin role at trust level).
    async fn is_trust_admin(&self, account_id: &str, trust_id: &str) -> Result<bool> {
        let grants = self.store().admin_grants(account_id).await?;
        Ok(decide_administrator(&grants, trust_id).0 == AdminDecision::Administrator)
    }

    /// Service tokens, and administrators of the trust; other users get PERMISSION_DENIED.
    async fn require_trust_admin_or_service(
        &self,
        principal: &Principal,
        trust_id: &str,
    ) -> Result<()> {
        match principal {
            Principal::Service { .. } => Ok(()),
            Principal::User { account_id } => {
                if self
                    .is_trust_admin(&account_id.to_string(), trust_id)
                    .await?
                {
                    Ok(())
                } else {
                    Err(ApiError::permission_denied(
                        "NOT_TRUST_ADMINISTRATOR",
                        "only administrators of the trust (Portal account owner or account admin \
                         at trust level) may read its staff directory",
                    )
                    .into())
                }
            }
        }
    }
}

fn principal<T>(request: &tonic::Request<T>) -> Result<Principal> {
    Ok(principal_of(request)?)
}

fn require_service(principal: &Principal, allowed: &[&str]) -> Result<()> {
    principal.require_service(allowed)?;
    Ok(())
}

/// Converts the outcome of a handler into the gRPC answer.
fn answer<T>(result: Result<T>) -> std::result::Result<tonic::Response<T>, tonic::Status> {
    result
        .map(tonic::Response::new)
        .map_err(IdentityError::into_status)
}

fn trust_pb(trust: Trust) -> pb::Trust {
    pb::Trust {
        id: trust.id,
        name: trust.name,
        create_time: Some(to_timestamp(trust.create_time)),
    }
}

fn school_pb(school: School) -> pb::School {
    pb::School {
        id: school.id,
        trust_id: school.trust_id,
        name: school.name,
        urn: school.urn.unwrap_or_default(),
        create_time: Some(to_timestamp(school.create_time)),
    }
}

fn staff_status_pb(status: StaffStatus) -> pb::StaffStatus {
    match status {
        StaffStatus::Active => pb::StaffStatus::Active,
        StaffStatus::Left => pb::StaffStatus::Left,
    }
}

fn staff_pb(member: StaffMember) -> pb::StaffMember {
    pb::StaffMember {
        id: member.id,
        trust_id: member.trust_id,
        mis_id: member.mis_id,
        given_name: member.given_name,
        family_name: member.family_name,
        email: member.email.into_string(),
        job_title: member.job_title,
        status: staff_status_pb(member.status) as i32,
        create_time: Some(to_timestamp(member.create_time)),
        update_time: Some(to_timestamp(member.update_time)),
    }
}

fn summary_pb(summary: SyncSummary) -> pb::SyncSummary {
    let n = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    pb::SyncSummary {
        received: n(summary.received),
        added: n(summary.added),
        updated: n(summary.updated),
        marked_left: n(summary.marked_left),
        unchanged: n(summary.unchanged),
    }
}

fn account_pb(account: Account) -> pb::Account {
    pb::Account {
        id: account.id,
        email: account.email.into_string(),
        given_name: account.given_name,
        family_name: account.family_name,
        create_time: Some(to_timestamp(account.create_time)),
    }
}

fn org_kind_pb(kind: OrgKind) -> pb::OrganizationKind {
    match kind {
        OrgKind::Trust => pb::OrganizationKind::Trust,
        OrgKind::School => pb::OrganizationKind::School,
    }
}

fn grant_status_pb(status: GrantStatus) -> pb::GrantStatus {
    match status {
        GrantStatus::Pending => pb::GrantStatus::Pending,
        GrantStatus::Active => pb::GrantStatus::Active,
        GrantStatus::Revoked => pb::GrantStatus::Revoked,
    }
}

fn grant_pb(grant: Grant) -> pb::Grant {
    pb::Grant {
        id: grant.id,
        invitation_id: grant.invitation_id,
        trust_id: grant.trust_id,
        organization_kind: org_kind_pb(grant.kind) as i32,
        organization_id: grant.organization_id,
        product_key: grant.product_key,
        role_key: grant.role_key,
        email: grant.email.into_string(),
        account_id: grant.account_id.unwrap_or_default(),
        status: grant_status_pb(grant.status) as i32,
        create_time: Some(to_timestamp(grant.create_time)),
        update_time: Some(to_timestamp(grant.update_time)),
    }
}

fn outcome_pb(outcome: GrantOutcome) -> pb::GrantOutcome {
    match outcome {
        GrantOutcome::Created => pb::GrantOutcome::Created,
        GrantOutcome::AlreadyGranted => pb::GrantOutcome::AlreadyGranted,
        GrantOutcome::AlreadyHeld => pb::GrantOutcome::AlreadyHeld,
    }
}

fn access_pb(access: OrganizationAccess) -> pb::OrganizationAccess {
    pb::OrganizationAccess {
        organization_kind: org_kind_pb(access.kind) as i32,
        organization_id: access.organization_id,
        trust_id: access.trust_id,
        products: access
            .products
            .into_iter()
            .map(|p| pb::ProductAccess {
                product_key: p.product_key,
                role_key: p.role_key,
                status: grant_status_pb(p.status) as i32,
            })
            .collect(),
    }
}

fn decision_pb(decision: AdminDecision) -> pb::AdministratorDecision {
    match decision {
        AdminDecision::Administrator => pb::AdministratorDecision::Administrator,
        AdminDecision::NotAdministrator => pb::AdministratorDecision::NotAdministrator,
        AdminDecision::SchoolLevelOnly => pb::AdministratorDecision::SchoolLevelOnly,
        AdminDecision::OtherTrust => pb::AdministratorDecision::OtherTrust,
    }
}
