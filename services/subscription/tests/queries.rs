//! The eligibility query costs a constant number of storage queries, whatever its size, and
//! none once the trust's subscriptions are in memory, until they change.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use portal_runtime::Principal;
use portal_runtime::clock::ManualClock;
use portal_runtime::db::testing::sqlite_url;
use portal_runtime::db::{DbPool, DbSettings};
use portal_runtime::vocab::{ProductKey, SchoolId, SubscriptionId, TrustId};
use portal_subscription::MIGRATIONS;
use portal_subscription::app::{App, ViewArgs, Views};
use portal_subscription::domain::{
    Answers, Cancellation, Catalog, CreateOutcome, Layout, Organization, OrganizationId, Query,
    RequestKey, SchoolRef, Status, Subscription, SubscriptionPage, TrustSnapshot,
};
use portal_subscription::error::Result;
use portal_subscription::store::{Store, open};

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
    async fn load_catalog(&self) -> Result<Catalog> {
        self.count();
        self.inner.load_catalog().await
    }

    async fn create_subscription(
        &self,
        subscription: &Subscription,
        request: Option<&RequestKey>,
    ) -> Result<CreateOutcome> {
        self.count();
        self.inner.create_subscription(subscription, request).await
    }

    async fn get_subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>> {
        self.count();
        self.inner.get_subscription(id).await
    }

    async fn replace_subscription(&self, updated: &Subscription) -> Result<bool> {
        self.count();
        self.inner.replace_subscription(updated).await
    }

    async fn list_subscriptions(&self, page: &SubscriptionPage) -> Result<Vec<Subscription>> {
        self.count();
        self.inner.list_subscriptions(page).await
    }

    async fn subscriptions_of(
        &self,
        trust_id: TrustId,
        organization_ids: &[OrganizationId],
        product_keys: Option<&[ProductKey]>,
    ) -> Result<Vec<Subscription>> {
        self.count();
        self.inner
            .subscriptions_of(trust_id, organization_ids, product_keys)
            .await
    }

    async fn organizations_outside(
        &self,
        trust_id: TrustId,
        ids: &[OrganizationId],
    ) -> Result<Vec<Organization>> {
        self.count();
        self.inner.organizations_outside(trust_id, ids).await
    }

    async fn trust_snapshot(&self, trust_id: TrustId) -> Result<TrustSnapshot> {
        self.count();
        self.inner.trust_snapshot(trust_id).await
    }

    async fn trust_revisions(&self, trust_ids: &[TrustId]) -> Result<Vec<(TrustId, i64)>> {
        self.count();
        self.inner.trust_revisions(trust_ids).await
    }
}

fn demo_trust() -> TrustId {
    TrustId::parse(portal_runtime::demo::TRUST_ID).unwrap()
}

fn invitation() -> Principal {
    Principal::Service {
        name: "invitation".into(),
    }
}

fn query(schools: usize, products: &[&str]) -> Query {
    Query {
        trust_id: demo_trust(),
        trust_product: Some(ProductKey::from_known("portal")),
        school_products: products.iter().map(|p| ProductKey::from_known(p)).collect(),
        schools: (0..schools)
            .map(|index| SchoolRef {
                id: SchoolId::parse(&format!("44444444-0000-4000-8000-{index:012}")).unwrap(),
                index,
            })
            .collect(),
        at: Some(Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap()),
        layout: Layout::Full,
    }
}

/// The demo trust's own schools, which its subscriptions already register.
fn demo_query() -> Query {
    Query {
        schools: portal_runtime::demo::SCHOOLS
            .iter()
            .enumerate()
            .map(|(index, school)| SchoolRef {
                id: SchoolId::parse(school.0).unwrap(),
                index,
            })
            .collect(),
        ..query(0, &["websites-cms", "comms-hub", "sonar", "mis"])
    }
}

async fn demo_store(dir: &std::path::Path) -> Arc<Counting> {
    let pool = DbPool::connect_lazy(&DbSettings::new(sqlite_url(dir))).unwrap();
    pool.migrate(&MIGRATIONS).await.unwrap();
    let inner = open(&pool);
    portal_subscription::demo::seed(inner.as_ref())
        .await
        .unwrap();
    Arc::new(Counting {
        inner,
        queries: AtomicUsize::new(0),
    })
}

fn args(refresh: Duration) -> ViewArgs {
    ViewArgs {
        eligibility_refresh: refresh,
        ..ViewArgs::default()
    }
}

fn views(store: &Arc<Counting>, refresh: Duration) -> Views {
    Views::new(store.clone(), &args(refresh))
}

/// The use cases over the counting store, asked by the invitation service.
fn app(store: &Arc<Counting>, refresh: Duration) -> App {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap());
    App::new(store.clone(), None, clock, &args(refresh))
}

async fn check(app: &App, query: &Query, catalog: &Arc<Catalog>) -> Answers {
    app.check_eligibility(&invitation(), query.clone(), catalog.clone())
        .await
        .unwrap()
}

#[tokio::test]
async fn one_pair_and_four_thousand_pairs_cost_the_same_two_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path()).await;
    let catalog = Arc::new(store.inner.load_catalog().await.unwrap());
    // No copy kept: every call reads the trust, and checks the schools it does not know.
    let app = app(&store, Duration::ZERO);

    let small = query(1, &["sonar"]);
    check(&app, &small, &catalog).await;
    let for_one_pair = store.queries.swap(0, Ordering::SeqCst);

    let large = query(1_000, &["websites-cms", "comms-hub", "sonar", "mis"]);
    let answers = check(&app, &large, &catalog).await;
    let for_four_thousand = store.queries.swap(0, Ordering::SeqCst);

    assert_eq!(for_one_pair, 2);
    assert_eq!(for_four_thousand, for_one_pair);
    let answers = answers.evaluate();
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
    let catalog = Arc::new(store.inner.load_catalog().await.unwrap());
    let app = app(&store, Duration::from_secs(1));
    let query = demo_query();

    check(&app, &query, &catalog).await;
    assert_eq!(
        store.queries.swap(0, Ordering::SeqCst),
        1,
        "one read of the trust"
    );
    let answers = check(&app, &query, &catalog).await;
    assert_eq!(
        store.queries.swap(0, Ordering::SeqCst),
        0,
        "answered from memory"
    );
    let before = answers.evaluate();
    let eligible_before = before.pairs.iter().filter(|v| v.eligible()).count();

    // Cancel one subscription in force through this server: it writes, then drops its copy.
    let in_force = before
        .pairs
        .iter()
        .find_map(|v| v.subscription.filter(|_| v.eligible()))
        .unwrap()
        .id;
    let billing = app
        .billing(&Principal::Service {
            name: "billing".into(),
        })
        .unwrap();
    let cancellation = Cancellation {
        id: in_force,
        at: Some(query.at.unwrap() - chrono::Duration::days(1)),
    };
    let cancelled = app
        .cancel_subscription(&billing, cancellation)
        .await
        .unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    store.queries.store(0, Ordering::SeqCst);

    let answers = check(&app, &query, &catalog).await;
    assert_eq!(store.queries.swap(0, Ordering::SeqCst), 1, "read again");
    let after = answers.evaluate();
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
    let trust = demo_trust();

    let first = views.trust(trust).await.unwrap();
    assert_eq!(views.drop_stale().await.unwrap(), 0, "nothing changed yet");

    // Another replica writes: this one is not told.
    let mut changed = first.of(trust.cast())[0].clone();
    changed.end_time = Some(changed.start_time + chrono::Duration::days(400));
    changed.version += 1;
    assert!(store.inner.replace_subscription(&changed).await.unwrap());
    assert!(Arc::ptr_eq(&views.trust(trust).await.unwrap(), &first));

    assert_eq!(views.drop_stale().await.unwrap(), 1);
    let second = views.trust(trust).await.unwrap();
    assert!(second.revision > first.revision);
    assert!(
        second
            .of(trust.cast())
            .iter()
            .any(|s| s.id == changed.id && s.end_time == changed.end_time)
    );
}

#[tokio::test]
async fn the_least_recently_used_trust_is_dropped_beyond_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(dir.path()).await;
    let trust = demo_trust();
    let other = TrustId::parse(portal_runtime::demo::OTHER_TRUST_ID).unwrap();
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
