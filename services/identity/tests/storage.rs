//! The storage conformance suite: every test runs against SQLite, and against PostgreSQL when
//! `PORTAL_TEST_DATABASE_URL` is set (a fresh schema per test).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use portal_identity::MIGRATIONS;
use portal_identity::domain::{
    Account, AdminGrant, GrantBatch, GrantOutcome, GrantResult, GrantSpec, GrantStatus, NewAccount,
    NewSchool, NewTrust, StaffCursor, StaffFilter, StaffRecord, StaffStatus, StatusChangeQuery,
    SyncSummary,
};
use portal_identity::error::Error;
use portal_identity::store::{self, Store};
use portal_runtime::config::DatabaseArgs;
use portal_runtime::db::DbPool;
use portal_runtime::vocab::{
    AccountId, Email, Id, InvitationId, OrgKind, ProductKey, RequestId, RoleKey, SchoolId, StaffId,
    TrustId,
};

struct Ctx {
    store: Arc<dyn Store>,
    database: DatabaseArgs,
    pool: DbPool,
    _dir: tempfile::TempDir,
}

async fn ctx_for(url: String, dir: tempfile::TempDir) -> Ctx {
    let database = DatabaseArgs::with_max_connections(url, 8);
    let pool = DbPool::connect_lazy(&database.settings()).expect("pool");
    pool.migrate(&MIGRATIONS).await.expect("migrate");
    Ctx {
        store: store::open(&pool),
        database,
        pool,
        _dir: dir,
    }
}

async fn sqlite() -> Ctx {
    let dir = tempfile::tempdir().expect("dir");
    let url = portal_runtime::db::testing::sqlite_url(dir.path());
    ctx_for(url, dir).await
}

async fn postgres() -> Option<Ctx> {
    let url = portal_runtime::db::testing::postgres_url().await?;
    Some(ctx_for(url, tempfile::tempdir().expect("dir")).await)
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let ctx = super::sqlite().await;
                    super::$name(&ctx).await;
                    ctx.pool.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(ctx) = super::postgres().await else {
                        eprintln!("PORTAL_TEST_DATABASE_URL is not set; skipped");
                        return;
                    };
                    super::$name(&ctx).await;
                    ctx.pool.close().await;
                }
            )*
        }
    };
}

conformance!(
    a_trust_round_trips_and_a_repeated_request_id_returns_the_first_trust,
    schools_need_their_trust_and_a_unique_urn,
    schools_are_listed_by_id_after_a_cursor,
    a_sync_adds_updates_marks_left_and_reactivates,
    a_repeated_sync_changes_nothing_not_even_update_time,
    a_sync_of_an_unknown_trust_writes_nothing,
    a_large_snapshot_crosses_every_batch_size,
    syncs_of_two_trusts_leave_each_other_alone,
    staff_listing_filters_and_pages_by_name_then_id,
    seeded_staff_keep_their_ids_and_are_inserted_once,
    an_email_has_one_account,
    batch_grants_are_created_then_granted_then_held,
    a_new_role_of_a_held_product_replaces_the_old_one,
    batch_grants_refuse_foreign_schools_unknown_trusts_and_missing_accounts,
    concurrent_batch_grants_of_one_invitation_make_each_grant_once,
    activation_binds_pending_grants_and_checks_the_email,
    revocation_counts_only_what_it_changes,
    access_and_administrator_queries_see_only_grants_in_force,
    seeding_the_demo_twice_changes_nothing,
    a_trust_cannot_be_deleted_or_renumbered_under_its_grants,
    a_leavers_grants_are_suspended_at_their_trust_only_and_restored_when_they_return,
    access_is_withdrawn_one_product_or_all_but_never_the_last_account_owner,
    concurrent_withdrawals_never_take_a_trusts_last_account_owner,
);

fn t0() -> DateTime<Utc> {
    portal_runtime::clock::from_micros(1_750_000_000_000_000)
}

fn email(text: &str) -> Email {
    Email::parse(text).expect("email")
}

async fn trust(ctx: &Ctx) -> TrustId {
    let new = NewTrust {
        name: "Trust".into(),
        request_id: None,
    };
    ctx.store
        .create_trust(TrustId::generate(), new, t0())
        .await
        .expect("trust")
        .id
}

async fn school(ctx: &Ctx, trust_id: TrustId) -> SchoolId {
    let new = NewSchool {
        trust_id,
        name: "School".into(),
        urn: None,
        request_id: None,
    };
    ctx.store
        .create_school(SchoolId::generate(), new, t0())
        .await
        .expect("school")
        .id
}

/// A request id never used before.
fn request_id() -> Option<RequestId> {
    RequestId::parse_optional(&InvitationId::generate().to_string()).expect("request id")
}

fn rec(mis: &str, given: &str, family: &str, mail: &str) -> StaffRecord {
    StaffRecord {
        mis_id: mis.into(),
        given_name: given.into(),
        family_name: family.into(),
        email: email(mail),
        job_title: String::new(),
    }
}

fn sum(received: u32, added: u32, updated: u32, marked_left: u32, unchanged: u32) -> SyncSummary {
    SyncSummary {
        received,
        added,
        updated,
        marked_left,
        unchanged,
        ..SyncSummary::default()
    }
}

async fn all_staff(ctx: &Ctx, trust_id: TrustId) -> Vec<portal_identity::domain::StaffMember> {
    ctx.store
        .list_staff(trust_id, &StaffFilter::default(), None, 1_000_000)
        .await
        .expect("list")
}

async fn a_trust_round_trips_and_a_repeated_request_id_returns_the_first_trust(ctx: &Ctx) {
    let request_id = request_id();
    let first = ctx
        .store
        .create_trust(
            TrustId::generate(),
            NewTrust {
                name: "First".into(),
                request_id: request_id.clone(),
            },
            t0(),
        )
        .await
        .expect("create");
    let second = ctx
        .store
        .create_trust(
            TrustId::generate(),
            NewTrust {
                name: "Second".into(),
                request_id,
            },
            t0() + Duration::hours(1),
        )
        .await
        .expect("retry");
    assert_eq!(first, second);
    assert_eq!(
        ctx.store.get_trust(first.id).await.expect("get"),
        Some(first)
    );
    assert_eq!(
        ctx.store.get_trust(TrustId::generate()).await.expect("get"),
        None
    );
}

async fn schools_need_their_trust_and_a_unique_urn(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let create = |urn: Option<&str>, trust_id: TrustId, request_id: Option<RequestId>| {
        let new = NewSchool {
            trust_id,
            name: "School".into(),
            urn: urn.map(str::to_string),
            request_id,
        };
        ctx.store.create_school(SchoolId::generate(), new, t0())
    };
    let request_id = request_id();
    let first = create(Some("100"), trust_id, request_id.clone())
        .await
        .expect("create");
    let retried = create(Some("100"), trust_id, request_id)
        .await
        .expect("retry");
    assert_eq!(first, retried);
    assert!(matches!(
        create(Some("100"), trust_id, None).await,
        Err(Error::SchoolUrnExists(urn)) if urn == "100"
    ));
    assert!(matches!(
        create(None, TrustId::generate(), None).await,
        Err(Error::TrustNotFound(_))
    ));
    // Schools without a URN never conflict.
    create(None, trust_id, None).await.expect("no urn");
    create(None, trust_id, None).await.expect("no urn again");
    assert_eq!(
        ctx.store.get_school(first.id).await.expect("get"),
        Some(first)
    );
}

async fn schools_are_listed_by_id_after_a_cursor(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let other = trust(ctx).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(school(ctx, trust_id).await);
    }
    school(ctx, other).await;
    ids.sort();
    let first = ctx
        .store
        .list_schools(trust_id, None, 3)
        .await
        .expect("list");
    assert_eq!(first.iter().map(|s| s.id).collect::<Vec<_>>(), ids[..3]);
    let rest = ctx
        .store
        .list_schools(trust_id, Some(ids[2]), 10)
        .await
        .expect("list");
    assert_eq!(rest.iter().map(|s| s.id).collect::<Vec<_>>(), ids[3..]);
}

async fn a_sync_adds_updates_marks_left_and_reactivates(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let s = &ctx.store;
    let got = s
        .sync_staff(
            trust_id,
            vec![
                rec("1", "Ann", "Lee", "ann@s.org"),
                rec("2", "Bob", "Ray", "bob@s.org"),
                rec("3", "Cy", "Fox", "cy@s.org"),
            ],
            t0(),
        )
        .await
        .expect("sync");
    assert_eq!(got, sum(3, 3, 0, 0, 0));
    let got = s
        .sync_staff(
            trust_id,
            vec![
                rec("1", "Ann", "Lee", "ann.lee@s.org"),
                rec("2", "Bob", "Ray", "bob@s.org"),
            ],
            t0() + Duration::hours(1),
        )
        .await
        .expect("sync");
    assert_eq!(got, sum(2, 0, 1, 1, 1));
    let staff = all_staff(ctx, trust_id).await;
    let cy = staff.iter().find(|m| m.mis_id == "3").expect("cy");
    assert_eq!(cy.status, StaffStatus::Left);
    assert_eq!(cy.update_time, t0() + Duration::hours(1));
    let ann = staff.iter().find(|m| m.mis_id == "1").expect("ann");
    assert_eq!(ann.email.as_str(), "ann.lee@s.org");
    assert_eq!(ann.create_time, t0());
    let got = s
        .sync_staff(
            trust_id,
            vec![
                rec("1", "Ann", "Lee", "ann.lee@s.org"),
                rec("2", "Bob", "Ray", "bob@s.org"),
                rec("3", "Cy", "Fox", "cy@s.org"),
            ],
            t0() + Duration::hours(2),
        )
        .await
        .expect("sync");
    assert_eq!(got, sum(3, 0, 1, 0, 2));
    let staff = all_staff(ctx, trust_id).await;
    assert!(staff.iter().all(|m| m.status == StaffStatus::Active));
    // An empty snapshot marks everyone LEFT.
    let got = s
        .sync_staff(trust_id, vec![], t0() + Duration::hours(3))
        .await
        .expect("sync");
    assert_eq!(got, sum(0, 0, 0, 3, 0));
}

async fn a_repeated_sync_changes_nothing_not_even_update_time(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let snapshot: Vec<_> = (0..100)
        .map(|i| {
            rec(
                &format!("M{i}"),
                "G",
                &format!("F{i}"),
                &format!("p{i}@s.org"),
            )
        })
        .collect();
    ctx.store
        .sync_staff(trust_id, snapshot.clone(), t0())
        .await
        .expect("sync");
    let before = all_staff(ctx, trust_id).await;
    let got = ctx
        .store
        .sync_staff(trust_id, snapshot, t0() + Duration::days(1))
        .await
        .expect("sync");
    assert_eq!(got, sum(100, 0, 0, 0, 100));
    assert_eq!(all_staff(ctx, trust_id).await, before);
}

async fn a_sync_of_an_unknown_trust_writes_nothing(ctx: &Ctx) {
    let missing = TrustId::generate();
    let result = ctx
        .store
        .sync_staff(missing, vec![rec("1", "A", "B", "a@s.org")], t0())
        .await;
    assert!(matches!(result, Err(Error::TrustNotFound(id)) if id == missing));
    assert!(all_staff(ctx, missing).await.is_empty());
}

async fn a_large_snapshot_crosses_every_batch_size(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let n = 60_000;
    let snapshot: Vec<_> = (0..n)
        .map(|i| {
            rec(
                &format!("M{i}"),
                "G",
                &format!("F{i}"),
                &format!("p{i}@s.org"),
            )
        })
        .collect();
    let got = ctx
        .store
        .sync_staff(trust_id, snapshot.clone(), t0())
        .await
        .expect("sync");
    assert_eq!(got, sum(n, n, 0, 0, 0));
    // 22,000 records changed and 38,000 dropped: inserts, updates and LEFT marks all cross
    // the statement sizes of both databases.
    let changed: Vec<_> = snapshot[..22_000]
        .iter()
        .map(|r| StaffRecord {
            job_title: "New".into(),
            ..r.clone()
        })
        .collect();
    let kept = changed.len() as u32;
    let got = ctx
        .store
        .sync_staff(trust_id, changed, t0() + Duration::hours(1))
        .await
        .expect("sync");
    assert_eq!(got, sum(kept, 0, kept, n - kept, 0));
    let staff = all_staff(ctx, trust_id).await;
    assert_eq!(staff.len(), n as usize);
    assert_eq!(
        staff.iter().filter(|m| m.job_title == "New").count(),
        kept as usize
    );
    assert_eq!(
        staff
            .iter()
            .filter(|m| m.status == StaffStatus::Left)
            .count(),
        (n - kept) as usize
    );
}

async fn syncs_of_two_trusts_leave_each_other_alone(ctx: &Ctx) {
    let a = trust(ctx).await;
    let b = trust(ctx).await;
    // The same MIS id and email may exist in two trusts.
    ctx.store
        .sync_staff(a, vec![rec("1", "Ann", "Lee", "ann@s.org")], t0())
        .await
        .expect("sync a");
    ctx.store
        .sync_staff(b, vec![rec("1", "Ann", "Lee", "ann@s.org")], t0())
        .await
        .expect("sync b");
    ctx.store
        .sync_staff(b, vec![], t0())
        .await
        .expect("empty b");
    assert_eq!(all_staff(ctx, a).await[0].status, StaffStatus::Active);
    assert_eq!(all_staff(ctx, b).await[0].status, StaffStatus::Left);
    let member = &all_staff(ctx, a).await[0];
    assert_eq!(
        ctx.store.get_staff(a, member.id).await.expect("get"),
        Some(member.clone())
    );
    assert_eq!(ctx.store.get_staff(b, member.id).await.expect("get"), None);
}

async fn staff_listing_filters_and_pages_by_name_then_id(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    ctx.store
        .sync_staff(
            trust_id,
            vec![
                rec("1", "Sam", "Smith", "s1@s.org"),
                rec("2", "Sam", "Smith", "s2@s.org"),
                rec("3", "Ada", "Smith", "ada@s.org"),
                rec("4", "Zed", "Brown", "zed@s.org"),
                rec("5", "Kim", "Al_Smith", "kim@s.org"),
            ],
            t0(),
        )
        .await
        .expect("sync");
    let filter = |name: Option<&str>, mail: Option<&str>| StaffFilter {
        status: None,
        name_contains: name.map(str::to_string),
        email: mail.map(email),
    };
    let all = ctx
        .store
        .list_staff(trust_id, &filter(None, None), None, 100)
        .await
        .expect("list");
    let order: Vec<&str> = all.iter().map(|m| m.family_name.as_str()).collect();
    assert_eq!(order, vec!["Al_Smith", "Brown", "Smith", "Smith", "Smith"]);
    assert_eq!(all[2].given_name, "Ada");
    // Keyset pages through equal names by id.
    let mut seen = Vec::new();
    let mut cursor: Option<StaffCursor> = None;
    loop {
        let page = ctx
            .store
            .list_staff(trust_id, &filter(None, None), cursor.as_ref(), 2)
            .await
            .expect("page");
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(StaffCursor::of);
        seen.extend(page.into_iter().map(|m| m.id));
    }
    assert_eq!(seen, all.iter().map(|m| m.id).collect::<Vec<_>>());
    let smiths = ctx
        .store
        .list_staff(trust_id, &filter(Some("smith"), None), None, 100)
        .await
        .expect("list");
    assert_eq!(smiths.len(), 4);
    let underscore = ctx
        .store
        .list_staff(trust_id, &filter(Some("l_s"), None), None, 100)
        .await
        .expect("list");
    assert_eq!(underscore.len(), 1, "`_` is literal");
    let across = ctx
        .store
        .list_staff(trust_id, &filter(Some("samsmith"), None), None, 100)
        .await
        .expect("list");
    assert!(
        across.is_empty(),
        "a filter never spans given and family names"
    );
    let by_email = ctx
        .store
        .list_staff(trust_id, &filter(None, Some("ada@s.org")), None, 100)
        .await
        .expect("list");
    assert_eq!(by_email.len(), 1);
    let left = ctx
        .store
        .list_staff(
            trust_id,
            &StaffFilter {
                status: Some(StaffStatus::Left),
                ..StaffFilter::default()
            },
            None,
            100,
        )
        .await
        .expect("list");
    assert!(left.is_empty());
}

async fn seeded_staff_keep_their_ids_and_are_inserted_once(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let id = StaffId::generate();
    let members = vec![(id, rec("S1", "Sue", "Day", "sue@s.org"))];
    assert_eq!(
        ctx.store
            .insert_staff_if_missing(trust_id, members.clone(), t0())
            .await
            .expect("insert"),
        1
    );
    assert_eq!(
        ctx.store
            .insert_staff_if_missing(trust_id, members, t0())
            .await
            .expect("insert again"),
        0
    );
    let staff = all_staff(ctx, trust_id).await;
    assert_eq!(staff.len(), 1);
    assert_eq!(staff[0].id, id);
    // A later sync matches the seeded row on its MIS id.
    let got = ctx
        .store
        .sync_staff(trust_id, vec![rec("S1", "Sue", "Day", "sue@s.org")], t0())
        .await
        .expect("sync");
    assert_eq!(got, sum(1, 0, 0, 0, 1));
}

async fn register(ctx: &Ctx, mail: &str) -> Result<Account, Error> {
    let new = NewAccount {
        email: email(mail),
        given_name: "A".into(),
        family_name: "B".into(),
        password_hash: "$argon2id$stub".into(),
        invitation_id: None,
    };
    ctx.store
        .create_account(AccountId::generate(), new, t0())
        .await
}

async fn an_email_has_one_account(ctx: &Ctx) {
    let account = register(ctx, "one@s.org").await.expect("create");
    assert!(matches!(
        register(ctx, "ONE@s.org").await,
        Err(Error::AccountExists)
    ));
    assert_eq!(
        ctx.store
            .account_by_email(&email("one@s.org"))
            .await
            .expect("by email"),
        Some(account.clone())
    );
    assert_eq!(
        ctx.store.get_account(account.id).await.expect("by id"),
        Some(account.clone())
    );
    let (found, hash) = ctx
        .store
        .credentials(&email("one@s.org"))
        .await
        .expect("credentials")
        .expect("found");
    assert_eq!(found, account);
    assert_eq!(hash, "$argon2id$stub");
    assert!(
        ctx.store
            .credentials(&email("two@s.org"))
            .await
            .expect("credentials")
            .is_none()
    );
}

fn spec<K>(kind: OrgKind, org: Id<K>, product: &str, role: &str) -> GrantSpec {
    GrantSpec {
        kind,
        organization_id: org.cast(),
        product_key: ProductKey::from_known(product),
        role_key: RoleKey::from_known(role),
    }
}

fn batch(
    invitation_id: InvitationId,
    trust_id: TrustId,
    mail: &str,
    specs: Vec<GrantSpec>,
    activate: bool,
) -> GrantBatch {
    GrantBatch {
        invitation_id,
        trust_id,
        email: email(mail),
        staff_id: Some(StaffId::generate()),
        specs,
        activate,
    }
}

/// Makes a batch's grants at [`t0`]; `what` names the call if it fails.
async fn grant(ctx: &Ctx, batch: GrantBatch, what: &str) -> Vec<GrantResult> {
    ctx.store.batch_grant(batch, t0()).await.expect(what)
}

async fn batch_grants_are_created_then_granted_then_held(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let school_id = school(ctx, trust_id).await;
    let specs = vec![
        spec(OrgKind::Trust, trust_id, "portal", "full-edit"),
        spec(OrgKind::School, school_id, "websites-cms", "writer"),
    ];
    let first_invitation = InvitationId::generate();
    let first = grant(
        ctx,
        batch(first_invitation, trust_id, "p@s.org", specs.clone(), false),
        "grant",
    )
    .await;
    assert!(first.iter().all(|r| r.outcome == GrantOutcome::Created
        && r.grant.status == GrantStatus::Pending
        && r.grant.account_id.is_none()));
    let again = grant(
        ctx,
        batch(first_invitation, trust_id, "p@s.org", specs.clone(), false),
        "grant again",
    )
    .await;
    assert!(
        again
            .iter()
            .all(|r| r.outcome == GrantOutcome::AlreadyGranted)
    );
    assert_eq!(
        again.iter().map(|r| r.grant.id).collect::<Vec<_>>(),
        first.iter().map(|r| r.grant.id).collect::<Vec<_>>()
    );
    let mut more = specs.clone();
    more.push(spec(OrgKind::School, school_id, "comms-hub", "writer"));
    let second = grant(
        ctx,
        batch(InvitationId::generate(), trust_id, "p@s.org", more, false),
        "second invitation",
    )
    .await;
    let outcomes: Vec<GrantOutcome> = second.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            GrantOutcome::AlreadyHeld,
            GrantOutcome::AlreadyHeld,
            GrantOutcome::Created
        ]
    );
    assert_eq!(second[0].grant.id, first[0].grant.id);
    assert_eq!(
        ctx.store
            .grants_of_invitation(first_invitation)
            .await
            .expect("grants")
            .len(),
        2
    );
}

async fn a_new_role_of_a_held_product_replaces_the_old_one(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let school_id = school(ctx, trust_id).await;
    let first_invitation = InvitationId::generate();
    let first = grant(
        ctx,
        batch(
            first_invitation,
            trust_id,
            "p@s.org",
            vec![
                spec(OrgKind::Trust, trust_id, "portal", "full-edit"),
                spec(OrgKind::School, school_id, "websites-cms", "writer"),
            ],
            false,
        ),
        "first",
    )
    .await;
    let second_invitation = InvitationId::generate();
    let second = grant(
        ctx,
        batch(
            second_invitation,
            trust_id,
            "p@s.org",
            vec![
                spec(OrgKind::Trust, trust_id, "portal", "partial-edit"),
                spec(OrgKind::School, school_id, "websites-cms", "writer"),
            ],
            false,
        ),
        "second",
    )
    .await;
    assert_eq!(second[0].outcome, GrantOutcome::RoleChanged);
    assert_eq!(
        second[0].grant.previous_role_key,
        Some(RoleKey::from_known("full-edit"))
    );
    assert_eq!(second[1].outcome, GrantOutcome::AlreadyHeld);
    assert_eq!(second[1].grant.id, first[1].grant.id);
    let old = ctx
        .store
        .grants_of_invitation(first_invitation)
        .await
        .expect("grants");
    let portal = old
        .iter()
        .find(|g| g.product_key.as_str() == "portal")
        .expect("the first portal grant");
    assert_eq!(portal.status, GrantStatus::Revoked, "replaced");
    // A retry answers with the grant made, which still names the role it replaced.
    let again = grant(
        ctx,
        batch(
            second_invitation,
            trust_id,
            "p@s.org",
            vec![spec(OrgKind::Trust, trust_id, "portal", "partial-edit")],
            false,
        ),
        "again",
    )
    .await;
    assert_eq!(again[0].outcome, GrantOutcome::AlreadyGranted);
    assert_eq!(again[0].grant.id, second[0].grant.id);
    assert_eq!(
        again[0].grant.previous_role_key,
        Some(RoleKey::from_known("full-edit"))
    );
}

async fn batch_grants_refuse_foreign_schools_unknown_trusts_and_missing_accounts(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let other = trust(ctx).await;
    let foreign = school(ctx, other).await;
    let own = school(ctx, trust_id).await;
    let result = ctx
        .store
        .batch_grant(
            batch(
                InvitationId::generate(),
                trust_id,
                "p@s.org",
                vec![
                    spec(OrgKind::School, own, "websites-cms", "writer"),
                    spec(OrgKind::School, foreign, "websites-cms", "writer"),
                ],
                false,
            ),
            t0(),
        )
        .await;
    assert!(matches!(result, Err(Error::ForeignOrganizations(rows)) if rows == vec![1]));
    let missing = TrustId::generate();
    let result = ctx
        .store
        .batch_grant(
            batch(
                InvitationId::generate(),
                missing,
                "p@s.org",
                vec![spec(OrgKind::Trust, missing, "portal", "full-edit")],
                false,
            ),
            t0(),
        )
        .await;
    assert!(matches!(result, Err(Error::TrustNotFound(_))));
    let invitation = InvitationId::generate();
    let result = ctx
        .store
        .batch_grant(
            batch(
                invitation,
                trust_id,
                "nobody@s.org",
                vec![spec(OrgKind::Trust, trust_id, "portal", "full-edit")],
                true,
            ),
            t0(),
        )
        .await;
    assert!(matches!(result, Err(Error::NoAccountForEmail)));
    assert!(
        ctx.store
            .grants_of_invitation(invitation)
            .await
            .expect("grants")
            .is_empty()
    );
}

async fn concurrent_batch_grants_of_one_invitation_make_each_grant_once(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let mut schools = Vec::new();
    for _ in 0..4 {
        schools.push(school(ctx, trust_id).await);
    }
    let specs: Vec<GrantSpec> = schools
        .iter()
        .map(|s| spec(OrgKind::School, *s, "websites-cms", "writer"))
        .collect();
    let invitation = InvitationId::generate();
    let calls = (0..8).map(|_| {
        let store = ctx.store.clone();
        let request = batch(invitation, trust_id, "p@s.org", specs.clone(), false);
        tokio::spawn(async move { store.batch_grant(request, t0()).await })
    });
    let results = futures::future::join_all(calls).await;
    let mut created = 0;
    for result in results {
        let result = result.expect("join").expect("grant");
        created += result
            .iter()
            .filter(|r| r.outcome == GrantOutcome::Created)
            .count();
    }
    assert_eq!(created, 4);
    assert_eq!(
        ctx.store
            .grants_of_invitation(invitation)
            .await
            .expect("grants")
            .len(),
        4
    );
}

async fn activation_binds_pending_grants_and_checks_the_email(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let invitation = InvitationId::generate();
    grant(
        ctx,
        batch(
            invitation,
            trust_id,
            "new@s.org",
            vec![spec(OrgKind::Trust, trust_id, "portal", "full-edit")],
            false,
        ),
        "grant",
    )
    .await;
    let stranger = register(ctx, "stranger@s.org").await.expect("account");
    assert!(matches!(
        ctx.store
            .activate_grants(invitation, stranger.id, t0())
            .await,
        Err(Error::AccountEmailMismatch)
    ));
    assert!(matches!(
        ctx.store
            .activate_grants(invitation, AccountId::generate(), t0())
            .await,
        Err(Error::AccountNotFound(_))
    ));
    let account = register(ctx, "new@s.org").await.expect("account");
    let later = t0() + Duration::minutes(10);
    let grants = ctx
        .store
        .activate_grants(invitation, account.id, later)
        .await
        .expect("activate");
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].status, GrantStatus::Active);
    assert_eq!(grants[0].account_id, Some(account.id));
    assert_eq!(grants[0].update_time, later);
    assert_eq!(grants[0].create_time, t0());
    let again = ctx
        .store
        .activate_grants(invitation, account.id, later + Duration::minutes(1))
        .await
        .expect("again");
    assert_eq!(again, grants);
}

async fn revocation_counts_only_what_it_changes(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let account = register(ctx, "active@s.org").await.expect("account");
    let active = InvitationId::generate();
    let pending = InvitationId::generate();
    grant(
        ctx,
        batch(
            active,
            trust_id,
            account.email.as_str(),
            vec![spec(OrgKind::Trust, trust_id, "portal", "full-edit")],
            true,
        ),
        "grant",
    )
    .await;
    grant(
        ctx,
        batch(
            pending,
            trust_id,
            "pending@s.org",
            vec![spec(OrgKind::Trust, trust_id, "portal", "full-edit")],
            false,
        ),
        "grant",
    )
    .await;
    assert_eq!(
        ctx.store
            .revoke_grants(active, true, t0())
            .await
            .expect("revoke"),
        0
    );
    assert_eq!(
        ctx.store
            .revoke_grants(pending, true, t0())
            .await
            .expect("revoke"),
        1
    );
    assert_eq!(
        ctx.store
            .revoke_grants(pending, false, t0())
            .await
            .expect("revoke"),
        0
    );
    assert_eq!(
        ctx.store
            .revoke_grants(active, false, t0())
            .await
            .expect("revoke"),
        1
    );
    let grants = ctx
        .store
        .grants_of_invitation(active)
        .await
        .expect("grants");
    assert_eq!(grants[0].status, GrantStatus::Revoked);
    // The same invitation does not make revoked access again.
    let again = grant(
        ctx,
        batch(
            active,
            trust_id,
            account.email.as_str(),
            vec![spec(OrgKind::Trust, trust_id, "portal", "full-edit")],
            true,
        ),
        "grant again",
    )
    .await;
    assert_eq!(again[0].outcome, GrantOutcome::AlreadyGranted);
    assert_eq!(again[0].grant.status, GrantStatus::Revoked);
}

async fn access_and_administrator_queries_see_only_grants_in_force(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let other = trust(ctx).await;
    let school_id = school(ctx, trust_id).await;
    let account = register(ctx, "person@s.org").await.expect("account");
    assert!(
        !ctx.store
            .has_access_in_trust(account.id, trust_id)
            .await
            .expect("access")
    );
    // Pending for the email (made before the account existed elsewhere in time).
    grant(
        ctx,
        batch(
            InvitationId::generate(),
            trust_id,
            "person@s.org",
            vec![spec(OrgKind::School, school_id, "websites-cms", "writer")],
            false,
        ),
        "pending",
    )
    .await;
    assert!(
        ctx.store
            .has_access_in_trust(account.id, trust_id)
            .await
            .expect("access")
    );
    let admin_invitation = InvitationId::generate();
    grant(
        ctx,
        batch(
            admin_invitation,
            other,
            "person@s.org",
            vec![spec(OrgKind::Trust, other, "portal", "account-admin")],
            true,
        ),
        "active",
    )
    .await;
    let grants = ctx.store.access_grants(&account).await.expect("access");
    assert_eq!(grants.len(), 2);
    assert_eq!(
        ctx.store.admin_grants(account.id).await.expect("admin"),
        vec![AdminGrant {
            trust_id: other,
            kind: OrgKind::Trust,
            role_key: RoleKey::from_known("account-admin")
        }]
    );
    ctx.store
        .revoke_grants(admin_invitation, false, t0())
        .await
        .expect("revoke");
    assert!(
        ctx.store
            .admin_grants(account.id)
            .await
            .expect("admin")
            .is_empty()
    );
    assert_eq!(
        ctx.store
            .access_grants(&account)
            .await
            .expect("access")
            .len(),
        1
    );
    assert!(
        !ctx.store
            .has_access_in_trust(account.id, other)
            .await
            .expect("access")
    );
}

async fn seeding_the_demo_twice_changes_nothing(ctx: &Ctx) {
    use portal_runtime::demo::{ADMIN_EMAIL, OTHER_TRUST_ID, SCHOOLS, STAFF, TRUST_ID};
    let trust_id = TrustId::parse(TRUST_ID).expect("demo trust");
    let other_trust_id = TrustId::parse(OTHER_TRUST_ID).expect("demo trust");
    portal_identity::seed_demo(&ctx.database)
        .await
        .expect("seed");
    let admin = ctx
        .store
        .account_by_email(&email(ADMIN_EMAIL))
        .await
        .expect("admin")
        .expect("seeded");
    let staff_before = all_staff(ctx, trust_id).await;
    let access_before = ctx.store.access_grants(&admin).await.expect("access");
    portal_identity::seed_demo(&ctx.database)
        .await
        .expect("seed again");
    assert_eq!(all_staff(ctx, trust_id).await, staff_before);
    assert_eq!(
        ctx.store.access_grants(&admin).await.expect("access"),
        access_before
    );
    assert_eq!(staff_before.len(), STAFF.len());
    assert!(staff_before.iter().any(|m| m.id.to_string() == STAFF[0].0));
    assert_eq!(
        ctx.store
            .list_schools(trust_id, None, 100)
            .await
            .expect("schools")
            .len(),
        SCHOOLS.len()
    );
    assert!(!all_staff(ctx, other_trust_id).await.is_empty());
}

/// Grants name their trust without a foreign key on PostgreSQL (a guard refuses what the key
/// guarded), with one on SQLite: on both, a trust cannot go away under its grants.
async fn a_trust_cannot_be_deleted_or_renumbered_under_its_grants(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    grant(
        ctx,
        batch(
            InvitationId::generate(),
            trust_id,
            "p@s.org",
            vec![spec(OrgKind::Trust, trust_id, "portal", "full-edit")],
            false,
        ),
        "grant",
    )
    .await;
    // Ids are UUIDs made here: safe to write into the statements.
    let delete = format!("DELETE FROM trusts WHERE id = '{trust_id}'");
    let renumber = format!(
        "UPDATE trusts SET id = '{}' WHERE id = '{trust_id}'",
        TrustId::generate()
    );
    for statement in [&delete, &renumber] {
        let refused = match &ctx.pool {
            DbPool::Sqlite(pool) => sqlx::query(statement).execute(pool.pool()).await.is_err(),
            DbPool::Postgres(pool) => sqlx::query(statement).execute(pool.pool()).await.is_err(),
        };
        assert!(refused, "`{statement}` was allowed");
    }
    let renamed = format!("UPDATE trusts SET name = 'Renamed' WHERE id = '{trust_id}'");
    match &ctx.pool {
        DbPool::Sqlite(pool) => sqlx::query(&renamed).execute(pool.pool()).await.map(|_| ()),
        DbPool::Postgres(pool) => sqlx::query(&renamed).execute(pool.pool()).await.map(|_| ()),
    }
    .expect("a trust can still be renamed");
    let held = ctx
        .store
        .get_trust(trust_id)
        .await
        .expect("read")
        .expect("the trust is still there");
    assert_eq!(held.name, "Renamed");
}

async fn a_leavers_grants_are_suspended_at_their_trust_only_and_restored_when_they_return(
    ctx: &Ctx,
) {
    let trust_id = trust(ctx).await;
    let other = trust(ctx).await;
    let school_id = school(ctx, trust_id).await;
    let t = |h: i64| t0() + chrono::Duration::hours(h);
    let ann = rec("1", "Ann", "Owner", "ann@s.org");
    let bob = rec("2", "Bob", "Keeper", "bob@s.org");
    ctx.store
        .sync_staff(trust_id, vec![ann.clone(), bob.clone()], t(0))
        .await
        .expect("first sync");
    ctx.store
        .sync_staff(other, vec![ann.clone()], t(0))
        .await
        .expect("the other trust");
    let account = register(ctx, "ann@s.org").await.expect("account");
    let own = |org_trust: TrustId, specs| {
        batch(
            InvitationId::generate(),
            org_trust,
            "ann@s.org",
            specs,
            true,
        )
    };
    grant(
        ctx,
        own(
            trust_id,
            vec![
                spec(OrgKind::Trust, trust_id, "portal", "account-owner"),
                spec(OrgKind::School, school_id, "websites-cms", "writer"),
            ],
        ),
        "ann's grants",
    )
    .await;
    grant(
        ctx,
        own(
            other,
            vec![spec(OrgKind::Trust, other, "portal", "full-edit")],
        ),
        "ann at the other trust",
    )
    .await;

    // Ann leaves this trust: her grants here are suspended, the other trust's stay.
    let summary = ctx
        .store
        .sync_staff(trust_id, vec![bob.clone()], t(1))
        .await
        .expect("leaver sync");
    assert_eq!(summary.marked_left, 1);
    assert_eq!(summary.suspended_grants, 2);
    assert!(summary.last_account_owner_left, "she was the only owner");
    let in_force = ctx.store.access_grants(&account).await.expect("access");
    assert_eq!(in_force.len(), 1);
    assert_eq!(in_force[0].trust_id, other);
    let admin = ctx.store.admin_grants(account.id).await.expect("admin");
    assert!(admin.iter().all(|g| g.trust_id != trust_id), "not honoured");
    let changes = ctx
        .store
        .staff_status_changes(&StatusChangeQuery {
            since: portal_runtime::clock::to_micros(t(1)),
            after: None,
            limit: 100,
        })
        .await
        .expect("changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].status, StaffStatus::Left);
    assert_eq!(changes[0].trust_id, trust_id);

    // She is listed again: her grants are back as they were.
    let summary = ctx
        .store
        .sync_staff(trust_id, vec![ann, bob], t(2))
        .await
        .expect("return sync");
    assert_eq!(summary.restored_grants, 2);
    assert!(!summary.last_account_owner_left);
    let in_force = ctx.store.access_grants(&account).await.expect("access");
    assert_eq!(in_force.len(), 3);
    assert!(in_force.iter().all(|g| g.status == GrantStatus::Active));
    let changes = ctx
        .store
        .staff_status_changes(&StatusChangeQuery {
            since: portal_runtime::clock::to_micros(t(2)),
            after: None,
            limit: 100,
        })
        .await
        .expect("changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].status, StaffStatus::Active);
}

async fn access_is_withdrawn_one_product_or_all_but_never_the_last_account_owner(ctx: &Ctx) {
    let trust_id = trust(ctx).await;
    let school_id = school(ctx, trust_id).await;
    let ann = rec("1", "Ann", "Owner", "ann@s.org");
    let bob = rec("2", "Bob", "Keeper", "bob@s.org");
    ctx.store
        .sync_staff(trust_id, vec![ann, bob], t0())
        .await
        .expect("sync");
    let staff = all_staff(ctx, trust_id).await;
    let id_of = |mail: &str| {
        staff
            .iter()
            .find(|s| s.email.as_str() == mail)
            .expect("staff")
            .id
    };
    let ann_id = id_of("ann@s.org");
    register(ctx, "ann@s.org").await.expect("account");
    let grants = vec![
        spec(OrgKind::Trust, trust_id, "portal", "account-owner"),
        spec(OrgKind::School, school_id, "websites-cms", "writer"),
        spec(OrgKind::School, school_id, "comms-hub", "writer"),
    ];
    grant(
        ctx,
        batch(
            InvitationId::generate(),
            trust_id,
            "ann@s.org",
            grants,
            true,
        ),
        "ann",
    )
    .await;
    let listed = ctx
        .store
        .staff_grants(trust_id, ann_id)
        .await
        .expect("list")
        .expect("known staff");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].kind, OrgKind::Trust, "trust level first");
    assert!(
        ctx.store
            .staff_grants(trust_id, StaffId::generate())
            .await
            .expect("list")
            .is_none()
    );

    // One product at one school.
    let one = (school_id.cast(), ProductKey::from_known("websites-cms"));
    let withdrawn = ctx
        .store
        .withdraw_grants(trust_id, ann_id, Some(one.clone()), t0())
        .await
        .expect("withdraw one");
    assert_eq!(withdrawn, 1);
    assert_eq!(
        ctx.store
            .withdraw_grants(trust_id, ann_id, Some(one), t0())
            .await
            .expect("again"),
        0
    );
    // Everything would take the only Account Owner: refused, nothing changes.
    assert!(matches!(
        ctx.store
            .withdraw_grants(trust_id, ann_id, None, t0())
            .await,
        Err(Error::LastAccountOwner)
    ));
    assert_eq!(
        ctx.store
            .staff_grants(trust_id, ann_id)
            .await
            .expect("list")
            .expect("known")
            .len(),
        2
    );
    // With a second owner, it goes through.
    register(ctx, "bob@s.org").await.expect("account");
    grant(
        ctx,
        batch(
            InvitationId::generate(),
            trust_id,
            "bob@s.org",
            vec![spec(OrgKind::Trust, trust_id, "portal", "account-owner")],
            true,
        ),
        "bob",
    )
    .await;
    assert_eq!(
        ctx.store
            .withdraw_grants(trust_id, ann_id, None, t0())
            .await
            .expect("withdraw all"),
        2
    );
    assert!(
        ctx.store
            .staff_grants(trust_id, ann_id)
            .await
            .expect("list")
            .expect("known")
            .is_empty()
    );
}

async fn concurrent_withdrawals_never_take_a_trusts_last_account_owner(ctx: &Ctx) {
    for round in 0..12 {
        let trust_id = trust(ctx).await;
        let (ann, bob) = (format!("ann{round}@w.org"), format!("bob{round}@w.org"));
        ctx.store
            .sync_staff(
                trust_id,
                vec![
                    rec("1", "Ann", "Owner", &ann),
                    rec("2", "Bob", "Owner", &bob),
                ],
                t0(),
            )
            .await
            .expect("sync");
        let staff = all_staff(ctx, trust_id).await;
        let id_of = |mail: &str| {
            staff
                .iter()
                .find(|s| s.email.as_str() == mail)
                .expect("staff")
                .id
        };
        for (mail, who) in [(&ann, "ann"), (&bob, "bob")] {
            register(ctx, mail).await.expect("account");
            let owner = vec![spec(OrgKind::Trust, trust_id, "portal", "account-owner")];
            grant(
                ctx,
                batch(InvitationId::generate(), trust_id, mail, owner, true),
                who,
            )
            .await;
        }
        let (first, second) = tokio::join!(
            ctx.store.withdraw_grants(trust_id, id_of(&ann), None, t0()),
            ctx.store.withdraw_grants(trust_id, id_of(&bob), None, t0()),
        );
        let refused = [&first, &second]
            .iter()
            .filter(|r| matches!(r, Err(Error::LastAccountOwner)))
            .count();
        let withdrawn = [&first, &second].iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            (refused, withdrawn),
            (1, 1),
            "round {round}: one withdrawal goes through, the other keeps the last Account Owner"
        );
    }
}
