//! Access over time across the services: revoke and accept serialised, dropped grants.

#![allow(clippy::unwrap_used)]

use tonic::Code;

use portal_proto::invitation::v1 as inv;
use portal_runtime::error::status_reason;
use portal_suite_tests::{Backend, Suite, create_request, school};

const PASSWORD: &str = "correct horse battery";

fn accept_request(token: &str) -> inv::AcceptInvitationRequest {
    inv::AcceptInvitationRequest {
        token: token.into(),
        given_name: "New".into(),
        family_name: "Starter".into(),
        password: PASSWORD.into(),
        request_id: String::new(),
    }
}

async fn get(suite: &Suite, admin: &str, id: &str) -> inv::Invitation {
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
}

/// How one race between a revoke and an accept of the same link ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Winner {
    Revoke,
    Accept,
}

/// Fires a revoke and an accept of one invitation together and checks that exactly one won
/// and that the loser changed nothing.
/// The revoke leaves `revoke_after` after the accept, so that both orders are tried.
async fn race(
    suite: &Suite,
    admin: &str,
    email: &str,
    invitation: &inv::Invitation,
    revoke_after: std::time::Duration,
) -> Winner {
    let token = suite.link_for(email, 1).await;
    let mut revoker = suite.invitations(Some(admin));
    let mut accepter = suite.invitations(None);
    let (revoked, accepted) = tokio::join!(
        async {
            tokio::time::sleep(revoke_after).await;
            revoker
                .revoke_invitation(inv::RevokeInvitationRequest {
                    invitation_id: invitation.id.clone(),
                })
                .await
        },
        accepter.accept_invitation(accept_request(&token)),
    );
    match (revoked, accepted) {
        (Ok(revoked), Err(refused)) => {
            let revoked = revoked.into_inner().invitation.unwrap();
            assert_eq!(revoked.status, inv::InvitationStatus::Revoked as i32);
            assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
            assert_eq!(status_reason(&refused).as_deref(), Some("LINK_REVOKED"));
            assert!(
                !suite.has_account(email).await,
                "a refused accept registered {email}"
            );
            let stored = get(suite, admin, &invitation.id).await;
            assert!(
                stored
                    .granted
                    .iter()
                    .all(|g| g.state == inv::GrantState::Dropped as i32),
                "{stored:?}"
            );
            Winner::Revoke
        }
        (Err(refused), Ok(accepted)) => {
            assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
            let reason = status_reason(&refused).unwrap_or_default();
            assert!(
                reason == "INVITATION_BEING_ACCEPTED" || reason == "INVITATION_NOT_PENDING",
                "{refused:?}"
            );
            let accepted = accepted.into_inner();
            let stored = get(suite, admin, &invitation.id).await;
            assert_eq!(stored.status, inv::InvitationStatus::Accepted as i32);
            let access = suite.access_of(&accepted.account_id).await;
            assert_eq!(access.len(), invitation.granted.len(), "{access:?}");
            assert!(access.iter().all(|a| a.3 == 2), "all ACTIVE: {access:?}");
            Winner::Accept
        }
        (revoked, accepted) => panic!("not exactly one winner: {revoked:?} / {accepted:?}"),
    }
}

#[tokio::test]
async fn revoke_and_accept_fired_together_leave_exactly_one_winner_and_nothing_of_the_loser() {
    const RACES: usize = 40;
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let starters = suite.add_new_starters(RACES).await;
        let mut client = suite.invitations(Some(&admin));
        let mut invitations = Vec::new();
        for (staff_id, _) in &starters {
            let made = client
                .create_invitation(create_request(
                    staff_id,
                    ("portal", "full-edit"),
                    Some((&["websites-cms"], "writer", &[school(0)])),
                ))
                .await
                .unwrap()
                .into_inner()
                .invitation
                .unwrap();
            invitations.push(made);
        }
        let mut winners = Vec::new();
        // Ten races at a time, each a revoke and an accept sent together, the revoke 0 to 9
        // ms after the accept.
        let races: Vec<_> = starters.iter().zip(&invitations).collect();
        for batch in races.chunks(10) {
            let ended = futures::future::join_all(batch.iter().enumerate().map(
                |(i, ((_, email), invitation))| {
                    let after = std::time::Duration::from_millis(i as u64);
                    race(&suite, &admin, email, invitation, after)
                },
            ))
            .await;
            winners.extend(ended);
        }
        // The revoked invitations' grants are withdrawn in identity too: registered later,
        // the person finds none of them, pending or active.
        for ((_, email), winner) in starters.iter().zip(&winners) {
            if *winner == Winner::Revoke {
                let account = suite
                    .accounts(Some(&suite.service_token("invitation")))
                    .register_account(portal_proto::identity::v1::RegisterAccountRequest {
                        email: email.clone(),
                        given_name: "New".into(),
                        family_name: "Starter".into(),
                        password: PASSWORD.into(),
                        invitation_id: String::new(),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .account
                    .unwrap();
                suite
                    .eventually("a revoked invitation's grants are withdrawn", || async {
                        suite.access_of(&account.id).await.is_empty().then_some(())
                    })
                    .await;
            }
        }
        let revokes = winners.iter().filter(|w| **w == Winner::Revoke).count();
        eprintln!(
            "{backend:?}: {RACES} races, revoke won {revokes}, accept won {}",
            RACES - revokes
        );
    }
}

#[tokio::test]
async fn an_expired_invitation_reports_its_grants_as_dropped() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (staff_id, _) = suite.add_new_starters(1).await.remove(0);
        let made = suite
            .invitations(Some(&admin))
            .create_invitation(create_request(
                &staff_id,
                ("portal", "full-edit"),
                Some((&["websites-cms"], "writer", &[school(0), school(1)])),
            ))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert!(
            made.granted
                .iter()
                .all(|g| g.state == inv::GrantState::Pending as i32)
        );
        suite.clock.advance(chrono::Duration::days(15));
        let expired = get(&suite, &admin, &made.id).await;
        assert_eq!(expired.status, inv::InvitationStatus::Expired as i32);
        assert_eq!(expired.granted.len(), made.granted.len());
        assert!(
            expired
                .granted
                .iter()
                .all(|g| g.state == inv::GrantState::Dropped as i32),
            "{expired:?}"
        );
    }
}

/// (organisation id, product, role) of each access in force, sorted.
async fn in_force(suite: &Suite, account_id: &str) -> Vec<(String, String, String)> {
    suite
        .access_of(account_id)
        .await
        .into_iter()
        .map(|(org, product, role, _)| (org, product, role))
        .collect()
}

#[tokio::test]
async fn a_person_holds_one_role_per_product_per_organisation_and_a_new_role_replaces_the_old() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        // STAFF[1] has an account with Websites CMS Writer at the first school.
        let (staff_id, email, _) = portal_suite_tests::staff(1);
        let (_, account_id) = suite
            .sign_in_account(email, portal_suite_tests::demo::EXISTING_USER_PASSWORD)
            .await;
        let schools = [school(0)];
        let invite = |trust_role: &'static str, school_role: Option<&'static str>| {
            create_request(
                staff_id,
                ("portal", trust_role),
                school_role.map(|role| (&["websites-cms"][..], role, &schools[..])),
            )
        };
        let first = client
            .create_invitation(invite("full-edit", Some("publisher")))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(first.status, inv::InvitationStatus::Granted as i32);
        assert_eq!(first.granted[0].state, inv::GrantState::Active as i32);
        assert_eq!(first.granted[1].state, inv::GrantState::RoleChanged as i32);
        assert_eq!(first.granted[1].previous_role_key, "writer");

        let second = client
            .create_invitation(invite("partial-edit", None))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(second.granted[0].state, inv::GrantState::RoleChanged as i32);
        assert_eq!(second.granted[0].previous_role_key, "full-edit");
        // Read back, the outcome says the same.
        let stored = get(&suite, &admin, &second.id).await;
        assert_eq!(stored.granted, second.granted);

        let third = client
            .create_invitation(invite("partial-edit", None))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(third.granted[0].state, inv::GrantState::AlreadyHeld as i32);
        assert_eq!(third.granted[0].previous_role_key, "");

        let trust = portal_suite_tests::demo::TRUST_ID.to_string();
        assert_eq!(
            in_force(&suite, &account_id).await,
            {
                let mut want = vec![
                    (trust, "portal".to_string(), "partial-edit".to_string()),
                    (
                        school(0).to_string(),
                        "websites-cms".to_string(),
                        "publisher".to_string(),
                    ),
                ];
                want.sort();
                want
            },
            "one role per product and organisation"
        );
    }
}

#[tokio::test]
async fn a_pending_role_replaced_by_a_later_invitation_is_not_activated_by_the_first_link() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let (staff_id, email) = suite.add_new_starters(1).await.remove(0);
        let first = client
            .create_invitation(create_request(
                &staff_id,
                ("portal", "full-edit"),
                Some((&["websites-cms"], "writer", &[school(0)])),
            ))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        let second = client
            .create_invitation(create_request(
                &staff_id,
                ("sonar-multi-school", "viewer"),
                Some((&["websites-cms"], "publisher", &[school(0)])),
            ))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(second.granted[1].state, inv::GrantState::RoleChanged as i32);
        assert_eq!(second.granted[1].previous_role_key, "writer");
        // The first link is the one the invitee uses.
        let token = suite
            .wait_for_emails(&email, 2)
            .await
            .into_iter()
            .find_map(|m| m.link_token().filter(|_| !m.text.contains("Sonar")))
            .unwrap();
        let accepted = suite
            .invitations(None)
            .accept_invitation(accept_request(&token))
            .await
            .unwrap()
            .into_inner();
        let invitation = accepted.invitation.unwrap();
        assert_eq!(invitation.id, first.id);
        assert_eq!(invitation.granted[0].state, inv::GrantState::Active as i32);
        assert_eq!(
            invitation.granted[1].state,
            inv::GrantState::Dropped as i32,
            "the Writer role was replaced before sign-up"
        );
        let roles: Vec<(String, String)> = in_force(&suite, &accepted.account_id)
            .await
            .into_iter()
            .map(|(_, product, role)| (product, role))
            .collect();
        assert!(
            roles.contains(&("websites-cms".into(), "publisher".into())),
            "{roles:?}"
        );
        assert!(
            !roles.contains(&("websites-cms".into(), "writer".into())),
            "{roles:?}"
        );
    }
}

/// Registers an account for `email` in identity directly (as when the person signed up
/// through another product), returning its id.
async fn register_elsewhere(suite: &Suite, email: &str) -> String {
    suite
        .accounts(Some(&suite.service_token("invitation")))
        .register_account(portal_proto::identity::v1::RegisterAccountRequest {
            email: email.into(),
            given_name: "New".into(),
            family_name: "Starter".into(),
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

async fn inspect(suite: &Suite, token: &str) -> Result<inv::LinkDetails, tonic::Status> {
    suite
        .invitations(None)
        .inspect_invitation_link(inv::InspectInvitationLinkRequest {
            token: token.into(),
        })
        .await
        .map(|r| r.into_inner().link.unwrap())
}

fn refused_with(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, reason: &str) {
    let status = result.expect_err("refused");
    portal_suite_tests::assert_refused(&status, code, reason);
}

#[tokio::test]
async fn registering_through_one_link_settles_every_other_pending_invitation_of_the_person() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (staff_id, email) = suite.add_new_starters(1).await.remove(0);
        // The same person is in another trust's MIS, with the same school email.
        let other_trust = portal_suite_tests::demo::OTHER_TRUST_ID;
        let mut record = portal_suite_tests::new_starter(0);
        record.mis_id = "SB-77".into();
        suite.sync_staff_of(other_trust, vec![record]).await;
        let other_staff = suite.staff_id_in(other_trust, &email).await;
        let other_admin = suite
            .sign_in(
                portal_suite_tests::demo::OTHER_ADMIN_EMAIL,
                portal_suite_tests::demo::OTHER_ADMIN_PASSWORD,
            )
            .await
            .unwrap();

        let create = |client: &mut portal_suite_tests::InvitationClient,
                      request: inv::CreateInvitationRequest| {
            let mut client = client.clone();
            async move {
                client
                    .create_invitation(request)
                    .await
                    .unwrap()
                    .into_inner()
                    .invitation
                    .unwrap()
            }
        };
        let mut ours = suite.invitations(Some(&admin));
        let portal = create(
            &mut ours,
            create_request(&staff_id, ("portal", "full-edit"), None),
        )
        .await;
        let sonar = create(
            &mut ours,
            create_request(&staff_id, ("sonar-multi-school", "viewer"), None),
        )
        .await;
        let mut theirs = suite.invitations(Some(&other_admin));
        let mut request = create_request(&other_staff, ("portal", "partial-edit"), None);
        request.trust_id = other_trust.into();
        let southbank = create(&mut theirs, request).await;

        let mails = suite.wait_for_emails(&email, 3).await;
        let link_of = |word: &str| {
            mails
                .iter()
                .find(|m| m.text.contains(word))
                .and_then(|m| m.link_token())
                .unwrap()
        };
        let sonar_link = link_of("Sonar");
        let southbank_link = link_of("Southbank");
        let portal_link = mails
            .iter()
            .filter_map(|m| m.link_token())
            .find(|t| *t != sonar_link && *t != southbank_link)
            .unwrap();

        let accepted = suite
            .invitations(None)
            .accept_invitation(accept_request(&portal_link))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(accepted.invitation.unwrap().id, portal.id);

        // The two other invitations are the new account's, their access active.
        for (client, invitation) in [(&admin, &sonar), (&other_admin, &southbank)] {
            let settled = get(&suite, client, &invitation.id).await;
            assert_eq!(settled.status, inv::InvitationStatus::Accepted as i32);
            assert_eq!(settled.settled_by_invitation_id, portal.id);
            suite
                .eventually("the settled invitation's grants are active", || async {
                    get(&suite, client, &invitation.id)
                        .await
                        .granted
                        .iter()
                        .all(|g| g.state == inv::GrantState::Active as i32)
                        .then_some(())
                })
                .await;
        }
        let access = suite.access_of(&accepted.account_id).await;
        assert_eq!(access.len(), 3, "{access:?}");
        assert!(access.iter().all(|a| a.3 == 2), "all ACTIVE: {access:?}");
        // Their links tell the person to sign in.
        for link in [&sonar_link, &southbank_link] {
            refused_with(
                inspect(&suite, link).await,
                Code::FailedPrecondition,
                "SIGN_IN_INSTEAD",
            );
            refused_with(
                suite
                    .invitations(None)
                    .accept_invitation(accept_request(link))
                    .await,
                Code::FailedPrecondition,
                "SIGN_IN_INSTEAD",
            );
        }
    }
}

#[tokio::test]
async fn a_person_with_an_account_accepts_a_sign_up_link_signed_in_without_registering() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (staff_id, email) = suite.add_new_starters(1).await.remove(0);
        let invitation = suite
            .invitations(Some(&admin))
            .create_invitation(create_request(
                &staff_id,
                ("portal", "full-edit"),
                Some((&["websites-cms"], "writer", &[school(0)])),
            ))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        let link = suite.link_for(&email, 1).await;
        // They sign up elsewhere before they use the link.
        let account_id = register_elsewhere(&suite, &email).await;
        refused_with(
            suite
                .invitations(None)
                .accept_invitation(accept_request(&link))
                .await,
            Code::AlreadyExists,
            "ACCOUNT_EXISTS",
        );
        assert_eq!(
            get(&suite, &admin, &invitation.id).await.status,
            inv::InvitationStatus::Pending as i32,
            "a refused accept changes nothing"
        );
        // Someone else's token does not take the link.
        refused_with(
            suite
                .invitations(Some(&admin))
                .accept_invitation(accept_request(&link))
                .await,
            Code::PermissionDenied,
            "LINK_FOR_ANOTHER_ACCOUNT",
        );
        refused_with(
            suite
                .invitations(Some("not-a-token"))
                .accept_invitation(accept_request(&link))
                .await,
            Code::Unauthenticated,
            "TOKEN_INVALID",
        );
        // Signed in, the link alone (no names, no password) activates its access.
        let user = suite.sign_in(&email, PASSWORD).await.unwrap();
        let accepted = suite
            .invitations(Some(&user))
            .accept_invitation(inv::AcceptInvitationRequest {
                token: link.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(accepted.account_id, account_id);
        let invitation = accepted.invitation.unwrap();
        assert_eq!(invitation.status, inv::InvitationStatus::Accepted as i32);
        assert!(
            invitation
                .granted
                .iter()
                .all(|g| g.state == inv::GrantState::Active as i32)
        );
        let access = suite.access_of(&account_id).await;
        assert_eq!(access.len(), 2, "{access:?}");
        assert!(access.iter().all(|a| a.3 == 2), "all ACTIVE: {access:?}");
    }
}

#[tokio::test]
async fn a_resend_to_someone_who_now_has_an_account_sends_the_new_product_notice() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (staff_id, email) = suite.add_new_starters(1).await.remove(0);
        let invitation = suite
            .invitations(Some(&admin))
            .create_invitation(create_request(&staff_id, ("portal", "full-edit"), None))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        let link = suite.link_for(&email, 1).await;
        let account_id = register_elsewhere(&suite, &email).await;
        let resent = suite
            .invitations(Some(&admin))
            .resend_invitation(inv::ResendInvitationRequest {
                invitation_id: invitation.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(resent.status, inv::InvitationStatus::Granted as i32);
        assert_eq!(resent.delivery, inv::DeliveryKind::NewProductNotice as i32);
        assert!(resent.expire_time.is_none());
        assert!(
            resent
                .granted
                .iter()
                .all(|g| g.state == inv::GrantState::Active as i32),
            "{resent:?}"
        );
        let mails = suite.wait_for_emails(&email, 2).await;
        assert!(mails[1].link_token().is_none(), "a notice, not a link");
        let access = suite.access_of(&account_id).await;
        assert_eq!(access.len(), 1);
        assert_eq!(access[0].3, 2, "ACTIVE");
        refused_with(
            inspect(&suite, &link).await,
            Code::FailedPrecondition,
            "SIGN_IN_INSTEAD",
        );
    }
}

async fn is_administrator(suite: &Suite, account_id: &str) -> bool {
    suite
        .grants(Some(&suite.service_token("invitation")))
        .check_administrator(portal_proto::identity::v1::CheckAdministratorRequest {
            trust_id: portal_suite_tests::demo::TRUST_ID.into(),
            account_id: account_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .administrator
}

#[tokio::test]
async fn a_leaver_loses_pending_invitations_and_access_at_that_trust_only_until_listed_again() {
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let mut client = suite.invitations(Some(&admin));
        let starters = suite.add_new_starters(2).await;
        let (pending_staff, pending_email) = starters[0].clone();
        let (late_staff, late_email) = starters[1].clone();
        let pending = client
            .create_invitation(create_request(
                &pending_staff,
                ("portal", "full-edit"),
                None,
            ))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        client
            .create_invitation(create_request(&late_staff, ("portal", "full-edit"), None))
            .await
            .unwrap();
        let pending_link = suite.link_for(&pending_email, 1).await;
        let late_link = suite.link_for(&late_email, 1).await;
        // STAFF[1] has an account: made an Account Admin of this trust, and given access at
        // the other trust too.
        let (ben_staff, ben_email, _) = portal_suite_tests::staff(1);
        let (_, ben) = suite
            .sign_in_account(ben_email, portal_suite_tests::demo::EXISTING_USER_PASSWORD)
            .await;
        client
            .create_invitation(create_request(ben_staff, ("portal", "account-admin"), None))
            .await
            .unwrap();
        assert!(is_administrator(&suite, &ben).await);
        let other_trust = portal_suite_tests::demo::OTHER_TRUST_ID;
        let demo_ben = portal_suite_tests::demo_snapshot().remove(1);
        suite.sync_staff_of(other_trust, vec![demo_ben]).await;
        let other_ben = suite.staff_id_in(other_trust, ben_email).await;
        let other_admin = suite
            .sign_in(
                portal_suite_tests::demo::OTHER_ADMIN_EMAIL,
                portal_suite_tests::demo::OTHER_ADMIN_PASSWORD,
            )
            .await
            .unwrap();
        let mut request = create_request(&other_ben, ("portal", "full-edit"), None);
        request.trust_id = other_trust.into();
        suite
            .invitations(Some(&other_admin))
            .create_invitation(request)
            .await
            .unwrap();
        let before = suite.access_of(&ben).await;

        // The MIS no longer lists Ben and the two new starters.
        let mut snapshot = portal_suite_tests::demo_snapshot();
        snapshot.remove(1);
        let summary = suite.sync_staff(snapshot.clone()).await;
        assert_eq!(summary.marked_left, 3);
        // Two pending grants of the new starters, Ben's Websites CMS and Portal grants.
        assert_eq!(summary.suspended_grants, 4, "{summary:?}");
        assert!(
            !summary.last_account_owner_left,
            "the demo administrator remains"
        );

        // Ben's access here is suspended and no longer honoured; the other trust's stays.
        assert!(!is_administrator(&suite, &ben).await);
        let after = suite.access_of(&ben).await;
        assert_eq!(after.len(), 1, "{after:?}");
        assert_eq!(after[0].0, other_trust);

        // The pending invitation is revoked with STAFF_LEFT; its link says so.
        suite
            .eventually("the leaver's invitation is revoked", || async {
                let got = get(&suite, &admin, &pending.id).await;
                (got.status == inv::InvitationStatus::Revoked as i32).then_some(got)
            })
            .await;
        let revoked = get(&suite, &admin, &pending.id).await;
        assert_eq!(revoked.revoke_reason, "STAFF_LEFT");
        refused_with(
            inspect(&suite, &pending_link).await,
            Code::FailedPrecondition,
            "STAFF_LEFT",
        );
        // Accepting re-checks the MIS whatever the feed has done: refused, nothing registered.
        refused_with(
            suite
                .invitations(None)
                .accept_invitation(accept_request(&late_link))
                .await,
            Code::FailedPrecondition,
            "STAFF_LEFT",
        );
        assert!(!suite.has_account(&late_email).await);

        // Listed again, Ben has his access back as it was.
        let summary = suite.sync_staff(portal_suite_tests::demo_snapshot()).await;
        assert_eq!(summary.restored_grants, 2, "{summary:?}");
        assert!(is_administrator(&suite, &ben).await);
        assert_eq!(suite.access_of(&ben).await, before);
    }
}

#[tokio::test]
async fn a_trust_administrator_lists_and_withdraws_a_staff_members_access() {
    use portal_proto::identity::v1 as id;
    for backend in Backend::all() {
        let suite = Suite::start(backend).await;
        let admin = suite.admin().await;
        let (ben_staff, ben_email, _) = portal_suite_tests::staff(1);
        let (ben_token, ben) = suite
            .sign_in_account(ben_email, portal_suite_tests::demo::EXISTING_USER_PASSWORD)
            .await;
        let invitation = suite
            .invitations(Some(&admin))
            .create_invitation(create_request(
                ben_staff,
                ("portal", "full-edit"),
                Some((&["websites-cms"], "writer", &[school(1)])),
            ))
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        let list = |token: String| {
            let suite = &suite;
            async move {
                suite
                    .access(Some(&token))
                    .list_staff_access(id::ListStaffAccessRequest {
                        trust_id: portal_suite_tests::demo::TRUST_ID.into(),
                        staff_id: ben_staff.into(),
                    })
                    .await
                    .map(|r| r.into_inner().access)
            }
        };
        let access = list(admin.clone()).await.unwrap();
        assert_eq!(access.len(), 3, "{access:?}");
        assert_eq!(
            access[0].organization_id,
            portal_suite_tests::demo::TRUST_ID
        );
        let made: Vec<_> = access
            .iter()
            .filter(|a| a.invitation_id == invitation.id)
            .collect();
        assert_eq!(made.len(), 2, "the invitation behind each grant");
        assert!(
            access
                .iter()
                .all(|a| a.status == id::GrantStatus::Active as i32)
        );
        refused_with(
            list(ben_token).await,
            Code::PermissionDenied,
            "NOT_TRUST_ADMINISTRATOR",
        );

        let withdraw = |organization_id: &str, product_key: &str| id::WithdrawAccessRequest {
            trust_id: portal_suite_tests::demo::TRUST_ID.into(),
            staff_id: ben_staff.into(),
            organization_id: organization_id.into(),
            product_key: product_key.into(),
        };
        let mut client = suite.access(Some(&admin));
        let one = client
            .withdraw_access(withdraw(school(1), "websites-cms"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(one.withdrawn_count, 1);
        let left = suite.access_of(&ben).await;
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().all(|a| a.0 != school(1)));
        let status = client
            .withdraw_access(withdraw(school(1), ""))
            .await
            .unwrap_err();
        portal_suite_tests::assert_invalid(&status, &["product_key"]);
        let all = client
            .withdraw_access(withdraw("", ""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.withdrawn_count, 2);
        assert!(suite.access_of(&ben).await.is_empty());
        assert!(list(admin.clone()).await.unwrap().is_empty());
    }
}
