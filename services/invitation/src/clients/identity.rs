//! The identity service as the invitation service uses it: whether the caller administers the
//! trust (R1), the invitee's staff record (R2), the trust's schools and name, and the grants
//! and account an invitation makes (R6–R11). Slow-changing reads are kept a short while, so a
//! create costs a constant, small number of calls whatever the number of schools.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tonic::Code;

use portal_proto::identity::v1 as id;
use portal_runtime::auth::admin::AdminDecision;
use portal_runtime::client::{AuthedChannel, ClientSettings, authed_channel};
use portal_runtime::clock::{from_micros, from_timestamp, to_micros, to_timestamp};
use portal_runtime::error::{ApiError, Violation, status_reason, status_violations};
use portal_runtime::vocab::{
    AccountId, Email, IdSet, InvitationId, RoleKey, SchoolId, StaffId, TrustId,
};

use super::{CACHE_TTL, Recent, locked, remote};
use crate::domain::{
    Delivery, GrantState, GrantedAccess, Invitation, NewAccountDetails, StaffMember,
};
use crate::error::{Error, Result};

type GrantClient = id::grant_service_client::GrantServiceClient<AuthedChannel>;
type AccountClient = id::account_service_client::AccountServiceClient<AuthedChannel>;
type StaffClient = id::staff_service_client::StaffServiceClient<AuthedChannel>;
type DirectoryClient = id::directory_service_client::DirectoryServiceClient<AuthedChannel>;

/// How long a positive administrator answer is reused.
const ADMIN_TTL: Duration = Duration::from_secs(5);

/// Most trusts whose schools and names are kept, and most accounts whose names and
/// administrator answers are kept.
const CACHED_TRUSTS: usize = 1_000;
const CACHED_ACCOUNTS: usize = 10_000;

struct Caches {
    schools: Recent<TrustId, Arc<IdSet>>,
    trust_names: Recent<TrustId, String>,
    account_names: Recent<AccountId, String>,
    /// The (trust, account) pairs recently found to be an administrator.
    admins: Recent<(TrustId, AccountId), ()>,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            schools: Recent::new(CACHE_TTL, CACHED_TRUSTS),
            trust_names: Recent::new(CACHE_TTL, CACHED_TRUSTS),
            account_names: Recent::new(CACHE_TTL, CACHED_ACCOUNTS),
            admins: Recent::new(ADMIN_TTL, CACHED_ACCOUNTS),
        }
    }
}

/// The identity service, called with this service's token.
#[derive(Clone)]
pub struct Identity {
    grants: GrantClient,
    accounts: AccountClient,
    staff: StaffClient,
    directory: DirectoryClient,
    /// Identity without this service's token, for calls made with the caller's own token.
    unauthenticated: AuthedChannel,
    caches: Arc<Mutex<Caches>>,
}

/// What identity returned does not read: its fault, not the caller's.
fn malformed(what: &str) -> Error {
    Error::Internal(anyhow::anyhow!(
        "identity returned {what} that does not parse"
    ))
}

impl Identity {
    pub fn new(settings: &ClientSettings, token: &SecretString) -> anyhow::Result<Self> {
        let channel = authed_channel(settings, token.expose_secret())?;
        Ok(Self {
            grants: GrantClient::new(channel.clone()),
            accounts: AccountClient::new(channel.clone()),
            staff: StaffClient::new(channel.clone()),
            directory: DirectoryClient::new(channel),
            unauthenticated: portal_runtime::client::anonymous_channel(settings)?,
            caches: Arc::default(),
        })
    }

    /// R1: Ok when `account_id` administers `trust_id` at trust level; otherwise the refusal
    /// that says why.
    pub async fn require_administrator(
        &self,
        trust_id: TrustId,
        account_id: AccountId,
    ) -> Result<()> {
        let key = (trust_id, account_id);
        if locked(&self.caches).admins.get(&key).is_some() {
            return Ok(());
        }
        let answer = self
            .grants
            .clone()
            .check_administrator(id::CheckAdministratorRequest {
                trust_id: trust_id.to_string(),
                account_id: account_id.to_string(),
            })
            .await;
        let decision = match answer {
            Ok(reply) => AdminDecision::from(reply.into_inner().decision()),
            // An unknown trust has no administrators; answer as for any non-administrator so
            // the refusal does not tell which trusts exist.
            Err(status) if status.code() == Code::NotFound => AdminDecision::NotAdministrator,
            Err(status) => return Err(remote("identity", status)),
        };
        match decision {
            AdminDecision::Administrator => {
                locked(&self.caches).admins.insert(key, ());
                Ok(())
            }
            AdminDecision::SchoolLevelOnly => Err(Error::SchoolLevelAdministrator),
            AdminDecision::OtherTrust => Err(Error::OtherTrustAdministrator),
            AdminDecision::NotAdministrator => Err(Error::NotTrustAdministrator),
        }
    }

    /// R2: the staff record, or None when the trust's MIS does not list it; with it, the
    /// person's account if they have one (R7/R8).
    pub async fn staff_member(
        &self,
        trust_id: TrustId,
        staff_id: StaffId,
    ) -> Result<Option<StaffMember>> {
        let answer = self
            .staff
            .clone()
            .get_staff_member(id::GetStaffMemberRequest {
                trust_id: trust_id.to_string(),
                staff_id: staff_id.to_string(),
            })
            .await;
        let reply = match answer {
            Ok(reply) => reply.into_inner(),
            Err(status) if status.code() == Code::NotFound => return Ok(None),
            Err(status) => return Err(remote("identity", status)),
        };
        let account_id =
            AccountId::parse_optional(&reply.account_id).map_err(|_| malformed("an account id"))?;
        let Some(staff) = reply.staff_member else {
            return Ok(None);
        };
        Ok(Some(StaffMember {
            active: staff.status == id::StaffStatus::Active as i32,
            email: Email::parse(&staff.email).map_err(|_| malformed("a staff email"))?,
            given_name: staff.given_name,
            account_id,
        }))
    }

    /// Staff records whose status changed at or after `since` (micros; None: ever), oldest
    /// first, up to about `max` of them: (trust, staff member, whether they left, when in
    /// micros).
    pub async fn staff_status_changes(
        &self,
        since: Option<i64>,
        max: usize,
    ) -> Result<Vec<(TrustId, StaffId, bool, i64)>> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let reply = self
                .staff
                .clone()
                .list_staff_status_changes(id::ListStaffStatusChangesRequest {
                    since: since.map(|s| to_timestamp(from_micros(s))),
                    page_size: 500,
                    page_token: page_token.clone(),
                })
                .await
                .map_err(|s| remote("identity", s))?
                .into_inner();
            for change in reply.changes {
                let trust =
                    TrustId::parse(&change.trust_id).map_err(|_| malformed("a trust id"))?;
                let staff =
                    StaffId::parse(&change.staff_id).map_err(|_| malformed("a staff id"))?;
                let at = change
                    .change_time
                    .as_ref()
                    .and_then(from_timestamp)
                    .map(to_micros)
                    .ok_or_else(|| malformed("a change time"))?;
                out.push((
                    trust,
                    staff,
                    change.status == id::StaffStatus::Left as i32,
                    at,
                ));
            }
            if reply.next_page_token.is_empty() || out.len() >= max {
                return Ok(out);
            }
            page_token = reply.next_page_token;
        }
    }

    /// The ids of the trust's schools (kept a while).
    pub async fn schools(&self, trust_id: TrustId) -> Result<Arc<IdSet>> {
        if let Some(schools) = locked(&self.caches).schools.get(&trust_id) {
            return Ok(schools);
        }
        let mut ids = IdSet::default();
        let mut page_token = String::new();
        loop {
            let answer = self
                .directory
                .clone()
                .list_schools(id::ListSchoolsRequest {
                    trust_id: trust_id.to_string(),
                    page_size: 500,
                    page_token: page_token.clone(),
                })
                .await;
            let reply = match answer {
                Ok(reply) => reply.into_inner(),
                Err(status) if status.code() == Code::NotFound => break,
                Err(status) => return Err(remote("identity", status)),
            };
            for school in reply.schools {
                let id = SchoolId::parse(&school.id).map_err(|_| malformed("a school id"))?;
                ids.insert(id.as_u128());
            }
            if reply.next_page_token.is_empty() {
                break;
            }
            page_token = reply.next_page_token;
        }
        let ids = Arc::new(ids);
        locked(&self.caches).schools.insert(trust_id, ids.clone());
        Ok(ids)
    }

    /// The trust's display name (kept a while); empty for a trust identity does not know.
    pub async fn trust_name(&self, trust_id: TrustId) -> Result<String> {
        if let Some(name) = locked(&self.caches).trust_names.get(&trust_id) {
            return Ok(name);
        }
        let name = match self
            .directory
            .clone()
            .get_trust(id::GetTrustRequest {
                trust_id: trust_id.to_string(),
            })
            .await
        {
            Ok(reply) => reply.into_inner().trust.map(|t| t.name).unwrap_or_default(),
            Err(status) if status.code() == Code::NotFound => String::new(),
            Err(status) => return Err(remote("identity", status)),
        };
        locked(&self.caches)
            .trust_names
            .insert(trust_id, name.clone());
        Ok(name)
    }

    /// The display name of the signed-in caller, asked with their own token (kept a while).
    /// Only used in an email, so a failure leaves it empty rather than failing the call.
    pub async fn caller_name(
        &self,
        account_id: AccountId,
        bearer: Option<&SecretString>,
    ) -> String {
        if let Some(name) = locked(&self.caches).account_names.get(&account_id) {
            return name;
        }
        let Some(bearer) = bearer else {
            return String::new();
        };
        let mut request = tonic::Request::new(id::GetCurrentAccountRequest {});
        match format!("Bearer {}", bearer.expose_secret()).parse() {
            Ok(value) => {
                request.metadata_mut().insert("authorization", value);
            }
            Err(_) => return String::new(),
        }
        let name = match id::account_service_client::AccountServiceClient::new(
            self.unauthenticated.clone(),
        )
        .get_current_account(request)
        .await
        {
            Ok(reply) => reply
                .into_inner()
                .account
                .map(|a| {
                    format!("{} {}", a.given_name, a.family_name)
                        .trim()
                        .to_string()
                })
                .unwrap_or_default(),
            Err(_) => return String::new(),
        };
        locked(&self.caches)
            .account_names
            .insert(account_id, name.clone());
        name
    }

    /// The email of the signed-in caller's account, asked with their own token; None when
    /// identity does not accept the token or knows no such account.
    pub async fn signed_in_email(
        &self,
        caller: AccountId,
        bearer: &SecretString,
    ) -> Result<Option<Email>> {
        let mut request = tonic::Request::new(id::GetCurrentAccountRequest {});
        let Ok(value) = format!("Bearer {}", bearer.expose_secret()).parse() else {
            return Ok(None);
        };
        request.metadata_mut().insert("authorization", value);
        let answer =
            id::account_service_client::AccountServiceClient::new(self.unauthenticated.clone())
                .get_current_account(request)
                .await;
        let account = match answer {
            Ok(reply) => reply.into_inner().account,
            Err(status)
                if matches!(
                    status.code(),
                    Code::NotFound | Code::Unauthenticated | Code::PermissionDenied
                ) =>
            {
                return Ok(None);
            }
            Err(status) => return Err(remote("identity", status)),
        };
        match account {
            Some(account) if account_id(&account.id)? == caller => Ok(Some(
                Email::parse(&account.email).map_err(|_| malformed("an account email"))?,
            )),
            _ => Ok(None),
        }
    }

    /// R7/R8: the account of an email, if one exists.
    pub async fn lookup_account(&self, email: &Email) -> Result<Option<AccountId>> {
        let reply = self
            .accounts
            .clone()
            .lookup_account(id::LookupAccountRequest {
                email: email.as_str().to_string(),
            })
            .await
            .map_err(|s| remote("identity", s))?
            .into_inner();
        match reply.account.filter(|_| reply.found) {
            Some(account) => Ok(Some(account_id(&account.id)?)),
            None => Ok(None),
        }
    }

    /// BatchGrant of the invitation's grants (idempotent per invitation id in identity),
    /// active at once for a person who has an account (R8). Returns the grants as identity
    /// made them.
    pub async fn batch_grant(&self, invitation: &Invitation) -> Result<Vec<GrantedAccess>> {
        let activate = invitation.delivery == Delivery::NewProductNotice;
        let request = id::BatchGrantRequest {
            invitation_id: invitation.id.to_string(),
            trust_id: invitation.trust_id.to_string(),
            email: invitation.staff_email.as_str().to_string(),
            staff_id: invitation.staff_id.to_string(),
            grants: invitation.granted.iter().map(id::GrantSpec::from).collect(),
            activate,
        };
        let reply = self
            .grants
            .clone()
            .batch_grant(request)
            .await
            .map_err(|s| remote("identity", s))?
            .into_inner();
        Ok(made(&invitation.granted, &reply.results, activate))
    }

    /// R11: the invitation's pending grants become the account's. Returns the grants that
    /// are not in force (replaced by another role meanwhile), as (organisation id, product,
    /// role).
    pub async fn activate_grants(
        &self,
        invitation_id: InvitationId,
        account_id: AccountId,
    ) -> Result<Vec<(String, String, String)>> {
        let reply = self
            .grants
            .clone()
            .activate_grants(id::ActivateGrantsRequest {
                invitation_id: invitation_id.to_string(),
                account_id: account_id.to_string(),
            })
            .await
            .map_err(|s| remote("identity", s))?
            .into_inner();
        Ok(reply
            .grants
            .into_iter()
            .filter(|g| g.status == id::GrantStatus::Revoked as i32)
            .map(|g| (g.organization_id, g.product_key, g.role_key))
            .collect())
    }

    /// R7/R10: withdraws the invitation's grants (only the pending ones when `pending_only`).
    pub async fn revoke_grants(
        &self,
        invitation_id: InvitationId,
        pending_only: bool,
    ) -> Result<()> {
        self.grants
            .clone()
            .revoke_grants(id::RevokeGrantsRequest {
                invitation_id: invitation_id.to_string(),
                pending_only,
            })
            .await
            .map(|_| ())
            .map_err(|s| remote("identity", s))
    }

    /// R11: registers the invitee's account with the staff email. `Ok(None)` when an account
    /// already has the email.
    pub async fn register_account(
        &self,
        email: &Email,
        details: &NewAccountDetails,
        invitation_id: InvitationId,
    ) -> Result<Option<AccountId>> {
        let request = id::RegisterAccountRequest {
            email: email.as_str().to_string(),
            given_name: details.given_name.clone(),
            family_name: details.family_name.clone(),
            password: details.password.expose().to_string(),
            invitation_id: invitation_id.to_string(),
        };
        match self.accounts.clone().register_account(request).await {
            Ok(reply) => match reply.into_inner().account {
                Some(account) => Ok(Some(account_id(&account.id)?)),
                None => Ok(None),
            },
            Err(status)
                if status.code() == Code::AlreadyExists
                    && status_reason(&status).as_deref() == Some("ACCOUNT_EXISTS") =>
            {
                Ok(None)
            }
            Err(status) if status.code() == Code::InvalidArgument => {
                // Identity has the last word on a new account: pass its field violations on.
                let violations = status_violations(&status)
                    .into_iter()
                    .map(|(field, description)| Violation { field, description })
                    .collect();
                Err(ApiError::InvalidArgument(violations).into())
            }
            Err(status) => Err(remote("identity", status)),
        }
    }
}

fn account_id(raw: &str) -> Result<AccountId> {
    AccountId::parse(raw).map_err(|_| malformed("an account id"))
}

impl From<&GrantedAccess> for id::GrantSpec {
    fn from(grant: &GrantedAccess) -> Self {
        id::GrantSpec {
            organization_kind: grant.org.kind().to_proto(),
            organization_id: grant.org.to_string(),
            product_key: grant.product_key.to_string(),
            role_key: grant.role_key.to_string(),
        }
    }
}

/// The grants' states after BatchGrant, result `i` answering grant `i`: what identity made,
/// and what the person already held.
fn made(
    granted: &[GrantedAccess],
    results: &[id::GrantResult],
    activate: bool,
) -> Vec<GrantedAccess> {
    granted
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let result = results.get(i);
            // Set when identity made the grant in place of another role (on a retried call
            // too, where the outcome is ALREADY_GRANTED).
            let previous_role_key = match result {
                Some(r) if r.outcome != id::GrantOutcome::AlreadyHeld as i32 => r
                    .grant
                    .as_ref()
                    .map(|g| g.previous_role_key.as_str())
                    .filter(|key| !key.is_empty())
                    .map(RoleKey::from_known),
                _ => None,
            };
            let state = match result {
                Some(r) if r.outcome == id::GrantOutcome::AlreadyHeld as i32 => {
                    GrantState::AlreadyHeld
                }
                Some(_) if previous_role_key.is_some() => GrantState::RoleChanged,
                Some(r)
                    if r.grant.as_ref().map(|g| g.status)
                        == Some(id::GrantStatus::Active as i32) =>
                {
                    GrantState::Active
                }
                Some(_) => GrantState::Pending,
                None if activate => GrantState::Active,
                None => GrantState::Pending,
            };
            GrantedAccess {
                state,
                previous_role_key,
                ..g.clone()
            }
        })
        .collect()
}
