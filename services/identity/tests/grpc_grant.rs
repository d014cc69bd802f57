//! GrantService over gRPC: batch grants, activation, revocation, access and administrators.

mod common;

use common::{Server, expect_code, expect_reason, expect_violations, start};
use portal_proto::identity::v1 as pb;
use portal_runtime::demo::{
    ADMIN_EMAIL, OTHER_ADMIN_EMAIL, OTHER_SCHOOL, OTHER_TRUST_ID, SCHOOLS, STAFF, TRUST_ID,
};
use tonic::Code;

const INVITATION_A: &str = "11111111-0000-4000-8000-00000000000a";
const INVITATION_B: &str = "11111111-0000-4000-8000-00000000000b";

fn trust_spec(product: &str, role: &str) -> pb::GrantSpec {
    pb::GrantSpec {
        organization_kind: pb::OrganizationKind::Trust as i32,
        organization_id: TRUST_ID.into(),
        product_key: product.into(),
        role_key: role.into(),
    }
}

fn school_spec(school: &str, product: &str, role: &str) -> pb::GrantSpec {
    pb::GrantSpec {
        organization_kind: pb::OrganizationKind::School as i32,
        organization_id: school.into(),
        product_key: product.into(),
        role_key: role.into(),
    }
}

fn batch(
    invitation: &str,
    staff: usize,
    grants: Vec<pb::GrantSpec>,
    activate: bool,
) -> pb::BatchGrantRequest {
    pb::BatchGrantRequest {
        invitation_id: invitation.into(),
        trust_id: TRUST_ID.into(),
        email: STAFF[staff].4.into(),
        staff_id: STAFF[staff].0.into(),
        grants,
        activate,
    }
}

fn three_grants() -> Vec<pb::GrantSpec> {
    vec![
        trust_spec("sonar-multi-school", "viewer"),
        school_spec(SCHOOLS[0].0, "websites-cms", "publisher"),
        school_spec(SCHOOLS[1].0, "websites-cms", "publisher"),
    ]
}

async fn grant(server: &Server, request: pb::BatchGrantRequest) -> Vec<pb::GrantResult> {
    let token = server.invitation();
    server
        .grants(Some(&token))
        .batch_grant(request)
        .await
        .expect("batch grant")
        .into_inner()
        .results
}

fn outcomes(results: &[pb::GrantResult]) -> Vec<i32> {
    results.iter().map(|r| r.outcome).collect()
}

fn ids(results: &[pb::GrantResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| r.grant.as_ref().expect("grant").id.clone())
        .collect()
}

#[tokio::test]
async fn a_repeated_batch_grant_creates_nothing_and_returns_the_same_grants() {
    let server = start().await;
    let first = grant(&server, batch(INVITATION_A, 3, three_grants(), false)).await;
    assert_eq!(outcomes(&first), vec![pb::GrantOutcome::Created as i32; 3]);
    for result in &first {
        let g = result.grant.as_ref().expect("grant");
        assert_eq!(g.status, pb::GrantStatus::Pending as i32);
        assert_eq!(g.email, STAFF[3].4);
        assert!(g.account_id.is_empty());
    }
    let again = grant(&server, batch(INVITATION_A, 3, three_grants(), false)).await;
    assert_eq!(
        outcomes(&again),
        vec![pb::GrantOutcome::AlreadyGranted as i32; 3]
    );
    assert_eq!(ids(&first), ids(&again));
}

#[tokio::test]
async fn concurrent_retries_of_one_batch_grant_make_each_grant_once() {
    let server = start().await;
    let calls = (0..6).map(|_| grant(&server, batch(INVITATION_A, 3, three_grants(), false)));
    let all = futures::future::join_all(calls).await;
    let created: usize = all
        .iter()
        .flatten()
        .filter(|r| r.outcome == pb::GrantOutcome::Created as i32)
        .count();
    assert_eq!(created, 3);
    for results in &all {
        assert_eq!(ids(results), ids(&all[0]));
    }
}

#[tokio::test]
async fn access_already_held_through_another_invitation_is_not_granted_twice() {
    let server = start().await;
    let first = grant(&server, batch(INVITATION_A, 3, three_grants(), false)).await;
    let mut specs = three_grants();
    specs.push(school_spec(SCHOOLS[2].0, "websites-cms", "publisher"));
    let second = grant(&server, batch(INVITATION_B, 3, specs, false)).await;
    assert_eq!(
        outcomes(&second),
        vec![
            pb::GrantOutcome::AlreadyHeld as i32,
            pb::GrantOutcome::AlreadyHeld as i32,
            pb::GrantOutcome::AlreadyHeld as i32,
            pb::GrantOutcome::Created as i32,
        ]
    );
    assert_eq!(ids(&second)[..3], ids(&first)[..]);
    assert_eq!(
        second[3].grant.as_ref().expect("grant").invitation_id,
        INVITATION_B
    );
}

#[tokio::test]
async fn an_existing_users_grants_are_active_at_once() {
    let server = start().await;
    let account = server.account_id(STAFF[1].4).await;
    let results = grant(
        &server,
        batch(
            INVITATION_A,
            1,
            vec![school_spec(SCHOOLS[1].0, "websites-cms", "writer")],
            true,
        ),
    )
    .await;
    let g = results[0].grant.as_ref().expect("grant");
    assert_eq!(g.status, pb::GrantStatus::Active as i32);
    assert_eq!(g.account_id, account);
    // The seeded grant of the same access is held already.
    let held = grant(
        &server,
        batch(
            INVITATION_B,
            1,
            vec![school_spec(SCHOOLS[0].0, "websites-cms", "writer")],
            true,
        ),
    )
    .await;
    assert_eq!(held[0].outcome, pb::GrantOutcome::AlreadyHeld as i32);
}

#[tokio::test]
async fn active_grants_need_an_account_with_the_email() {
    let server = start().await;
    let token = server.invitation();
    let result = server
        .grants(Some(&token))
        .batch_grant(batch(INVITATION_A, 3, three_grants(), true))
        .await;
    expect_reason(result, Code::FailedPrecondition, "ACCOUNT_NOT_FOUND");
}

#[tokio::test]
async fn activation_binds_pending_grants_to_the_new_account() {
    let server = start().await;
    grant(&server, batch(INVITATION_A, 3, three_grants(), false)).await;
    let account = server.register(STAFF[3].4, "long enough password").await;
    let token = server.invitation();
    let activate = || pb::ActivateGrantsRequest {
        invitation_id: INVITATION_A.into(),
        account_id: account.clone(),
    };
    let grants = server
        .grants(Some(&token))
        .activate_grants(activate())
        .await
        .expect("activate")
        .into_inner()
        .grants;
    assert_eq!(grants.len(), 3);
    for g in &grants {
        assert_eq!(g.status, pb::GrantStatus::Active as i32);
        assert_eq!(g.account_id, account);
    }
    let again = server
        .grants(Some(&token))
        .activate_grants(activate())
        .await
        .expect("activate again")
        .into_inner()
        .grants;
    assert_eq!(again, grants, "activation is idempotent");
}

#[tokio::test]
async fn activation_for_an_account_with_another_email_is_refused() {
    let server = start().await;
    grant(&server, batch(INVITATION_A, 3, three_grants(), false)).await;
    let other = server.register(STAFF[4].4, "long enough password").await;
    let token = server.invitation();
    let result = server
        .grants(Some(&token))
        .activate_grants(pb::ActivateGrantsRequest {
            invitation_id: INVITATION_A.into(),
            account_id: other,
        })
        .await;
    expect_reason(result, Code::FailedPrecondition, "ACCOUNT_EMAIL_MISMATCH");
    let result = server
        .grants(Some(&token))
        .activate_grants(pb::ActivateGrantsRequest {
            invitation_id: INVITATION_A.into(),
            account_id: "7f3c2a10-0000-4000-8000-00000000dead".into(),
        })
        .await;
    expect_code(result, Code::NotFound);
}

async fn revoke(server: &Server, invitation: &str, pending_only: bool) -> i32 {
    let token = server.invitation();
    server
        .grants(Some(&token))
        .revoke_grants(pb::RevokeGrantsRequest {
            invitation_id: invitation.into(),
            pending_only,
        })
        .await
        .expect("revoke")
        .into_inner()
        .revoked_count
}

#[tokio::test]
async fn revoking_pending_only_leaves_active_grants_in_force() {
    let server = start().await;
    grant(&server, batch(INVITATION_A, 1, three_grants(), true)).await;
    grant(&server, batch(INVITATION_B, 3, three_grants(), false)).await;
    assert_eq!(revoke(&server, INVITATION_A, true).await, 0);
    assert_eq!(revoke(&server, INVITATION_B, true).await, 3);
    assert_eq!(revoke(&server, INVITATION_B, true).await, 0, "idempotent");
    assert_eq!(revoke(&server, INVITATION_A, false).await, 3);
    assert_eq!(
        revoke(&server, "7f3c2a10-0000-4000-8000-00000000dead", false).await,
        0
    );
    // Revoked access can be granted again by a new invitation.
    let again = grant(
        &server,
        batch(
            "11111111-0000-4000-8000-00000000000c",
            3,
            three_grants(),
            false,
        ),
    )
    .await;
    assert_eq!(outcomes(&again), vec![pb::GrantOutcome::Created as i32; 3]);
}

#[tokio::test]
async fn a_user_lists_their_own_access_one_entry_per_organisation() {
    let server = start().await;
    let results = grant(&server, batch(INVITATION_A, 1, three_grants(), true)).await;
    // One role per product per organisation: Publisher replaces the seeded Writer.
    assert_eq!(results[1].outcome, pb::GrantOutcome::RoleChanged as i32);
    let replacing = results[1].grant.as_ref().expect("a grant");
    assert_eq!(replacing.previous_role_key, "writer");
    assert_eq!(replacing.role_key, "publisher");
    assert_eq!(results[2].outcome, pb::GrantOutcome::Created as i32);
    assert_eq!(
        results[2]
            .grant
            .as_ref()
            .expect("a grant")
            .previous_role_key,
        ""
    );
    // Retried, the grant still names the role it replaced.
    let again = grant(&server, batch(INVITATION_A, 1, three_grants(), true)).await;
    assert_eq!(again[1].outcome, pb::GrantOutcome::AlreadyGranted as i32);
    assert_eq!(
        again[1].grant.as_ref().expect("a grant").previous_role_key,
        "writer"
    );
    let token = server.token_of(STAFF[1].4).await;
    let access = server
        .grants(Some(&token))
        .list_access(pb::ListAccessRequest::default())
        .await
        .expect("list")
        .into_inner()
        .access;
    let orgs: Vec<&str> = access.iter().map(|a| a.organization_id.as_str()).collect();
    assert_eq!(
        orgs,
        vec![TRUST_ID, SCHOOLS[0].0, SCHOOLS[1].0],
        "trust first"
    );
    let roles: Vec<&str> = access[1]
        .products
        .iter()
        .map(|p| p.role_key.as_str())
        .collect();
    assert_eq!(
        roles,
        vec!["publisher"],
        "the new role replaced the seeded writer"
    );
}

#[tokio::test]
async fn access_is_paginated() {
    let server = start().await;
    grant(&server, batch(INVITATION_A, 1, three_grants(), true)).await;
    let token = server.token_of(STAFF[1].4).await;
    let mut client = server.grants(Some(&token));
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_access(pb::ListAccessRequest {
                account_id: String::new(),
                page_size: 1,
                page_token: page_token.clone(),
            })
            .await
            .expect("list")
            .into_inner();
        assert_eq!(page.access.len(), 1);
        seen.push(page.access[0].organization_id.clone());
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, vec![TRUST_ID, SCHOOLS[0].0, SCHOOLS[1].0]);
}

#[tokio::test]
async fn an_administrator_sees_only_their_own_trusts_part_of_someones_access() {
    let server = start().await;
    // Give STAFF[1]'s account access at the other trust too.
    let token = server.invitation();
    server
        .grants(Some(&token))
        .batch_grant(pb::BatchGrantRequest {
            invitation_id: INVITATION_B.into(),
            trust_id: OTHER_TRUST_ID.into(),
            email: STAFF[1].4.into(),
            staff_id: STAFF[1].0.into(),
            grants: vec![pb::GrantSpec {
                organization_kind: pb::OrganizationKind::School as i32,
                organization_id: OTHER_SCHOOL.0.into(),
                product_key: "websites-cms".into(),
                role_key: "writer".into(),
            }],
            activate: true,
        })
        .await
        .expect("grant at the other trust");
    let person = server.account_id(STAFF[1].4).await;
    let admin = server.token_of(ADMIN_EMAIL).await;
    let access = server
        .grants(Some(&admin))
        .list_access(pb::ListAccessRequest {
            account_id: person.clone(),
            ..Default::default()
        })
        .await
        .expect("admin lists")
        .into_inner()
        .access;
    assert_eq!(access.len(), 1);
    assert_eq!(access[0].trust_id, TRUST_ID);
    let service = server
        .grants(Some(&token))
        .list_access(pb::ListAccessRequest {
            account_id: person.clone(),
            ..Default::default()
        })
        .await
        .expect("service lists")
        .into_inner()
        .access;
    assert_eq!(service.len(), 2);

    // A person with nothing in the admin's trust is not theirs to see.
    let other_admin_account = server.account_id(OTHER_ADMIN_EMAIL).await;
    let result = server
        .grants(Some(&admin))
        .list_access(pb::ListAccessRequest {
            account_id: other_admin_account,
            ..Default::default()
        })
        .await;
    expect_code(result, Code::PermissionDenied);
    // A plain user may not look at anyone else.
    let plain = server.token_of(STAFF[1].4).await;
    let admin_account = server.account_id(ADMIN_EMAIL).await;
    let result = server
        .grants(Some(&plain))
        .list_access(pb::ListAccessRequest {
            account_id: admin_account,
            ..Default::default()
        })
        .await;
    expect_code(result, Code::PermissionDenied);
}

#[tokio::test]
async fn list_access_checks_its_input() {
    let server = start().await;
    let token = server.invitation();
    let result = server
        .grants(Some(&token))
        .list_access(pb::ListAccessRequest::default())
        .await;
    expect_violations(result, &["account_id"]);
    let result = server
        .grants(Some(&token))
        .list_access(pb::ListAccessRequest {
            account_id: "bad".into(),
            page_size: -5,
            page_token: "%%%".into(),
        })
        .await;
    expect_violations(result, &["account_id", "page_size", "page_token"]);
    let result = server
        .grants(Some(&token))
        .list_access(pb::ListAccessRequest {
            account_id: "7f3c2a10-0000-4000-8000-00000000dead".into(),
            ..Default::default()
        })
        .await;
    expect_code(result, Code::NotFound);
}

async fn check(
    server: &Server,
    token: &str,
    trust: &str,
    account: &str,
) -> pb::CheckAdministratorResponse {
    server
        .grants(Some(token))
        .check_administrator(pb::CheckAdministratorRequest {
            trust_id: trust.into(),
            account_id: account.into(),
        })
        .await
        .expect("check")
        .into_inner()
}

#[tokio::test]
async fn check_administrator_explains_each_decision() {
    let server = start().await;
    let token = server.invitation();
    let admin = server.account_id(ADMIN_EMAIL).await;
    let school_admin = server.account_id(STAFF[6].4).await;
    let other_admin = server.account_id(OTHER_ADMIN_EMAIL).await;
    let plain = server.account_id(STAFF[1].4).await;

    let answer = check(&server, &token, TRUST_ID, &admin).await;
    assert!(answer.administrator);
    assert_eq!(
        answer.decision,
        pb::AdministratorDecision::Administrator as i32
    );
    assert_eq!(answer.role_key, "account-owner");

    let answer = check(&server, &token, TRUST_ID, &school_admin).await;
    assert!(!answer.administrator);
    assert_eq!(
        answer.decision,
        pb::AdministratorDecision::SchoolLevelOnly as i32
    );
    assert!(answer.role_key.is_empty());

    let answer = check(&server, &token, TRUST_ID, &other_admin).await;
    assert_eq!(
        answer.decision,
        pb::AdministratorDecision::OtherTrust as i32
    );

    let answer = check(&server, &token, TRUST_ID, &plain).await;
    assert_eq!(
        answer.decision,
        pb::AdministratorDecision::NotAdministrator as i32
    );

    let answer = check(&server, &token, OTHER_TRUST_ID, &admin).await;
    assert_eq!(
        answer.decision,
        pb::AdministratorDecision::OtherTrust as i32
    );
}

#[tokio::test]
async fn an_account_admin_at_trust_level_is_an_administrator_too() {
    let server = start().await;
    grant(
        &server,
        batch(
            INVITATION_A,
            1,
            vec![trust_spec("portal", "account-admin")],
            true,
        ),
    )
    .await;
    let token = server.invitation();
    let plain = server.account_id(STAFF[1].4).await;
    let answer = check(&server, &token, TRUST_ID, &plain).await;
    assert!(answer.administrator);
    assert_eq!(answer.role_key, "account-admin");
    // Pending grants do not make an administrator.
    grant(
        &server,
        batch(
            INVITATION_B,
            3,
            vec![trust_spec("portal", "account-owner")],
            false,
        ),
    )
    .await;
    let pending = server.register(STAFF[3].4, "long enough password").await;
    let answer = check(&server, &token, TRUST_ID, &pending).await;
    assert!(!answer.administrator);
}

#[tokio::test]
async fn a_user_checks_only_themself() {
    let server = start().await;
    let admin_token = server.token_of(ADMIN_EMAIL).await;
    let answer = check(&server, &admin_token, TRUST_ID, "").await;
    assert!(answer.administrator);
    let other = server.account_id(STAFF[6].4).await;
    let result = server
        .grants(Some(&admin_token))
        .check_administrator(pb::CheckAdministratorRequest {
            trust_id: TRUST_ID.into(),
            account_id: other,
        })
        .await;
    expect_code(result, Code::PermissionDenied);
}

#[tokio::test]
async fn check_administrator_checks_its_input() {
    let server = start().await;
    let token = server.invitation();
    let result = server
        .grants(Some(&token))
        .check_administrator(pb::CheckAdministratorRequest::default())
        .await;
    expect_violations(result, &["trust_id", "account_id"]);
    let admin = server.account_id(ADMIN_EMAIL).await;
    let result = server
        .grants(Some(&token))
        .check_administrator(pb::CheckAdministratorRequest {
            trust_id: "7f3c2a10-0000-4000-8000-00000000dead".into(),
            account_id: admin,
        })
        .await;
    expect_code(result, Code::NotFound);
}

#[tokio::test]
async fn bad_batch_grants_name_each_bad_field() {
    let server = start().await;
    let token = server.invitation();
    let mut client = server.grants(Some(&token));
    let result = client
        .batch_grant(pb::BatchGrantRequest {
            invitation_id: String::new(),
            trust_id: "x".into(),
            email: "nope".into(),
            staff_id: String::new(),
            grants: vec![],
            activate: false,
        })
        .await;
    expect_violations(
        result,
        &["invitation_id", "trust_id", "email", "staff_id", "grants"],
    );
    let result = client
        .batch_grant(batch(
            INVITATION_A,
            3,
            vec![
                trust_spec("portal", "full-edit"),
                pb::GrantSpec {
                    organization_kind: 0,
                    organization_id: "bad".into(),
                    product_key: "Bad Key".into(),
                    role_key: String::new(),
                },
                pb::GrantSpec {
                    organization_kind: pb::OrganizationKind::Trust as i32,
                    organization_id: OTHER_TRUST_ID.into(),
                    product_key: "portal".into(),
                    role_key: "full-edit".into(),
                },
                trust_spec("portal", "full-edit"),
            ],
            false,
        ))
        .await;
    expect_violations(
        result,
        &[
            "grants[1].organization_kind",
            "grants[1].organization_id",
            "grants[1].product_key",
            "grants[1].role_key",
            "grants[2].organization_id",
            "grants[3]",
        ],
    );
    // A school of another trust is named by row.
    let result = client
        .batch_grant(batch(
            INVITATION_A,
            3,
            vec![
                trust_spec("portal", "full-edit"),
                school_spec(SCHOOLS[0].0, "websites-cms", "writer"),
                school_spec(OTHER_SCHOOL.0, "websites-cms", "writer"),
            ],
            false,
        ))
        .await;
    expect_violations(result, &["grants[2].organization_id"]);
    let mut unknown_trust = batch(INVITATION_A, 3, three_grants(), false);
    unknown_trust.trust_id = "7f3c2a10-0000-4000-8000-00000000dead".into();
    unknown_trust.grants = vec![pb::GrantSpec {
        organization_kind: pb::OrganizationKind::Trust as i32,
        organization_id: unknown_trust.trust_id.clone(),
        product_key: "portal".into(),
        role_key: "full-edit".into(),
    }];
    let result = client.batch_grant(unknown_trust).await;
    expect_code(result, Code::NotFound);
}

#[tokio::test]
async fn activate_and_revoke_check_their_input() {
    let server = start().await;
    let token = server.invitation();
    let result = server
        .grants(Some(&token))
        .activate_grants(pb::ActivateGrantsRequest::default())
        .await;
    expect_violations(result, &["invitation_id", "account_id"]);
    let result = server
        .grants(Some(&token))
        .revoke_grants(pb::RevokeGrantsRequest {
            invitation_id: "123".into(),
            pending_only: true,
        })
        .await;
    expect_violations(result, &["invitation_id"]);
}

#[tokio::test]
async fn only_the_invitation_service_makes_activates_and_revokes_grants() {
    let server = start().await;
    let admin = server.token_of(ADMIN_EMAIL).await;
    for token in [server.operator(), server.mis_sync(), admin] {
        let mut client = server.grants(Some(&token));
        expect_code(
            client
                .batch_grant(batch(INVITATION_A, 3, three_grants(), false))
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .activate_grants(pb::ActivateGrantsRequest {
                    invitation_id: INVITATION_A.into(),
                    account_id: INVITATION_B.into(),
                })
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            client
                .revoke_grants(pb::RevokeGrantsRequest {
                    invitation_id: INVITATION_A.into(),
                    pending_only: false,
                })
                .await,
            Code::PermissionDenied,
        );
    }
}
