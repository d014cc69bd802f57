//! Storage: the [`Store`] trait, one generic implementation over SQLite and PostgreSQL
//! ([`SqlStore`]), and the [`Backend`] trait that names what differs between the two.

mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use portal_runtime::db::{DbPool, Dialect};
use portal_runtime::vocab::{ProductKey, SubscriptionId, TrustId};

use crate::domain::{
    Catalog, CreateOutcome, Organization, OrganizationId, RequestKey, Subscription,
    SubscriptionPage, TrustSnapshot,
};
use crate::error::Result;

pub use sql::SqlStore;

/// The service name that prefixes every storage span (`subscription.db.<op>`).
const SERVICE: &str = "subscription";

/// The subscription service's storage.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The whole catalogue.
    async fn load_catalog(&self) -> Result<Catalog>;

    /// Creates a subscription, registering its organisation, and its request id when given,
    /// in one transaction.
    async fn create_subscription(
        &self,
        subscription: &Subscription,
        request: Option<&RequestKey>,
    ) -> Result<CreateOutcome>;

    async fn get_subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>>;

    /// Stores the new status, period and cancellation of `updated` if the stored version is
    /// still `updated.version - 1`; `false` when someone else changed it first.
    async fn replace_subscription(&self, updated: &Subscription) -> Result<bool>;

    /// One page of a trust's subscriptions matching the page's filter, in id order.
    async fn list_subscriptions(&self, page: &SubscriptionPage) -> Result<Vec<Subscription>>;

    /// Every subscription of the trust held by one of `organization_ids`, to one of
    /// `product_keys` (`None`: any product). One query, whatever the sizes of the sets.
    async fn subscriptions_of(
        &self,
        trust_id: TrustId,
        organization_ids: &[OrganizationId],
        product_keys: Option<&[ProductKey]>,
    ) -> Result<Vec<Subscription>>;

    /// The known organisations among `ids` that are not schools of `trust_id`: trusts, and
    /// schools of other trusts. One query; usually an empty answer.
    async fn organizations_outside(
        &self,
        trust_id: TrustId,
        ids: &[OrganizationId],
    ) -> Result<Vec<Organization>>;

    /// Every subscription of a trust with the trust's revision, read in one snapshot. Every
    /// write to a subscription increments its trust's revision in the same transaction.
    async fn trust_snapshot(&self, trust_id: TrustId) -> Result<TrustSnapshot>;

    /// The current revisions of those of `trust_ids` that were ever written. One query.
    async fn trust_revisions(&self, trust_ids: &[TrustId]) -> Result<Vec<(TrustId, i64)>>;
}

/// The store of a pool, whichever database it is.
pub fn open(pool: &DbPool) -> Arc<dyn Store> {
    pool.open::<dyn Store>(
        SERVICE,
        |db| Arc::new(SqlStore::new(db)),
        |db| Arc::new(SqlStore::new(db)),
    )
}

/// What this service's statements need of a database beyond the runtime's [`Dialect`]
/// (which already names how a list is bound as one parameter, and how transactions begin).
pub trait Backend: Dialect {
    /// The condition "parameter `n`, a list, is empty": an optional list filter left out.
    fn list_is_empty(n: usize) -> String;

    /// What a read of many subscriptions selects, given their columns.
    fn select_subscriptions(columns: &str) -> String;

    /// Runs a read of many subscriptions (one selecting [`Backend::select_subscriptions`]).
    fn fetch_subscriptions<'c, 'q: 'c>(
        conn: &'c mut Self::Connection,
        query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'q>>,
    ) -> impl Future<Output = Result<Vec<Subscription>>> + Send + 'c;
}
