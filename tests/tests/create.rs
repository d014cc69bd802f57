//! CreateInvitation across the three services: rules R1–R8 with the seed's scenarios.

#![allow(clippy::unwrap_used)]

use chrono::Duration;
use tonic::Code;

use portal_proto::identity::v1 as id;
use portal_proto::invitation::v1 as inv;
use portal_runtime::clock::{Clock, from_timestamp};
use portal_suite_tests::{
    Backend, Suite, assert_invalid, assert_refused, create_request, demo, school, staff,
};

const ALL_SCHOOLS: [&str; 5] = [
    demo::SCHOOLS[0].0,
    demo::SCHOOLS[1].0,
    demo::SCHOOLS[2].0,
    demo::SCHOOLS[3].0,
    demo::SCHOOLS[4].0,
];

fn granted_set(invitation: &inv::Invitation) -> Vec<(String, String, String, i32)> {
    let mut out: Vec<_> = invitation
        .granted
        .iter()
        .map(|g| {
            (
                g.organization_id.clone(),
                g.product_key.clone(),
                g.role_key.clone(),
                g.state,
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_new_user_gets_pending_grants_for_subscribed_schools_and_a_sign_up_link() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (staff_id, email, given_name) = staff(2);
        let now = suite.clock.now();
        let invitation = suite
            .invitations(Some(&admin))
            .create_invitation(create_request(
                staff_id,
                ("portal", "full-edit"),
                Some((&["websites-cms", "comms-hub"], "writer", &ALL_SCHOOLS)),
            ))
            .await
            .expect("the invitation is created")
            .into_inner()
            .invitation
            .unwrap();
        assert!(!invitation.id.is_empty());
        assert_eq!(invitation.status, inv::InvitationStatus::Pending as i32);
        assert_eq!(invitation.delivery, inv::DeliveryKind::SignUpLink as i32);
        // R5: the trust product, websites-cms at all five schools, comms-hub where subscribed.
        let pending = inv::GrantState::Pending as i32;
        let mut want = vec![(
            demo::TRUST_ID.to_string(),
            "portal".to_string(),
            "full-edit".to_string(),
            pending,
        )];
        for i in 0..5 {
            want.push((
                school(i).into(),
                "websites-cms".into(),
                "writer".into(),
                pending,
            ));
        }
        for i in [0, 1, 3] {
            want.push((
                school(i).into(),
                "comms-hub".into(),
                "writer".into(),
                pending,
            ));
        }
        want.sort();
        assert_eq!(granted_set(&invitation), want, "{backend:?}");
        assert_eq!(
            invitation.granted[0].organization_kind,
            inv::OrganizationKind::Trust as i32
        );
        // SCHOOLS[2] has no comms-hub, SCHOOLS[4] cancelled it: skipped, with why.
        let mut skipped: Vec<_> = invitation
            .skipped
            .iter()
            .map(|s| {
                (
                    s.school_id.as_str(),
                    s.product_key.as_str(),
                    s.reason.as_str(),
                )
            })
            .collect();
        skipped.sort();
        let mut want_skipped = vec![
            (school(2), "comms-hub", "NO_ACTIVE_SUBSCRIPTION"),
            (school(4), "comms-hub", "NO_ACTIVE_SUBSCRIPTION"),
        ];
        want_skipped.sort();
        assert_eq!(skipped, want_skipped);
        let cancelled = invitation
            .skipped
            .iter()
            .find(|s| s.school_id == school(4))
            .unwrap();
        assert!(
            cancelled.detail.contains("cancelled"),
            "{}",
            cancelled.detail
        );
        // R7: the link lasts 14 days.
        let expire = from_timestamp(invitation.expire_time.as_ref().unwrap()).unwrap();
        assert_eq!(
            expire.timestamp_micros(),
            (now + Duration::days(14)).timestamp_micros()
        );

        // The email carries a single-use link, greeting the invitee and naming the trust.
        let mail = suite.wait_for_emails(email, 1).await.pop().unwrap();
        assert!(mail.text.contains(given_name));
        assert!(mail.text.contains(demo::TRUST_NAME));
        assert!(mail.text.contains("Websites CMS"), "{}", mail.text);
        let token = mail.link_token().expect("a link");
        assert!(
            mail.text
                .contains("https://portal.example.org/invitations/accept?token=")
        );
        let link = suite
            .invitations(None)
            .inspect_invitation_link(inv::InspectInvitationLinkRequest { token })
            .await
            .expect("the link is usable")
            .into_inner()
            .link
            .unwrap();
        assert_eq!(link.invitation_id, invitation.id);
        assert_eq!(link.trust_name, demo::TRUST_NAME);
        assert_eq!(link.given_name, given_name);
        assert_eq!(link.access.len(), 9);

        // The grants exist in identity, pending for the email.
        let reply = suite
            .grants(Some(&suite.service_token("invitation")))
            .batch_grant(id::BatchGrantRequest {
                invitation_id: invitation.id.clone(),
                trust_id: demo::TRUST_ID.into(),
                email: email.into(),
                staff_id: staff_id.into(),
                grants: vec![id::GrantSpec {
                    organization_kind: id::OrganizationKind::Trust as i32,
                    organization_id: demo::TRUST_ID.into(),
                    product_key: "portal".into(),
                    role_key: "full-edit".into(),
                }],
                activate: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reply.results[0].outcome,
            id::GrantOutcome::AlreadyGranted as i32,
            "the create already made the grant"
        );
    }
}

#[tokio::test]
async fn an_existing_user_gets_active_access_at_once_and_a_notice_without_a_link() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (staff_id, email, _) = staff(1);
        let invitation = suite
            .invitations(Some(&admin))
            .create_invitation(create_request(
                staff_id,
                ("portal", "full-edit"),
                Some((&["websites-cms"], "writer", &[school(0), school(1)])),
            ))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(invitation.status, inv::InvitationStatus::Granted as i32);
        assert_eq!(
            invitation.delivery,
            inv::DeliveryKind::NewProductNotice as i32
        );
        assert!(invitation.expire_time.is_none());
        let states: Vec<(String, i32)> = invitation
            .granted
            .iter()
            .map(|g| (g.organization_id.clone(), g.state))
            .collect();
        // Ben already holds websites-cms writer at SCHOOLS[0]: reported, not granted twice.
        assert_eq!(
            states,
            vec![
                (demo::TRUST_ID.into(), inv::GrantState::Active as i32),
                (school(0).into(), inv::GrantState::AlreadyHeld as i32),
                (school(1).into(), inv::GrantState::Active as i32),
            ],
            "{backend:?}"
        );
        let mail = suite.wait_for_emails(email, 1).await.pop().unwrap();
        assert!(mail.link_token().is_none(), "a notice carries no link");
        assert!(mail.text.contains("next time you sign in"));

        let (_, account_id) = suite
            .sign_in_account(email, demo::EXISTING_USER_PASSWORD)
            .await;
        let access = suite.access_of(&account_id).await;
        let active = id::GrantStatus::Active as i32;
        assert!(access.contains(&(
            demo::TRUST_ID.into(),
            "portal".into(),
            "full-edit".into(),
            active
        )));
        assert!(access.contains(&(
            school(1).into(),
            "websites-cms".into(),
            "writer".into(),
            active
        )));
    }
}

#[tokio::test]
async fn only_a_trust_level_administrator_may_invite() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let request = || create_request(staff(3).0, ("portal", "full-edit"), None);
        let refused = |token: String| {
            let mut client = suite.invitations(Some(&token));
            async move { client.create_invitation(request()).await.unwrap_err() }
        };
        let school_admin = suite
            .sign_in(staff(6).1, demo::SCHOOL_ADMIN_PASSWORD)
            .await
            .unwrap();
        let status = refused(school_admin).await;
        assert_refused(
            &status,
            Code::PermissionDenied,
            "SCHOOL_LEVEL_ADMINISTRATOR",
        );
        assert!(
            status.message().contains("trust-level"),
            "{}",
            status.message()
        );

        let other = suite
            .sign_in(demo::OTHER_ADMIN_EMAIL, demo::OTHER_ADMIN_PASSWORD)
            .await
            .unwrap();
        assert_refused(
            &refused(other).await,
            Code::PermissionDenied,
            "OTHER_TRUST_ADMINISTRATOR",
        );

        let plain = suite
            .sign_in(staff(1).1, demo::EXISTING_USER_PASSWORD)
            .await
            .unwrap();
        assert_refused(
            &refused(plain).await,
            Code::PermissionDenied,
            "NOT_TRUST_ADMINISTRATOR",
        );

        let service = suite.service_token("billing");
        assert_refused(
            &refused(service).await,
            Code::PermissionDenied,
            "NOT_TRUST_ADMINISTRATOR",
        );

        let status = suite
            .invitations(None)
            .create_invitation(request())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        // Nothing was sent.
        assert!(suite.emails().is_empty());
    }
}

#[tokio::test]
async fn a_staff_member_missing_from_the_trust_mis_is_refused_with_what_to_do() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        // Unknown to the MIS.
        let status = client
            .create_invitation(create_request(
                &uuid::Uuid::new_v4().to_string(),
                ("portal", "full-edit"),
                None,
            ))
            .await
            .unwrap_err();
        assert_refused(&status, Code::FailedPrecondition, "STAFF_NOT_IN_TRUST_MIS");
        assert!(
            status
                .message()
                .contains("add them to the MIS of the trust")
        );

        // Left the trust: the next MIS sync no longer lists STAFF[5].
        let sync = suite.service_token("mis-sync");
        let records = demo::STAFF
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 5)
            .map(|(_, s)| id::StaffRecordInput {
                mis_id: s.1.into(),
                given_name: s.2.into(),
                family_name: s.3.into(),
                email: s.4.into(),
                job_title: s.5.into(),
            })
            .collect();
        let summary = suite
            .staff(Some(&sync))
            .sync_staff(id::SyncStaffRequest {
                trust_id: demo::TRUST_ID.into(),
                records,
            })
            .await
            .unwrap()
            .into_inner()
            .summary
            .unwrap();
        assert_eq!(summary.marked_left, 1);
        let status = client
            .create_invitation(create_request(staff(5).0, ("portal", "full-edit"), None))
            .await
            .unwrap_err();
        assert_refused(&status, Code::FailedPrecondition, "STAFF_NOT_IN_TRUST_MIS");
    }
}

#[tokio::test]
async fn products_and_roles_must_fit_the_catalogue_and_schools_the_trust() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        // A role of another product.
        let status = client
            .create_invitation(create_request(staff(3).0, ("portal", "writer"), None))
            .await
            .unwrap_err();
        assert_invalid(&status, &["trust_access.role_key"]);
        // A school product offered as the trust product, and a trust product as a school one.
        let status = client
            .create_invitation(create_request(
                staff(3).0,
                ("websites-cms", "writer"),
                Some((
                    &["websites-cms", "sonar-multi-school"],
                    "writer",
                    &[school(0)],
                )),
            ))
            .await
            .unwrap_err();
        assert_invalid(
            &status,
            &["trust_access.product_key", "school_access.product_keys[1]"],
        );
        // One school role every selected product must define (R4): sonar has no writer.
        let status = client
            .create_invitation(create_request(
                staff(3).0,
                ("portal", "full-edit"),
                Some((&["websites-cms", "sonar"], "writer", &[school(0)])),
            ))
            .await
            .unwrap_err();
        assert_invalid(&status, &["school_access.role_key"]);
        assert!(status.message().contains("Sonar"), "{}", status.message());
        // Another trust's school, and an unknown product.
        let status = client
            .create_invitation(create_request(
                staff(3).0,
                ("portal", "full-edit"),
                Some((
                    &["websites-cms", "no-such-product"],
                    "writer",
                    &[school(0), demo::OTHER_SCHOOL.0],
                )),
            ))
            .await
            .unwrap_err();
        assert_invalid(
            &status,
            &[
                "school_access.product_keys[1]",
                "school_access.school_ids[1]",
            ],
        );
        // The trust must itself subscribe to the trust product.
        let status = client
            .create_invitation(create_request(staff(3).0, ("trust-mis", "viewer"), None))
            .await
            .unwrap_err();
        assert_refused(&status, Code::FailedPrecondition, "TRUST_NOT_SUBSCRIBED");
        assert!(suite.emails().is_empty());
    }
}

#[tokio::test]
async fn validate_only_answers_the_outcome_and_changes_nothing() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let (staff_id, email, _) = staff(4);
        let mut request = create_request(
            staff_id,
            ("portal", "partial-edit"),
            Some((&["comms-hub"], "viewer", &[school(1), school(2)])),
        );
        request.validate_only = true;
        let outcome = client
            .create_invitation(request.clone())
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert!(outcome.id.is_empty());
        assert_eq!(outcome.delivery, inv::DeliveryKind::SignUpLink as i32);
        assert_eq!(outcome.granted.len(), 2);
        assert_eq!(outcome.skipped.len(), 1);
        assert_eq!(outcome.skipped[0].school_id, school(2));
        // Nothing stored, nothing sent: a real create afterwards is not a duplicate.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(suite.emails_to(email).is_empty());
        let list = client
            .list_invitations(inv::ListInvitationsRequest {
                trust_id: demo::TRUST_ID.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(list.invitations.is_empty());
        request.validate_only = false;
        let made = client
            .create_invitation(request)
            .await
            .unwrap()
            .into_inner();
        assert_eq!(made.invitation.unwrap().granted.len(), 2);
    }
}

#[tokio::test]
async fn a_retried_create_with_the_same_request_id_returns_the_first_answer() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let (staff_id, email, _) = staff(7);
        let mut request = create_request(staff_id, ("portal", "full-edit"), None);
        request.request_id = uuid::Uuid::new_v4().to_string();
        let first = client
            .create_invitation(request.clone())
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        let again = client
            .create_invitation(request)
            .await
            .expect("a retry is not a duplicate")
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(first.id, again.id);
        assert_eq!(first.granted, again.granted);
        suite.wait_for_emails(email, 1).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(
            suite.emails_to(email).len(),
            1,
            "one email for one invitation"
        );
    }
}

#[tokio::test]
async fn a_second_pending_invitation_to_the_same_product_is_refused_naming_the_first() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let staff_id = staff(8).0;
        let first = client
            .create_invitation(create_request(staff_id, ("portal", "full-edit"), None))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        let status = client
            .create_invitation(create_request(staff_id, ("portal", "account-admin"), None))
            .await
            .unwrap_err();
        assert_refused(&status, Code::AlreadyExists, "PENDING_INVITATION_EXISTS");
        let details = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
        assert_eq!(details.metadata.get("invitation_id"), Some(&first.id));
        // Another trust product is another invitation (R3).
        client
            .create_invitation(create_request(
                staff_id,
                ("sonar-multi-school", "analyst"),
                None,
            ))
            .await
            .expect("a second trust product needs its own invitation");
    }
}
