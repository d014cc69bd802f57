//! Rule R5: which (school, product) pairs hold a subscription in force, in a constant number
//! of queries whatever the number of pairs (none when the trust's subscriptions are in
//! memory): every subscription of the trust is at hand and the decision is made with
//! [`decide`].

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use portal_runtime::Violations;

use crate::domain::{Catalog, OrgKind, Reason, Scope, Subscription, Verdict, decide};
use crate::error::Result;
use crate::store::Store;
use crate::view::{TrustView, Views};

/// Most distinct schools in one call.
pub const MAX_SCHOOLS: usize = 1_000;
/// Most distinct school products in one call.
pub const MAX_PRODUCTS: usize = 20;

/// A school of a request, with where it was first given (to name it in errors). Only the
/// id's value is kept: a call names up to a thousand schools, and most answers never spell
/// their ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolRef {
    /// The id's [`portal_runtime::types::id_key`].
    pub key: u128,
    /// Index in the request's `school_ids`.
    pub index: usize,
}

impl SchoolRef {
    /// `id` is a UUID.
    pub fn new(id: &str, index: usize) -> Self {
        let key = portal_runtime::types::id_key(id);
        Self { key, index }
    }

    /// The id, in canonical form.
    pub fn id(&self) -> String {
        portal_runtime::types::id_of_key(self.key)
    }
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
/// school. Schools never heard of are fine: they simply have no subscription. Organisations
/// the trust's view already knows as its own need no check (an organisation never changes
/// trust or kind); the others take one query.
pub async fn check_organizations(
    store: &dyn Store,
    view: &TrustView,
    schools: &[SchoolRef],
) -> Result<()> {
    let trust_id = view.trust_id.as_str();
    let trust_key = portal_runtime::types::id_key(trust_id);
    let mut ids: Vec<String> = schools
        .iter()
        .filter(|s| !view.knows_key(s.key) || s.key == trust_key)
        .map(SchoolRef::id)
        .collect();
    if !view.knows(trust_id) {
        ids.push(trust_id.to_string());
    }
    if ids.is_empty() {
        return Ok(());
    }
    let known = store.organizations_outside(trust_id, &ids).await?;
    if known.is_empty() {
        return Ok(());
    }
    let known: HashMap<u128, _> = known
        .iter()
        .map(|o| (portal_runtime::types::id_key(&o.id), o))
        .collect();
    let mut violations = Violations::new();
    if let Some(org) = known.get(&trust_key)
        && org.kind == OrgKind::School
    {
        violations.add("trust_id", "names a school, not a trust");
    }
    for school in schools {
        match known.get(&school.key) {
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

/// The trust's subscriptions, with the query's organisations checked: from memory when the
/// trust was read recently, otherwise one query (two when unknown organisations are asked).
pub async fn load(views: &Views, store: &dyn Store, query: &Query) -> Result<Arc<TrustView>> {
    let view = views.trust(&query.trust_id).await?;
    check_organizations(store, &view, &query.schools).await?;
    Ok(view)
}

/// The answers to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation<'a> {
    /// The trust's own answer, when a trust product was asked about.
    pub trust: Option<Verdict<'a>>,
    /// One answer per (school, product), schools then products in query order.
    pub pairs: Vec<Verdict<'a>>,
}

/// Decides every answer in memory: one lookup per school and one per product, whatever the
/// number of pairs.
pub fn evaluate<'a>(view: &'a TrustView, catalog: &Catalog, query: &Query) -> Evaluation<'a> {
    let scope_refusal = |product: &str, expected: Scope| -> Option<Verdict<'a>> {
        match catalog.product(product).map(|p| p.scope) {
            Some(scope) if scope == expected => None,
            Some(Scope::Trust) => Some(Verdict::refused(Reason::ProductNotSchoolScoped)),
            Some(Scope::School) => Some(Verdict::refused(Reason::ProductNotTrustScoped)),
            None => Some(Verdict::refused(Reason::NoSubscription)),
        }
    };
    let verdict = |held: &'a [Subscription], product: &str| -> Verdict<'a> {
        let start = held.partition_point(|s| s.product_key.as_str() < product);
        let len = held[start..].partition_point(|s| s.product_key == product);
        match &held[start..start + len] {
            [] => Verdict::refused(Reason::NoSubscription),
            subscriptions => decide(subscriptions, query.at),
        }
    };
    let trust = query.trust_product.as_deref().map(|product| {
        scope_refusal(product, Scope::Trust)
            .unwrap_or_else(|| verdict(view.of_organization(&query.trust_id), product))
    });
    // Each school's answers start as "no subscription" (or the product's scope refusal);
    // one pass over the school's subscriptions, grouped by product, fills in the rest.
    // Per product: the school-scoped key to match subscriptions against (None when the
    // product's scope already refuses it), and the answer a school without one gets.
    let (asked, blank): (Vec<Option<&str>>, Vec<Verdict<'a>>) = query
        .school_products
        .iter()
        .map(|product| match scope_refusal(product, Scope::School) {
            Some(refusal) => (None, refusal),
            None => (
                Some(product.as_str()),
                Verdict::refused(Reason::NoSubscription),
            ),
        })
        .unzip();
    let mut pairs = Vec::with_capacity(query.schools.len() * blank.len());
    for school in &query.schools {
        let row = pairs.len();
        pairs.extend_from_slice(&blank);
        for group in view
            .of_key(school.key)
            .chunk_by(|a, b| a.product_key == b.product_key)
        {
            let product = group[0].product_key.as_str();
            if let Some(column) = asked.iter().position(|p| *p == Some(product)) {
                pairs[row + column] = decide(group, query.at);
            }
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
