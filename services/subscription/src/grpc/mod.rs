//! The gRPC edge: requests are parsed into domain types here, answers converted back.

pub mod catalog;
pub mod eligibility;
pub mod subscriptions;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use portal_proto::subscription::v1 as pb;
use portal_runtime::clock::{from_timestamp, to_timestamp};
use portal_runtime::{Principal, SharedClock, principal_of};

use crate::access::Access;
use crate::catalog::CatalogCache;
use crate::domain::{
    Catalog, OrgKind, Product, Reason, RoleEquivalence, Scope, Status, Subscription,
};
use crate::error::Result;
use crate::store::Store;
use crate::view::{ViewArgs, Views};

/// What every RPC works with.
pub struct State {
    pub store: Arc<dyn Store>,
    pub catalog: CatalogCache,
    /// Each trust's subscriptions in memory, for eligibility.
    pub views: Arc<Views>,
    pub access: Access,
    pub clock: SharedClock,
}

impl State {
    pub fn new(
        store: Arc<dyn Store>,
        access: Access,
        clock: SharedClock,
        views: &ViewArgs,
    ) -> Self {
        Self {
            catalog: CatalogCache::new(store.clone(), clock.clone()),
            views: Arc::new(Views::new(store.clone(), views)),
            store,
            access,
            clock,
        }
    }

    pub async fn catalog(&self) -> Result<Arc<Catalog>> {
        Ok(self.catalog.get().await?)
    }
}

/// The caller, as the auth layer identified it.
fn caller<T>(request: &tonic::Request<T>) -> Result<Principal> {
    Ok(principal_of(request)?)
}

/// Parses an optional instant; `Err` names what is wrong.
fn parse_instant(ts: Option<&prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>, String> {
    match ts {
        None => Ok(None),
        Some(ts) => from_timestamp(ts)
            .map(Some)
            .ok_or_else(|| "is not a valid timestamp".to_string()),
    }
}

pub fn scope_to_proto(scope: Scope) -> pb::ProductScope {
    match scope {
        Scope::Trust => pb::ProductScope::Trust,
        Scope::School => pb::ProductScope::School,
    }
}

pub fn product_to_proto(product: &Product) -> pb::Product {
    pb::Product {
        key: product.key.clone(),
        name: product.name.clone(),
        scope: scope_to_proto(product.scope) as i32,
        roles: product
            .roles
            .iter()
            .map(|role| pb::Role {
                key: role.key.clone(),
                name: role.name.clone(),
                description: role.description.clone(),
            })
            .collect(),
    }
}

pub fn equivalence_to_proto(equivalence: &RoleEquivalence) -> pb::RoleEquivalence {
    let side = |r: &crate::domain::RoleRef| pb::RoleRef {
        product_key: r.product_key.clone(),
        role_key: r.role_key.clone(),
    };
    pb::RoleEquivalence {
        left: Some(side(&equivalence.left)),
        right: Some(side(&equivalence.right)),
        description: equivalence.description.clone(),
    }
}

pub fn kind_to_proto(kind: OrgKind) -> pb::OrganizationKind {
    match kind {
        OrgKind::Trust => pb::OrganizationKind::Trust,
        OrgKind::School => pb::OrganizationKind::School,
    }
}

pub fn status_to_proto(status: Status) -> pb::SubscriptionStatus {
    match status {
        Status::Active => pb::SubscriptionStatus::Active,
        Status::Trial => pb::SubscriptionStatus::Trial,
        Status::Cancelled => pb::SubscriptionStatus::Cancelled,
        Status::Expired => pb::SubscriptionStatus::Expired,
    }
}

pub fn subscription_to_proto(s: &Subscription) -> pb::Subscription {
    pb::Subscription {
        id: s.id.clone(),
        trust_id: s.trust_id.clone(),
        organization_kind: kind_to_proto(s.organization_kind) as i32,
        organization_id: s.organization_id.clone(),
        product_key: s.product_key.clone(),
        status: status_to_proto(s.status) as i32,
        start_time: Some(to_timestamp(s.start_time)),
        end_time: s.end_time.map(to_timestamp),
        cancel_time: s.cancel_time.map(to_timestamp),
        create_time: Some(to_timestamp(s.create_time)),
        update_time: Some(to_timestamp(s.update_time)),
    }
}

pub fn reason_to_proto(reason: Option<Reason>) -> pb::IneligibilityReason {
    match reason {
        None => pb::IneligibilityReason::Unspecified,
        Some(Reason::NoSubscription) => pb::IneligibilityReason::NoSubscription,
        Some(Reason::NotStarted) => pb::IneligibilityReason::NotStarted,
        Some(Reason::Ended) => pb::IneligibilityReason::Ended,
        Some(Reason::Cancelled) => pb::IneligibilityReason::Cancelled,
        Some(Reason::Expired) => pb::IneligibilityReason::Expired,
        Some(Reason::ProductNotSchoolScoped) => pb::IneligibilityReason::ProductNotSchoolScoped,
        Some(Reason::ProductNotTrustScoped) => pb::IneligibilityReason::ProductNotTrustScoped,
    }
}
