//! AccountService over gRPC: registration, sign-in, lookup and "who am I".

mod common;

use common::{expect_code, expect_reason, expect_violations, start};
use portal_proto::identity::v1 as pb;
use portal_runtime::clock::to_timestamp;
use portal_runtime::demo::{ADMIN_EMAIL, ADMIN_PASSWORD, EXISTING_USER_PASSWORD, STAFF, TRUST_ID};
use tonic::Code;

fn sign_in(email: &str, password: &str) -> pb::SignInRequest {
    pb::SignInRequest {
        email: email.into(),
        password: password.into(),
    }
}

fn register(email: &str, password: &str) -> pb::RegisterAccountRequest {
    pb::RegisterAccountRequest {
        email: email.into(),
        given_name: "New".into(),
        family_name: "Person".into(),
        password: password.into(),
        invitation_id: "7f3c2a10-0000-4000-8000-0000000000ff".into(),
    }
}

#[tokio::test]
async fn a_registered_account_signs_in_and_its_token_works() {
    let server = start().await;
    let token = server.invitation();
    let account = server
        .accounts(Some(&token))
        .register_account(register(" New.Person@School.ORG", "long enough password"))
        .await
        .expect("register")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(account.email, "new.person@school.org");
    let signed_in = server
        .accounts(None)
        .sign_in(sign_in("new.person@SCHOOL.org", "long enough password"))
        .await
        .expect("sign in")
        .into_inner();
    assert_eq!(signed_in.account.expect("account").id, account.id);
    let me = server
        .accounts(Some(&signed_in.access_token))
        .get_current_account(pb::GetCurrentAccountRequest {})
        .await
        .expect("who am I")
        .into_inner();
    assert_eq!(me.account.expect("account").id, account.id);
    assert!(me.access.is_empty());
}

#[tokio::test]
async fn a_sign_in_token_lasts_the_configured_time_from_the_server_clock() {
    let server = start().await;
    let signed_in = server
        .accounts(None)
        .sign_in(sign_in(ADMIN_EMAIL, ADMIN_PASSWORD))
        .await
        .expect("sign in")
        .into_inner();
    let expected = portal_runtime::Clock::now(server.clock.as_ref()) + chrono::Duration::hours(1);
    assert_eq!(
        signed_in.expire_time.expect("expiry").seconds,
        to_timestamp(expected).seconds
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_as_invalid_credentials() {
    let server = start().await;
    let result = server
        .accounts(None)
        .sign_in(sign_in(ADMIN_EMAIL, "not the password"))
        .await;
    expect_reason(result, Code::Unauthenticated, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn an_unknown_email_answers_exactly_like_a_wrong_password() {
    let server = start().await;
    let wrong_password = expect_code(
        server
            .accounts(None)
            .sign_in(sign_in(ADMIN_EMAIL, "not the password"))
            .await,
        Code::Unauthenticated,
    );
    let unknown_email = expect_code(
        server
            .accounts(None)
            .sign_in(sign_in("nobody@northfield.example.org", "not the password"))
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(wrong_password.code(), unknown_email.code());
    assert_eq!(wrong_password.message(), unknown_email.message());
    assert_eq!(wrong_password.details(), unknown_email.details());
    assert!(!unknown_email.message().contains("nobody"));
}

#[tokio::test]
async fn sign_in_needs_an_email_and_a_password() {
    let server = start().await;
    let result = server.accounts(None).sign_in(sign_in("", "")).await;
    expect_violations(result, &["email", "password"]);
    let result = server
        .accounts(None)
        .sign_in(sign_in("no-at-sign", "whatever password"))
        .await;
    expect_violations(result, &["email"]);
}

#[tokio::test]
async fn an_email_registers_once_whatever_its_case() {
    let server = start().await;
    let token = server.invitation();
    let result = server
        .accounts(Some(&token))
        .register_account(register(
            &ADMIN_EMAIL.to_uppercase(),
            "long enough password",
        ))
        .await;
    expect_reason(result, Code::AlreadyExists, "ACCOUNT_EXISTS");
}

#[tokio::test]
async fn passwords_outside_the_policy_are_refused() {
    let server = start().await;
    let token = server.invitation();
    for password in [
        "short",
        "123456789",
        &"x".repeat(129),
        "1234567890",
        "Password123",
        "qwertyuiop",
    ] {
        let result = server
            .accounts(Some(&token))
            .register_account(register("policy@s.org", password))
            .await;
        expect_violations(result, &["password"]);
    }
    server
        .accounts(Some(&token))
        .register_account(register("policy@s.org", "k7#pWq2!xZ"))
        .await
        .expect("ten characters are enough");
}

#[tokio::test]
async fn bad_registrations_name_every_bad_field() {
    let server = start().await;
    let token = server.invitation();
    let result = server
        .accounts(Some(&token))
        .register_account(pb::RegisterAccountRequest {
            email: "not an email".into(),
            given_name: " ".into(),
            family_name: String::new(),
            password: String::new(),
            invitation_id: "not-a-uuid".into(),
        })
        .await;
    expect_violations(
        result,
        &[
            "email",
            "given_name",
            "family_name",
            "password",
            "invitation_id",
        ],
    );
}

#[tokio::test]
async fn only_the_invitation_service_registers_and_looks_up_accounts() {
    let server = start().await;
    let user = server.token_of(ADMIN_EMAIL).await;
    for token in [server.mis_sync(), server.operator(), user] {
        let result = server
            .accounts(Some(&token))
            .register_account(register("x@s.org", "long enough password"))
            .await;
        expect_code(result, Code::PermissionDenied);
        let result = server
            .accounts(Some(&token))
            .lookup_account(pb::LookupAccountRequest {
                email: ADMIN_EMAIL.into(),
            })
            .await;
        expect_code(result, Code::PermissionDenied);
    }
    let result = server
        .accounts(None)
        .register_account(register("x@s.org", "long enough password"))
        .await;
    expect_code(result, Code::Unauthenticated);
}

#[tokio::test]
async fn lookup_finds_an_account_by_normalised_email_and_reports_unknown_ones() {
    let server = start().await;
    let token = server.invitation();
    let found = server
        .accounts(Some(&token))
        .lookup_account(pb::LookupAccountRequest {
            email: format!("  {}  ", STAFF[1].4.to_uppercase()),
        })
        .await
        .expect("lookup")
        .into_inner();
    assert!(found.found);
    assert_eq!(found.account.expect("account").email, STAFF[1].4);
    let missing = server
        .accounts(Some(&token))
        .lookup_account(pb::LookupAccountRequest {
            email: STAFF[2].4.into(),
        })
        .await
        .expect("lookup")
        .into_inner();
    assert!(!missing.found);
    assert!(missing.account.is_none());
    let result = server
        .accounts(Some(&token))
        .lookup_account(pb::LookupAccountRequest {
            email: String::new(),
        })
        .await;
    expect_violations(result, &["email"]);
}

#[tokio::test]
async fn the_current_account_comes_with_its_access() {
    let server = start().await;
    let signed_in = server
        .accounts(None)
        .sign_in(sign_in(STAFF[1].4, EXISTING_USER_PASSWORD))
        .await
        .expect("sign in")
        .into_inner();
    let me = server
        .accounts(Some(&signed_in.access_token))
        .get_current_account(pb::GetCurrentAccountRequest {})
        .await
        .expect("who am I")
        .into_inner();
    assert_eq!(me.account.expect("account").email, STAFF[1].4);
    assert_eq!(me.access.len(), 1);
    let access = &me.access[0];
    assert_eq!(access.trust_id, TRUST_ID);
    assert_eq!(
        access.organization_kind,
        pb::OrganizationKind::School as i32
    );
    assert_eq!(access.products[0].product_key, "websites-cms");
    assert_eq!(access.products[0].role_key, "writer");
    assert_eq!(access.products[0].status, pb::GrantStatus::Active as i32);
}

#[tokio::test]
async fn the_current_account_needs_a_user_token_of_an_existing_account() {
    let server = start().await;
    let token = server.invitation();
    let result = server
        .accounts(Some(&token))
        .get_current_account(pb::GetCurrentAccountRequest {})
        .await;
    expect_reason(result, Code::PermissionDenied, "USER_TOKEN_REQUIRED");
    let ghost = server.user_token("7f3c2a10-0000-4000-8000-00000000dead");
    let result = server
        .accounts(Some(&ghost))
        .get_current_account(pb::GetCurrentAccountRequest {})
        .await;
    expect_code(result, Code::NotFound);
}
