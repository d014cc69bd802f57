//! The storage conformance suite: every test runs against SQLite, and against PostgreSQL when
//! `PORTAL_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use portal_runtime::db::testing::{postgres_url, sqlite_url};
use portal_runtime::db::{DbPool, DbSettings};
use portal_runtime::vocab::{ProductKey, RequestId, SubscriptionId, TrustId};
use portal_subscription::MIGRATIONS;
use portal_subscription::domain::{
    CreateOutcome, ListFilter, OrgKind, OrganizationId, RequestKey, Scope, Status, Subscription,
    SubscriptionPage,
};
use portal_subscription::store::{Store, open};

const TRUST: TrustId = TrustId::from_u128(0x00000000_0000_4000_8000_0000000000a1);
const OTHER_TRUST: TrustId = TrustId::from_u128(0x00000000_0000_4000_8000_0000000000b1);
const SCHOOL: OrganizationId = OrganizationId::from_u128(0x00000000_0000_4000_8000_0000000000a2);
const SCHOOL_2: OrganizationId = OrganizationId::from_u128(0x00000000_0000_4000_8000_0000000000a3);

/// A trust as the holder of its own subscriptions.
fn org(trust: TrustId) -> OrganizationId {
    trust.cast()
}

struct Db {
    _dir: Option<tempfile::TempDir>,
    pool: DbPool,
    store: Arc<dyn Store>,
}

impl Db {
    async fn open(url: String, dir: Option<tempfile::TempDir>) -> Self {
        let pool = DbPool::connect_lazy(&DbSettings::new(url)).unwrap();
        pool.migrate(&MIGRATIONS).await.unwrap();
        let store = open(&pool);
        Self {
            _dir: dir,
            pool,
            store,
        }
    }

    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::open(sqlite_url(dir.path()), Some(dir)).await
    }

    async fn postgres() -> Option<Self> {
        Some(Self::open(postgres_url().await?, None).await)
    }
}

fn t(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, day, 0, 0, 0).unwrap() + Duration::microseconds(123_457)
}

fn subscription(trust: TrustId, kind: OrgKind, org: OrganizationId, product: &str) -> Subscription {
    Subscription {
        id: SubscriptionId::generate(),
        trust_id: trust,
        organization_kind: kind,
        organization_id: org,
        product_key: ProductKey::from_known(product),
        status: Status::Active,
        start_time: t(1),
        end_time: Some(t(20)),
        cancel_time: None,
        create_time: t(1),
        update_time: t(1),
        version: 1,
    }
}

fn school(product: &str) -> Subscription {
    subscription(TRUST, OrgKind::School, SCHOOL, product)
}

async fn create(store: &dyn Store, s: &Subscription) -> Subscription {
    match store.create_subscription(s, None).await.unwrap() {
        CreateOutcome::Created(created) => created,
        other => panic!("expected a creation, got {other:?}"),
    }
}

fn request(id: &str, fingerprint: &str) -> RequestKey {
    RequestKey {
        caller: "billing".into(),
        request_id: RequestId::parse_optional(id).unwrap().unwrap(),
        fingerprint: fingerprint.into(),
    }
}

async fn the_catalogue_is_seeded_by_the_migrations(db: Db) {
    let catalog = db.store.load_catalog().await.unwrap();
    let keys: Vec<&str> = catalog.products().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "comms-hub",
            "mis",
            "portal",
            "sonar",
            "sonar-multi-school",
            "trust-mis",
            "websites-cms"
        ]
    );
    let portal = catalog.product("portal").unwrap();
    assert_eq!(portal.scope, Scope::Trust);
    let roles: Vec<&str> = portal.roles.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        roles,
        [
            "account-owner",
            "account-admin",
            "full-edit",
            "partial-edit"
        ]
    );
    assert_eq!(catalog.product("mis").unwrap().roles.len(), 4);
    assert_eq!(
        catalog.product("websites-cms").unwrap().scope,
        Scope::School
    );
    let from_portal = catalog.equivalences_of("portal", Some("account-owner"));
    assert_eq!(from_portal.len(), 1);
    assert_eq!(from_portal[0].left.product_key, "websites-cms");
    assert_eq!(from_portal[0].left.role_key, "administrator");
    assert_eq!(catalog.equivalences_of("websites-cms", None).len(), 3);
}

async fn migrations_applied_twice_change_nothing(db: Db) {
    db.pool.migrate(&MIGRATIONS).await.unwrap();
    assert_eq!(db.store.load_catalog().await.unwrap().products().len(), 7);
}

async fn a_created_subscription_reads_back_exactly(db: Db) {
    let mut open_ended = school("sonar");
    open_ended.end_time = None;
    open_ended.status = Status::Trial;
    let bounded = school("websites-cms");
    for s in [&open_ended, &bounded] {
        assert_eq!(&create(db.store.as_ref(), s).await, s);
        assert_eq!(
            db.store.get_subscription(s.id).await.unwrap().as_ref(),
            Some(s)
        );
    }
    assert_eq!(
        db.store
            .get_subscription(SubscriptionId::generate())
            .await
            .unwrap(),
        None
    );
}

async fn a_retried_request_id_returns_the_first_subscription_and_creates_nothing_more(db: Db) {
    let first = school("sonar");
    let key = request("req-1", "f1");
    let created = db
        .store
        .create_subscription(&first, Some(&key))
        .await
        .unwrap();
    assert_eq!(created, CreateOutcome::Created(first.clone()));
    let retry = school("sonar");
    let again = db
        .store
        .create_subscription(&retry, Some(&key))
        .await
        .unwrap();
    assert_eq!(again, CreateOutcome::Replayed(first.clone()));
    assert_eq!(db.store.get_subscription(retry.id).await.unwrap(), None);
}

async fn a_request_id_reused_for_another_request_is_reported(db: Db) {
    let first = school("sonar");
    db.store
        .create_subscription(&first, Some(&request("req-1", "f1")))
        .await
        .unwrap();
    let other = school("mis");
    let outcome = db
        .store
        .create_subscription(&other, Some(&request("req-1", "f2")))
        .await
        .unwrap();
    assert_eq!(outcome, CreateOutcome::RequestIdReused);
    assert_eq!(db.store.get_subscription(other.id).await.unwrap(), None);
}

async fn request_ids_of_different_callers_do_not_collide(db: Db) {
    let first = school("sonar");
    db.store
        .create_subscription(&first, Some(&request("req-1", "f1")))
        .await
        .unwrap();
    let second = school("sonar");
    let mut key = request("req-1", "f1");
    key.caller = "someone-else".into();
    let outcome = db
        .store
        .create_subscription(&second, Some(&key))
        .await
        .unwrap();
    assert_eq!(outcome, CreateOutcome::Created(second));
}

async fn concurrent_retries_of_one_request_create_one_subscription(db: Db) {
    let key = request("req-concurrent", "f1");
    let attempts: Vec<Subscription> = (0..8).map(|_| school("sonar")).collect();
    let outcomes = futures::future::join_all(
        attempts
            .iter()
            .map(|s| db.store.create_subscription(s, Some(&key))),
    )
    .await;
    let mut created = 0;
    let mut ids = HashSet::new();
    for outcome in outcomes {
        match outcome.unwrap() {
            CreateOutcome::Created(s) => {
                created += 1;
                ids.insert(s.id);
            }
            CreateOutcome::Replayed(s) => {
                ids.insert(s.id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        ids.len(),
        1,
        "every retry answers with the same subscription"
    );
}

async fn an_organisation_belongs_to_one_trust_and_one_kind(db: Db) {
    create(db.store.as_ref(), &school("sonar")).await;
    let elsewhere = subscription(OTHER_TRUST, OrgKind::School, SCHOOL, "mis");
    match db
        .store
        .create_subscription(&elsewhere, None)
        .await
        .unwrap()
    {
        CreateOutcome::OrganizationConflict(known) => {
            assert_eq!(known.trust_id, TRUST);
            assert_eq!(known.kind, OrgKind::School);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(db.store.get_subscription(elsewhere.id).await.unwrap(), None);
    let school_as_trust = subscription(SCHOOL.cast(), OrgKind::Trust, SCHOOL, "portal");
    assert!(matches!(
        db.store
            .create_subscription(&school_as_trust, None)
            .await
            .unwrap(),
        CreateOutcome::OrganizationConflict(_)
    ));
}

async fn a_replace_succeeds_only_against_the_version_it_read(db: Db) {
    let s = create(db.store.as_ref(), &school("sonar")).await;
    let mut cancelled = s.clone();
    cancelled.status = Status::Cancelled;
    cancelled.cancel_time = Some(t(10));
    cancelled.end_time = None;
    cancelled.update_time = t(9);
    cancelled.version = 2;
    assert!(db.store.replace_subscription(&cancelled).await.unwrap());
    assert_eq!(
        db.store.get_subscription(s.id).await.unwrap(),
        Some(cancelled.clone())
    );
    let mut stale = s.clone();
    stale.status = Status::Expired;
    stale.version = 2;
    assert!(!db.store.replace_subscription(&stale).await.unwrap());
    assert_eq!(
        db.store
            .get_subscription(s.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Cancelled
    );
}

async fn listing_pages_in_id_order_and_filters_by_organisation_and_product(db: Db) {
    let store = db.store.as_ref();
    let mut made = Vec::new();
    for product in ["sonar", "mis", "websites-cms"] {
        made.push(create(store, &school(product)).await);
        made.push(
            create(
                store,
                &subscription(TRUST, OrgKind::School, SCHOOL_2, product),
            )
            .await,
        );
    }
    made.push(
        create(
            store,
            &subscription(TRUST, OrgKind::Trust, org(TRUST), "portal"),
        )
        .await,
    );
    create(
        store,
        &subscription(OTHER_TRUST, OrgKind::Trust, org(OTHER_TRUST), "portal"),
    )
    .await;
    let mut ids: Vec<SubscriptionId> = made.iter().map(|s| s.id).collect();
    ids.sort();

    let page = |filter: &ListFilter, after: Option<SubscriptionId>, limit| SubscriptionPage {
        filter: filter.clone(),
        after,
        limit,
    };
    let all = ListFilter {
        trust_id: TRUST,
        organization_ids: vec![],
        product_key: None,
    };
    let first = store
        .list_subscriptions(&page(&all, None, 4))
        .await
        .unwrap();
    let rest = store
        .list_subscriptions(&page(&all, Some(first[3].id), 100))
        .await
        .unwrap();
    let listed: Vec<SubscriptionId> = first.iter().chain(&rest).map(|s| s.id).collect();
    assert_eq!(
        listed, ids,
        "a trust's subscriptions, in id order, no other trust's"
    );

    let of_school = ListFilter {
        trust_id: TRUST,
        organization_ids: vec![SCHOOL_2, org(TRUST)],
        product_key: None,
    };
    let listed = store
        .list_subscriptions(&page(&of_school, None, 100))
        .await
        .unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|s| s.organization_id != SCHOOL));

    let of_product = ListFilter {
        product_key: Some(ProductKey::from_known("mis")),
        ..of_school
    };
    let listed = store
        .list_subscriptions(&page(&of_product, None, 100))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].organization_id, SCHOOL_2);
    assert_eq!(listed[0].product_key, "mis");
}

async fn candidates_are_loaded_for_the_asked_organisations_and_products_of_the_trust(db: Db) {
    let store = db.store.as_ref();
    for product in ["sonar", "mis", "websites-cms"] {
        create(store, &school(product)).await;
        create(
            store,
            &subscription(TRUST, OrgKind::School, SCHOOL_2, product),
        )
        .await;
    }
    create(store, &school("sonar")).await;
    create(
        store,
        &subscription(TRUST, OrgKind::Trust, org(TRUST), "portal"),
    )
    .await;
    let orgs = vec![SCHOOL, org(TRUST)];
    let products = ["sonar", "portal"].map(ProductKey::from_known);
    let found = store
        .subscriptions_of(TRUST, &orgs, Some(&products))
        .await
        .unwrap();
    let mut pairs: Vec<(OrganizationId, &str)> = found
        .iter()
        .map(|s| (s.organization_id, s.product_key.as_str()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [(org(TRUST), "portal"), (SCHOOL, "sonar"), (SCHOOL, "sonar"),]
    );
    let every_product = store.subscriptions_of(TRUST, &orgs, None).await.unwrap();
    assert_eq!(every_product.len(), 5);
    let other_trust = store
        .subscriptions_of(OTHER_TRUST, &orgs, None)
        .await
        .unwrap();
    assert!(
        other_trust.is_empty(),
        "nothing of a trust is read under another"
    );
    let none = store.subscriptions_of(TRUST, &[], None).await.unwrap();
    assert!(none.is_empty());
}

async fn a_thousand_organisations_are_loaded_in_one_call(db: Db) {
    let store = db.store.as_ref();
    let mut orgs: Vec<OrganizationId> = (0..1_000).map(|_| OrganizationId::generate()).collect();
    orgs.push(SCHOOL);
    create(store, &school("sonar")).await;
    let products = ["sonar", "mis", "websites-cms", "comms-hub"].map(ProductKey::from_known);
    let found = store
        .subscriptions_of(TRUST, &orgs, Some(&products))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let outside = store
        .organizations_outside(OTHER_TRUST, &orgs)
        .await
        .unwrap();
    assert_eq!(outside.len(), 1);
    assert_eq!(outside[0].id, SCHOOL);
}

async fn organisations_outside_a_trust_are_its_trust_and_other_trusts_schools(db: Db) {
    let store = db.store.as_ref();
    create(store, &school("sonar")).await;
    create(
        store,
        &subscription(TRUST, OrgKind::Trust, org(TRUST), "portal"),
    )
    .await;
    let asked = [SCHOOL, org(TRUST), OrganizationId::generate()];
    let own = store.organizations_outside(TRUST, &asked).await.unwrap();
    assert_eq!(own.len(), 1, "its own school is not outside it: {own:?}");
    assert_eq!(own[0].id, org(TRUST));
    assert_eq!(own[0].kind, OrgKind::Trust);
    let mut other = store
        .organizations_outside(OTHER_TRUST, &asked)
        .await
        .unwrap();
    other.sort_by_key(|o| o.id);
    assert_eq!(other.len(), 2);
    assert_eq!(other[0].id, org(TRUST));
    assert_eq!(other[1].id, SCHOOL);
    assert_eq!(other[1].trust_id, TRUST);
    assert_eq!(other[1].kind, OrgKind::School);
}

async fn the_database_refuses_an_empty_period(db: Db) {
    let mut bad = school("sonar");
    bad.end_time = Some(bad.start_time);
    assert!(db.store.create_subscription(&bad, None).await.is_err());
    assert_eq!(db.store.get_subscription(bad.id).await.unwrap(), None);
}

async fn the_demo_seed_is_idempotent(db: Db) {
    portal_subscription::demo::seed(db.store.as_ref())
        .await
        .unwrap();
    let all = SubscriptionPage {
        filter: ListFilter {
            trust_id: TrustId::parse(portal_runtime::demo::TRUST_ID).unwrap(),
            organization_ids: vec![],
            product_key: None,
        },
        after: None,
        limit: 100,
    };
    let once = db.store.list_subscriptions(&all).await.unwrap();
    portal_subscription::demo::seed(db.store.as_ref())
        .await
        .unwrap();
    let twice = db.store.list_subscriptions(&all).await.unwrap();
    assert_eq!(once, twice);
    assert_eq!(once.len(), 2 + 5 + 4 + 2);
}

async fn every_write_to_a_trust_moves_its_revision_and_the_snapshot_holds_its_subscriptions(
    db: Db,
) {
    let store = db.store.as_ref();
    let revision = |id: TrustId| async move {
        store
            .trust_revisions(&[id])
            .await
            .unwrap()
            .first()
            .map(|(_, r)| *r)
    };
    let empty = store.trust_snapshot(TRUST).await.unwrap();
    assert_eq!(empty.revision, 0);
    assert!(empty.subscriptions.is_empty());
    assert_eq!(revision(TRUST).await, None);

    let own = create(
        store,
        &subscription(TRUST, OrgKind::Trust, org(TRUST), "portal"),
    )
    .await;
    let of_school = create(store, &school("sonar")).await;
    create(
        store,
        &subscription(OTHER_TRUST, OrgKind::Trust, org(OTHER_TRUST), "portal"),
    )
    .await;
    let after_creates = revision(TRUST).await.unwrap();

    let mut cancelled = of_school.clone();
    cancelled.status = Status::Cancelled;
    cancelled.cancel_time = Some(t(10));
    cancelled.version = 2;
    assert!(store.replace_subscription(&cancelled).await.unwrap());
    let after_replace = revision(TRUST).await.unwrap();
    assert!(after_replace > after_creates);
    // A refused replace (stale version) is not a write.
    assert!(!store.replace_subscription(&cancelled).await.unwrap());
    assert_eq!(revision(TRUST).await, Some(after_replace));

    let snapshot = store.trust_snapshot(TRUST).await.unwrap();
    assert_eq!(snapshot.revision, after_replace);
    let mut held: Vec<Subscription> = snapshot.subscriptions;
    held.sort_by_key(|s| s.id);
    let mut expected = vec![own, cancelled];
    expected.sort_by_key(|s| s.id);
    assert_eq!(
        held, expected,
        "the trust's own and its schools', no other trust's"
    );

    let both = store
        .trust_revisions(&[TRUST, OTHER_TRUST, TrustId::generate()])
        .await
        .unwrap();
    assert_eq!(both.len(), 2, "a trust never written has no revision");
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Db::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = super::Db::postgres().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    the_catalogue_is_seeded_by_the_migrations,
    migrations_applied_twice_change_nothing,
    a_created_subscription_reads_back_exactly,
    a_retried_request_id_returns_the_first_subscription_and_creates_nothing_more,
    a_request_id_reused_for_another_request_is_reported,
    request_ids_of_different_callers_do_not_collide,
    concurrent_retries_of_one_request_create_one_subscription,
    an_organisation_belongs_to_one_trust_and_one_kind,
    a_replace_succeeds_only_against_the_version_it_read,
    listing_pages_in_id_order_and_filters_by_organisation_and_product,
    candidates_are_loaded_for_the_asked_organisations_and_products_of_the_trust,
    a_thousand_organisations_are_loaded_in_one_call,
    organisations_outside_a_trust_are_its_trust_and_other_trusts_schools,
    the_database_refuses_an_empty_period,
    the_demo_seed_is_idempotent,
    every_write_to_a_trust_moves_its_revision_and_the_snapshot_holds_its_subscriptions,
);
