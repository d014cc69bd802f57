//! Who may read eligibility and subscriptions, and how administrators are checked with identity.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use chrono::Duration;
use common::*;
use portal_proto::identity::v1::AdministratorDecision;
use portal_proto::subscription::v1 as pb;
use tonic::Code;

fn check() -> pb::CheckEligibilityRequest {
    pb::CheckEligibilityRequest {
        trust_id: TRUST.into(),
        trust_product_key: "portal".into(),
        school_product_keys: vec!["sonar".into()],
        school_ids: vec![school(1)],
        at: None,
        view: pb::EligibilityView::Unspecified as i32,
    }
}

fn icon() -> pb::GetSchoolSubscriptionsRequest {
    pb::GetSchoolSubscriptionsRequest {
        trust_id: TRUST.into(),
        school_ids: vec![school(1)],
        at: None,
    }
}

#[tokio::test]
async fn eligibility_is_for_the_invitation_service_and_the_trust_administrators() {
    let h = Harness::start().await;
    let ask = |token| {
        let mut client = h.eligibility(token);
        async move { client.check_eligibility(check()).await }
    };
    assert!(ask(h.service("invitation")).await.is_ok());
    assert!(ask(h.user(ADMIN)).await.is_ok());
    assert_eq!(ask(None).await.unwrap_err().code(), Code::Unauthenticated);
    assert_refused(
        ask(h.service("billing")).await,
        Code::PermissionDenied,
        "CALLER_NOT_ALLOWED",
    );
    assert_refused(
        ask(h.user(NOBODY)).await,
        Code::PermissionDenied,
        "NOT_TRUST_ADMINISTRATOR",
    );
    assert_refused(
        ask(h.user(SCHOOL_ADMIN)).await,
        Code::PermissionDenied,
        "SCHOOL_LEVEL_ADMINISTRATOR",
    );
    assert_refused(
        ask(h.user(OTHER_ADMIN)).await,
        Code::PermissionDenied,
        "OTHER_TRUST_ADMINISTRATOR",
    );
}

#[tokio::test]
async fn the_information_icon_is_for_the_same_callers() {
    let h = Harness::start().await;
    let ask = |token| {
        let mut client = h.eligibility(token);
        async move { client.get_school_subscriptions(icon()).await }
    };
    assert!(ask(h.service("invitation")).await.is_ok());
    assert!(ask(h.user(ADMIN)).await.is_ok());
    assert_eq!(ask(None).await.unwrap_err().code(), Code::Unauthenticated);
    assert_refused(
        ask(h.user(NOBODY)).await,
        Code::PermissionDenied,
        "NOT_TRUST_ADMINISTRATOR",
    );
    assert_refused(
        ask(h.service("reports")).await,
        Code::PermissionDenied,
        "CALLER_NOT_ALLOWED",
    );
}

#[tokio::test]
async fn an_administrator_of_another_trust_learns_nothing_about_this_one() {
    let h = Harness::start().await;
    h.create(Spec::school(&school(1), "sonar", t0(), None))
        .await;
    let mut theirs = check();
    theirs.trust_id = OTHER_TRUST.into();
    // Asking about our school under their own trust: their trust holds nothing for it, and the
    // school is refused without naming the trust it belongs to.
    let status = h
        .eligibility(h.user(OTHER_ADMIN))
        .check_eligibility(theirs)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(!status.message().contains(TRUST));
}

#[tokio::test]
async fn identity_is_asked_with_this_service_s_own_token() {
    let h = Harness::start().await;
    h.eligibility(h.user(ADMIN))
        .check_eligibility(check())
        .await
        .unwrap();
    let seen = h.identity.tokens_seen.lock().unwrap().clone();
    assert_eq!(seen, [format!("Bearer {}", h.service_token)]);
}

#[tokio::test]
async fn a_positive_administrator_answer_is_reused_for_five_seconds_only() {
    let h = Harness::start().await;
    let ask = || {
        let mut client = h.eligibility(h.user(ADMIN));
        async move { client.check_eligibility(check()).await }
    };
    ask().await.unwrap();
    ask().await.unwrap();
    assert_eq!(
        h.identity.calls(),
        1,
        "the second call used the cached answer"
    );
    // The administrator loses the role; the cache still admits them until it expires.
    h.identity
        .set(TRUST, ADMIN, AdministratorDecision::NotAdministrator);
    h.clock.advance(Duration::seconds(4));
    ask().await.unwrap();
    assert_eq!(h.identity.calls(), 1);
    h.clock.advance(Duration::seconds(2));
    assert_refused(
        ask().await,
        Code::PermissionDenied,
        "NOT_TRUST_ADMINISTRATOR",
    );
    assert_eq!(h.identity.calls(), 2);
}

#[tokio::test]
async fn a_refusal_is_not_cached() {
    let h = Harness::start().await;
    let ask = || {
        let mut client = h.eligibility(h.user(NOBODY));
        async move { client.check_eligibility(check()).await }
    };
    assert!(ask().await.is_err());
    h.identity
        .set(TRUST, NOBODY, AdministratorDecision::Administrator);
    assert!(
        ask().await.is_ok(),
        "a new administrator is admitted at once"
    );
    assert_eq!(h.identity.calls(), 2);
}

#[tokio::test]
async fn service_tokens_need_no_call_to_identity() {
    let h = Harness::start().await;
    h.invitation().check_eligibility(check()).await.unwrap();
    assert_eq!(h.identity.calls(), 0);
}

#[tokio::test]
async fn without_identity_only_service_tokens_may_read() {
    let h = Harness::start_with(IdentitySetup::None).await;
    assert!(h.invitation().check_eligibility(check()).await.is_ok());
    let result = h
        .eligibility(h.user(ADMIN))
        .check_eligibility(check())
        .await;
    assert_refused(result, Code::PermissionDenied, "USER_TOKENS_NOT_ACCEPTED");
}

#[tokio::test]
async fn an_unreachable_identity_makes_user_calls_unavailable_not_refused() {
    let h = Harness::start_with(IdentitySetup::Down).await;
    let status = h
        .eligibility(h.user(ADMIN))
        .check_eligibility(check())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(h.invitation().check_eligibility(check()).await.is_ok());
}

#[tokio::test]
async fn an_identity_url_without_a_service_token_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let keys = portal_runtime::testkit::TestKeys::create(dir.path()).unwrap();
    let config = portal_subscription::Config {
        server: portal_runtime::config::ServerArgs::local("127.0.0.1:0".parse().unwrap()),
        database: portal_runtime::config::DatabaseArgs::with_max_connections(
            portal_runtime::db::testing::sqlite_url(dir.path()),
            2,
        ),
        tokens: portal_runtime::config::TokenArgs {
            token_public_keys: vec![keys.public_key_path.clone()],
        },
        identity_url: Some("http://127.0.0.1:1".into()),
        service_token: None,
        service_token_file: None,
        views: Default::default(),
    };
    let clock = portal_runtime::clock::ManualClock::new(t0());
    let error = portal_subscription::Application::build(config, clock)
        .await
        .err()
        .expect("refused");
    assert!(format!("{error:#}").contains("--service-token"));
}

#[tokio::test]
async fn the_server_drains_and_stops_when_told() {
    let h = Harness::start().await;
    h.stop().await;
}
