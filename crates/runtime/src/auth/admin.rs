//! Who administers: an administrator holds one of [`ADMIN_ROLES`] on the [`PORTAL_PRODUCT`]
//! (at trust level for the trust; at a school for that school), and what identity decides of
//! a person and a trust ([`AdminDecision`]).

use portal_proto::identity::v1::AdministratorDecision;

use crate::vocab::{ProductKey, RoleKey};

/// What a person is to a trust, as identity decides it (CheckAdministrator) and the other
/// services read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminDecision {
    /// Holds an administrator role at the trust's level.
    Administrator,
    /// Holds no administrator role there (nor at its schools, nor at another trust).
    NotAdministrator,
    /// Administers schools of the trust, not the trust itself.
    SchoolLevelOnly,
    /// Administers another trust.
    OtherTrust,
}

impl From<AdminDecision> for AdministratorDecision {
    fn from(decision: AdminDecision) -> Self {
        match decision {
            AdminDecision::Administrator => AdministratorDecision::Administrator,
            AdminDecision::NotAdministrator => AdministratorDecision::NotAdministrator,
            AdminDecision::SchoolLevelOnly => AdministratorDecision::SchoolLevelOnly,
            AdminDecision::OtherTrust => AdministratorDecision::OtherTrust,
        }
    }
}

/// Identity's answer; an unset or unknown decision (never sent) administers nothing.
impl From<AdministratorDecision> for AdminDecision {
    fn from(decision: AdministratorDecision) -> Self {
        match decision {
            AdministratorDecision::Administrator => AdminDecision::Administrator,
            AdministratorDecision::SchoolLevelOnly => AdminDecision::SchoolLevelOnly,
            AdministratorDecision::OtherTrust => AdminDecision::OtherTrust,
            AdministratorDecision::NotAdministrator | AdministratorDecision::Unspecified => {
                AdminDecision::NotAdministrator
            }
        }
    }
}

/// The product whose roles make administrators.
pub const PORTAL_PRODUCT: &str = "portal";
/// Its administrator roles, strongest first.
pub const ADMIN_ROLES: [&str; 2] = ["account-owner", "account-admin"];

/// The Portal product's key.
pub fn portal_product() -> ProductKey {
    ProductKey::from_known(PORTAL_PRODUCT)
}

/// Whether holding `role` of `product` makes an administrator.
pub fn is_admin_role(product: &ProductKey, role: &RoleKey) -> bool {
    product == PORTAL_PRODUCT && ADMIN_ROLES.contains(&role.as_str())
}

/// The stronger of two administrator roles (`account-owner` over `account-admin`); `None`
/// when neither is one.
pub fn strongest_admin_role<'a>(roles: impl IntoIterator<Item = &'a RoleKey>) -> Option<RoleKey> {
    let held: Vec<&RoleKey> = roles.into_iter().collect();
    ADMIN_ROLES
        .iter()
        .find(|admin| held.iter().any(|role| role == *admin))
        .map(|role| RoleKey::from_known(role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_portal_owner_and_admin_roles_administer() {
        let portal = portal_product();
        let role = |key: &str| RoleKey::from_known(key);
        assert!(is_admin_role(&portal, &role("account-owner")));
        assert!(is_admin_role(&portal, &role("account-admin")));
        assert!(!is_admin_role(&portal, &role("full-edit")));
        assert!(!is_admin_role(
            &ProductKey::from_known("websites-cms"),
            &role("account-owner")
        ));
    }

    #[test]
    fn a_decision_crosses_the_wire_unchanged() {
        for decision in [
            AdminDecision::Administrator,
            AdminDecision::NotAdministrator,
            AdminDecision::SchoolLevelOnly,
            AdminDecision::OtherTrust,
        ] {
            assert_eq!(
                AdminDecision::from(AdministratorDecision::from(decision)),
                decision
            );
        }
        assert_eq!(
            AdminDecision::from(AdministratorDecision::Unspecified),
            AdminDecision::NotAdministrator
        );
    }

    #[test]
    fn the_owner_role_wins_over_the_admin_role() {
        let roles = [
            RoleKey::from_known("account-admin"),
            RoleKey::from_known("account-owner"),
        ];
        assert_eq!(
            strongest_admin_role(&roles),
            Some(RoleKey::from_known("account-owner"))
        );
        assert_eq!(strongest_admin_role(&[RoleKey::from_known("writer")]), None);
    }
}
