//! The identity and subscription services as the invitation service uses them: typed calls,
//! their failures mapped to this service's errors, and short-lived caches of slow-changing
//! reads (catalogue, a trust's schools and name) so a create costs a constant, small number of
//! round trips whatever the number of schools.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tonic::{Code, Status};

use portal_proto::identity::v1 as id;
use portal_proto::subscription::v1 as sub;
use portal_runtime::client::{AuthedChannel, ClientSettings, authed_channel};
use portal_runtime::clock::to_timestamp;
use portal_runtime::error::status_reason;

use crate::error::{InvitationError, Result};

type GrantClient = id::grant_service_client::GrantServiceClient<AuthedChannel>;
type AccountClient = id::account_service_client::AccountServiceClient<AuthedChannel>;
type StaffClient = id::staff_service_client::StaffServiceClient<AuthedChannel>;
type DirectoryClient = id::directory_service_client::DirectoryServiceClient<AuthedChannel>;
type CatalogClient = sub::catalog_service_client::CatalogServiceClient<AuthedChannel>;
type EligibilityClient = sub::eligibility_service_client::EligibilityServiceClient<AuthedChannel>;

/// How long catalogue, schools and names are reused.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// How long a positive administrator answer is reused.
const ADMIN_TTL: Duration = Duration::from_secs(5);

/// The administrator decision of identity, as this service acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminDecision {
    Administrator,
    NotAdministrator,
    SchoolLevelOnly,
    OtherTrust,
}

impl AdminDecision {
    /// Ok for an administrator, else the PERMISSION_DENIED refusal naming why.
    pub fn require(self) -> Result<()> {
        match self {
            AdminDecision::Administrator => Ok(()),
            AdminDecision::NotAdministrator => Err(InvitationError::NotTrustAdministrator),
            AdminDecision::SchoolLevelOnly => Err(InvitationError::SchoolLevelAdministrator),
            AdminDecision::OtherTrust => Err(InvitationError::OtherTrustAdministrator),
        }
    }
}

/// A staff record of the trust's MIS.
#[derive(Debug, Clone)]
pub struct StaffRecord {
    pub id: String,
    pub email: String,
    pub given_name: String,
    pub active: bool,
    /// The account registered with the staff member's email, if the person has signed up.
    pub account_id: Option<String>,
}

/// A catalogue product.
#[derive(Debug, Clone)]
pub struct Product {
    pub key: String,
    pub name: String,
    pub trust_scoped: bool,
    pub school_scoped: bool,
    pub roles: Vec<String>,
}

pub type Catalogue = Arc<HashMap<String, Product>>;

struct Cached<T> {
    at: Instant,
    value: T,
}

#[derive(Default)]
struct Caches {
    catalogue: Option<Cached<Catalogue>>,
    schools: HashMap<String, Cached<Arc<Vec<String>>>>,
    trust_names: HashMap<String, Cached<String>>,
    account_names: HashMap<String, Cached<String>>,
    admins: HashMap<(String, String), Instant>,
}

fn fresh<T: Clone>(entry: Option<&Cached<T>>, ttl: Duration) -> Option<T> {
    entry
        .filter(|c| c.at.elapsed() < ttl)
        .map(|c| c.value.clone())
}

/// Clients of identity and subscription with this service's token.
#[derive(Clone)]
pub struct Deps {
    grants: GrantClient,
    accounts: AccountClient,
    staff: StaffClient,
    directory: DirectoryClient,
    catalog: CatalogClient,
    eligibility: EligibilityClient,
    /// Identity without this service's token, for calls made with the caller's own token.
    identity_raw: tonic::transport::Channel,
    caches: Arc<Mutex<Caches>>,
}

/// Maps a failed call to another service: unreachable, overloaded or too slow is UNAVAILABLE
/// (retry later); anything else is an internal error (logged, not sent).
pub fn remote(service: &'static str, status: Status) -> InvitationError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted => {
            InvitationError::Unavailable(format!(
                "the {service} service did not answer in time; retry later"
            ))
        }
        // A connection refused or reset surfaces as Unknown from the transport.
        Code::Unknown if status.message().contains("transport") => InvitationError::Unavailable(
            format!("the {service} service is unreachable; retry later"),
        ),
        _ => InvitationError::Internal(anyhow::anyhow!(
            "{service} answered {:?}: {}",
            status.code(),
            status.message()
        )),
    }
}

fn locked(caches: &Mutex<Caches>) -> std::sync::MutexGuard<'_, Caches> {
    caches.lock().unwrap_or_else(|e| e.into_inner())
}

impl Deps {
    pub fn new(
        identity: &ClientSettings,
        subscription: &ClientSettings,
        token: &str,
    ) -> anyhow::Result<Self> {
        let identity_channel = authed_channel(identity, token)?;
        let subscription_channel = authed_channel(subscription, token)?;
        Ok(Self {
            grants: GrantClient::new(identity_channel.clone()),
            accounts: AccountClient::new(identity_channel.clone()),
            staff: StaffClient::new(identity_channel.clone()),
            directory: DirectoryClient::new(identity_channel),
            catalog: CatalogClient::new(subscription_channel.clone()),
            // Room for a full-size answer (1,000 schools × 20 products) with every pair refused
            // by a subscription.
            eligibility: EligibilityClient::new(subscription_channel)
                .max_decoding_message_size(16 * 1024 * 1024),
            identity_raw: portal_runtime::client::channel(identity)?,
            caches: Arc::default(),
        })
    }

    /// R1: whether `account_id` administers `trust_id` at trust level.
    pub async fn check_administrator(
        &self,
        trust_id: &str,
        account_id: &str,
    ) -> Result<AdminDecision> {
        let key = (trust_id.to_string(), account_id.to_string());
        if locked(&self.caches)
            .admins
            .get(&key)
            .is_some_and(|at| at.elapsed() < ADMIN_TTL)
        {
            return Ok(AdminDecision::Administrator);
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
            Ok(reply) => match id::AdministratorDecision::try_from(reply.into_inner().decision) {
                Ok(id::AdministratorDecision::Administrator) => AdminDecision::Administrator,
                Ok(id::AdministratorDecision::SchoolLevelOnly) => AdminDecision::SchoolLevelOnly,
                Ok(id::AdministratorDecision::OtherTrust) => AdminDecision::OtherTrust,
                _ => AdminDecision::NotAdministrator,
            },
            // An unknown trust has no administrators; answer as for any non-administrator so
            // the refusal does not tell which trusts exist.
            Err(status) if status.code() == Code::NotFound => AdminDecision::NotAdministrator,
            Err(status) => return Err(remote("identity", status)),
        };
        if decision == AdminDecision::Administrator {
            locked(&self.caches).admins.insert(key, Instant::now());
        }
        Ok(decision)
    }

    /// R2: the staff record, or None when the trust's MIS does not list it; with it, whether
    /// the person has an account (R7/R8).
    pub async fn staff_member(
        &self,
        trust_id: &str,
        staff_id: &str,
    ) -> Result<Option<StaffRecord>> {
        let answer = self
            .staff
            .clone()
            .get_staff_member(id::GetStaffMemberRequest {
                trust_id: trust_id.to_string(),
                staff_id: staff_id.to_string(),
            })
            .await;
        match answer {
            Ok(reply) => {
                let reply = reply.into_inner();
                let account_id = Some(reply.account_id).filter(|id| !id.is_empty());
                Ok(reply.staff_member.map(|s| StaffRecord {
                    active: s.status == id::StaffStatus::Active as i32,
                    id: s.id,
                    email: s.email,
                    given_name: s.given_name,
                    account_id,
                }))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(remote("identity", status)),
        }
    }

    /// The catalogue, read in one call (cached).
    pub async fn catalogue(&self) -> Result<Catalogue> {
        if let Some(catalogue) = fresh(locked(&self.caches).catalogue.as_ref(), CACHE_TTL) {
            return Ok(catalogue);
        }
        let mut products = HashMap::new();
        let mut page_token = String::new();
        loop {
            let reply = self
                .catalog
                .clone()
                .list_products(sub::ListProductsRequest {
                    scope: sub::ProductScope::Unspecified as i32,
                    page_size: 500,
                    page_token: page_token.clone(),
                })
                .await
                .map_err(|s| remote("subscription", s))?
                .into_inner();
            for p in reply.products {
                products.insert(
                    p.key.clone(),
                    Product {
                        trust_scoped: p.scope == sub::ProductScope::Trust as i32,
                        school_scoped: p.scope == sub::ProductScope::School as i32,
                        roles: p.roles.into_iter().map(|r| r.key).collect(),
                        key: p.key,
                        name: p.name,
                    },
                );
            }
            if reply.next_page_token.is_empty() {
                break;
            }
            page_token = reply.next_page_token;
        }
        let catalogue = Arc::new(products);
        locked(&self.caches).catalogue = Some(Cached {
            at: Instant::now(),
            value: catalogue.clone(),
        });
        Ok(catalogue)
    }

    /// The ids of the trust's schools (cached).
    pub async fn schools(&self, trust_id: &str) -> Result<Arc<Vec<String>>> {
        if let Some(schools) = fresh(locked(&self.caches).schools.get(trust_id), CACHE_TTL) {
            return Ok(schools);
        }
        let mut ids = Vec::new();
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
            ids.extend(reply.schools.into_iter().map(|s| s.id));
            if reply.next_page_token.is_empty() {
                break;
            }
            page_token = reply.next_page_token;
        }
        let ids = Arc::new(ids);
        locked(&self.caches).schools.insert(
            trust_id.to_string(),
            Cached {
                at: Instant::now(),
                value: ids.clone(),
            },
        );
        Ok(ids)
    }

    /// The trust's display name (cached).
    pub async fn trust_name(&self, trust_id: &str) -> Result<String> {
        if let Some(name) = fresh(locked(&self.caches).trust_names.get(trust_id), CACHE_TTL) {
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
        locked(&self.caches).trust_names.insert(
            trust_id.to_string(),
            Cached {
                at: Instant::now(),
                value: name.clone(),
            },
        );
        Ok(name)
    }

    /// The display name of the signed-in caller, asked with their own token (cached). Only
    /// used in the email, so a failure leaves it empty rather than failing the create.
    pub async fn caller_name(&self, account_id: &str, bearer: Option<&str>) -> String {
        if let Some(name) = fresh(
            locked(&self.caches).account_names.get(account_id),
            CACHE_TTL,
        ) {
            return name;
        }
        let Some(bearer) = bearer else {
            return String::new();
        };
        let mut request = tonic::Request::new(id::GetCurrentAccountRequest {});
        match format!("Bearer {bearer}").parse() {
            Ok(value) => {
                request.metadata_mut().insert("authorization", value);
            }
            Err(_) => return String::new(),
        }
        let name =
            match id::account_service_client::AccountServiceClient::new(self.identity_raw.clone())
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
        locked(&self.caches).account_names.insert(
            account_id.to_string(),
            Cached {
                at: Instant::now(),
                value: name.clone(),
            },
        );
        name
    }

    /// R5: one eligibility call for the trust product and every (school, product) pair, in
    /// the COMPACT view (a reason per pair; for refusals, the instant they took effect).
    pub async fn eligibility(
        &self,
        trust_id: &str,
        trust_product: &str,
        school_products: &[String],
        school_ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<Eligibility> {
        let answer = self
            .eligibility
            .clone()
            .check_eligibility(sub::CheckEligibilityRequest {
                trust_id: trust_id.to_string(),
                trust_product_key: trust_product.to_string(),
                school_product_keys: school_products.to_vec(),
                school_ids: school_ids.to_vec(),
                at: Some(to_timestamp(at)),
                view: sub::EligibilityView::Compact as i32,
            })
            .await
            .map_err(|s| remote("subscription", s))?
            .into_inner();
        Eligibility::from_compact(answer, school_ids)
    }

    /// R7/R8: the account of an email, if one exists.
    pub async fn lookup_account(&self, email: &str) -> Result<Option<String>> {
        let reply = self
            .accounts
            .clone()
            .lookup_account(id::LookupAccountRequest {
                email: email.to_string(),
            })
            .await
            .map_err(|s| remote("identity", s))?
            .into_inner();
        Ok(reply.found.then(|| reply.account.map(|a| a.id)).flatten())
    }

    pub async fn batch_grant(
        &self,
        request: id::BatchGrantRequest,
    ) -> Result<id::BatchGrantResponse> {
        self.grants
            .clone()
            .batch_grant(request)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| remote("identity", s))
    }

    pub async fn activate_grants(&self, invitation_id: &str, account_id: &str) -> Result<()> {
        self.grants
            .clone()
            .activate_grants(id::ActivateGrantsRequest {
                invitation_id: invitation_id.to_string(),
                account_id: account_id.to_string(),
            })
            .await
            .map(|_| ())
            .map_err(|s| remote("identity", s))
    }

    pub async fn revoke_grants(&self, invitation_id: &str, pending_only: bool) -> Result<i32> {
        self.grants
            .clone()
            .revoke_grants(id::RevokeGrantsRequest {
                invitation_id: invitation_id.to_string(),
                pending_only,
            })
            .await
            .map(|r| r.into_inner().revoked_count)
            .map_err(|s| remote("identity", s))
    }

    /// Registers the invitee's account. `Ok(None)` when an account already has the email.
    pub async fn register_account(
        &self,
        request: id::RegisterAccountRequest,
    ) -> Result<Option<String>> {
        match self.accounts.clone().register_account(request).await {
            Ok(reply) => Ok(reply.into_inner().account.map(|a| a.id)),
            Err(status)
                if status.code() == Code::AlreadyExists
                    && status_reason(&status).as_deref() == Some("ACCOUNT_EXISTS") =>
            {
                Ok(None)
            }
            Err(status) if status.code() == Code::InvalidArgument => {
                // The password policy is identity's: pass its field violations on.
                let violations = portal_runtime::error::status_violations(&status)
                    .into_iter()
                    .map(|(field, description)| portal_runtime::error::Violation {
                        field,
                        description,
                    })
                    .collect();
                Err(InvitationError::Invalid(violations))
            }
            Err(status) => Err(remote("identity", status)),
        }
    }
}

/// R5's answers as the create flow uses them.
#[derive(Debug, Clone, Default)]
pub struct Eligibility {
    /// The trust itself holds a subscription in force to the trust product.
    pub trust_subscribed: bool,
    /// One per (school, product) pair: schools, then products, in request order.
    pub pairs: Vec<PairAnswer>,
}

/// The answer for one (school, product) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PairAnswer {
    pub school_id: String,
    pub product_key: String,
    /// UNSPECIFIED when the school is eligible.
    pub reason: sub::IneligibilityReason,
    /// When the reason took effect, for a refusal that comes from a subscription.
    pub since: Option<DateTime<Utc>>,
}

impl PairAnswer {
    pub fn eligible(&self) -> bool {
        self.reason == sub::IneligibilityReason::Unspecified
    }
}

impl Eligibility {
    /// Reads a COMPACT answer: pairs are numbered school-major over the distinct schools
    /// asked about (in the order first given) and the answer's product keys; those not
    /// refused are eligible.
    fn from_compact(answer: sub::CheckEligibilityResponse, school_ids: &[String]) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        let schools: Vec<&String> = school_ids.iter().filter(|s| seen.insert(*s)).collect();
        let keys = &answer.school_product_keys;
        let mut pairs: Vec<PairAnswer> = schools
            .iter()
            .flat_map(|school| {
                keys.iter().map(|key| PairAnswer {
                    school_id: (*school).clone(),
                    product_key: key.clone(),
                    reason: sub::IneligibilityReason::Unspecified,
                    since: None,
                })
            })
            .collect();
        let refused = answer.refused.unwrap_or_default();
        let malformed = |what: &str| -> InvitationError {
            anyhow::anyhow!(
                "subscription answered {what} for {} schools x {} products",
                schools.len(),
                keys.len()
            )
            .into()
        };
        if refused.reasons.len() != refused.pairs.len()
            || refused.effective_unix_micros.len() != refused.pairs.len()
        {
            return Err(malformed("refusal lists of different lengths"));
        }
        for ((pair, reason), micros) in refused
            .pairs
            .iter()
            .zip(&refused.reasons)
            .zip(&refused.effective_unix_micros)
        {
            let answer = usize::try_from(*pair)
                .ok()
                .and_then(|pair| pairs.get_mut(pair))
                .ok_or_else(|| malformed(&format!("pair number {pair}")))?;
            // An unknown reason from a newer server still refuses the pair.
            answer.reason = match sub::IneligibilityReason::try_from(*reason) {
                Ok(sub::IneligibilityReason::Unspecified) | Err(_) => {
                    sub::IneligibilityReason::NoSubscription
                }
                Ok(reason) => reason,
            };
            answer.since = (*micros != 0)
                .then(|| DateTime::<Utc>::from_timestamp_micros(*micros))
                .flatten();
        }
        Ok(Self {
            trust_subscribed: answer.trust_product.is_some_and(|t| t.eligible),
            pairs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sub::IneligibilityReason as R;

    fn at(day: u32) -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 9, day, 0, 0, 0).unwrap()
    }

    fn refused(refusals: &[(u32, R, Option<DateTime<Utc>>)]) -> Option<sub::Refused> {
        Some(sub::Refused {
            pairs: refusals.iter().map(|r| r.0).collect(),
            reasons: refusals.iter().map(|r| r.1 as i32).collect(),
            effective_unix_micros: refusals
                .iter()
                .map(|r| r.2.map_or(0, |t| t.timestamp_micros()))
                .collect(),
        })
    }

    #[test]
    fn a_compact_answer_becomes_one_pair_per_school_and_product_with_refusal_dates() {
        let answer = sub::CheckEligibilityResponse {
            trust_product: Some(sub::TrustProductEligibility {
                product_key: "portal".into(),
                eligible: true,
                ..Default::default()
            }),
            school_product_keys: vec!["sonar".into(), "mis".into()],
            refused: refused(&[
                (1, R::Ended, Some(at(1))),
                (2, R::NoSubscription, None),
                (3, R::NotStarted, Some(at(20))),
            ]),
            ..Default::default()
        };
        // The second "a" is a duplicate the subscription service ignored.
        let schools = ["a".to_string(), "b".to_string(), "a".to_string()];
        let eligibility = Eligibility::from_compact(answer, &schools).unwrap();
        assert!(eligibility.trust_subscribed);
        let pair = |school: &str, product: &str, reason, since| PairAnswer {
            school_id: school.into(),
            product_key: product.into(),
            reason,
            since,
        };
        assert_eq!(
            eligibility.pairs,
            vec![
                pair("a", "sonar", R::Unspecified, None),
                pair("a", "mis", R::Ended, Some(at(1))),
                pair("b", "sonar", R::NoSubscription, None),
                pair("b", "mis", R::NotStarted, Some(at(20))),
            ]
        );
        assert!(eligibility.pairs[0].eligible());
        assert!(!eligibility.pairs[1].eligible());
    }

    #[test]
    fn a_compact_answer_without_refusals_makes_every_pair_eligible() {
        let answer = sub::CheckEligibilityResponse {
            school_product_keys: vec!["sonar".into()],
            ..Default::default()
        };
        let eligibility =
            Eligibility::from_compact(answer, &["a".to_string(), "b".to_string()]).unwrap();
        assert_eq!(eligibility.pairs.len(), 2);
        assert!(eligibility.pairs.iter().all(PairAnswer::eligible));
        assert!(!eligibility.trust_subscribed);
    }

    #[test]
    fn a_compact_answer_naming_a_pair_out_of_range_is_an_error_not_a_misread() {
        let answer = sub::CheckEligibilityResponse {
            school_product_keys: vec!["sonar".into(), "mis".into()],
            refused: refused(&[(4, R::Ended, None)]),
            ..Default::default()
        };
        assert!(Eligibility::from_compact(answer, &["a".to_string(), "b".to_string()]).is_err());
    }

    #[test]
    fn a_compact_answer_with_lists_of_different_lengths_is_an_error_not_a_misread() {
        let mut lists = refused(&[(0, R::Ended, None), (1, R::Cancelled, None)]).unwrap();
        lists.effective_unix_micros.pop();
        let answer = sub::CheckEligibilityResponse {
            school_product_keys: vec!["sonar".into(), "mis".into()],
            refused: Some(lists),
            ..Default::default()
        };
        assert!(Eligibility::from_compact(answer, &["a".to_string()]).is_err());
    }
}
