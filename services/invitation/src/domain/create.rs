//! Planning a create (R2–R8): from the request and what identity and subscription answered,
//! what the invitation grants, what it skips and why, and how it reaches the invitee. No I/O:
//! the answers are gathered first.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use portal_runtime::error::{ApiError, Violations};
use portal_runtime::vocab::{
    AccountId, Email, IdSet, InvitationId, OrgKind, RequestId, StaffId, TrustId,
};

use super::catalogue::{Catalogue, product_name, product_names};
use super::eligibility::Eligibility;
use super::invitation::{
    Delivery, GrantState, GrantedAccess, Invitation, Org, SchoolAccess, SkipReason, SkippedAccess,
    Status, TrustAccess,
};
use super::outbox::EmailDetails;

/// A parsed CreateInvitation request.
#[derive(Debug, Clone)]
pub struct CreateInput {
    pub trust_id: TrustId,
    pub staff_id: StaffId,
    pub trust_access: TrustAccess,
    pub school_access: Option<SchoolAccess>,
    pub request_id: Option<RequestId>,
    pub validate_only: bool,
}

impl CreateInput {
    /// Whether `earlier`, made by a create with this request's id, was made by this same
    /// request (AIP-155): the same trust, staff member and access, lists in any order.
    pub fn asked_for(&self, earlier: &Invitation) -> bool {
        fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
            let mut items = items.to_vec();
            items.sort();
            items
        }
        let same_school_access = match (&self.school_access, &earlier.school_access) {
            (None, None) => true,
            (Some(asked), Some(made)) => {
                asked.role_key == made.role_key
                    && sorted(&asked.product_keys) == sorted(&made.product_keys)
                    && sorted(&asked.school_ids) == sorted(&made.school_ids)
            }
            _ => false,
        };
        self.trust_id == earlier.trust_id
            && self.staff_id == earlier.staff_id
            && self.trust_access == earlier.trust_access
            && same_school_access
    }
}

/// A staff record of the trust's MIS, with the account of the person if they have signed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub email: Email,
    pub given_name: String,
    pub active: bool,
    pub account_id: Option<AccountId>,
}

/// What the other services (and, on a dry run, the store) answered, each as it arrived. A
/// read that failed is judged where the plan needs its answer, so that the refusals come in
/// the documented order whichever read failed.
#[derive(Debug)]
pub struct Answers<E> {
    pub staff: Result<Option<StaffMember>, E>,
    pub catalogue: Result<Arc<Catalogue>, E>,
    /// The trust's schools (empty when no school was asked for).
    pub schools: Result<Arc<IdSet>, E>,
    pub eligibility: Result<Eligibility, E>,
    /// The staff member's PENDING invitation to the trust product: asked on a dry run only,
    /// as a real create learns it in its transaction.
    pub pending: Result<Option<Invitation>, E>,
}

/// Why an invitation cannot be made as asked.
#[derive(Debug, thiserror::Error)]
pub enum CreateRefusal {
    /// R2.
    #[error("staff member not in the trust MIS")]
    StaffNotInTrustMis,
    /// R3/R4: products, roles or schools that do not fit the catalogue or the trust, each
    /// named (INVALID_ARGUMENT).
    #[error(transparent)]
    Invalid(ApiError),
    /// R5: the trust holds no subscription in force to the trust product.
    #[error("trust not subscribed to {product_name}")]
    TrustNotSubscribed { product_name: String },
    /// One PENDING invitation per staff member and trust product.
    #[error("a pending invitation exists: {invitation_id}")]
    PendingInvitationExists { invitation_id: InvitationId },
}

/// What a create would make.
#[derive(Debug, Clone)]
pub struct Plan {
    pub staff: StaffMember,
    pub delivery: Delivery,
    /// R6: the trust product, then every eligible (school, product) pair.
    pub granted: Vec<GrantedAccess>,
    /// R5: the pairs without a subscription in force, and why.
    pub skipped: Vec<SkippedAccess>,
    /// Each product granted once, by name, in the order first granted.
    pub product_names: Vec<String>,
}

/// Plans a create from `answers`, judged in the documented order: the staff record (R2), the
/// catalogue and the trust's schools (R3/R4), the trust's own subscription (R5), a pending
/// invitation of the same person and product; then the outcome (R5–R8).
pub fn plan<E: From<CreateRefusal>>(
    input: &CreateInput,
    answers: Answers<E>,
    now: DateTime<Utc>,
) -> Result<Plan, E> {
    let staff = match answers.staff? {
        Some(staff) if staff.active => staff,
        _ => return Err(CreateRefusal::StaffNotInTrustMis.into()),
    };
    let catalogue = answers.catalogue?;
    let schools = answers.schools?;
    check_catalogue(input, &catalogue, &schools).map_err(CreateRefusal::Invalid)?;
    let eligibility = answers.eligibility?;
    if !eligibility.trust_subscribed {
        let product_name = product_name(&catalogue, &input.trust_access.product_key);
        return Err(CreateRefusal::TrustNotSubscribed { product_name }.into());
    }
    if let Some(pending) = answers.pending?
        && pending.status_at(now) == Status::Pending
    {
        let invitation_id = pending.id;
        return Err(CreateRefusal::PendingInvitationExists { invitation_id }.into());
    }
    let delivery = Delivery::for_account(staff.account_id);
    let (granted, skipped) = outcome(input, &eligibility, delivery.first_grant_state());
    let product_names = product_names(&granted, &catalogue);
    Ok(Plan {
        staff,
        delivery,
        granted,
        skipped,
        product_names,
    })
}

/// R3/R4: products, roles and schools against the catalogue and the trust's schools; every
/// misfit is named.
fn check_catalogue(
    input: &CreateInput,
    catalogue: &Catalogue,
    schools: &IdSet,
) -> Result<(), ApiError> {
    let mut violations = Violations::new();
    let trust = &input.trust_access;
    match catalogue.get(&trust.product_key) {
        None => violations.add(
            "trust_access.product_key",
            format!("`{}` is not a product of the catalogue", trust.product_key),
        ),
        Some(product) if product.scope != Some(OrgKind::Trust) => violations.add(
            "trust_access.product_key",
            format!(
                "{} is a school product, not a trust product; offer it under school_access",
                product.name
            ),
        ),
        Some(product) if !product.has_role(&trust.role_key) => violations.add(
            "trust_access.role_key",
            format!(
                "`{}` is not a role of {} (its roles: {})",
                trust.role_key,
                product.name,
                product.role_list()
            ),
        ),
        Some(_) => {}
    }
    if let Some(school) = &input.school_access {
        let mut lacking_role = Vec::new();
        for (i, key) in school.product_keys.iter().enumerate() {
            let field = format!("school_access.product_keys[{i}]");
            match catalogue.get(key) {
                None => violations.add(field, format!("`{key}` is not a product of the catalogue")),
                Some(product) if product.scope != Some(OrgKind::School) => violations.add(
                    field,
                    format!(
                        "{} is a trust product, not a school product; offer it as the trust \
                         product of a separate invitation",
                        product.name
                    ),
                ),
                Some(product) if !product.has_role(&school.role_key) => {
                    lacking_role.push(product.name.as_str());
                }
                Some(_) => {}
            }
        }
        if !lacking_role.is_empty() {
            violations.add(
                "school_access.role_key",
                format!(
                    "`{}` is not a role of {}; every selected school product must define the \
                     school role (invite separately for different roles)",
                    school.role_key,
                    lacking_role.join(", ")
                ),
            );
        }
        for (i, school_id) in school.school_ids.iter().enumerate() {
            if !schools.contains(&school_id.as_u128()) {
                violations.add(
                    format!("school_access.school_ids[{i}]"),
                    "is not a school of this trust",
                );
            }
        }
    }
    violations.finish()
}

/// R5/R6: the trust product, then every eligible pair, all in `state`; the other pairs are
/// skipped with the reason and its date.
fn outcome(
    input: &CreateInput,
    eligibility: &Eligibility,
    state: GrantState,
) -> (Vec<GrantedAccess>, Vec<SkippedAccess>) {
    let mut granted = vec![GrantedAccess {
        org: Org::Trust(input.trust_id),
        product_key: input.trust_access.product_key.clone(),
        role_key: input.trust_access.role_key.clone(),
        state,
        previous_role_key: None,
    }];
    let mut skipped = Vec::new();
    if let Some(school) = &input.school_access {
        for pair in &eligibility.pairs {
            if pair.eligible() {
                granted.push(GrantedAccess {
                    org: Org::School(pair.school_id),
                    product_key: pair.product_key.clone(),
                    role_key: school.role_key.clone(),
                    state,
                    previous_role_key: None,
                });
            } else {
                skipped.push(SkippedAccess {
                    school_id: pair.school_id,
                    product_key: pair.product_key.clone(),
                    reason: SkipReason::NoActiveSubscription,
                    detail: pair.detail(),
                });
            }
        }
    }
    (granted, skipped)
}

/// What an invitation is made with besides its plan.
#[derive(Debug, Clone)]
pub struct Draft {
    pub id: InvitationId,
    pub inviter: AccountId,
    pub inviter_name: String,
    pub trust_name: String,
    pub now: DateTime<Utc>,
    /// How long a sign-up link lasts (R7).
    pub link_ttl: Duration,
}

impl Plan {
    /// The invitation the plan makes for `input`, and what its email says.
    pub fn into_invitation(self, input: &CreateInput, draft: Draft) -> (Invitation, EmailDetails) {
        let delivery = self.delivery;
        let invitation = Invitation {
            id: draft.id,
            trust_id: input.trust_id,
            trust_name: draft.trust_name.clone(),
            staff_id: input.staff_id,
            staff_email: self.staff.email,
            staff_given_name: self.staff.given_name,
            inviter_account_id: draft.inviter,
            trust_access: input.trust_access.clone(),
            school_access: input.school_access.clone(),
            status: delivery.first_status(),
            delivery,
            granted: self.granted,
            skipped: self.skipped,
            expire_time: (delivery == Delivery::SignUpLink).then(|| draft.now + draft.link_ttl),
            current_link_hash: None,
            accepting: false,
            account_id: None,
            create_time: draft.now,
            update_time: draft.now,
            accept_until: 0,
            settled_by: None,
            revoke_reason: None,
        };
        let email = EmailDetails {
            trust_name: draft.trust_name,
            inviter_name: draft.inviter_name,
            product_names: self.product_names,
        };
        (invitation, email)
    }
}

#[cfg(test)]
mod tests {
    use portal_runtime::vocab::{ProductKey, RoleKey, SchoolId};

    use super::*;
    use crate::domain::catalogue::Product;
    use crate::domain::eligibility::{Ineligibility, PairAnswer};

    fn key(text: &str) -> ProductKey {
        ProductKey::from_known(text)
    }

    fn role(text: &str) -> RoleKey {
        RoleKey::from_known(text)
    }

    fn product(key_text: &str, name: &str, scope: OrgKind, roles: &[&str]) -> Product {
        Product {
            key: key(key_text),
            name: name.into(),
            scope: Some(scope),
            roles: roles.iter().map(|r| role(r)).collect(),
        }
    }

    fn catalogue() -> Arc<Catalogue> {
        let products = [
            product("portal", "Portal", OrgKind::Trust, &["full-edit"]),
            product("websites-cms", "Websites CMS", OrgKind::School, &["writer"]),
            product(
                "comms-hub",
                "Comms Hub",
                OrgKind::School,
                &["writer", "viewer"],
            ),
            product("sonar", "Sonar", OrgKind::School, &["viewer"]),
        ];
        Arc::new(products.into_iter().map(|p| (p.key.clone(), p)).collect())
    }

    struct World {
        input: CreateInput,
        schools: [SchoolId; 2],
        staff: StaffMember,
    }

    fn world(school_products: &[&str], school_role: &str) -> World {
        let schools = [SchoolId::generate(), SchoolId::generate()];
        let staff = StaffMember {
            email: Email::parse("chloe.patel@northfield.example.org").unwrap(),
            given_name: "Chloe".into(),
            active: true,
            account_id: None,
        };
        let input = CreateInput {
            trust_id: TrustId::generate(),
            staff_id: StaffId::generate(),
            trust_access: TrustAccess {
                product_key: key("portal"),
                role_key: role("full-edit"),
            },
            school_access: Some(SchoolAccess {
                product_keys: school_products.iter().map(|k| key(k)).collect(),
                role_key: role(school_role),
                school_ids: schools.to_vec(),
            }),
            request_id: None,
            validate_only: false,
        };
        World {
            input,
            schools,
            staff,
        }
    }

    /// Every school eligible for every product but `refused`.
    fn eligibility(world: &World, refused: &[(usize, &str, Ineligibility)]) -> Eligibility {
        let school = world.input.school_access.as_ref().unwrap();
        let mut pairs = Vec::new();
        for (s, school_id) in world.schools.iter().enumerate() {
            for product_key in &school.product_keys {
                let refusal = refused
                    .iter()
                    .find(|(rs, rk, _)| *rs == s && product_key == rk)
                    .map(|r| r.2);
                pairs.push(PairAnswer {
                    school_id: *school_id,
                    product_key: product_key.clone(),
                    refusal,
                    since: None,
                });
            }
        }
        Eligibility {
            trust_subscribed: true,
            pairs,
        }
    }

    fn answers(world: &World, eligibility: Eligibility) -> Answers<CreateRefusal> {
        Answers {
            staff: Ok(Some(world.staff.clone())),
            catalogue: Ok(catalogue()),
            schools: Ok(Arc::new(
                world.schools.iter().map(|s| s.as_u128()).collect(),
            )),
            eligibility: Ok(eligibility),
            pending: Ok(None),
        }
    }

    fn fields(refusal: CreateRefusal) -> Vec<String> {
        match refusal {
            CreateRefusal::Invalid(ApiError::InvalidArgument(violations)) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("expected field violations, got {other:?}"),
        }
    }

    #[test]
    fn a_new_user_is_granted_the_eligible_pairs_pending_and_the_others_are_skipped() {
        let world = world(&["websites-cms", "comms-hub"], "writer");
        let refused = [(1, "comms-hub", Ineligibility::NoSubscription)];
        let plan = plan(
            &world.input,
            answers(&world, eligibility(&world, &refused)),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(plan.delivery, Delivery::SignUpLink);
        let orgs: Vec<(Org, &str)> = plan
            .granted
            .iter()
            .map(|g| (g.org, g.product_key.as_str()))
            .collect();
        assert_eq!(
            orgs,
            vec![
                (Org::Trust(world.input.trust_id), "portal"),
                (Org::School(world.schools[0]), "websites-cms"),
                (Org::School(world.schools[0]), "comms-hub"),
                (Org::School(world.schools[1]), "websites-cms"),
            ]
        );
        assert!(plan.granted.iter().all(|g| g.state == GrantState::Pending));
        assert_eq!(plan.granted[1].role_key, "writer");
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].school_id, world.schools[1]);
        assert_eq!(plan.skipped[0].reason, SkipReason::NoActiveSubscription);
        assert_eq!(
            plan.skipped[0].detail,
            "the school has no subscription to this product"
        );
        assert_eq!(
            plan.product_names,
            vec!["Portal", "Websites CMS", "Comms Hub"]
        );
    }

    #[test]
    fn an_existing_user_is_granted_active_access_with_a_notice() {
        let mut world = world(&["comms-hub"], "viewer");
        world.staff.account_id = Some(AccountId::generate());
        let eligibility = eligibility(&world, &[]);
        let plan = plan(&world.input, answers(&world, eligibility), Utc::now()).unwrap();
        assert_eq!(plan.delivery, Delivery::NewProductNotice);
        assert!(plan.granted.iter().all(|g| g.state == GrantState::Active));
        let now = Utc::now();
        let draft = Draft {
            id: InvitationId::generate(),
            inviter: AccountId::generate(),
            inviter_name: "Ada Admin".into(),
            trust_name: "Northfield".into(),
            now,
            link_ttl: Duration::days(14),
        };
        let (invitation, email) = plan.into_invitation(&world.input, draft);
        assert_eq!(invitation.status, Status::Granted);
        assert_eq!(invitation.expire_time, None);
        assert_eq!(email.trust_name, "Northfield");
        assert_eq!(email.product_names, vec!["Portal", "Comms Hub"]);
    }

    #[test]
    fn a_staff_member_missing_or_gone_from_the_mis_is_refused_first() {
        let world = world(&["sonar"], "viewer");
        let mut left = answers(&world, eligibility(&world, &[]));
        left.staff = Ok(Some(StaffMember {
            active: false,
            ..world.staff.clone()
        }));
        // Even with the catalogue unreadable, the missing staff record decides.
        left.catalogue = Err(CreateRefusal::TrustNotSubscribed {
            product_name: "unreadable".into(),
        });
        assert!(matches!(
            plan(&world.input, left, Utc::now()),
            Err(CreateRefusal::StaffNotInTrustMis)
        ));
    }

    #[test]
    fn every_product_role_and_school_that_does_not_fit_is_named() {
        let mut world = world(&["websites-cms", "portal", "nope", "sonar"], "writer");
        world.input.trust_access.role_key = role("viewer");
        if let Some(school) = world.input.school_access.as_mut() {
            school.school_ids.push(SchoolId::generate());
        }
        let eligibility = eligibility(&world, &[]);
        let refusal = plan(&world.input, answers(&world, eligibility), Utc::now()).unwrap_err();
        assert_eq!(
            fields(refusal),
            vec![
                "trust_access.role_key",
                "school_access.product_keys[1]",
                "school_access.product_keys[2]",
                "school_access.role_key",
                "school_access.school_ids[2]",
            ]
        );
    }

    #[test]
    fn a_trust_without_the_trust_product_or_with_a_pending_invitation_is_refused() {
        let world = world(&["sonar"], "viewer");
        let mut unsubscribed = eligibility(&world, &[]);
        unsubscribed.trust_subscribed = false;
        let refusal = plan(&world.input, answers(&world, unsubscribed), Utc::now()).unwrap_err();
        assert!(matches!(
            refusal,
            CreateRefusal::TrustNotSubscribed { product_name } if product_name == "Portal"
        ));

        let now = Utc::now();
        let (pending, _) = plan(&world.input, answers(&world, eligibility(&world, &[])), now)
            .unwrap()
            .into_invitation(
                &world.input,
                Draft {
                    id: InvitationId::generate(),
                    inviter: AccountId::generate(),
                    inviter_name: String::new(),
                    trust_name: String::new(),
                    now,
                    link_ttl: Duration::days(14),
                },
            );
        let pending_id = pending.id;
        let mut with_pending = answers(&world, eligibility(&world, &[]));
        with_pending.pending = Ok(Some(pending.clone()));
        assert!(matches!(
            plan(&world.input, with_pending, now),
            Err(CreateRefusal::PendingInvitationExists { invitation_id }) if invitation_id == pending_id
        ));
        // One past its expiry no longer blocks.
        let mut with_expired = answers(&world, eligibility(&world, &[]));
        with_expired.pending = Ok(Some(pending));
        assert!(plan(&world.input, with_expired, now + Duration::days(15)).is_ok());
    }
}
