//! The life of an invitation across the services: accept (R11), expiry (R7), re-invite,
//! resend (R9), revoke (R10), reads and tenant isolation.

#![allow(clippy::unwrap_used)]

use chrono::Duration;
use tonic::Code;

use portal_proto::identity::v1 as id;
use portal_proto::invitation::v1 as inv;
use portal_runtime::clock::{Clock, from_timestamp};
use portal_suite_tests::{
    Backend, InvitationClient, Suite, assert_invalid, assert_refused, create_request, demo, school,
    staff,
};

const PASSWORD: &str = "correct horse battery";

async fn invite(
    client: &mut InvitationClient,
    staff_id: &str,
    schools: Option<(&[&str], &str, &[&str])>,
) -> inv::Invitation {
    client
        .create_invitation(create_request(staff_id, ("portal", "full-edit"), schools))
        .await
        .expect("the invitation is created")
        .into_inner()
        .invitation
        .unwrap()
}

async fn inspect(suite: &Suite, token: &str) -> Result<inv::LinkDetails, tonic::Status> {
    suite
        .invitations(None)
        .inspect_invitation_link(inv::InspectInvitationLinkRequest {
            token: token.into(),
        })
        .await
        .map(|r| r.into_inner().link.unwrap())
}

fn accept_request(token: &str, request_id: &str) -> inv::AcceptInvitationRequest {
    inv::AcceptInvitationRequest {
        token: token.into(),
        given_name: "Chloe".into(),
        family_name: "Patel".into(),
        password: PASSWORD.into(),
        request_id: request_id.into(),
    }
}

async fn accept(
    suite: &Suite,
    token: &str,
    request_id: &str,
) -> Result<inv::AcceptInvitationResponse, tonic::Status> {
    suite
        .invitations(None)
        .accept_invitation(accept_request(token, request_id))
        .await
        .map(|r| r.into_inner())
}

async fn status_of(suite: &Suite, admin: &str, id: &str) -> i32 {
    suite
        .invitations(Some(admin))
        .get_invitation(inv::GetInvitationRequest {
            invitation_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap()
        .status
}

/// Registers an account for `email` directly in identity, to observe the grants pending for
/// that email.
async fn register(suite: &Suite, email: &str) -> String {
    suite
        .accounts(Some(&suite.service_token("invitation")))
        .register_account(id::RegisterAccountRequest {
            email: email.into(),
            given_name: "Test".into(),
            family_name: "Person".into(),
            password: PASSWORD.into(),
            invitation_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .id
}

#[tokio::test]
async fn accepting_a_link_registers_the_staff_email_and_the_new_user_sees_their_access() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (staff_id, email, _) = staff(2);
        let invitation = invite(
            &mut suite.invitations(Some(&admin)),
            staff_id,
            Some((&["websites-cms"], "writer", &[school(0), school(3)])),
        )
        .await;
        let token = suite.link_for(email, 1).await;
        let reply = accept(&suite, &token, "").await.expect("accepted");
        let accepted = reply.invitation.unwrap();
        assert_eq!(accepted.id, invitation.id);
        assert_eq!(accepted.status, inv::InvitationStatus::Accepted as i32);
        assert!(
            accepted
                .granted
                .iter()
                .all(|g| g.state == inv::GrantState::Active as i32)
        );

        // The invitee signs in with the staff email and the password they chose.
        let (user, account_id) = suite.sign_in_account(email, PASSWORD).await;
        assert_eq!(account_id, reply.account_id);
        let me = suite
            .accounts(Some(&user))
            .get_current_account(id::GetCurrentAccountRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(me.account.unwrap().email, email);
        let access = suite.access_of(&account_id).await;
        let active = id::GrantStatus::Active as i32;
        assert_eq!(
            access,
            {
                let mut want = vec![
                    (
                        demo::TRUST_ID.to_string(),
                        "portal".to_string(),
                        "full-edit".to_string(),
                        active,
                    ),
                    (
                        school(0).into(),
                        "websites-cms".into(),
                        "writer".into(),
                        active,
                    ),
                    (
                        school(3).into(),
                        "websites-cms".into(),
                        "writer".into(),
                        active,
                    ),
                ];
                want.sort();
                want
            },
            "{backend:?}"
        );

        // Single use: the link is spent.
        assert_refused(
            &accept(&suite, &token, "").await.unwrap_err(),
            Code::FailedPrecondition,
            "LINK_USED",
        );
        assert_refused(
            &inspect(&suite, &token).await.unwrap_err(),
            Code::FailedPrecondition,
            "LINK_USED",
        );
        assert_eq!(
            status_of(&suite, &admin, &invitation.id).await,
            inv::InvitationStatus::Accepted as i32
        );
        // An unknown link is NOT_FOUND.
        let unknown = "A".repeat(43);
        assert_eq!(
            inspect(&suite, &unknown).await.unwrap_err().code(),
            Code::NotFound
        );
    }
}

#[tokio::test]
async fn a_retried_accept_with_the_same_request_id_returns_the_first_answer() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (staff_id, email, _) = staff(3);
        invite(&mut suite.invitations(Some(&admin)), staff_id, None).await;
        let token = suite.link_for(email, 1).await;
        let first = accept(&suite, &token, "accept-1").await.unwrap();
        let retry = accept(&suite, &token, "accept-1")
            .await
            .expect("the retry answers like the first call");
        assert_eq!(first.account_id, retry.account_id);
        assert_eq!(
            retry.invitation.unwrap().status,
            inv::InvitationStatus::Accepted as i32
        );
        let other = accept(&suite, &token, "accept-2").await.unwrap_err();
        assert_refused(&other, Code::FailedPrecondition, "LINK_USED");
    }
}

#[tokio::test]
async fn a_link_expires_after_fourteen_days_and_its_pending_grants_are_dropped() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (staff_id, email, _) = staff(9);
        let invitation = invite(
            &mut suite.invitations(Some(&admin)),
            staff_id,
            Some((&["comms-hub"], "viewer", &[school(0)])),
        )
        .await;
        let token = suite.link_for(email, 1).await;
        // Still usable just before the end of the window.
        suite
            .clock
            .advance(Duration::days(14) - Duration::minutes(1));
        inspect(&suite, &token).await.expect("usable on day 13");
        suite.clock.advance(Duration::minutes(2));
        assert_refused(
            &inspect(&suite, &token).await.unwrap_err(),
            Code::FailedPrecondition,
            "LINK_EXPIRED",
        );
        assert_refused(
            &accept(&suite, &token, "").await.unwrap_err(),
            Code::FailedPrecondition,
            "LINK_EXPIRED",
        );
        assert_eq!(
            status_of(&suite, &admin, &invitation.id).await,
            inv::InvitationStatus::Expired as i32
        );
        // The sweeper drops the pending grants in identity.
        let account_id = register(&suite, email).await;
        suite
            .eventually("pending grants revoked", || async {
                suite.access_of(&account_id).await.is_empty().then_some(())
            })
            .await;
        // A refused link changed nothing: no account was made by the accept attempt above.
        assert_eq!(suite.emails_to(email).len(), 1);
    }
}

#[tokio::test]
async fn an_expired_invitation_is_re_invited_with_a_new_invitation_and_a_new_link() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let (staff_id, email, _) = staff(10);
        let first = invite(&mut client, staff_id, None).await;
        let old_token = suite.link_for(email, 1).await;
        suite.clock.advance(Duration::days(15));
        suite
            .eventually("the sweeper marks it EXPIRED", || {
                let mut client = client.clone();
                let id = first.id.clone();
                async move {
                    let stored = client
                        .list_invitations(inv::ListInvitationsRequest {
                            trust_id: demo::TRUST_ID.into(),
                            status: inv::InvitationStatus::Expired as i32,
                            ..Default::default()
                        })
                        .await
                        .ok()?
                        .into_inner();
                    stored.invitations.iter().any(|i| i.id == id).then_some(())
                }
            })
            .await;
        // Resend does not revive an expired invitation; a new invitation does.
        let status = client
            .resend_invitation(inv::ResendInvitationRequest {
                invitation_id: first.id.clone(),
            })
            .await
            .unwrap_err();
        assert_refused(&status, Code::FailedPrecondition, "INVITATION_NOT_PENDING");
        let second = invite(&mut client, staff_id, None).await;
        assert_ne!(second.id, first.id);
        assert_eq!(second.status, inv::InvitationStatus::Pending as i32);
        let expire = from_timestamp(second.expire_time.as_ref().unwrap()).unwrap();
        assert_eq!(
            expire.timestamp_micros(),
            (suite.clock.now() + Duration::days(14)).timestamp_micros()
        );
        let new_token = suite.link_for(email, 2).await;
        assert_ne!(new_token, old_token);
        assert_refused(
            &inspect(&suite, &old_token).await.unwrap_err(),
            Code::FailedPrecondition,
            "LINK_EXPIRED",
        );
        let accepted = accept(&suite, &new_token, "")
            .await
            .expect("the new link works");
        let access = suite.access_of(&accepted.account_id).await;
        assert_eq!(
            access,
            vec![(
                demo::TRUST_ID.to_string(),
                "portal".to_string(),
                "full-edit".to_string(),
                id::GrantStatus::Active as i32
            )],
            "{backend:?}: granted once, active"
        );
    }
}

#[tokio::test]
async fn a_revoked_invitation_drops_its_pending_grants_and_its_link() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let (staff_id, email, _) = staff(11);
        let invitation = invite(
            &mut client,
            staff_id,
            Some((&["websites-cms"], "publisher", &[school(1)])),
        )
        .await;
        let token = suite.link_for(email, 1).await;
        let account_id = register(&suite, email).await;
        assert_eq!(
            suite.access_of(&account_id).await.len(),
            2,
            "pending before the revoke"
        );
        let revoked = client
            .revoke_invitation(inv::RevokeInvitationRequest {
                invitation_id: invitation.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(revoked.status, inv::InvitationStatus::Revoked as i32);
        assert_refused(
            &inspect(&suite, &token).await.unwrap_err(),
            Code::FailedPrecondition,
            "LINK_REVOKED",
        );
        suite
            .eventually("pending grants revoked", || async {
                suite.access_of(&account_id).await.is_empty().then_some(())
            })
            .await;
        // Revoking again changes nothing; resending a revoked invitation is refused.
        let again = client
            .revoke_invitation(inv::RevokeInvitationRequest {
                invitation_id: invitation.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(again.update_time, revoked.update_time);
        let status = client
            .resend_invitation(inv::ResendInvitationRequest {
                invitation_id: invitation.id.clone(),
            })
            .await
            .unwrap_err();
        assert_refused(&status, Code::FailedPrecondition, "INVITATION_NOT_PENDING");
    }
}

#[tokio::test]
async fn a_resend_gives_a_new_link_and_window_and_the_old_link_stops_working() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let (staff_id, email, _) = staff(12);
        let invitation = invite(&mut client, staff_id, None).await;
        let old_token = suite.link_for(email, 1).await;
        suite.clock.advance(Duration::days(10));
        let resent = client
            .resend_invitation(inv::ResendInvitationRequest {
                invitation_id: invitation.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        let expire = from_timestamp(resent.expire_time.as_ref().unwrap()).unwrap();
        assert_eq!(
            expire.timestamp_micros(),
            (suite.clock.now() + Duration::days(14)).timestamp_micros()
        );
        let new_token = suite.link_for(email, 2).await;
        assert_ne!(old_token, new_token);
        assert_refused(
            &inspect(&suite, &old_token).await.unwrap_err(),
            Code::FailedPrecondition,
            "LINK_SUPERSEDED",
        );
        assert_refused(
            &accept(&suite, &old_token, "").await.unwrap_err(),
            Code::FailedPrecondition,
            "LINK_SUPERSEDED",
        );
        // Past the first window, inside the new one.
        suite.clock.advance(Duration::days(10));
        let link = inspect(&suite, &new_token)
            .await
            .expect("the new link works");
        assert_eq!(link.status, inv::InvitationStatus::Pending as i32);
        accept(&suite, &new_token, "")
            .await
            .expect("accepted with the new link");
    }
}

#[tokio::test]
async fn another_trusts_administrator_sees_nothing_of_this_trusts_invitations() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let invitation = invite(&mut suite.invitations(Some(&admin)), staff(13).0, None).await;
        let other = suite
            .sign_in(demo::OTHER_ADMIN_EMAIL, demo::OTHER_ADMIN_PASSWORD)
            .await
            .unwrap();
        let mut theirs = suite.invitations(Some(&other));
        let id = invitation.id.clone();
        let status = theirs
            .get_invitation(inv::GetInvitationRequest {
                invitation_id: id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let status = theirs
            .resend_invitation(inv::ResendInvitationRequest {
                invitation_id: id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let status = theirs
            .revoke_invitation(inv::RevokeInvitationRequest {
                invitation_id: id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let status = theirs
            .list_invitations(inv::ListInvitationsRequest {
                trust_id: demo::TRUST_ID.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_refused(&status, Code::PermissionDenied, "OTHER_TRUST_ADMINISTRATOR");
        // Their own trust's list is empty.
        let own = theirs
            .list_invitations(inv::ListInvitationsRequest {
                trust_id: demo::OTHER_TRUST_ID.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(own.invitations.is_empty());
        // The invitation is untouched.
        assert_eq!(
            status_of(&suite, &admin, &id).await,
            inv::InvitationStatus::Pending as i32
        );
    }
}

#[tokio::test]
async fn lists_filter_by_status_staff_and_product_newest_first_in_pages() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let a = invite(&mut client, staff(14).0, None).await;
        let b = invite(
            &mut client,
            staff(15).0,
            Some((&["comms-hub"], "writer", &[school(0)])),
        )
        .await;
        let c = invite(&mut client, staff(1).0, None).await;
        let list = |request: inv::ListInvitationsRequest| {
            let mut client = client.clone();
            async move {
                client
                    .list_invitations(request)
                    .await
                    .map(|r| r.into_inner())
            }
        };
        let base = inv::ListInvitationsRequest {
            trust_id: demo::TRUST_ID.into(),
            ..Default::default()
        };
        let all = list(base.clone()).await.unwrap();
        let ids: Vec<_> = all.invitations.iter().map(|i| i.id.clone()).collect();
        assert_eq!(
            ids,
            vec![c.id.clone(), b.id.clone(), a.id.clone()],
            "newest first"
        );
        let granted = list(inv::ListInvitationsRequest {
            status: inv::InvitationStatus::Granted as i32,
            ..base.clone()
        })
        .await
        .unwrap();
        assert_eq!(granted.invitations.len(), 1);
        assert_eq!(granted.invitations[0].id, c.id);
        let by_staff = list(inv::ListInvitationsRequest {
            staff_id: staff(14).0.into(),
            ..base.clone()
        })
        .await
        .unwrap();
        assert_eq!(by_staff.invitations[0].id, a.id);
        let by_product = list(inv::ListInvitationsRequest {
            product_key: "comms-hub".into(),
            ..base.clone()
        })
        .await
        .unwrap();
        assert_eq!(by_product.invitations.len(), 1);
        assert_eq!(by_product.invitations[0].id, b.id);

        let page1 = list(inv::ListInvitationsRequest {
            page_size: 2,
            ..base.clone()
        })
        .await
        .unwrap();
        assert_eq!(page1.invitations.len(), 2);
        assert!(!page1.next_page_token.is_empty());
        let page2 = list(inv::ListInvitationsRequest {
            page_size: 2,
            page_token: page1.next_page_token.clone(),
            ..base.clone()
        })
        .await
        .unwrap();
        assert_eq!(page2.invitations.len(), 1);
        assert_eq!(page2.invitations[0].id, a.id);
        assert!(page2.next_page_token.is_empty());
        // A token only works with the filter it was made for.
        let status = list(inv::ListInvitationsRequest {
            page_size: 2,
            page_token: page1.next_page_token,
            product_key: "portal".into(),
            ..base
        })
        .await
        .unwrap_err();
        assert_invalid(&status, &["page_token"]);
    }
}
