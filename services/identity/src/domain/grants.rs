//! Grants of product roles at organisations: making an invitation's grants once, who
//! administers a trust, and what a person holds where.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
pub use portal_runtime::auth::admin::AdminDecision;
use portal_runtime::auth::admin::{ADMIN_ROLES, strongest_admin_role};
use portal_runtime::vocab::{
    AccountId, Email, GrantId, IdSet, InvitationId, OrgKind, ProductKey, RoleKey, StaffId, TrustId,
};

use super::OrganizationId;

/// Most grants one BatchGrant call may carry.
pub const MAX_GRANTS_PER_BATCH: usize = 1_000;

/// Stored as `pending`, `active`, `revoked` or `suspended` (the holder left the trust's MIS;
/// not in force, restored when they are listed again).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr, strum::Display,
)]
#[strum(serialize_all = "lowercase")]
pub enum GrantStatus {
    Pending,
    Active,
    Revoked,
    Suspended,
}

/// One product role at one organisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantSpec {
    pub kind: OrgKind,
    pub organization_id: OrganizationId,
    pub product_key: ProductKey,
    pub role_key: RoleKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: GrantId,
    pub invitation_id: InvitationId,
    pub trust_id: TrustId,
    pub kind: OrgKind,
    pub organization_id: OrganizationId,
    pub product_key: ProductKey,
    pub role_key: RoleKey,
    pub email: Email,
    pub account_id: Option<AccountId>,
    pub status: GrantStatus,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// The role this grant replaced when it was made: the person held the product at the
    /// organisation with that role (one role per product per organisation).
    pub previous_role_key: Option<RoleKey>,
}

impl Grant {
    /// Whether this grant gives what `spec` asks for (an organisation's id names it whatever
    /// its kind).
    fn gives(&self, spec: &GrantSpec) -> bool {
        self.organization_id == spec.organization_id
            && self.product_key == spec.product_key
            && self.role_key == spec.role_key
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOutcome {
    Created,
    AlreadyGranted,
    AlreadyHeld,
    /// Made in place of the person's grant of another role of the same product at the same
    /// organisation, which is revoked (the grant names the role it replaced).
    RoleChanged,
}

/// What became of one requested grant: the grant made, or the one that already gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantResult {
    pub grant: Grant,
    pub outcome: GrantOutcome,
}

impl GrantResult {
    fn new(grant: &Grant, outcome: GrantOutcome) -> Self {
        Self {
            grant: grant.clone(),
            outcome,
        }
    }
}

/// The grants of one invitation, to make together: pending for the email, or active for the
/// account that has it.
#[derive(Debug, Clone)]
pub struct GrantBatch {
    pub invitation_id: InvitationId,
    pub trust_id: TrustId,
    pub email: Email,
    pub staff_id: Option<StaffId>,
    pub specs: Vec<GrantSpec>,
    pub activate: bool,
}

impl GrantBatch {
    /// The status the batch's new grants get.
    pub fn status(&self) -> GrantStatus {
        if self.activate {
            GrantStatus::Active
        } else {
            GrantStatus::Pending
        }
    }
}

/// Classifies each requested grant against the invitation's own grants and the grants the
/// person already holds. `None` means "make it".
pub fn classify_grants(
    specs: &[GrantSpec],
    of_invitation: &[Grant],
    held: &[Grant],
) -> Vec<Option<GrantResult>> {
    specs
        .iter()
        .map(|spec| {
            if let Some(g) = of_invitation.iter().find(|g| g.gives(spec)) {
                Some(GrantResult::new(g, GrantOutcome::AlreadyGranted))
            } else {
                held.iter()
                    .find(|g| g.status != GrantStatus::Revoked && g.gives(spec))
                    .map(|g| GrantResult::new(g, GrantOutcome::AlreadyHeld))
            }
        })
        .collect()
}

/// The grant in force (pending or active) that a grant made for `spec` replaces: the
/// person's grant of another role of the same product at the same organisation.
pub fn replaced_by<'g>(spec: &GrantSpec, held: &'g [Grant]) -> Option<&'g Grant> {
    held.iter().find(|g| {
        g.status != GrantStatus::Revoked
            && g.organization_id == spec.organization_id
            && g.product_key == spec.product_key
            && g.role_key != spec.role_key
    })
}

/// An active grant of a role of the Portal product, held by an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGrant {
    pub trust_id: TrustId,
    pub kind: OrgKind,
    pub role_key: RoleKey,
}

impl AdminGrant {
    fn is_admin_role(&self) -> bool {
        ADMIN_ROLES.contains(&self.role_key.as_str())
    }
}

/// Whether someone administers a trust, and with which role when they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Administration {
    pub decision: AdminDecision,
    pub role: Option<RoleKey>,
}

/// Whether the holder of `grants` (active Portal roles) administers `trust_id`, and the role
/// when they do (`account-owner` wins over `account-admin`).
pub fn decide_administrator(grants: &[AdminGrant], trust_id: TrustId) -> Administration {
    let mut trust_roles: Vec<&RoleKey> = Vec::new();
    let mut school_level = false;
    let mut elsewhere = false;
    for grant in grants.iter().filter(|g| g.is_admin_role()) {
        match (grant.trust_id == trust_id, grant.kind) {
            (true, OrgKind::Trust) => trust_roles.push(&grant.role_key),
            (true, OrgKind::School) => school_level = true,
            (false, _) => elsewhere = true,
        }
    }
    if !trust_roles.is_empty() {
        return Administration {
            decision: AdminDecision::Administrator,
            role: strongest_admin_role(trust_roles),
        };
    }
    let decision = if school_level {
        AdminDecision::SchoolLevelOnly
    } else if elsewhere {
        AdminDecision::OtherTrust
    } else {
        AdminDecision::NotAdministrator
    };
    Administration {
        decision,
        role: None,
    }
}

/// The trusts the holder of `grants` administers at trust level.
pub fn administered_trusts(grants: &[AdminGrant]) -> IdSet {
    grants
        .iter()
        .filter(|g| g.kind == OrgKind::Trust && g.is_admin_role())
        .map(|g| g.trust_id.as_u128())
        .collect()
}

/// Whether `account_id` administers `trust_id` (a Portal administrator role at trust level).
#[derive(Debug, Clone, Copy)]
pub struct AdministratorCheck {
    pub trust_id: TrustId,
    pub account_id: AccountId,
}

/// One product role at an organisation, as a person sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductAccess {
    pub product_key: ProductKey,
    pub role_key: RoleKey,
    pub status: GrantStatus,
}

/// Everything a person holds at one organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationAccess {
    pub kind: OrgKind,
    pub organization_id: OrganizationId,
    pub trust_id: TrustId,
    pub products: Vec<ProductAccess>,
}

impl OrganizationAccess {
    /// Sort and page key: by trust, the trust itself before its schools, then school id.
    pub fn key(&self) -> String {
        let rank = match self.kind {
            OrgKind::Trust => 0,
            OrgKind::School => 1,
        };
        format!("{}/{rank}/{}", self.trust_id, self.organization_id)
    }
}

/// Groups pending and active grants by organisation, in page-key order. Revoked grants are
/// left out.
pub fn group_access(grants: &[Grant]) -> Vec<OrganizationAccess> {
    let mut by_org: HashMap<(OrganizationId, OrgKind), OrganizationAccess> = HashMap::new();
    for grant in grants
        .iter()
        .filter(|g| !matches!(g.status, GrantStatus::Revoked | GrantStatus::Suspended))
    {
        let entry = by_org
            .entry((grant.organization_id, grant.kind))
            .or_insert_with(|| OrganizationAccess {
                kind: grant.kind,
                organization_id: grant.organization_id,
                trust_id: grant.trust_id,
                products: Vec::new(),
            });
        entry.products.push(ProductAccess {
            product_key: grant.product_key.clone(),
            role_key: grant.role_key.clone(),
            status: grant.status,
        });
    }
    let mut access: Vec<OrganizationAccess> = by_org.into_values().collect();
    for entry in &mut access {
        entry
            .products
            .sort_by(|a, b| (&a.product_key, &a.role_key).cmp(&(&b.product_key, &b.role_key)));
    }
    access.sort_by_key(OrganizationAccess::key);
    access
}

/// A page of an account's access, in page-key order.
#[derive(Debug, Clone)]
pub struct AccessQuery {
    pub account_id: AccountId,
    /// The page key ([`OrganizationAccess::key`]) of the last entry of the previous page.
    pub after: Option<String>,
    pub limit: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(n: u128) -> TrustId {
        TrustId::from_u128(n)
    }

    fn admin_grant(trust_id: u128, kind: OrgKind, role: &str) -> AdminGrant {
        AdminGrant {
            trust_id: trust(trust_id),
            kind,
            role_key: RoleKey::from_known(role),
        }
    }

    fn grant(org: u128, kind: OrgKind, product: &str, status: GrantStatus) -> Grant {
        Grant {
            id: GrantId::generate(),
            invitation_id: InvitationId::from_u128(9),
            trust_id: trust(1),
            kind,
            organization_id: OrganizationId::from_u128(org),
            product_key: ProductKey::from_known(product),
            role_key: RoleKey::from_known("writer"),
            email: Email::parse("p@s.org").unwrap(),
            account_id: None,
            status,
            create_time: DateTime::<Utc>::MIN_UTC,
            update_time: DateTime::<Utc>::MIN_UTC,
            previous_role_key: None,
        }
    }

    fn spec_of(grant: &Grant) -> GrantSpec {
        GrantSpec {
            kind: grant.kind,
            organization_id: grant.organization_id,
            product_key: grant.product_key.clone(),
            role_key: grant.role_key.clone(),
        }
    }

    #[test]
    fn a_school_admin_is_not_a_trust_admin() {
        let grants = vec![admin_grant(1, OrgKind::School, "account-admin")];
        assert_eq!(
            decide_administrator(&grants, trust(1)).decision,
            AdminDecision::SchoolLevelOnly
        );
        assert_eq!(
            decide_administrator(&grants, trust(2)).decision,
            AdminDecision::OtherTrust
        );
        assert_eq!(
            decide_administrator(&[], trust(1)).decision,
            AdminDecision::NotAdministrator
        );
    }

    #[test]
    fn the_owner_role_is_reported_over_the_admin_role() {
        let grants = vec![
            admin_grant(1, OrgKind::Trust, "account-admin"),
            admin_grant(1, OrgKind::Trust, "account-owner"),
        ];
        assert_eq!(
            decide_administrator(&grants, trust(1)),
            Administration {
                decision: AdminDecision::Administrator,
                role: Some(RoleKey::from_known("account-owner"))
            }
        );
    }

    #[test]
    fn only_trust_level_administrator_roles_administer_a_trust() {
        let grants = vec![
            admin_grant(1, OrgKind::Trust, "account-owner"),
            admin_grant(2, OrgKind::School, "account-admin"),
            admin_grant(3, OrgKind::Trust, "full-edit"),
        ];
        let trusts = administered_trusts(&grants);
        assert!(trusts.contains(&trust(1).as_u128()));
        assert_eq!(trusts.len(), 1);
    }

    #[test]
    fn a_grant_of_the_invitation_wins_over_one_held_and_revoked_ones_are_not_held() {
        let ours = grant(5, OrgKind::School, "websites-cms", GrantStatus::Pending);
        let held = grant(5, OrgKind::School, "websites-cms", GrantStatus::Active);
        let revoked = grant(6, OrgKind::School, "comms-hub", GrantStatus::Revoked);
        let specs = [spec_of(&ours), spec_of(&revoked)];
        let classified = classify_grants(&specs, std::slice::from_ref(&ours), &[held, revoked]);
        assert_eq!(
            classified[0],
            Some(GrantResult {
                grant: ours,
                outcome: GrantOutcome::AlreadyGranted
            })
        );
        assert_eq!(classified[1], None);
    }

    #[test]
    fn a_grant_of_another_role_of_the_same_product_and_organisation_is_replaced() {
        let writer = grant(5, OrgKind::School, "websites-cms", GrantStatus::Active);
        let other_school = grant(6, OrgKind::School, "websites-cms", GrantStatus::Active);
        let held = [other_school, writer.clone()];
        let mut publisher = spec_of(&writer);
        publisher.role_key = RoleKey::from_known("publisher");
        assert_eq!(replaced_by(&publisher, &held), Some(&writer));
        assert_eq!(
            replaced_by(&spec_of(&writer), &held),
            None,
            "same role: held"
        );
        let revoked = Grant {
            status: GrantStatus::Revoked,
            ..writer
        };
        assert_eq!(replaced_by(&publisher, &[revoked]), None);
    }

    #[test]
    fn access_is_grouped_by_organisation_trust_first_without_revoked_grants() {
        let grants = vec![
            grant(7, OrgKind::School, "websites-cms", GrantStatus::Active),
            grant(1, OrgKind::Trust, "portal", GrantStatus::Pending),
            grant(7, OrgKind::School, "comms-hub", GrantStatus::Active),
            grant(8, OrgKind::School, "websites-cms", GrantStatus::Revoked),
        ];
        let access = group_access(&grants);
        assert_eq!(access.len(), 2);
        assert_eq!(access[0].kind, OrgKind::Trust);
        let products: Vec<&str> = access[1]
            .products
            .iter()
            .map(|p| p.product_key.as_str())
            .collect();
        assert_eq!(products, vec!["comms-hub", "websites-cms"]);
    }
}
