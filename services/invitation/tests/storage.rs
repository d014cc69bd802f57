//! One conformance suite for the invitation store, run on SQLite always and on PostgreSQL
//! when `PORTAL_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use portal_invitation::MIGRATIONS;
use portal_invitation::domain::{
    Delivery, GrantState, GrantedAccess, Invitation, OrgKind, SchoolAccess, Status, TrustAccess,
};
use portal_invitation::outbox::REVOKE_PENDING_PAYLOAD;
use portal_invitation::store::{
    CreateOutcome, InvitationStore, ListFilter, NewStep, PageKey, StepKind, open,
};
use portal_runtime::db::{DbPool, DbSettings, testing};
use portal_runtime::types::{Email, new_id};

const TRUST: &str = "7f3c2a10-0000-4000-8000-000000000001";
const OTHER_TRUST: &str = "7f3c2a10-0000-4000-8000-000000000002";

async fn stores() -> Vec<(
    &'static str,
    Arc<dyn InvitationStore>,
    Option<tempfile::TempDir>,
)> {
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

fn invitation(trust: &str, staff: &str, product: &str, now: DateTime<Utc>) -> Invitation {
    Invitation {
        id: new_id(),
        trust_id: trust.into(),
        trust_name: "Northfield Learning Trust".into(),
        staff_id: staff.into(),
        staff_email: Email::parse("chloe.patel@northfield.example.org").unwrap(),
        staff_given_name: "Chloe".into(),
        inviter_account_id: "admin".into(),
        trust_access: TrustAccess {
            product_key: product.into(),
            role_key: "full-edit".into(),
        },
        school_access: Some(SchoolAccess {
            product_keys: vec!["websites-cms".into(), "comms-hub".into()],
            role_key: "writer".into(),
            school_ids: vec!["s1".into()],
        }),
        status: Status::Pending,
        delivery: Delivery::SignUpLink,
        granted: vec![GrantedAccess {
            org_kind: OrgKind::Trust,
            org_id: trust.into(),
            product_key: product.into(),
            role_key: "full-edit".into(),
            state: GrantState::Pending,
        }],
        skipped: vec![],
        expire_time: Some(now + Duration::days(14)),
        current_link_hash: None,
        accepting: false,
        account_id: None,
        create_time: now,
        update_time: now,
    }
}

fn step(invitation_id: &str, kind: StepKind, claimed_until: i64) -> NewStep {
    NewStep {
        id: new_id(),
        invitation_id: invitation_id.into(),
        kind,
        payload: if kind == StepKind::Revoke {
            REVOKE_PENDING_PAYLOAD.into()
        } else {
            "{}".into()
        },
        claimed_until,
    }
}

fn wall() -> i64 {
    Utc::now().timestamp_micros()
}

/// Creates, expecting nothing to revoke first; says whether earlier revokes were open.
async fn created(store: &dyn InvitationStore, invitation: &Invitation, steps: &[NewStep]) -> bool {
    let outcome = store
        .create(invitation, None, steps, invitation.create_time, wall())
        .await
        .unwrap();
    match outcome {
        CreateOutcome::Created {
            revoke_steps,
            earlier_revokes_open,
        } => {
            assert_eq!(revoke_steps, Vec::<String>::new());
            earlier_revokes_open
        }
        other => panic!("expected a creation, got {other:?}"),
    }
}

#[tokio::test]
async fn an_invitation_round_trips_with_its_outcome() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let inv = invitation(TRUST, &new_id(), "portal", now);
        created(&*store, &inv, &[]).await;
        let got = store.get(&inv.id).await.unwrap().expect(db);
        assert_eq!(got.school_access, inv.school_access, "{db}");
        assert_eq!(got.granted, inv.granted, "{db}");
        assert_eq!(got.staff_email, inv.staff_email, "{db}");
        assert_eq!(got.status, Status::Pending, "{db}");
        assert_eq!(
            got.expire_time.map(|t| t.timestamp_micros()),
            inv.expire_time.map(|t| t.timestamp_micros()),
            "{db}"
        );
        assert!(store.get(&new_id()).await.unwrap().is_none(), "{db}");
    }
}

#[tokio::test]
async fn a_second_pending_invitation_for_the_same_staff_and_product_is_refused() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let staff = new_id();
        let first = invitation(TRUST, &staff, "portal", now);
        created(&*store, &first, &[]).await;
        let second = invitation(TRUST, &staff, "portal", now);
        let outcome = store.create(&second, None, &[], now, wall()).await.unwrap();
        assert_eq!(
            outcome,
            CreateOutcome::PendingExists {
                invitation_id: first.id.clone()
            },
            "{db}"
        );
        // Another product, or after the first one expired, is fine.
        created(
            &*store,
            &invitation(TRUST, &staff, "sonar-multi-school", now),
            &[],
        )
        .await;
        let later = now + Duration::days(15);
        let third = invitation(TRUST, &staff, "portal", later);
        match store
            .create(&third, None, &[], later, wall())
            .await
            .unwrap()
        {
            CreateOutcome::Created { revoke_steps, .. } => {
                assert_eq!(revoke_steps.len(), 1, "{db}")
            }
            other => panic!("{db}: {other:?}"),
        }
        assert_eq!(
            store.get(&first.id).await.unwrap().unwrap().status,
            Status::Expired,
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_repeated_request_id_returns_the_first_invitation() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let first = invitation(TRUST, &new_id(), "portal", now);
        store
            .create(&first, Some(("admin", "req-1")), &[], now, wall())
            .await
            .unwrap();
        let retry = invitation(TRUST, &new_id(), "portal", now);
        let outcome = store
            .create(&retry, Some(("admin", "req-1")), &[], now, wall())
            .await
            .unwrap();
        assert_eq!(
            outcome,
            CreateOutcome::Replayed {
                invitation_id: first.id.clone()
            },
            "{db}"
        );
        assert!(store.get(&retry.id).await.unwrap().is_none(), "{db}");
        // The same request id of another caller is another request.
        let other = invitation(TRUST, &new_id(), "portal", now);
        store
            .create(&other, Some(("someone-else", "req-1")), &[], now, wall())
            .await
            .unwrap();
        assert_eq!(
            store
                .find_create_request("someone-else", "req-1")
                .await
                .unwrap(),
            Some(other.id),
            "{db}"
        );
    }
}

#[tokio::test]
async fn lists_are_newest_first_filtered_and_paginated() {
    for (db, store, _dir) in stores().await {
        let start = Utc::now();
        let staff = new_id();
        let mut ids = Vec::new();
        for i in 0..5 {
            let at = start + Duration::seconds(i);
            let product = if i % 2 == 0 { "portal" } else { "trust-mis" };
            let mut inv = invitation(TRUST, &new_id(), product, at);
            if i == 4 {
                inv.staff_id = staff.clone();
            }
            created(&*store, &inv, &[]).await;
            ids.push(inv.id);
        }
        created(
            &*store,
            &invitation(OTHER_TRUST, &new_id(), "portal", start),
            &[],
        )
        .await;
        let all = ListFilter {
            trust_id: TRUST.into(),
            ..Default::default()
        };
        let page1 = store.list(&all, None, 3).await.unwrap();
        let got: Vec<_> = page1.iter().map(|i| i.id.clone()).collect();
        assert_eq!(
            got,
            vec![ids[4].clone(), ids[3].clone(), ids[2].clone()],
            "{db}"
        );
        let after = PageKey::of(&page1[2]);
        let page2 = store.list(&all, Some(&after), 3).await.unwrap();
        let got: Vec<_> = page2.iter().map(|i| i.id.clone()).collect();
        assert_eq!(got, vec![ids[1].clone(), ids[0].clone()], "{db}");

        let by_product = ListFilter {
            product_key: Some("trust-mis".into()),
            ..all.clone()
        };
        assert_eq!(
            store.list(&by_product, None, 10).await.unwrap().len(),
            2,
            "{db}"
        );
        let by_school_product = ListFilter {
            product_key: Some("comms-hub".into()),
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
        let inv = invitation(TRUST, &new_id(), "portal", now);
        let first_email = step(&inv.id, StepKind::Email, 0);
        created(&*store, &inv, std::slice::from_ref(&first_email)).await;
        assert!(
            store.install_link(&inv.id, "hash-1", now).await.unwrap(),
            "{db}"
        );
        assert_eq!(
            store
                .find_link("hash-1")
                .await
                .unwrap()
                .unwrap()
                .current_link_hash
                .as_deref(),
            Some("hash-1"),
            "{db}"
        );
        let later = now + Duration::days(3);
        let email = step(&inv.id, StepKind::Email, 0);
        let resent = store
            .resend(&inv.id, later, later + Duration::days(14), &email, wall())
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
            store.open_steps(&inv.id, StepKind::Email).await.unwrap(),
            vec![email.id.clone()],
            "{db}"
        );
        // An expired invitation is not resent.
        let too_late = later + Duration::days(20);
        let refused = store
            .resend(
                &inv.id,
                too_late,
                too_late,
                &step(&inv.id, StepKind::Email, 0),
                wall(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(refused.unwrap_err(), Status::Expired, "{db}");
        assert!(
            store
                .resend(&new_id(), now, now, &email, wall())
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
        let inv = invitation(TRUST, &new_id(), "portal", now);
        created(&*store, &inv, &[]).await;
        let revoked = store
            .revoke(&inv.id, now, &step(&inv.id, StepKind::Revoke, 0), wall())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(revoked.status, Status::Revoked, "{db}");
        // Revoking again returns it unchanged and queues nothing more.
        store
            .revoke(&inv.id, now, &step(&inv.id, StepKind::Revoke, 0), wall())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .open_steps(&inv.id, StepKind::Revoke)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            !store.install_link(&inv.id, "late", now).await.unwrap(),
            "{db}"
        );
        // The staff member may be invited again.
        created(
            &*store,
            &invitation(TRUST, &inv.staff_id, "portal", now),
            &[],
        )
        .await;
    }
}

#[tokio::test]
async fn the_sweeper_expires_pending_invitations_past_their_expiry_once() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let due = invitation(TRUST, &new_id(), "portal", now - Duration::days(15));
        let fresh = invitation(TRUST, &new_id(), "portal", now);
        created(&*store, &due, &[]).await;
        created(&*store, &fresh, &[]).await;
        let expired = store
            .expire_due(now, 100, REVOKE_PENDING_PAYLOAD, wall())
            .await
            .unwrap();
        assert!(expired.contains(&due.id), "{db}");
        assert!(!expired.contains(&fresh.id), "{db}");
        assert_eq!(
            store.get(&due.id).await.unwrap().unwrap().status,
            Status::Expired
        );
        assert_eq!(
            store
                .open_steps(&due.id, StepKind::Revoke)
                .await
                .unwrap()
                .len(),
            1
        );
        let again = store
            .expire_due(now, 100, REVOKE_PENDING_PAYLOAD, wall())
            .await
            .unwrap();
        assert!(!again.contains(&due.id), "{db}");
    }
}

#[tokio::test]
async fn outbox_steps_are_claimed_once_retried_later_and_revokes_wait_for_grants() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let inv = invitation(TRUST, &new_id(), "portal", now);
        let leased = step(&inv.id, StepKind::Grant, wall() + 60_000_000);
        let email = step(&inv.id, StepKind::Email, 0);
        created(&*store, &inv, &[leased.clone(), email.clone()]).await;
        store
            .revoke(&inv.id, now, &step(&inv.id, StepKind::Revoke, 0), wall())
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
            .retry_step(&leased.id, t + 1, "identity down")
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
                .claim_step(&leased.id, t, t + 1)
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
            .finish_steps(std::slice::from_ref(&leased.id), "DONE", t)
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
            .finish_steps(std::slice::from_ref(&mine[0].id), "DONE", t)
            .await
            .unwrap();
        assert!(
            store
                .open_steps(&inv.id, StepKind::Revoke)
                .await
                .unwrap()
                .is_empty()
        );
        // The revoke cancelled the unsent email.
        assert!(
            store
                .open_steps(&inv.id, StepKind::Email)
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
        let inv = invitation(TRUST, &new_id(), "portal", now);
        created(&*store, &inv, &[]).await;
        store.mark_accepting(&inv.id).await.unwrap();
        assert!(store.get(&inv.id).await.unwrap().unwrap().accepting, "{db}");
        let mut granted = inv.granted.clone();
        granted[0].state = GrantState::Active;
        assert!(
            store
                .complete_accept(&inv.id, "acc-1", Some("r1"), &granted, now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .complete_accept(&inv.id, "acc-2", None, &granted, now)
                .await
                .unwrap(),
            "{db}"
        );
        let got = store.get(&inv.id).await.unwrap().unwrap();
        assert_eq!(got.status, Status::Accepted);
        assert_eq!(got.account_id.as_deref(), Some("acc-1"));
        assert_eq!(got.granted[0].state, GrantState::Active);
        assert_eq!(
            store
                .find_accept_request(&inv.id, "r1")
                .await
                .unwrap()
                .as_deref(),
            Some("acc-1"),
            "{db}"
        );
    }
}

#[tokio::test]
async fn a_new_grant_waits_for_the_revokes_of_the_same_staff_members_earlier_invitations() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let staff = new_id();
        let old = invitation(TRUST, &staff, "portal", now);
        assert!(!created(&*store, &old, &[]).await, "{db}: nothing open yet");
        let revoke = step(&old.id, StepKind::Revoke, 0);
        store.revoke(&old.id, now, &revoke, wall()).await.unwrap();
        assert_eq!(
            store.open_revokes_of_staff(TRUST, &staff).await.unwrap(),
            vec![revoke.id.clone()],
            "{db}"
        );
        let new = invitation(TRUST, &staff, "portal", now);
        let grant = step(&new.id, StepKind::Grant, 0);
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
            .finish_steps(std::slice::from_ref(&revoke.id), "DONE", t)
            .await
            .unwrap();
        assert!(
            store
                .open_revokes_of_staff(TRUST, &staff)
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
        let mut inv = invitation(TRUST, &new_id(), "portal", now);
        let hash = format!("hash-{}", new_id());
        inv.current_link_hash = Some(hash.clone());
        created(&*store, &inv, &[]).await;
        let found = store.find_link(&hash).await.unwrap();
        assert_eq!(found.map(|i| i.id), Some(inv.id.clone()), "{db}");
        assert!(store.find_link("another").await.unwrap().is_none(), "{db}");
    }
}

#[tokio::test]
async fn finished_steps_are_recorded_together_and_never_run_again() {
    for (db, store, _dir) in stores().await {
        let now = Utc::now();
        let inv = invitation(TRUST, &new_id(), "portal", now);
        let steps: Vec<NewStep> = (0..3).map(|_| step(&inv.id, StepKind::Email, 0)).collect();
        created(&*store, &inv, &steps).await;
        let ids: Vec<String> = steps.iter().map(|s| s.id.clone()).collect();
        let t = wall() + 10;
        store.finish_steps(&ids[..2], "DONE", t).await.unwrap();
        store.finish_steps(&[], "DONE", t).await.unwrap();
        let due: Vec<String> = store
            .claim_due(t, t + 60_000_000, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.invitation_id == inv.id)
            .map(|s| s.id)
            .collect();
        assert_eq!(due, vec![ids[2].clone()], "{db}: only the unfinished one");
    }
}
