//! Every conversion between the protobuf messages and the domain: requests parsed (each bad
//! field named, lists bounded before their elements are read), answers written back.

use std::collections::HashMap;
use std::hash::Hash;

use portal_proto::invitation::v1 as pb;
use portal_runtime::clock::to_timestamp;
use portal_runtime::error::{ApiError, Violations};
use portal_runtime::limits::{MAX_PRODUCTS_PER_REQUEST, MAX_SCHOOLS_PER_REQUEST};
use portal_runtime::paging::PageRequest;
use portal_runtime::vocab::{
    AccountId, InvitationId, Password, ProductKey, RequestId, RoleKey, SchoolId, StaffId, TrustId,
    parse_name,
};
use secrecy::SecretString;

use crate::domain::NewAccountDetails;
use crate::domain::{
    AcceptInput, Accepted, Accepter, CreateInput, Created, Delivery, GrantState, GrantedAccess,
    Invitation, LinkToken, ListFilter, ListQuery, Page, PageKey, SchoolAccess, SkippedAccess,
    Status, TrustAccess,
};

/// Longest given or family name.
const MAX_NAME_CHARS: usize = 100;

/// The invitation a Get, Resend or Revoke request names.
pub fn invitation_id(raw: &str) -> Result<InvitationId, ApiError> {
    InvitationId::parse(raw).map_err(|d| ApiError::invalid("invitation_id", d))
}

/// Parses a repeated field: its length first, then each element, naming each bad or
/// repeated one.
fn parse_list<T: Eq + Hash + Clone>(
    field: &str,
    raw: &[String],
    max: usize,
    what: &str,
    parse: impl Fn(&str) -> Result<T, String>,
    violations: &mut Violations,
) -> Vec<T> {
    if raw.is_empty() {
        violations.add(field, format!("at least one {what} is required"));
    }
    if raw.len() > max {
        violations.add(
            field,
            format!("at most {max} {what}s per invitation; split it into several"),
        );
        return Vec::new();
    }
    let mut seen: HashMap<T, usize> = HashMap::with_capacity(raw.len());
    let mut out = Vec::with_capacity(raw.len());
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

impl TryFrom<pb::CreateInvitationRequest> for CreateInput {
    type Error = ApiError;

    fn try_from(request: pb::CreateInvitationRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", TrustId::parse(&request.trust_id));
        let staff_id = v.take("staff_id", StaffId::parse(&request.staff_id));
        let trust_access = match &request.trust_access {
            None => {
                v.add("trust_access", "is required: one trust product and role");
                None
            }
            Some(t) => {
                let product_key = v.take(
                    "trust_access.product_key",
                    ProductKey::parse(&t.product_key),
                );
                let role_key = v.take("trust_access.role_key", RoleKey::parse(&t.role_key));
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
                MAX_PRODUCTS_PER_REQUEST,
                "school product",
                ProductKey::parse,
                &mut v,
            );
            let role_key = v.take("school_access.role_key", RoleKey::parse(&s.role_key));
            let school_ids = parse_list(
                "school_access.school_ids",
                &s.school_ids,
                MAX_SCHOOLS_PER_REQUEST,
                "school",
                SchoolId::parse,
                &mut v,
            );
            role_key.map(|role_key| SchoolAccess {
                product_keys,
                role_key,
                school_ids,
            })
        });
        let request_id = v
            .take("request_id", RequestId::parse_optional(&request.request_id))
            .flatten();
        v.finish_with(|| {
            Some(CreateInput {
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
}

impl TryFrom<pb::ListInvitationsRequest> for ListQuery {
    type Error = ApiError;

    fn try_from(r: pb::ListInvitationsRequest) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let trust_id = v.take("trust_id", TrustId::parse(&r.trust_id));
        // UNSPECIFIED asks for every status.
        let status = v
            .take(
                "status",
                pb::InvitationStatus::try_from(r.status)
                    .map(|s| Status::try_from(s).ok())
                    .map_err(|_| format!("{} is not an invitation status", r.status)),
            )
            .flatten();
        let staff_id = v
            .take("staff_id", StaffId::parse_optional(&r.staff_id))
            .flatten();
        let product_key = if r.product_key.trim().is_empty() {
            None
        } else {
            v.take("product_key", ProductKey::parse(&r.product_key))
        };
        let fingerprint = format!(
            "{}|{}|{}|{}",
            r.trust_id.trim(),
            r.status,
            staff_id.map(|s| s.to_string()).unwrap_or_default(),
            product_key.as_ref().map_or("", ProductKey::as_str)
        );
        let page = PageRequest::parse(r.page_size, &r.page_token, &fingerprint, &mut v);
        let after = match &page.after {
            Some(text) => {
                let key = PageKey::decode(text);
                if key.is_none() {
                    v.add("page_token", "is not a token returned by this query");
                }
                key
            }
            None => None,
        };
        v.finish_with(|| {
            Some(ListQuery {
                filter: ListFilter {
                    trust_id: trust_id?,
                    status,
                    staff_id,
                    product_key,
                },
                page,
                after,
                fingerprint,
            })
        })
    }
}

impl TryFrom<&pb::InspectInvitationLinkRequest> for LinkToken {
    type Error = ApiError;

    fn try_from(request: &pb::InspectInvitationLinkRequest) -> Result<Self, ApiError> {
        LinkToken::parse(&request.token).map_err(|d| ApiError::invalid("token", d))
    }
}

/// An accept request, with the signed-in caller's account and token when it sent one: then
/// the names and password are not needed (and not read).
impl
    TryFrom<(
        pb::AcceptInvitationRequest,
        Option<(AccountId, SecretString)>,
    )> for AcceptInput
{
    type Error = ApiError;

    fn try_from(
        (r, signed_in): (
            pb::AcceptInvitationRequest,
            Option<(AccountId, SecretString)>,
        ),
    ) -> Result<Self, ApiError> {
        let mut v = Violations::new();
        let token = v.take("token", LinkToken::parse(&r.token));
        let request_id = v
            .take("request_id", RequestId::parse_optional(&r.request_id))
            .flatten();
        let accepter = match signed_in {
            Some((account_id, bearer)) => Some(Accepter::SignedIn { account_id, bearer }),
            None => {
                let given_name = v.take("given_name", parse_name(&r.given_name, MAX_NAME_CHARS));
                let family_name = v.take("family_name", parse_name(&r.family_name, MAX_NAME_CHARS));
                let password = v.take("password", Password::parse(&r.password));
                match (given_name, family_name, password) {
                    (Some(given_name), Some(family_name), Some(password)) => {
                        Some(Accepter::NewAccount(NewAccountDetails {
                            given_name,
                            family_name,
                            password,
                        }))
                    }
                    _ => None,
                }
            }
        };
        v.finish_with(|| {
            Some(AcceptInput {
                token: token?,
                request_id,
                accepter: accepter?,
            })
        })
    }
}

/// UNSPECIFIED names no status.
impl TryFrom<pb::InvitationStatus> for Status {
    type Error = ();

    fn try_from(status: pb::InvitationStatus) -> Result<Self, ()> {
        match status {
            pb::InvitationStatus::Unspecified => Err(()),
            pb::InvitationStatus::Pending => Ok(Status::Pending),
            pb::InvitationStatus::Granted => Ok(Status::Granted),
            pb::InvitationStatus::Accepted => Ok(Status::Accepted),
            pb::InvitationStatus::Expired => Ok(Status::Expired),
            pb::InvitationStatus::Revoked => Ok(Status::Revoked),
        }
    }
}

impl From<Status> for pb::InvitationStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => pb::InvitationStatus::Pending,
            Status::Granted => pb::InvitationStatus::Granted,
            Status::Accepted => pb::InvitationStatus::Accepted,
            Status::Expired => pb::InvitationStatus::Expired,
            Status::Revoked => pb::InvitationStatus::Revoked,
        }
    }
}

impl From<Delivery> for pb::DeliveryKind {
    fn from(delivery: Delivery) -> Self {
        match delivery {
            Delivery::SignUpLink => pb::DeliveryKind::SignUpLink,
            Delivery::NewProductNotice => pb::DeliveryKind::NewProductNotice,
        }
    }
}

impl From<GrantState> for pb::GrantState {
    fn from(state: GrantState) -> Self {
        match state {
            GrantState::Pending => pb::GrantState::Pending,
            GrantState::Active => pb::GrantState::Active,
            GrantState::AlreadyHeld => pb::GrantState::AlreadyHeld,
            GrantState::Dropped => pb::GrantState::Dropped,
            GrantState::RoleChanged => pb::GrantState::RoleChanged,
        }
    }
}

impl From<GrantedAccess> for pb::GrantedAccess {
    fn from(grant: GrantedAccess) -> Self {
        pb::GrantedAccess {
            organization_kind: grant.org.kind().to_proto(),
            organization_id: grant.org.to_string(),
            product_key: grant.product_key.into(),
            role_key: grant.role_key.into(),
            state: pb::GrantState::from(grant.state) as i32,
            previous_role_key: grant.previous_role_key.map(Into::into).unwrap_or_default(),
        }
    }
}

impl From<SkippedAccess> for pb::SkippedAccess {
    fn from(skipped: SkippedAccess) -> Self {
        pb::SkippedAccess {
            school_id: skipped.school_id.to_string(),
            product_key: skipped.product_key.into(),
            reason: <&str>::from(skipped.reason).to_string(),
            detail: skipped.detail,
        }
    }
}

impl From<TrustAccess> for pb::TrustAccess {
    fn from(access: TrustAccess) -> Self {
        pb::TrustAccess {
            product_key: access.product_key.into(),
            role_key: access.role_key.into(),
        }
    }
}

impl From<SchoolAccess> for pb::SchoolAccess {
    fn from(access: SchoolAccess) -> Self {
        pb::SchoolAccess {
            product_keys: access.product_keys.into_iter().map(String::from).collect(),
            role_key: access.role_key.into(),
            school_ids: access.school_ids.into_iter().map(String::from).collect(),
        }
    }
}

fn granted(invitation_granted: Vec<GrantedAccess>) -> Vec<pb::GrantedAccess> {
    invitation_granted
        .into_iter()
        .map(pb::GrantedAccess::from)
        .collect()
}

impl From<Invitation> for pb::Invitation {
    fn from(invitation: Invitation) -> Self {
        pb::Invitation {
            id: invitation.id.to_string(),
            trust_id: invitation.trust_id.to_string(),
            staff_id: invitation.staff_id.to_string(),
            inviter_account_id: invitation.inviter_account_id.to_string(),
            trust_access: Some(invitation.trust_access.into()),
            school_access: invitation.school_access.map(pb::SchoolAccess::from),
            status: pb::InvitationStatus::from(invitation.status) as i32,
            delivery: pb::DeliveryKind::from(invitation.delivery) as i32,
            granted: granted(invitation.granted),
            skipped: invitation
                .skipped
                .into_iter()
                .map(pb::SkippedAccess::from)
                .collect(),
            expire_time: invitation.expire_time.map(to_timestamp),
            create_time: Some(to_timestamp(invitation.create_time)),
            update_time: Some(to_timestamp(invitation.update_time)),
            settled_by_invitation_id: invitation
                .settled_by
                .map(|id| id.to_string())
                .unwrap_or_default(),
            revoke_reason: invitation
                .revoke_reason
                .map(|r| r.to_string())
                .unwrap_or_default(),
        }
    }
}

/// What a link grants, for the invitee who holds it.
impl From<Invitation> for pb::LinkDetails {
    fn from(invitation: Invitation) -> Self {
        pb::LinkDetails {
            invitation_id: invitation.id.to_string(),
            trust_id: invitation.trust_id.to_string(),
            trust_name: invitation.trust_name,
            given_name: invitation.staff_given_name,
            access: granted(invitation.granted),
            expire_time: invitation.expire_time.map(to_timestamp),
            status: pb::InvitationStatus::from(invitation.status) as i32,
        }
    }
}

impl From<Created> for pb::CreateInvitationResponse {
    fn from(created: Created) -> Self {
        let invitation = match created {
            Created::Stored(invitation) => invitation.into(),
            // Nothing was stored: no id a caller could use.
            Created::Validated(invitation) => pb::Invitation {
                id: String::new(),
                ..invitation.into()
            },
        };
        pb::CreateInvitationResponse {
            invitation: Some(invitation),
        }
    }
}

impl From<Page> for pb::ListInvitationsResponse {
    fn from(page: Page) -> Self {
        pb::ListInvitationsResponse {
            invitations: page.invitations.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
        }
    }
}

impl From<Accepted> for pb::AcceptInvitationResponse {
    fn from(accepted: Accepted) -> Self {
        pb::AcceptInvitationResponse {
            account_id: accepted.account_id.to_string(),
            invitation: Some(accepted.invitation.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violated_fields(error: ApiError) -> Vec<String> {
        let ApiError::InvalidArgument(violations) = error else {
            panic!("expected INVALID_ARGUMENT");
        };
        violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn every_bad_field_of_a_create_is_named() {
        let error = CreateInput::try_from(pb::CreateInvitationRequest {
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
        assert_eq!(
            violated_fields(error),
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
        let error = CreateInput::try_from(pb::CreateInvitationRequest {
            trust_id: portal_runtime::demo::TRUST_ID.into(),
            staff_id: portal_runtime::demo::STAFF[0].0.into(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(violated_fields(error)[0], "trust_access");
    }

    #[test]
    fn a_list_too_long_is_refused_without_reading_its_elements() {
        let error = CreateInput::try_from(pb::CreateInvitationRequest {
            trust_id: portal_runtime::demo::TRUST_ID.into(),
            staff_id: portal_runtime::demo::STAFF[0].0.into(),
            trust_access: Some(pb::TrustAccess {
                product_key: "portal".into(),
                role_key: "full-edit".into(),
            }),
            school_access: Some(pb::SchoolAccess {
                product_keys: vec!["not a key".into(); MAX_PRODUCTS_PER_REQUEST + 1],
                role_key: "writer".into(),
                school_ids: vec![portal_runtime::demo::SCHOOLS[0].0.into()],
            }),
            request_id: "has spaces in it".into(),
            validate_only: false,
        })
        .unwrap_err();
        assert_eq!(
            violated_fields(error),
            vec!["school_access.product_keys", "request_id"]
        );
    }

    #[test]
    fn a_dry_run_answers_without_an_id_and_a_stored_invitation_with_its_own() {
        let invitation = Invitation {
            granted: vec![GrantedAccess {
                org: crate::domain::Org::School(SchoolId::generate()),
                product_key: ProductKey::from_known("sonar"),
                role_key: RoleKey::from_known("viewer"),
                state: GrantState::Pending,
                previous_role_key: None,
            }],
            ..Invitation::example(chrono::Utc::now())
        };
        let id = invitation.id.to_string();
        let stored = pb::CreateInvitationResponse::from(Created::Stored(invitation.clone()));
        assert_eq!(stored.invitation.unwrap().id, id);
        let validated = pb::CreateInvitationResponse::from(Created::Validated(invitation))
            .invitation
            .unwrap();
        assert!(validated.id.is_empty());
        assert_eq!(validated.status, pb::InvitationStatus::Pending as i32);
        assert_eq!(
            validated.granted[0].organization_kind,
            pb::OrganizationKind::School as i32
        );
        assert_eq!(Status::try_from(pb::InvitationStatus::Unspecified), Err(()));
    }
}
