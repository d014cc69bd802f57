//! Rule R5: which (school, product) pairs hold a subscription in force, in a constant number
//! of queries whatever the number of pairs: every candidate subscription is loaded at once and
//! the decision is made in memory with [`decide`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use portal_runtime::Violations;

use crate::domain::{Catalog, OrgKind, Reason, Scope, Subscription, Verdict, decide};
use crate::error::Result;
use crate::store::Store;

/// Most distinct schools in one call.
pub const MAX_SCHOOLS: usize = 1_000;
/// Most distinct school products in one call.
pub const MAX_PRODUCTS: usize = 20;

/// A school of a request, with where it was first given (to name it in errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolRef {
    pub id: String,
    /// Index in the request's `school_ids`.
    pub index: usize,
}

/// A parsed CheckEligibility request: every key is in the catalogue, sets are distinct and
/// in first-given order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub trust_id: String,
    pub trust_product: Option<String>,
    pub school_products: Vec<String>,
    pub schools: Vec<SchoolRef>,
    pub at: DateTime<Utc>,
}

/// Refuses schools known under another trust (or known as trusts) and a trust id known as a
/// school. Schools never heard of are fine: they simply have no subscription. One query.
pub async fn check_organizations(
    store: &dyn Store,
    trust_id: &str,
    schools: &[SchoolRef],
) -> Result<()> {
    let mut ids: Vec<String> = schools.iter().map(|s| s.id.clone()).collect();
    ids.push(trust_id.to_string());
    let known = store.organizations_outside(trust_id, &ids).await?;
    if known.is_empty() {
        return Ok(());
    }
    let known: HashMap<&str, _> = known.iter().map(|o| (o.id.as_str(), o)).collect();
    let mut violations = Violations::new();
    if let Some(org) = known.get(trust_id)
        && org.kind == OrgKind::School
    {
        violations.add("trust_id", "names a school, not a trust");
    }
    for school in schools {
        match known.get(school.id.as_str()) {
            Some(org) if org.kind == OrgKind::Trust => {
                violations.add(
                    format!("school_ids[{}]", school.index),
                    "names a trust, not a school",
                );
            }
            Some(org) if org.trust_id != trust_id => {
                violations.add(
                    format!("school_ids[{}]", school.index),
                    "belongs to another trust",
                );
            }
            _ => {}
        }
    }
    violations.finish().map_err(Into::into)
}

/// Every subscription that can decide the query's answers.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    pub subscriptions: Vec<Subscription>,
}

/// Checks the organisations and loads the candidates: two queries, run concurrently, or one
/// when nothing needs loading.
pub async fn load(store: &dyn Store, catalog: &Catalog, query: &Query) -> Result<Candidates> {
    let scoped = |key: &String, scope: Scope| {
        catalog
            .product(key)
            .is_some_and(|product| product.scope == scope)
    };
    let mut products: Vec<String> = query
        .school_products
        .iter()
        .filter(|key| scoped(key, Scope::School))
        .cloned()
        .collect();
    let mut organizations: Vec<String> = if products.is_empty() {
        Vec::new()
    } else {
        query.schools.iter().map(|s| s.id.clone()).collect()
    };
    if let Some(key) = &query.trust_product
        && scoped(key, Scope::Trust)
    {
        products.push(key.clone());
        organizations.push(query.trust_id.clone());
    }
    let subscriptions = async {
        if products.is_empty() || organizations.is_empty() {
            Ok(Vec::new())
        } else {
            store
                .subscriptions_of(&query.trust_id, &organizations, Some(&products))
                .await
        }
    };
    let (checked, subscriptions) = tokio::join!(
        check_organizations(store, &query.trust_id, &query.schools),
        subscriptions
    );
    checked?;
    Ok(Candidates {
        subscriptions: subscriptions?,
    })
}

/// The answers to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation<'a> {
    /// The trust's own answer, when a trust product was asked about.
    pub trust: Option<Verdict<'a>>,
    /// One answer per (school, product), schools then products in query order.
    pub pairs: Vec<Verdict<'a>>,
}

/// Decides every answer in memory.
pub fn evaluate<'a>(
    candidates: &'a Candidates,
    catalog: &Catalog,
    query: &Query,
) -> Evaluation<'a> {
    // Sorted by (organisation, product), each pair's subscriptions are one slice: no hashing
    // and one allocation, whatever the number of pairs.
    fn key(s: &Subscription) -> (&str, &str) {
        (&s.organization_id, &s.product_key)
    }
    let mut sorted: Vec<&Subscription> = candidates.subscriptions.iter().collect();
    sorted.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
    let of_pair = |organization: &str, product: &str| -> &[&'a Subscription] {
        let start = sorted.partition_point(|s| key(s) < (organization, product));
        let len = sorted[start..].partition_point(|s| key(s) == (organization, product));
        &sorted[start..start + len]
    };
    let verdict = |organization: &str, product: &str, expected: Scope| -> Verdict<'a> {
        match catalog.product(product).map(|p| p.scope) {
            Some(scope) if scope == expected => match of_pair(organization, product) {
                [] => Verdict::refused(Reason::NoSubscription),
                subscriptions => decide(subscriptions.iter().copied(), query.at),
            },
            Some(Scope::Trust) => Verdict::refused(Reason::ProductNotSchoolScoped),
            Some(Scope::School) => Verdict::refused(Reason::ProductNotTrustScoped),
            None => Verdict::refused(Reason::NoSubscription),
        }
    };
    let trust = query
        .trust_product
        .as_deref()
        .map(|product| verdict(&query.trust_id, product, Scope::Trust));
    let mut pairs = Vec::with_capacity(query.schools.len() * query.school_products.len());
    for school in &query.schools {
        for product in &query.school_products {
            pairs.push(verdict(&school.id, product, Scope::School));
        }
    }
    Evaluation { trust, pairs }
}

/// Validates the sizes of the sets (after duplicates are dropped).
pub fn check_sizes(schools: usize, products: usize, violations: &mut Violations) {
    if schools > MAX_SCHOOLS {
        violations.add(
            "school_ids",
            format!("has {schools} distinct ids; at most {MAX_SCHOOLS} per call: split the query"),
        );
    }
    if products > MAX_PRODUCTS {
        violations.add(
            "school_product_keys",
            format!(
                "has {products} distinct keys; at most {MAX_PRODUCTS} per call: split the query"
            ),
        );
    }
}
