//! The product catalogue as an invitation is checked against it (R3/R4).

use std::collections::{HashMap, HashSet};

use portal_runtime::vocab::{OrgKind, ProductKey, RoleKey};

use super::invitation::GrantedAccess;

/// A catalogue product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub key: ProductKey,
    pub name: String,
    /// Where the product is granted: at the trust or at its schools (`None`: neither, as
    /// for a product the catalogue gives no scope).
    pub scope: Option<OrgKind>,
    pub roles: Vec<RoleKey>,
}

impl Product {
    pub fn has_role(&self, role: &RoleKey) -> bool {
        self.roles.contains(role)
    }

    /// The roles, for a message: `a, b, c`.
    pub fn role_list(&self) -> String {
        let roles: Vec<&str> = self.roles.iter().map(RoleKey::as_str).collect();
        roles.join(", ")
    }
}

/// Every product, by key.
pub type Catalogue = HashMap<ProductKey, Product>;

/// The display name of a product; its key when the catalogue does not know it.
pub fn product_name(catalogue: &Catalogue, key: &ProductKey) -> String {
    catalogue
        .get(key)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| key.to_string())
}

/// Each product of `granted` once, by name, in the order first granted (what an email lists).
pub fn product_names(granted: &[GrantedAccess], catalogue: &Catalogue) -> Vec<String> {
    let mut seen = HashSet::new();
    granted
        .iter()
        .filter(|g| seen.insert(g.product_key.as_str()))
        .map(|g| product_name(catalogue, &g.product_key))
        .collect()
}

#[cfg(test)]
mod tests {
    use portal_runtime::vocab::{SchoolId, TrustId};

    use super::*;
    use crate::domain::invitation::{GrantState, Org};

    #[test]
    fn an_email_names_each_product_once_in_the_order_first_granted() {
        let product = |key: &str, name: &str| Product {
            key: ProductKey::from_known(key),
            name: name.into(),
            scope: Some(OrgKind::School),
            roles: vec![],
        };
        let catalogue: Catalogue = [product("sonar", "Sonar"), product("comms-hub", "Comms Hub")]
            .into_iter()
            .map(|p| (p.key.clone(), p))
            .collect();
        let grant = |org, key: &str| GrantedAccess {
            org,
            product_key: ProductKey::from_known(key),
            role_key: RoleKey::from_known("viewer"),
            state: GrantState::Pending,
            previous_role_key: None,
        };
        let (a, b) = (
            Org::School(SchoolId::generate()),
            Org::School(SchoolId::generate()),
        );
        let granted = [
            grant(Org::Trust(TrustId::generate()), "portal"),
            grant(a, "sonar"),
            grant(a, "comms-hub"),
            grant(b, "sonar"),
            grant(b, "comms-hub"),
        ];
        // Products the catalogue does not know are named by their key.
        assert_eq!(
            product_names(&granted, &catalogue),
            vec!["portal", "Sonar", "Comms Hub"]
        );
    }
}
