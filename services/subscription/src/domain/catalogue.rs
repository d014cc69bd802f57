//! The product catalogue: products with their scope and roles, and the role equivalences
//! between products. It ships with the schema and only changes with a migration.

use std::collections::HashMap;

use portal_runtime::vocab::{OrgKind, ProductKey, RoleKey};

/// At which level of organisation a product is subscribed to and granted. Stored by name in
/// upper case (`TRUST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "UPPERCASE")]
pub enum Scope {
    Trust,
    School,
}

impl Scope {
    /// The kind of organisation that holds the subscriptions of a product of this scope.
    pub fn organization_kind(self) -> OrgKind {
        match self {
            Scope::Trust => OrgKind::Trust,
            Scope::School => OrgKind::School,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub key: RoleKey,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub key: ProductKey,
    pub name: String,
    pub scope: Scope,
    /// In display order.
    pub roles: Vec<Role>,
}

impl Product {
    pub fn role(&self, key: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.key == key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRef {
    pub product_key: ProductKey,
    pub role_key: RoleKey,
}

/// Two roles of two products that give the same access; symmetric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleEquivalence {
    pub left: RoleRef,
    pub right: RoleRef,
    pub description: String,
}

impl RoleEquivalence {
    /// Whether one side is `product` (and `role`, when given).
    pub fn involves(&self, product: &str, role: Option<&str>) -> bool {
        [&self.left, &self.right]
            .iter()
            .any(|side| side.product_key == product && role.is_none_or(|r| side.role_key == r))
    }
}

/// The equivalences asked about: those of a product, or of one of its roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSelection {
    pub product: ProductKey,
    pub role: Option<RoleKey>,
}

/// One page of the catalogue's products.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductPage {
    /// `None`: every scope.
    pub scope: Option<Scope>,
    /// The key of the last product of the previous page.
    pub after: Option<ProductKey>,
    /// Most products to return.
    pub limit: usize,
}

/// The whole catalogue, small enough to keep in memory.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Ordered by key.
    products: Vec<Product>,
    index: HashMap<ProductKey, usize>,
    equivalences: Vec<RoleEquivalence>,
}

impl Catalog {
    pub fn new(mut products: Vec<Product>, equivalences: Vec<RoleEquivalence>) -> Self {
        products.sort_by(|a, b| a.key.cmp(&b.key));
        let index = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.key.clone(), i))
            .collect();
        Self {
            products,
            index,
            equivalences,
        }
    }

    pub fn product(&self, key: &str) -> Option<&Product> {
        self.index.get(key).map(|&i| &self.products[i])
    }

    /// Every product, ordered by key.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The products of one page, in key order.
    pub fn page(&self, page: &ProductPage) -> Vec<Product> {
        self.products
            .iter()
            .filter(|p| page.scope.is_none_or(|s| p.scope == s))
            .filter(|p| page.after.as_ref().is_none_or(|after| p.key > *after))
            .take(page.limit)
            .cloned()
            .collect()
    }

    /// The equivalences with `product` (and `role`, when given) on either side.
    pub fn equivalences_of(&self, product: &str, role: Option<&str>) -> Vec<&RoleEquivalence> {
        self.equivalences
            .iter()
            .filter(|e| e.involves(product, role))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(key: &str, scope: Scope) -> Product {
        Product {
            key: ProductKey::from_known(key),
            name: key.into(),
            scope,
            roles: vec![],
        }
    }

    #[test]
    fn keys_are_lower_case_words_with_dashes() {
        assert!(ProductKey::parse("websites-cms").is_ok());
        assert_eq!(ProductKey::parse(" portal ").unwrap().as_str(), "portal");
        for bad in ["", "Portal", "web sites", "-x", "a_b", &"x".repeat(65)] {
            assert!(ProductKey::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn equivalences_are_found_from_either_side() {
        let catalog = Catalog::new(
            vec![],
            vec![RoleEquivalence {
                left: RoleRef {
                    product_key: ProductKey::from_known("websites-cms"),
                    role_key: RoleKey::from_known("administrator"),
                },
                right: RoleRef {
                    product_key: ProductKey::from_known("portal"),
                    role_key: RoleKey::from_known("account-owner"),
                },
                description: String::new(),
            }],
        );
        assert_eq!(
            catalog
                .equivalences_of("portal", Some("account-owner"))
                .len(),
            1
        );
        assert_eq!(catalog.equivalences_of("websites-cms", None).len(), 1);
        assert_eq!(
            catalog.equivalences_of("portal", Some("full-edit")).len(),
            0
        );
    }

    #[test]
    fn a_page_of_products_follows_the_last_key_and_keeps_to_its_scope() {
        let catalog = Catalog::new(
            vec![
                product("sonar", Scope::School),
                product("portal", Scope::Trust),
                product("mis", Scope::School),
            ],
            vec![],
        );
        let keys = |page: &ProductPage| -> Vec<String> {
            catalog
                .page(page)
                .into_iter()
                .map(|p| p.key.into_string())
                .collect()
        };
        let first = ProductPage {
            scope: None,
            after: None,
            limit: 2,
        };
        assert_eq!(keys(&first), ["mis", "portal"]);
        let next = ProductPage {
            after: Some(ProductKey::from_known("portal")),
            ..first.clone()
        };
        assert_eq!(keys(&next), ["sonar"]);
        let schools = ProductPage {
            scope: Some(Scope::School),
            limit: 10,
            ..first
        };
        assert_eq!(keys(&schools), ["mis", "sonar"]);
    }

    #[test]
    fn scopes_are_stored_in_upper_case() {
        assert_eq!(<&str>::from(Scope::School), "SCHOOL");
        assert_eq!("TRUST".parse::<Scope>(), Ok(Scope::Trust));
        assert_eq!(Scope::Trust.organization_kind(), OrgKind::Trust);
    }
}
