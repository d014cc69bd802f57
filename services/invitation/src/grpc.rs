//! The gRPC edge: requests parsed into domain types (every bad field named), the rules run,
//! the outcome converted back to protobuf.

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use portal_proto::invitation::v1 as pb;
use portal_proto::invitation::v1::invitation_service_server::InvitationService;
use portal_runtime::clock::{SharedClock, to_timestamp};
use portal_runtime::error::{ApiError, Violations};
use portal_runtime::paging::PageRequest;
use portal_runtime::principal_of;
use portal_runtime::types::{parse_id, parse_name, truncate};

use crate::domain::{
    self, CreateRequest, Delivery, GrantState, Invitation, OrgKind, SchoolAccess, TrustAccess,
    parse_link_token,
};
use crate::error::DOMAIN;
use crate::service::{AcceptRequest, Invitations};
use crate::store::{ListFilter, PageKey};

/// Most school products per invitation (the eligibility query's limit).
const MAX_SCHOOL_PRODUCTS: usize = 20;
/// Most schools per invitation (the eligibility query's limit).
const MAX_SCHOOLS: usize = 1000;

pub struct Grpc {
    pub invitations: Invitations,
    pub clock: SharedClock,
}

fn status(error: impl Into<ApiError>) -> Status {
    error.into().into_status(DOMAIN)
}

fn bearer<T>(request: &Request<T>) -> Option<String> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// A catalogue key: lower-case letters, digits and dashes.
fn parse_key(raw: &str) -> Result<String, String> {
    let key = raw.trim();
    if key.is_empty() {
        return Err("is required".into());
    }
    if key.len() > 64
        || !key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "`{}` is not a catalogue key (lower-case letters, digits and dashes)",
            truncate(key, 64)
        ));
    }
    Ok(key.to_string())
}

fn parse_request_id(raw: &str, violations: &mut Violations) -> Option<String> {
    let id = raw.trim();
    if id.is_empty() {
        return None;
    }
    if id.chars().count() > 128 || id.chars().any(char::is_control) {
        violations.add(
            "request_id",
            "must be at most 128 printable characters (a UUID is best)",
        );
        return None;
    }
    Some(id.to_string())
}

/// Parses a repeated field, naming each bad or duplicated element.
fn parse_list(
    field: &str,
    raw: &[String],
    max: usize,
    what: &str,
    parse: impl Fn(&str) -> Result<String, String>,
    violations: &mut Violations,
) -> Vec<String> {
    if raw.is_empty() {
        violations.add(field, format!("at least one {what} is required"));
    }
    if raw.len() > max {
        violations.add(
            field,
            format!("at most {max} {what}s per invitation; split it into several"),
        );
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, item) in raw.iter().enumerate() {
        match parse(item) {
            Ok(value) => {
                if let Some(first) = seen.get(&value) {
                    violations.add(
                        format!("{field}[{i}]"),
                        format!("duplicates {field}[{first}]"),
                    );
                } else {
                    seen.insert(value.clone(), i);
                    out.push(value);
                }
            }
            Err(description) => violations.add(format!("{field}[{i}]"), description),
        }
    }
    out
}

fn parse_create(request: pb::CreateInvitationRequest) -> Result<CreateRequest, ApiError> {
    let mut v = Violations::new();
    let trust_id = v.take("trust_id", parse_id(&request.trust_id));
    let staff_id = v.take("staff_id", parse_id(&request.staff_id));
    let trust_access = match &request.trust_access {
        None => {
            v.add("trust_access", "is required: one trust product and role");
            None
        }
        Some(t) => {
            let product_key = v.take("trust_access.product_key", parse_key(&t.product_key));
            let role_key = v.take("trust_access.role_key", parse_key(&t.role_key));
            product_key
                .zip(role_key)
                .map(|(product_key, role_key)| TrustAccess {
                    product_key,
                    role_key,
                })
        }
    };
    let school_access = request.school_access.as_ref().map(|s| {
        let product_keys = parse_list(
            "school_access.product_keys",
            &s.product_keys,
            MAX_SCHOOL_PRODUCTS,
            "school product",
            parse_key,
            &mut v,
        );
        let role_key = v.take("school_access.role_key", parse_key(&s.role_key));
        let school_ids = parse_list(
            "school_access.school_ids",
            &s.school_ids,
            MAX_SCHOOLS,
            "school",
            parse_id,
            &mut v,
        );
        role_key.map(|role_key| SchoolAccess {
            product_keys,
            role_key,
            school_ids,
        })
    });
    let request_id = parse_request_id(&request.request_id, &mut v);
    v.finish_with(|| {
        Some(CreateRequest {
            trust_id: trust_id?,
            staff_id: staff_id?,
            trust_access: trust_access?,
            school_access: match school_access {
                Some(parsed) => Some(parsed?),
                None => None,
            },
            request_id,
            validate_only: request.validate_only,
        })
    })
}

fn parse_password(raw: &str) -> Result<String, String> {
    let n = raw.chars().count();
    if n == 0 {
        Err("is required".into())
    } else if !(10..=128).contains(&n) {
        Err("must be 10 to 128 characters long".into())
    } else {
        Ok(raw.to_string())
    }
}

fn kind(kind: OrgKind) -> pb::OrganizationKind {
    match kind {
        OrgKind::Trust => pb::OrganizationKind::Trust,
        OrgKind::School => pb::OrganizationKind::School,
    }
}

fn grant_state(state: GrantState) -> pb::GrantState {
    match state {
        GrantState::Pending => pb::GrantState::Pending,
        GrantState::Active => pb::GrantState::Active,
        GrantState::AlreadyHeld => pb::GrantState::AlreadyHeld,
    }
}

fn status_pb(status: domain::Status) -> pb::InvitationStatus {
    match status {
        domain::Status::Pending => pb::InvitationStatus::Pending,
        domain::Status::Granted => pb::InvitationStatus::Granted,
        domain::Status::Accepted => pb::InvitationStatus::Accepted,
        domain::Status::Expired => pb::InvitationStatus::Expired,
        domain::Status::Revoked => pb::InvitationStatus::Revoked,
    }
}

fn access(invitation: &Invitation) -> Vec<pb::GrantedAccess> {
    invitation
        .granted
        .iter()
        .map(|g| pb::GrantedAccess {
            organization_kind: kind(g.org_kind) as i32,
            organization_id: g.org_id.clone(),
            product_key: g.product_key.clone(),
            role_key: g.role_key.clone(),
            state: grant_state(g.state) as i32,
        })
        .collect()
}

impl Grpc {
    fn to_pb(&self, invitation: &Invitation) -> pb::Invitation {
        let now = self.clock.now();
        pb::Invitation {
            id: invitation.id.clone(),
            trust_id: invitation.trust_id.clone(),
            staff_id: invitation.staff_id.clone(),
            inviter_account_id: invitation.inviter_account_id.clone(),
            trust_access: Some(pb::TrustAccess {
                product_key: invitation.trust_access.product_key.clone(),
                role_key: invitation.trust_access.role_key.clone(),
            }),
            school_access: invitation.school_access.as_ref().map(|s| pb::SchoolAccess {
                product_keys: s.product_keys.clone(),
                role_key: s.role_key.clone(),
                school_ids: s.school_ids.clone(),
            }),
            status: status_pb(invitation.status_at(now)) as i32,
            delivery: match invitation.delivery {
                Delivery::SignUpLink => pb::DeliveryKind::SignUpLink,
                Delivery::NewProductNotice => pb::DeliveryKind::NewProductNotice,
            } as i32,
            granted: access(invitation),
            skipped: invitation
                .skipped
                .iter()
                .map(|s| pb::SkippedAccess {
                    school_id: s.school_id.clone(),
                    product_key: s.product_key.clone(),
                    reason: s.reason.clone(),
                    detail: s.detail.clone(),
                })
                .collect(),
            expire_time: invitation.expire_time.map(to_timestamp),
            create_time: Some(to_timestamp(invitation.create_time)),
            update_time: Some(to_timestamp(invitation.update_time)),
        }
    }

    fn link_details(&self, invitation: &Invitation) -> pb::LinkDetails {
        pb::LinkDetails {
            invitation_id: invitation.id.clone(),
            trust_id: invitation.trust_id.clone(),
            trust_name: invitation.trust_name.clone(),
            given_name: invitation.staff_given_name.clone(),
            access: access(invitation),
            expire_time: invitation.expire_time.map(to_timestamp),
            status: status_pb(invitation.status_at(self.clock.now())) as i32,
        }
    }
}

fn invitation_id(raw: &str) -> Result<String, Status> {
    parse_id(raw).map_err(|d| status(ApiError::invalid("invitation_id", d)))
}

#[tonic::async_trait]
impl InvitationService for Grpc {
    async fn create_invitation(
        &self,
        request: Request<pb::CreateInvitationRequest>,
    ) -> Result<Response<pb::CreateInvitationResponse>, Status> {
        let caller = principal_of(&request).map_err(status)?;
        let bearer = bearer(&request);
        let parsed = parse_create(request.into_inner()).map_err(status)?;
        let invitation = self
            .invitations
            .create(&caller, bearer.as_deref(), parsed)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateInvitationResponse {
            invitation: Some(self.to_pb(&invitation)),
        }))
    }

    async fn get_invitation(
        &self,
        request: Request<pb::GetInvitationRequest>,
    ) -> Result<Response<pb::GetInvitationResponse>, Status> {
        let caller = principal_of(&request).map_err(status)?;
        let id = invitation_id(&request.get_ref().invitation_id)?;
        let invitation = self.invitations.get(&caller, &id).await.map_err(status)?;
        Ok(Response::new(pb::GetInvitationResponse {
            invitation: Some(self.to_pb(&invitation)),
        }))
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Result<Response<pb::ListInvitationsResponse>, Status> {
        let caller = principal_of(&request).map_err(status)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", parse_id(&r.trust_id));
        let status_filter = match pb::InvitationStatus::try_from(r.status) {
            Ok(pb::InvitationStatus::Unspecified) => None,
            Ok(pb::InvitationStatus::Pending) => Some(domain::Status::Pending),
            Ok(pb::InvitationStatus::Granted) => Some(domain::Status::Granted),
            Ok(pb::InvitationStatus::Accepted) => Some(domain::Status::Accepted),
            Ok(pb::InvitationStatus::Expired) => Some(domain::Status::Expired),
            Ok(pb::InvitationStatus::Revoked) => Some(domain::Status::Revoked),
            Err(_) => {
                v.add(
                    "status",
                    format!("{} is not an invitation status", r.status),
                );
                None
            }
        };
        let staff_id = if r.staff_id.trim().is_empty() {
            None
        } else {
            v.take("staff_id", parse_id(&r.staff_id))
        };
        let product_key = if r.product_key.trim().is_empty() {
            None
        } else {
            v.take("product_key", parse_key(&r.product_key))
        };
        let fingerprint = format!(
            "{}|{}|{}|{}",
            r.trust_id.trim(),
            r.status,
            staff_id.as_deref().unwrap_or(""),
            product_key.as_deref().unwrap_or("")
        );
        let page = PageRequest::parse(r.page_size, &r.page_token, &fingerprint, &mut v);
        let after = match &page.after {
            Some(text) => match PageKey::decode(text) {
                Some(key) => Some(key),
                None => {
                    v.add("page_token", "is not a token returned by this query");
                    None
                }
            },
            None => None,
        };
        v.finish().map_err(status)?;
        let filter = ListFilter {
            trust_id: trust_id.unwrap_or_default(),
            status: status_filter,
            staff_id,
            product_key,
        };
        let mut rows = self
            .invitations
            .list(&caller, &filter, after.as_ref(), page.fetch_limit())
            .await
            .map_err(status)?;
        let next_page_token = page.finish(&mut rows, &fingerprint, |i| PageKey::of(i).encode());
        Ok(Response::new(pb::ListInvitationsResponse {
            invitations: rows.iter().map(|i| self.to_pb(i)).collect(),
            next_page_token,
        }))
    }

    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> Result<Response<pb::ResendInvitationResponse>, Status> {
        let caller = principal_of(&request).map_err(status)?;
        let bearer = bearer(&request);
        let id = invitation_id(&request.get_ref().invitation_id)?;
        let invitation = self
            .invitations
            .resend(&caller, bearer.as_deref(), &id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ResendInvitationResponse {
            invitation: Some(self.to_pb(&invitation)),
        }))
    }

    async fn revoke_invitation(
        &self,
        request: Request<pb::RevokeInvitationRequest>,
    ) -> Result<Response<pb::RevokeInvitationResponse>, Status> {
        let caller = principal_of(&request).map_err(status)?;
        let id = invitation_id(&request.get_ref().invitation_id)?;
        let invitation = self
            .invitations
            .revoke(&caller, &id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RevokeInvitationResponse {
            invitation: Some(self.to_pb(&invitation)),
        }))
    }

    async fn inspect_invitation_link(
        &self,
        request: Request<pb::InspectInvitationLinkRequest>,
    ) -> Result<Response<pb::InspectInvitationLinkResponse>, Status> {
        let token = parse_link_token(&request.get_ref().token)
            .map_err(|d| status(ApiError::invalid("token", d)))?;
        let invitation = self.invitations.inspect(&token).await.map_err(status)?;
        Ok(Response::new(pb::InspectInvitationLinkResponse {
            link: Some(self.link_details(&invitation)),
        }))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::AcceptInvitationResponse>, Status> {
        let r = request.into_inner();
        let mut v = Violations::new();
        let token = v.take("token", parse_link_token(&r.token));
        let given_name = v.take("given_name", parse_name(&r.given_name, 100));
        let family_name = v.take("family_name", parse_name(&r.family_name, 100));
        let password = v.take("password", parse_password(&r.password));
        let request_id = parse_request_id(&r.request_id, &mut v);
        let parsed = v
            .finish_with(|| {
                Some(AcceptRequest {
                    token: token?,
                    given_name: given_name?,
                    family_name: family_name?,
                    password: password?,
                    request_id,
                })
            })
            .map_err(status)?;
        let (account_id, invitation) = self.invitations.accept(parsed).await.map_err(status)?;
        Ok(Response::new(pb::AcceptInvitationResponse {
            account_id,
            invitation: Some(self.to_pb(&invitation)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_of_a_create_is_named() {
        let error = parse_create(pb::CreateInvitationRequest {
            trust_id: "nope".into(),
            staff_id: String::new(),
            trust_access: Some(pb::TrustAccess {
                product_key: "Portal!".into(),
                role_key: String::new(),
            }),
            school_access: Some(pb::SchoolAccess {
                product_keys: vec!["comms-hub".into(), "comms-hub".into()],
                role_key: "writer".into(),
                school_ids: vec![],
            }),
            request_id: String::new(),
            validate_only: false,
        })
        .unwrap_err();
        let ApiError::InvalidArgument(violations) = error else {
            panic!("expected INVALID_ARGUMENT");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "trust_id",
                "staff_id",
                "trust_access.product_key",
                "trust_access.role_key",
                "school_access.product_keys[1]",
                "school_access.school_ids",
            ]
        );
    }

    #[test]
    fn a_create_without_trust_access_is_refused_before_anything_else() {
        let error = parse_create(pb::CreateInvitationRequest {
            trust_id: portal_runtime::demo::TRUST_ID.into(),
            staff_id: portal_runtime::demo::STAFF[0].0.into(),
            ..Default::default()
        })
        .unwrap_err();
        let ApiError::InvalidArgument(violations) = error else {
            panic!("expected INVALID_ARGUMENT");
        };
        assert_eq!(violations[0].field, "trust_access");
    }
}
