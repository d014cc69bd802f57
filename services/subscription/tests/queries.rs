//! The eligibility query costs a constant number of storage queries, whatever its size.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use portal_runtime::db::testing::sqlite_url;
use portal_runtime::db::{DbPool, DbSettings};
use portal_subscription::MIGRATIONS;
use portal_subscription::domain::{Catalog, Organization, Subscription};
use portal_subscription::eligibility::{self, Query, SchoolRef};
use portal_subscription::store::{CreateOutcome, ListFilter, RequestKey, Store, for_pool};

/// A store that counts the queries made through it.
struct Counting {
    inner: Arc<dyn Store>,
    queries: AtomicUsize,
}

impl Counting {
    fn count(&self) {
        self.queries.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for Counting {
    async fn load_catalog(&self) -> Result<Catalog, sqlx::Error> {
        self.count();
        self.inner.load_catalog().await
    }

    async fn create_subscription(
        &self,
        subscription: &Subscription,
        request: Option<&RequestKey>,
    ) -> Result<CreateOutcome, sqlx::Error> {
        self.count();
        self.inner.create_subscription(subscription, request).await
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, sqlx::Error> {
        self.count();
        self.inner.get_subscription(id).await
    }

    async fn replace_subscription(&self, updated: &Subscription) -> Result<bool, sqlx::Error> {
        self.count();
        self.inner.replace_subscription(updated).await
    }

    async fn list_subscriptions(
        &self,
        filter: &ListFilter,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Subscription>, sqlx::Error> {
        self.count();
        self.inner.list_subscriptions(filter, after, limit).await
    }

    async fn subscriptions_of(
        &self,
        trust_id: &str,
        organization_ids: &[String],
        product_keys: Option<&[String]>,
    ) -> Result<Vec<Subscription>, sqlx::Error> {
        self.count();
        self.inner
            .subscriptions_of(trust_id, organization_ids, product_keys)
            .await
    }

    async fn organizations_outside(
        &self,
        trust_id: &str,
        ids: &[String],
    ) -> Result<Vec<Organization>, sqlx::Error> {
        self.count();
        self.inner.organizations_outside(trust_id, ids).await
    }
}

fn query(schools: usize, products: &[&str]) -> Query {
    Query {
        trust_id: portal_runtime::demo::TRUST_ID.into(),
        trust_product: Some("portal".into()),
        school_products: products.iter().map(|p| p.to_string()).collect(),
        schools: (0..schools)
            .map(|i| SchoolRef {
                id: format!("44444444-0000-4000-8000-{i:012}"),
                index: i,
            })
            .collect(),
        at: Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap(),
    }
}

#[tokio::test]
async fn one_pair_and_four_thousand_pairs_cost_the_same_two_queries() {
    let dir = tempfile::tempdir().unwrap();
    let pool = DbPool::connect_lazy(&DbSettings::new(sqlite_url(dir.path()))).unwrap();
    pool.migrate(&MIGRATIONS).await.unwrap();
    let inner = for_pool(&pool);
    portal_subscription::demo::seed(inner.as_ref())
        .await
        .unwrap();
    let store = Counting {
        inner,
        queries: AtomicUsize::new(0),
    };
    let catalog = store.inner.load_catalog().await.unwrap();

    let small = query(1, &["sonar"]);
    eligibility::load(&store, &catalog, &small).await.unwrap();
    let for_one_pair = store.queries.swap(0, Ordering::SeqCst);

    let large = query(1_000, &["websites-cms", "comms-hub", "sonar", "mis"]);
    let candidates = eligibility::load(&store, &catalog, &large).await.unwrap();
    let for_four_thousand = store.queries.swap(0, Ordering::SeqCst);

    assert_eq!(for_one_pair, 2);
    assert_eq!(for_four_thousand, for_one_pair);
    let answers = eligibility::evaluate(&candidates, &catalog, &large);
    assert_eq!(answers.pairs.len(), 4_000);
    assert!(
        answers.trust.unwrap().eligible(),
        "the demo trust holds Portal"
    );
}
