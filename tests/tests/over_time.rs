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
