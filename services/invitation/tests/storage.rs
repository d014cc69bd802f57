//! One conformance suite for the invitation store, run on SQLite always and on PostgreSQL
//! when `PORTAL_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use portal_invitation::MIGRATIONS;
use portal_invitation::domain::{
    Delivery, EmailDetails, GrantState, GrantedAccess, Invitation, LinkHash, LinkToken, ListFilter,
    NewStep, Org, PageKey, SchoolAccess, Status, StepKind, StepOutcome, TrustAccess,
};
use portal_invitation::store::{
    CompleteAccept, CreateOutcome, NewInvitation, Refusal, Store, open,
};
use portal_runtime::db::{DbPool, DbSettings, testing};
use portal_runtime::vocab::{
    AccountId, Email, InvitationId, ProductKey, RequestId, RoleKey, SchoolId, StaffId, TrustId,
};

const TRUST: TrustId = TrustId::from_u128(0x7f3c2a10_0000_4000_8000_000000000001);
const OTHER_TRUST: TrustId = TrustId::from_u128(0x7f3c2a10_0000_4000_8000_000000000002);

async fn stores() -> Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = DbPool::connect_lazy(&DbSettings::new(testing::sqlite_url(dir.path()))).unwrap();
    sqlite.migrate(&MIGRATIONS).await.unwrap();
    let mut out = vec![("sqlite", open(&sqlite), Some(dir))];
    if let Some(url) = testing::postgres_url().await {
        let pg = DbPool::connect_lazy(&DbSettings::new(url)).unwrap();
        pg.migrate(&MIGRATIONS).await.unwrap();
        out.push(("postgres", open(&pg), None));
    }
    out
}

fn invitation(trust: TrustId, staff: StaffId, product: &str, now: DateTime<Utc>) -> Invitation {
    Invitation {
        id: InvitationId::generate(),
        trust_id: trust,
        trust_name: "Northfield Learning Trust".into(),
        staff_id: staff,
        staff_email: Email::parse("chloe.patel@northfield.example.org").unwrap(),
        staff_given_name: "Chloe".into(),
        inviter_account_id: AccountId::generate(),
        trust_access: TrustAccess {
            product_key: ProductKey::from_known(product),
            role_key: RoleKey::from_known("full-edit"),
        },
        school_access: Some(SchoolAccess {
            product_keys: vec![
                ProductKey::from_known("websites-cms"),
                ProductKey::from_known("comms-hub"),
            ],
            role_key: RoleKey::from_known("writer"),
            school_ids: vec![SchoolId::generate()],
        }),
        status: Status::Pending,
        delivery: Delivery::SignUpLink,
        granted: vec![GrantedAccess {
            org: Org::Trust(trust),
            product_key: ProductKey::from_known(product),
            role_key: RoleKey::from_known("full-edit"),
            state: GrantState::Pending,
            previous_role_key: None,
        }],
        skipped: vec![],
        expire_time: Some(now + Duration::days(14)),
        current_link_hash: None,
        accepting: false,
        account_id: None,
        create_time: now,
        update_time: now,
        accept_until: 0,
        settled_by: None,
        revoke_reason: None,
    }
}

fn step(invitation_id: InvitationId, kind: StepKind, claimed_until: i64) -> NewStep {
    let step = match kind {
        StepKind::Grant => NewStep::grant(invitation_id),
        StepKind::Revoke => NewStep::revoke_dropped(invitation_id),
        StepKind::Activate => NewStep::activate(invitation_id, AccountId::generate()),
        StepKind::Email => NewStep::email(
            invitation_id,
            &EmailDetails {
                trust_name: "Northfield Learning Trust".into(),
                inviter_name: "Ada Admin".into(),
                product_names: vec!["Portal".into()],
            },
        ),
    };
    step.leased_until(claimed_until)
}

fn wall() -> i64 {
    Utc::now().timestamp_micros()
}

/// A link hash no invitation uses yet.
fn hash() -> LinkHash {
    LinkToken::generate().hash()
}

fn request_id(text: &str) -> RequestId {
    RequestId::parse_optional(text).unwrap().unwrap()
}

/// Stores `invitation` with `steps` at `now`, for `request` when given.
async fn create(
    store: &dyn Store,
    invitation: &Invitation,
    request: Option<(AccountId, &RequestId)>,
    steps: &[NewStep],
    now: DateTime<Utc>,
) -> CreateOutcome {
    store
        .create(NewInvitation {
            invitation,
            request,
            steps,
            now,
            wall_now: wall(),
        })
        .await
        .unwrap()
}

/// Creates, expecting nothing to revoke first; says whether earlier revokes were open.
async fn created(store: &dyn Store, invitation: &Invitation, steps: &[NewStep]) -> bool {
    match create(store, invitation, None, steps, invitation.create_time).await {
        CreateOutcome::Created {
            revoke_steps,
            earlier_revokes_open,
        } => {
            assert_eq!(revoke_steps, Vec::new());
            earlier_revokes_open
        }
        other => panic!("expected a creation, got {other:?}"),
    }
}

#[tokio::test]
async fn an_invitation_round_trips_with_its_outcome() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let inv = invitation(TRUST, StaffId::generate(), "portal", now);
        created(&*store, &inv, &[]).await;
        let got = store.get(inv.id).await.unwrap().expect(db);
        assert_eq!(got.school_access, inv.school_access, "{db}");
        assert_eq!(got.granted, inv.granted, "{db}");
        assert_eq!(got.staff_email, inv.staff_email, "{db}");
        assert_eq!(got.status, Status::Pending, "{db}");
        assert_eq!(
            got.expire_time.map(|t| t.timestamp_micros()),
            inv.expire_time.map(|t| t.timestamp_micros()),
            "{db}"
        );
        assert!(
            store.get(InvitationId::generate()).await.unwrap().is_none(),
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_second_pending_invitation_for_the_same_staff_and_product_is_refused() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let staff = StaffId::generate();
        let first = invitation(TRUST, staff, "portal", now);
        created(&*store, &first, &[]).await;
        let second = invitation(TRUST, staff, "portal", now);
        let outcome = create(&*store, &second, None, &[], now).await;
        assert_eq!(
            outcome,
            CreateOutcome::PendingExists {
                invitation_id: first.id
            },
            "{db}"
        );
        // Another product, or after the first one expired, is fine.
        created(
            &*store,
            &invitation(TRUST, staff, "sonar-multi-school", now),
            &[],
        )
        .await;
        let later = now + Duration::days(15);
        let third = invitation(TRUST, staff, "portal", later);
        match create(&*store, &third, None, &[], later).await {
            CreateOutcome::Created { revoke_steps, .. } => {
                assert_eq!(revoke_steps.len(), 1, "{db}")
            }
            other => panic!("{db}: {other:?}"),
        }
        assert_eq!(
            store.get(first.id).await.unwrap().unwrap().status,
            Status::Expired,
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_repeated_request_id_returns_the_first_invitation() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let admin = AccountId::generate();
        let req = request_id("req-1");
        let first = invitation(TRUST, StaffId::generate(), "portal", now);
        create(&*store, &first, Some((admin, &req)), &[], now).await;
        let retry = invitation(TRUST, StaffId::generate(), "portal", now);
        let outcome = create(&*store, &retry, Some((admin, &req)), &[], now).await;
        assert_eq!(
            outcome,
            CreateOutcome::Replayed {
                invitation_id: first.id
            },
            "{db}"
        );
        assert!(store.get(retry.id).await.unwrap().is_none(), "{db}");
        // The same request id of another caller is another request.
        let someone_else = AccountId::generate();
        let other = invitation(TRUST, StaffId::generate(), "portal", now);
        create(&*store, &other, Some((someone_else, &req)), &[], now).await;
        assert_eq!(
            store.find_create_request(someone_else, &req).await.unwrap(),
            Some(other.id),
            "{db}"
        );
    }
}

#[tokio::test]
async fn lists_are_newest_first_filtered_and_paginated() {
    for (db, store, _dir) in stores().await {
        let start = Utc::now();
        let staff = StaffId::generate();
        let mut ids = Vec::new();
        for i in 0..5 {
            let at = start + Duration::seconds(i);
            let product = if i % 2 == 0 { "portal" } else { "trust-mis" };
            let mut inv = invitation(TRUST, StaffId::generate(), product, at);
            if i == 4 {
                inv.staff_id = staff;
            }
            created(&*store, &inv, &[]).await;
            ids.push(inv.id);
        }
        created(
            &*store,
            &invitation(OTHER_TRUST, StaffId::generate(), "portal", start),
            &[],
        )
        .await;
        let all = ListFilter {
            trust_id: TRUST,
            status: None,
            staff_id: None,
            product_key: None,
        };
        let page1 = store.list(&all, None, 3).await.unwrap();
        let got: Vec<_> = page1.iter().map(|i| i.id).collect();
        assert_eq!(got, vec![ids[4], ids[3], ids[2]], "{db}");
        let after = PageKey::of(&page1[2]);
        let page2 = store.list(&all, Some(&after), 3).await.unwrap();
        let got: Vec<_> = page2.iter().map(|i| i.id).collect();
        assert_eq!(got, vec![ids[1], ids[0]], "{db}");

        let by_product = ListFilter {
            product_key: Some(ProductKey::from_known("trust-mis")),
            ..all.clone()
        };
        assert_eq!(
            store.list(&by_product, None, 10).await.unwrap().len(),
            2,
            "{db}"
        );
        let by_school_product = ListFilter {
            product_key: Some(ProductKey::from_known("comms-hub")),
            ..all.clone()
        };
        assert_eq!(
            store
                .list(&by_school_product, None, 10)
                .await
                .unwrap()
                .len(),
            5,
            "{db}"
        );
        let by_staff = ListFilter {
            staff_id: Some(staff),
            ..all.clone()
        };
        assert_eq!(
            store.list(&by_staff, None, 10).await.unwrap()[0].id,
            ids[4],
            "{db}"
        );
        let by_status = ListFilter {
            status: Some(Status::Accepted),
            ..all
        };
        assert!(
            store.list(&by_status, None, 10).await.unwrap().is_empty(),
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_resend_supersedes_links_cancels_unsent_emails_and_queues_a_new_one() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let inv = invitation(TRUST, StaffId::generate(), "portal", now);
        let first_email = step(inv.id, StepKind::Email, 0);
        created(&*store, &inv, std::slice::from_ref(&first_email)).await;
        let first_link = hash();
        assert!(
            store.install_link(inv.id, &first_link, now).await.unwrap(),
            "{db}"
        );
        assert_eq!(
            store
                .find_link(&first_link)
                .await
                .unwrap()
                .unwrap()
                .current_link_hash,
            Some(first_link.clone()),
            "{db}"
        );
        let later = now + Duration::days(3);
        let email = step(inv.id, StepKind::Email, 0);
        let resent = store
            .resend(inv.id, later, later + Duration::days(14), &email, wall())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(resent.current_link_hash, None, "{db}");
        assert_eq!(
            resent.expire_time.unwrap().timestamp(),
            (later + Duration::days(14)).timestamp()
        );
        assert_eq!(
            store.open_steps(inv.id, StepKind::Email).await.unwrap(),
            vec![email.id],
            "{db}"
        );
        // An expired invitation is not resent.
        let too_late = later + Duration::days(20);
        let refused = store
            .resend(
                inv.id,
                too_late,
                too_late,
                &step(inv.id, StepKind::Email, 0),
                wall(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            refused.unwrap_err(),
            Refusal::NotPending(Status::Expired),
            "{db}"
        );
        assert!(
            store
                .resend(InvitationId::generate(), now, now, &email, wall())
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_revoke_is_final_and_stops_new_links() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let inv = invitation(TRUST, StaffId::generate(), "portal", now);
        created(&*store, &inv, &[]).await;
        let revoked = store
            .revoke(inv.id, now, &step(inv.id, StepKind::Revoke, 0), wall())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(revoked.status, Status::Revoked, "{db}");
        // Revoking again returns it unchanged and queues nothing more.
        store
            .revoke(inv.id, now, &step(inv.id, StepKind::Revoke, 0), wall())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .open_steps(inv.id, StepKind::Revoke)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            !store.install_link(inv.id, &hash(), now).await.unwrap(),
            "{db}"
        );
        // The staff member may be invited again.
        created(
            &*store,
            &invitation(TRUST, inv.staff_id, "portal", now),
            &[],
        )
        .await;
    }
}

#[tokio::test]
async fn the_sweeper_expires_pending_invitations_past_their_expiry_once() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let due = invitation(
            TRUST,
            StaffId::generate(),
            "portal",
            now - Duration::days(15),
        );
        let fresh = invitation(TRUST, StaffId::generate(), "portal", now);
        created(&*store, &due, &[]).await;
        created(&*store, &fresh, &[]).await;
        let expired = store.expire_due(now, 100, wall()).await.unwrap();
        assert!(expired.contains(&due.id), "{db}");
        assert!(!expired.contains(&fresh.id), "{db}");
        assert_eq!(
            store.get(due.id).await.unwrap().unwrap().status,
            Status::Expired
        );
        assert_eq!(
            store
                .open_steps(due.id, StepKind::Revoke)
                .await
                .unwrap()
                .len(),
            1
        );
        let again = store.expire_due(now, 100, wall()).await.unwrap();
        assert!(!again.contains(&due.id), "{db}");
    }
}

#[tokio::test]
async fn outbox_steps_are_claimed_once_retried_later_and_revokes_wait_for_grants() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let inv = invitation(TRUST, StaffId::generate(), "portal", now);
        let leased = step(inv.id, StepKind::Grant, wall() + 60_000_000);
        let email = step(inv.id, StepKind::Email, 0);
        created(&*store, &inv, &[leased.clone(), email.clone()]).await;
        store
            .revoke(inv.id, now, &step(inv.id, StepKind::Revoke, 0), wall())
            .await
            .unwrap();
        // The leased grant is not claimable, and the revoke waits for it.
        let t = wall();
        let claimed = store.claim_due(t, t + 60_000_000, 100).await.unwrap();
        let mine: Vec<_> = claimed
            .iter()
            .filter(|s| s.invitation_id == inv.id)
            .collect();
        assert!(mine.is_empty(), "{db}: {mine:?}");
        // The lease holder fails: retry later.
        store
            .retry_step(leased.id, t + 1, "identity down")
            .await
            .unwrap();
        let t = wall() + 10;
        let claimed = store.claim_due(t, t + 60_000_000, 100).await.unwrap();
        let mine: Vec<_> = claimed
            .iter()
            .filter(|s| s.invitation_id == inv.id)
            .collect();
        assert_eq!(mine.len(), 1, "{db}");
        assert_eq!(mine[0].kind, StepKind::Grant);
        assert_eq!(mine[0].attempts, 1);
        // Claimed: nobody else gets it while the lease runs.
        assert!(
            store
                .claim_step(leased.id, t, t + 1)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .claim_due(t, t + 1, 100)
                .await
                .unwrap()
                .iter()
                .all(|s| s.invitation_id != inv.id)
        );
        store
            .finish_steps(&[leased.id], StepOutcome::Done, t)
            .await
            .unwrap();
        let claimed = store.claim_due(t, t + 60_000_000, 100).await.unwrap();
        let mine: Vec<_> = claimed
            .iter()
            .filter(|s| s.invitation_id == inv.id)
            .collect();
        assert_eq!(mine.len(), 1, "{db}");
        assert_eq!(mine[0].kind, StepKind::Revoke, "{db}");
        store
            .finish_steps(&[mine[0].id], StepOutcome::Done, t)
            .await
            .unwrap();
        assert!(
            store
                .open_steps(inv.id, StepKind::Revoke)
                .await
                .unwrap()
                .is_empty()
        );
        // The revoke cancelled the unsent email.
        assert!(
            store
                .open_steps(inv.id, StepKind::Email)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn an_accept_is_recorded_once_with_its_request_id() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let mut inv = invitation(TRUST, StaffId::generate(), "portal", now);
        let link = hash();
        inv.current_link_hash = Some(link.clone());
        created(&*store, &inv, &[]).await;
        assert!(
            store
                .claim_accept(inv.id, &link, now, wall() + 60_000_000)
                .await
                .unwrap()
        );
        assert!(store.get(inv.id).await.unwrap().unwrap().accepting, "{db}");
        let mut granted = inv.granted.clone();
        granted[0].state = GrantState::Active;
        let (first, second) = (AccountId::generate(), AccountId::generate());
        let r1 = request_id("r1");
        let accept = |account_id, request_id| CompleteAccept {
            id: inv.id,
            account_id,
            request_id,
            granted: &granted,
            now,
            wall_now: wall(),
        };
        assert!(
            store
                .complete_accept(accept(first, Some(&r1)))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .complete_accept(accept(second, None))
                .await
                .unwrap()
                .is_none(),
            "{db}"
        );
        let got = store.get(inv.id).await.unwrap().unwrap();
        assert_eq!(got.status, Status::Accepted);
        assert!(
            !got.being_accepted(wall()),
            "{db}: the claim ends with the accept"
        );
        assert_eq!(got.account_id, Some(first));
        assert_eq!(got.granted[0].state, GrantState::Active);
        assert_eq!(
            store.find_accept_request(inv.id, &r1).await.unwrap(),
            Some(first),
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_new_grant_waits_for_the_revokes_of_the_same_staff_members_earlier_invitations() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let staff = StaffId::generate();
        let old = invitation(TRUST, staff, "portal", now);
        assert!(!created(&*store, &old, &[]).await, "{db}: nothing open yet");
        let revoke = step(old.id, StepKind::Revoke, 0);
        store.revoke(old.id, now, &revoke, wall()).await.unwrap();
        assert_eq!(
            store.open_revokes_of_staff(TRUST, staff).await.unwrap(),
            vec![revoke.id],
            "{db}"
        );
        let new = invitation(TRUST, staff, "portal", now);
        let grant = step(new.id, StepKind::Grant, 0);
        assert!(
            created(&*store, &new, std::slice::from_ref(&grant)).await,
            "{db}: the create reports the open revoke"
        );
        let t = wall() + 10;
        let claimed = store.claim_due(t, t + 60_000_000, 100).await.unwrap();
        let mine: Vec<_> = claimed
            .iter()
            .filter(|s| s.invitation_id == old.id || s.invitation_id == new.id)
            .map(|s| s.kind)
            .collect();
        assert_eq!(mine, vec![StepKind::Revoke], "{db}: the grant waits");
        store
            .finish_steps(&[revoke.id], StepOutcome::Done, t)
            .await
            .unwrap();
        assert!(
            store
                .open_revokes_of_staff(TRUST, staff)
                .await
                .unwrap()
                .is_empty()
        );
        let claimed = store.claim_due(t, t + 60_000_000, 100).await.unwrap();
        assert!(
            claimed.iter().any(|s| s.id == grant.id),
            "{db}: then the grant runs"
        );
    }
}

#[tokio::test]
async fn a_link_stored_with_its_invitation_is_found_by_its_hash() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let mut inv = invitation(TRUST, StaffId::generate(), "portal", now);
        let link = hash();
        inv.current_link_hash = Some(link.clone());
        created(&*store, &inv, &[]).await;
        let found = store.find_link(&link).await.unwrap();
        assert_eq!(found.map(|i| i.id), Some(inv.id), "{db}");
        assert!(store.find_link(&hash()).await.unwrap().is_none(), "{db}");
    }
}

#[tokio::test]
async fn finished_steps_are_recorded_together_and_never_run_again() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let inv = invitation(TRUST, StaffId::generate(), "portal", now);
        let steps: Vec<NewStep> = (0..3).map(|_| step(inv.id, StepKind::Email, 0)).collect();
        created(&*store, &inv, &steps).await;
        let ids: Vec<_> = steps.iter().map(|s| s.id).collect();
        let t = wall() + 10;
        store
            .finish_steps(&ids[..2], StepOutcome::Done, t)
            .await
            .unwrap();
        store.finish_steps(&[], StepOutcome::Done, t).await.unwrap();
        let due: Vec<_> = store
            .claim_due(t, t + 60_000_000, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.invitation_id == inv.id)
            .map(|s| s.id)
            .collect();
        assert_eq!(due, vec![ids[2]], "{db}: only the unfinished one");
    }
}

#[tokio::test]
async fn an_accepts_claim_and_a_revoke_exclude_each_other_whichever_commits_first() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let lease = wall() + 60_000_000;
        // The accept claims first: revoke, resend and the sweeper leave the invitation alone.
        let mut inv = invitation(
            TRUST,
            StaffId::generate(),
            "portal",
            now - Duration::days(13),
        );
        let link = hash();
        inv.current_link_hash = Some(link.clone());
        created(&*store, &inv, &[]).await;
        assert!(
            !store
                .claim_accept(inv.id, &hash(), now, lease)
                .await
                .unwrap(),
            "{db}: another link"
        );
        assert!(
            store.claim_accept(inv.id, &link, now, lease).await.unwrap(),
            "{db}"
        );
        let revoked = store
            .revoke(inv.id, now, &step(inv.id, StepKind::Revoke, 0), wall())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(revoked.unwrap_err(), Refusal::BeingAccepted, "{db}");
        let resent = store
            .resend(
                inv.id,
                now,
                now + Duration::days(14),
                &step(inv.id, StepKind::Email, 0),
                wall(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resent.unwrap_err(), Refusal::BeingAccepted, "{db}");
        let later = now + Duration::days(2);
        assert!(
            !store
                .expire_due(later, 100, wall())
                .await
                .unwrap()
                .contains(&inv.id),
            "{db}"
        );
        // Released (nothing was registered): the revoke goes through.
        store.release_accept(inv.id).await.unwrap();
        let revoked = store
            .revoke(inv.id, now, &step(inv.id, StepKind::Revoke, 0), wall())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(revoked.status, Status::Revoked, "{db}");

        // The revoke commits first: the accept cannot claim.
        let mut inv = invitation(TRUST, StaffId::generate(), "portal", now);
        let link = hash();
        inv.current_link_hash = Some(link.clone());
        created(&*store, &inv, &[]).await;
        store
            .revoke(inv.id, now, &step(inv.id, StepKind::Revoke, 0), wall())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(
            !store.claim_accept(inv.id, &link, now, lease).await.unwrap(),
            "{db}"
        );
        // Nor can it claim an invitation whose link expired.
        let mut old = invitation(
            TRUST,
            StaffId::generate(),
            "portal",
            now - Duration::days(15),
        );
        let link = hash();
        old.current_link_hash = Some(link.clone());
        created(&*store, &old, &[]).await;
        assert!(
            !store.claim_accept(old.id, &link, now, lease).await.unwrap(),
            "{db}"
        );
    }
}

#[tokio::test]
async fn an_accept_settles_the_other_pending_invitations_of_the_same_person() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let staff = StaffId::generate();
        let accepted = invitation(TRUST, staff, "portal", now);
        // The same staff record, another product: settled.
        let same_staff = invitation(TRUST, staff, "sonar-multi-school", now);
        // The same email in another trust: settled.
        let other_trust = invitation(OTHER_TRUST, StaffId::generate(), "portal", now);
        // Someone else: left alone.
        let someone_else = Invitation {
            staff_email: Email::parse("ben.carter@northfield.example.org").unwrap(),
            ..invitation(TRUST, StaffId::generate(), "portal", now)
        };
        // Held by its own accept: left alone.
        let mut claimed = invitation(OTHER_TRUST, StaffId::generate(), "sonar-multi-school", now);
        let link = hash();
        claimed.current_link_hash = Some(link.clone());
        for inv in [
            &accepted,
            &same_staff,
            &other_trust,
            &someone_else,
            &claimed,
        ] {
            created(&*store, inv, &[step(inv.id, StepKind::Email, 0)]).await;
        }
        assert!(
            store
                .claim_accept(claimed.id, &link, now, wall() + 60_000_000)
                .await
                .unwrap()
        );
        let account = AccountId::generate();
        let steps = store
            .complete_accept(CompleteAccept {
                id: accepted.id,
                account_id: account,
                request_id: None,
                granted: &accepted.granted,
                now,
                wall_now: wall(),
            })
            .await
            .unwrap()
            .expect("accepted");
        assert_eq!(steps.len(), 2, "{db}");
        for settled in [&same_staff, &other_trust] {
            let got = store.get(settled.id).await.unwrap().unwrap();
            assert_eq!(got.status, Status::Accepted, "{db}");
            assert_eq!(got.account_id, Some(account));
            assert_eq!(got.settled_by, Some(accepted.id));
            assert_eq!(
                store
                    .open_steps(settled.id, StepKind::Activate)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            assert!(
                store
                    .open_steps(settled.id, StepKind::Email)
                    .await
                    .unwrap()
                    .is_empty(),
                "{db}: its unsent email is cancelled"
            );
        }
        for untouched in [&someone_else, &claimed] {
            let got = store.get(untouched.id).await.unwrap().unwrap();
            assert_eq!(got.status, Status::Pending, "{db}");
        }
    }
}
