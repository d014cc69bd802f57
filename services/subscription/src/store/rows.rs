//! The rows the statements read, and their conversion to domain types.

use portal_runtime::clock::from_micros;
use portal_runtime::db::Text;
use portal_runtime::vocab::{Id, OrgKind, ProductKey, RoleKey, SubscriptionId, TrustId};

use crate::domain::{
    Catalog, Organization, OrganizationId, Product, Role, RoleEquivalence, RoleRef, Scope, Status,
    Subscription,
};

/// The columns of a subscription, in [`SubscriptionRow`]'s order.
pub const SUBSCRIPTION_COLUMNS: &str = "id, trust_id, organization_kind, organization_id, \
     product_key, status, start_time, end_time, cancel_time, create_time, update_time, version";

/// Instants are stored as microseconds since the Unix epoch.
#[derive(Debug, sqlx::FromRow)]
pub struct SubscriptionRow {
    id: SubscriptionId,
    trust_id: TrustId,
    /// Stored in upper case (`SCHOOL`), read in any.
    organization_kind: Text<OrgKind>,
    organization_id: OrganizationId,
    product_key: ProductKey,
    status: Text<Status>,
    start_time: i64,
    end_time: Option<i64>,
    cancel_time: Option<i64>,
    create_time: i64,
    update_time: i64,
    version: i64,
}

impl From<SubscriptionRow> for Subscription {
    fn from(row: SubscriptionRow) -> Self {
        Subscription {
            id: row.id,
            trust_id: row.trust_id,
            organization_kind: row.organization_kind.0,
            organization_id: row.organization_id,
            product_key: row.product_key,
            status: row.status.0,
            start_time: from_micros(row.start_time),
            end_time: row.end_time.map(from_micros),
            cancel_time: row.cancel_time.map(from_micros),
            create_time: from_micros(row.create_time),
            update_time: from_micros(row.update_time),
            version: row.version,
        }
    }
}

/// One subscription as an element of a JSON array of [`SUBSCRIPTION_COLUMNS`] (see
/// `Backend::select_subscriptions` for SQLite). Its text is ids, keys and names: never
/// escaped, so it is read in place.
type SubscriptionTuple<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    i64,
);

/// Decodes the JSON array of subscriptions an aggregated read returns.
pub fn subscriptions_from_json(json: &str) -> Result<Vec<Subscription>, sqlx::Error> {
    let tuples: Vec<SubscriptionTuple<'_>> = serde_json::from_str(json).map_err(decode)?;
    tuples
        .into_iter()
        .map(|t| {
            Ok(Subscription::from(SubscriptionRow {
                id: id(t.0)?,
                trust_id: id(t.1)?,
                organization_kind: Text(t.2.parse().map_err(decode)?),
                organization_id: id(t.3)?,
                // Stored keys are the suite's own: read as they are.
                product_key: ProductKey::from_known(t.4),
                status: Text(t.5.parse().map_err(decode)?),
                start_time: t.6,
                end_time: t.7,
                cancel_time: t.8,
                create_time: t.9,
                update_time: t.10,
                version: t.11,
            }))
        })
        .collect()
}

fn id<K>(text: &str) -> Result<Id<K>, sqlx::Error> {
    Id::parse(text).map_err(decode)
}

fn decode(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> sqlx::Error {
    sqlx::Error::Decode(error.into())
}

#[derive(Debug, sqlx::FromRow)]
pub struct OrganizationRow {
    id: OrganizationId,
    trust_id: TrustId,
    kind: Text<OrgKind>,
}

impl From<OrganizationRow> for Organization {
    fn from(row: OrganizationRow) -> Self {
        Organization {
            id: row.id,
            trust_id: row.trust_id,
            kind: row.kind.0,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct ProductRow {
    key: ProductKey,
    name: String,
    scope: Text<Scope>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct RoleRow {
    product_key: ProductKey,
    key: RoleKey,
    name: String,
    description: String,
}

#[derive(Debug, sqlx::FromRow)]
pub struct EquivalenceRow {
    left_product_key: ProductKey,
    left_role_key: RoleKey,
    right_product_key: ProductKey,
    right_role_key: RoleKey,
    description: String,
}

/// The catalogue's three tables, as read.
#[derive(Debug)]
pub struct CatalogRows {
    pub products: Vec<ProductRow>,
    /// In display order within each product.
    pub roles: Vec<RoleRow>,
    pub equivalences: Vec<EquivalenceRow>,
}

impl From<CatalogRows> for Catalog {
    fn from(rows: CatalogRows) -> Self {
        let mut products: Vec<Product> = rows
            .products
            .into_iter()
            .map(|row| Product {
                key: row.key,
                name: row.name,
                scope: row.scope.0,
                roles: Vec::new(),
            })
            .collect();
        for role in rows.roles {
            if let Some(product) = products.iter_mut().find(|p| p.key == role.product_key) {
                product.roles.push(Role {
                    key: role.key,
                    name: role.name,
                    description: role.description,
                });
            }
        }
        let equivalences = rows
            .equivalences
            .into_iter()
            .map(|row| RoleEquivalence {
                left: RoleRef {
                    product_key: row.left_product_key,
                    role_key: row.left_role_key,
                },
                right: RoleRef {
                    product_key: row.right_product_key,
                    role_key: row.right_role_key,
                },
                description: row.description,
            })
            .collect();
        Catalog::new(products, equivalences)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aggregated_read_decodes_every_column_and_refuses_a_bad_one() {
        let json = r#"[["00000000-0000-4000-8000-000000000001",
            "00000000-0000-4000-8000-0000000000a1", "SCHOOL",
            "00000000-0000-4000-8000-0000000000a2", "sonar", "CANCELLED",
            1, 20, 10, 1, 2, 3]]"#;
        let subscriptions = subscriptions_from_json(json).unwrap();
        assert_eq!(subscriptions.len(), 1);
        let s = &subscriptions[0];
        assert_eq!(s.organization_kind, OrgKind::School);
        assert_eq!(s.status, Status::Cancelled);
        assert_eq!(s.product_key, "sonar");
        assert_eq!(s.cancel_time, Some(from_micros(10)));
        assert_eq!(s.version, 3);
        assert!(subscriptions_from_json(&json.replace("CANCELLED", "PAUSED")).is_err());
        assert!(subscriptions_from_json("[]").unwrap().is_empty());
    }
}
