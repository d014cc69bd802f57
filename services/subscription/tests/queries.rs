//! The eligibility query costs a constant number of storage queries, whatever its size, and
//! none once the trust's subscriptions are in memory, until they change.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use portal_runtime::db::testing::sqlite_url;
use portal_runtime::db::{DbPool, DbSettings};
use portal_subscription::MIGRATIONS;
use portal_subscription::domain::{Catalog, Organization, Subscription};
use portal_subscription::eligibility::{self, Query, SchoolRef};
use portal_subscription::store::{
    CreateOutcome, ListFilter, RequestKey, Store, TrustSnapshot, for_pool,
};
use portal_subscription::view::{ViewArgs, Views};

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

    async fn trust_snapshot(&self, trust_id: &str) -> Result<TrustSnapshot, sqlx::Error> {
        self.count();
        self.inner.trust_snapshot(trust_id).await
    }

    async fn trust_revisions(
        &self,
        trust_ids: &[String],
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        self.count();
        self.inner.trust_revisions(trust_ids).await
    }
}

fn query(schools: usize, products: &[&str]) -> Query {
    Query {
        trust_id: portal_runtime::demo::TRUST_ID.into(),
        trust_product: Some("portal".into()),
        school_products: products.iter().map(|p| p.to_string()).collect(),
        schools: (0..schools)
            .map(|i| SchoolRef::new(&format!("44444444-0000-4000-8000-{i:012}"), i))
            .collect(),
        at: Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap(),
    }
}

/// The demo trust's own schools, which its subscriptions already register.
fn demo_query() -> Query {
    Query {
        schools: portal_runtime::demo::SCHOOLS
            .iter()
            .enumerate()
            .map(|(index, school)| SchoolRef::new(school.0, index))
            .collect(),
        ..query(0, &["websites-cms", "comms-hub", "sonar", "mis"])
    }
}

async fn demo_store(dir: &std::path::Path) -> Arc<Counting> {
    let pool = DbPool::connect_lazy(&DbSettings::new(sqlite_url(dir))).unwrap();
    pool.migrate(&MIGRATIONS).await.unwrap();
    let inner = for_pool(&pool);
    portal_subscription::demo::seed(inner.as_ref())
        .await
        .unwrap();
    Arc::new(Counting {
        inner,
        queries: AtomicUsize::new(0),
    })
}

fn views(store: &Arc<Counting>, refresh: Duration) -> Views {
    Views::new(
        store.clone(),
        &ViewArgs {
            eligibility_refresh: refresh,
            ..ViewArgs::default()
        },
    )
}

#[tokio::test]
async fn one_pair_and_four_thousand_pairs_cost_the_same_two_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path()).await;
    let catalog = store.inner.load_catalog().await.unwrap();
    // No copy kept: every call reads the trust, and checks the schools it does not know.
    let views = views(&store, Duration::ZERO);

    let small = query(1, &["sonar"]);
    eligibility::load(&views, store.as_ref(), &small)
        .await
        .unwrap();
    let for_one_pair = store.queries.swap(0, Ordering::SeqCst);

    let large = query(1_000, &["websites-cms", "comms-hub", "sonar", "mis"]);
    let view = eligibility::load(&views, store.as_ref(), &large)
        .await
        .unwrap();
    let for_four_thousand = store.queries.swap(0, Ordering::SeqCst);

    assert_eq!(for_one_pair, 2);
    assert_eq!(for_four_thousand, for_one_pair);
    let answers = eligibility::evaluate(&view, &catalog, &large);
    assert_eq!(answers.pairs.len(), 4_000);
    assert!(
        answers.trust.unwrap().eligible(),
        "the demo trust holds Portal"
    );
}

#[tokio::test]
async fn a_trust_read_once_is_answered_from_memory_until_a_write_through_this_server() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path()).await;
    let catalog = store.inner.load_catalog().await.unwrap();
    let views = views(&store, Duration::from_secs(1));
    let query = demo_query();

    eligibility::load(&views, store.as_ref(), &query)
        .await
        .unwrap();
    assert_eq!(
        store.queries.swap(0, Ordering::SeqCst),
        1,
        "one read of the trust"
    );
    let view = eligibility::load(&views, store.as_ref(), &query)
        .await
        .unwrap();
    assert_eq!(
        store.queries.swap(0, Ordering::SeqCst),
        0,
        "answered from memory"
    );
    let before = eligibility::evaluate(&view, &catalog, &query);
    let eligible_before = before.pairs.iter().filter(|v| v.eligible()).count();

    // Cancel one subscription in force, as the gRPC edge does: write, then invalidate.
    let in_force = before
        .pairs
        .iter()
        .find_map(|v| v.subscription.filter(|_| v.eligible()))
        .unwrap()
        .clone();
    let mut cancelled = in_force.clone();
    cancelled.status = portal_subscription::domain::Status::Cancelled;
    cancelled.cancel_time = Some(query.at - chrono::Duration::days(1));
    cancelled.version += 1;
    assert!(store.inner.replace_subscription(&cancelled).await.unwrap());
    views.invalidate(&query.trust_id);

    let view = eligibility::load(&views, store.as_ref(), &query)
        .await
        .unwrap();
    assert_eq!(store.queries.swap(0, Ordering::SeqCst), 1, "read again");
    let after = eligibility::evaluate(&view, &catalog, &query);
    assert_eq!(
        after.pairs.iter().filter(|v| v.eligible()).count(),
        eligible_before - 1
    );
}

#[tokio::test]
async fn a_write_through_another_replica_is_noticed_by_the_revision_check() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path()).await;
    let views = views(&store, Duration::from_secs(1));
    let trust = portal_runtime::demo::TRUST_ID;

    let first = views.trust(trust).await.unwrap();
    assert_eq!(views.drop_stale().await.unwrap(), 0, "nothing changed yet");

    // Another replica writes: this one is not told.
    let mut changed = first.of_organization(trust)[0].clone();
    changed.end_time = Some(changed.start_time + chrono::Duration::days(400));
    changed.version += 1;
    assert!(store.inner.replace_subscription(&changed).await.unwrap());
    assert!(Arc::ptr_eq(&views.trust(trust).await.unwrap(), &first));

    assert_eq!(views.drop_stale().await.unwrap(), 1);
    let second = views.trust(trust).await.unwrap();
    assert!(second.revision > first.revision);
    assert!(
        second
            .of_organization(trust)
            .iter()
            .any(|s| s.id == changed.id && s.end_time == changed.end_time)
    );
}

#[tokio::test]
async fn the_least_recently_used_trust_is_dropped_beyond_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path()).await;
    let trust = portal_runtime::demo::TRUST_ID;
    let other = portal_runtime::demo::OTHER_TRUST_ID;
    let inner = store.inner.clone();
    let size = |id| {
        let inner = inner.clone();
        async move { inner.trust_snapshot(id).await.unwrap().subscriptions.len() }
    };
    let (own, others) = (size(trust).await, size(other).await);
    assert!(own > 0 && others > 0);
    let views = Views::new(
        store.clone(),
        &ViewArgs {
            eligibility_refresh: Duration::from_secs(1),
            eligibility_cache_size: own.max(others),
        },
    );

    let first = views.trust(trust).await.unwrap();
    assert!(Arc::ptr_eq(&views.trust(trust).await.unwrap(), &first));
    views.trust(other).await.unwrap();
    store.queries.store(0, Ordering::SeqCst);
    let again = views.trust(trust).await.unwrap();
    assert_eq!(store.queries.load(Ordering::SeqCst), 1, "read again");
    assert!(!Arc::ptr_eq(&again, &first));
}
