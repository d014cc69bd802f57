//! The product catalogue as an invitation is checked against it (R3/R4).

use std::collections::HashMap;

use portal_runtime::vocab::{OrgKind, ProductKey, RoleKey};

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
