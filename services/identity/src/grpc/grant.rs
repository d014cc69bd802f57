//! GrantService: grants made for invitations, and who may do what where.

use std::collections::{HashMap, HashSet};

use portal_proto::identity::v1 as pb;
use portal_proto::identity::v1::grant_service_server::GrantService;
use portal_runtime::auth::Principal;
use portal_runtime::demo::PORTAL_PRODUCT;
use portal_runtime::error::{ApiError, Violations};
use portal_runtime::paging::PageRequest;
use portal_runtime::types::{Email, parse_id};
use tonic::{Request, Response, Status};

use super::directory::unreachable_parse;
use super::{
    INVITATION, IdentityApi, access_pb, answer, decision_pb, grant_pb, outcome_pb, principal,
    require_service,
};
use crate::domain::{
    AdminDecision, GrantBatch, GrantSpec, MAX_GRANTS_PER_BATCH, OrgKind, decide_administrator,
    group_access, is_admin_grant, parse_key,
};
use crate::error::{IdentityError, Result};

fn parse_org_kind(raw: i32) -> std::result::Result<OrgKind, String> {
    match pb::OrganizationKind::try_from(raw) {
        Ok(pb::OrganizationKind::Trust) => Ok(OrgKind::Trust),
        Ok(pb::OrganizationKind::School) => Ok(OrgKind::School),
        Ok(pb::OrganizationKind::Unspecified) => Err("is required (TRUST or SCHOOL)".into()),
        Err(_) => Err(format!("{raw} is not an organization kind")),
    }
}

/// An optional account id: empty means the caller.
fn parse_optional_id(raw: &str) -> std::result::Result<Option<String>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse_id(raw).map(Some)
    }
}

fn parse_specs(
    trust_id: Option<&str>,
    grants: &[pb::GrantSpec],
    v: &mut Violations,
) -> Option<Vec<GrantSpec>> {
    if grants.is_empty() {
        v.add("grants", "at least one grant is required");
        return None;
    }
    if grants.len() > MAX_GRANTS_PER_BATCH {
        v.add(
            "grants",
            format!("at most {MAX_GRANTS_PER_BATCH} grants per call"),
        );
        return None;
    }
    let before = v.len();
    let mut specs = Vec::with_capacity(grants.len());
    let mut first_index: HashMap<GrantSpec, usize> = HashMap::new();
    for (i, grant) in grants.iter().enumerate() {
        let kind = v.take(
            format!("grants[{i}].organization_kind"),
            parse_org_kind(grant.organization_kind),
        );
        let organization_id = v.take(
            format!("grants[{i}].organization_id"),
            parse_id(&grant.organization_id),
        );
        let product_key = v.take(
            format!("grants[{i}].product_key"),
            parse_key(&grant.product_key),
        );
        let role_key = v.take(format!("grants[{i}].role_key"), parse_key(&grant.role_key));
        let (Some(kind), Some(organization_id), Some(product_key), Some(role_key)) =
            (kind, organization_id, product_key, role_key)
        else {
            continue;
        };
        if kind == OrgKind::Trust && trust_id.is_some_and(|t| t != organization_id) {
            v.add(
                format!("grants[{i}].organization_id"),
                "a TRUST grant must name the request's trust_id",
            );
            continue;
        }
        let spec = GrantSpec {
            kind,
            organization_id,
            product_key,
            role_key,
        };
        if let Some(first) = first_index.get(&spec) {
            v.add(
                format!("grants[{i}]"),
                format!("duplicates grants[{first}]"),
            );
            continue;
        }
        first_index.insert(spec.clone(), i);
        specs.push(spec);
    }
    (v.len() == before).then_some(specs)
}

impl IdentityApi {
    async fn batch_grant_impl(
        &self,
        request: Request<pb::BatchGrantRequest>,
    ) -> Result<pb::BatchGrantResponse> {
        require_service(&principal(&request)?, &[INVITATION])?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let invitation_id = v.take("invitation_id", parse_id(&request.invitation_id));
        let trust_id = v.take("trust_id", parse_id(&request.trust_id));
        let email = v.take("email", Email::parse(&request.email));
        let staff_id = v.take("staff_id", parse_id(&request.staff_id));
        let specs = parse_specs(trust_id.as_deref(), &request.grants, &mut v);
        v.finish()?;
        let (Some(invitation_id), Some(trust_id), Some(email), Some(staff_id), Some(specs)) =
            (invitation_id, trust_id, email, staff_id, specs)
        else {
            return unreachable_parse();
        };
        let results = self
            .store()
            .batch_grant(GrantBatch {
                invitation_id,
                trust_id,
                email,
                staff_id: Some(staff_id),
                specs,
                activate: request.activate,
                now: self.now(),
            })
            .await?;
        Ok(pb::BatchGrantResponse {
            results: results
                .into_iter()
                .map(|(grant, outcome)| pb::GrantResult {
                    grant: Some(grant_pb(grant)),
                    outcome: outcome_pb(outcome) as i32,
                })
                .collect(),
        })
    }

    async fn activate_grants_impl(
        &self,
        request: Request<pb::ActivateGrantsRequest>,
    ) -> Result<pb::ActivateGrantsResponse> {
        require_service(&principal(&request)?, &[INVITATION])?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let invitation_id = v.take("invitation_id", parse_id(&request.invitation_id));
        let account_id = v.take("account_id", parse_id(&request.account_id));
        v.finish()?;
        let (Some(invitation_id), Some(account_id)) = (invitation_id, account_id) else {
            return unreachable_parse();
        };
        let grants = self
            .store()
            .activate_grants(&invitation_id, &account_id, self.now())
            .await?;
        Ok(pb::ActivateGrantsResponse {
            grants: grants.into_iter().map(grant_pb).collect(),
        })
    }

    async fn revoke_grants_impl(
        &self,
        request: Request<pb::RevokeGrantsRequest>,
    ) -> Result<pb::RevokeGrantsResponse> {
        require_service(&principal(&request)?, &[INVITATION])?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let invitation_id = v.take("invitation_id", parse_id(&request.invitation_id));
        v.finish()?;
        let Some(invitation_id) = invitation_id else {
            return unreachable_parse();
        };
        let revoked = self
            .store()
            .revoke_grants(&invitation_id, request.pending_only, self.now())
            .await?;
        Ok(pb::RevokeGrantsResponse {
            revoked_count: i32::try_from(revoked).unwrap_or(i32::MAX),
        })
    }

    /// The trusts an account administers at trust level.
    async fn administered_trusts(&self, account_id: &str) -> Result<HashSet<String>> {
        Ok(self
            .store()
            .admin_grants(account_id)
            .await?
            .into_iter()
            .filter(|g| g.kind == OrgKind::Trust && is_admin_grant(PORTAL_PRODUCT, &g.role_key))
            .map(|g| g.trust_id)
            .collect())
    }

    async fn list_access_impl(
        &self,
        request: Request<pb::ListAccessRequest>,
    ) -> Result<pb::ListAccessResponse> {
        let caller = principal(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let account_id = v.take("account_id", parse_optional_id(&request.account_id));
        if let (Some(None), Principal::Service { .. }) = (&account_id, &caller) {
            v.add("account_id", "is required with a service token");
        }
        let filter = format!(
            "access;account={}",
            account_id.clone().flatten().unwrap_or_default()
        );
        let page = PageRequest::parse(request.page_size, &request.page_token, &filter, &mut v);
        v.finish()?;
        let Some(account_id) = account_id else {
            return unreachable_parse();
        };
        // Which account, and which trusts the caller may see of it (None: all).
        let (target, scope): (String, Option<HashSet<String>>) = match (&caller, account_id) {
            (Principal::Service { .. }, Some(id)) => (id, None),
            (Principal::User { account_id: me }, None) => (me.to_string(), None),
            (Principal::User { account_id: me }, Some(id)) if me.to_string() == id => (id, None),
            (Principal::User { account_id: me }, Some(id)) => {
                let trusts = self.administered_trusts(&me.to_string()).await?;
                if trusts.is_empty() {
                    return Err(ApiError::permission_denied(
                        "NOT_TRUST_ADMINISTRATOR",
                        "a user may list only their own access unless they administer a trust",
                    )
                    .into());
                }
                (id, Some(trusts))
            }
            (Principal::Service { .. }, None) => return unreachable_parse(),
        };
        let account = self
            .store()
            .get_account(&target)
            .await?
            .ok_or_else(|| IdentityError::AccountNotFound(target.clone()))?;
        let mut grants = self.store().access_grants(&account).await?;
        if let Some(trusts) = &scope {
            grants.retain(|g| trusts.contains(&g.trust_id));
            if grants.is_empty() {
                return Err(ApiError::permission_denied(
                    "NOT_TRUST_ADMINISTRATOR",
                    "this person has no access in a trust you administer",
                )
                .into());
            }
        }
        let mut access: Vec<_> = group_access(&grants)
            .into_iter()
            .filter(|a| page.after.as_ref().is_none_or(|after| a.key() > *after))
            .take(usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX))
            .collect();
        let next_page_token = page.finish(&mut access, &filter, |a| a.key());
        Ok(pb::ListAccessResponse {
            access: access.into_iter().map(access_pb).collect(),
            next_page_token,
        })
    }

    async fn check_administrator_impl(
        &self,
        request: Request<pb::CheckAdministratorRequest>,
    ) -> Result<pb::CheckAdministratorResponse> {
        let caller = principal(&request)?;
        let request = request.into_inner();
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", parse_id(&request.trust_id));
        let account_id = v.take("account_id", parse_optional_id(&request.account_id));
        if let (Some(None), Principal::Service { .. }) = (&account_id, &caller) {
            v.add("account_id", "is required with a service token");
        }
        v.finish()?;
        let (Some(trust_id), Some(account_id)) = (trust_id, account_id) else {
            return unreachable_parse();
        };
        let target = match (&caller, account_id) {
            (Principal::Service { .. }, Some(id)) => id,
            (Principal::User { account_id: me }, None) => me.to_string(),
            (Principal::User { account_id: me }, Some(id)) if me.to_string() == id => id,
            (Principal::User { .. }, Some(_)) => {
                return Err(ApiError::permission_denied(
                    "OTHER_ACCOUNT",
                    "a user may check only their own administrator status",
                )
                .into());
            }
            (Principal::Service { .. }, None) => return unreachable_parse(),
        };
        if self.store().get_trust(&trust_id).await?.is_none() {
            return Err(IdentityError::TrustNotFound(trust_id));
        }
        let grants = self.store().admin_grants(&target).await?;
        let (decision, role) = decide_administrator(&grants, &trust_id);
        Ok(pb::CheckAdministratorResponse {
            administrator: decision == AdminDecision::Administrator,
            decision: decision_pb(decision) as i32,
            role_key: role.unwrap_or_default(),
        })
    }
}

#[tonic::async_trait]
impl GrantService for IdentityApi {
    async fn batch_grant(
        &self,
        request: Request<pb::BatchGrantRequest>,
    ) -> Result<Response<pb::BatchGrantResponse>, Status> {
        answer(self.batch_grant_impl(request).await)
    }

    async fn activate_grants(
        &self,
        request: Request<pb::ActivateGrantsRequest>,
    ) -> Result<Response<pb::ActivateGrantsResponse>, Status> {
        answer(self.activate_grants_impl(request).await)
    }

    async fn revoke_grants(
        &self,
        request: Request<pb::RevokeGrantsRequest>,
    ) -> Result<Response<pb::RevokeGrantsResponse>, Status> {
        answer(self.revoke_grants_impl(request).await)
    }

    async fn list_access(
        &self,
        request: Request<pb::ListAccessRequest>,
    ) -> Result<Response<pb::ListAccessResponse>, Status> {
        answer(self.list_access_impl(request).await)
    }

    async fn check_administrator(
        &self,
        request: Request<pb::CheckAdministratorRequest>,
    ) -> Result<Response<pb::CheckAdministratorResponse>, Status> {
        answer(self.check_administrator_impl(request).await)
    }
}
