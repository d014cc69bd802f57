//! Callers who mean harm: what they send costs bounded work, and is refused before it costs
//! more.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use portal_proto::identity::v1 as id;
use portal_proto::invitation::v1 as inv;
use portal_proto::subscription::v1 as sub;
use portal_suite_tests::{Backend, Suite, create_request, demo, school, staff};
use tonic::Code;

/// `count` school ids whose halves fold (low ^ high rotated) to one word: every one of them
/// lands in one bucket of a hash that only folds and multiplies.
fn colliding_ids(count: u64) -> Vec<String> {
    (1..=count)
        .map(|high| {
            let low = 0x5eed_u64 ^ high.rotate_left(32);
            uuid::Uuid::from_u128((u128::from(high) << 64) | u128::from(low)).to_string()
        })
        .collect()
}

fn eligibility_request(school_ids: Vec<String>) -> sub::CheckEligibilityRequest {
    sub::CheckEligibilityRequest {
        trust_id: demo::TRUST_ID.into(),
        school_product_keys: vec!["websites-cms".into()],
        school_ids,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_flood_of_colliding_school_ids_is_refused_before_one_is_read() {
    let suite = Suite::start(Backend::Sqlite).await;
    let user = suite
        .sign_in(staff(1).1, demo::EXISTING_USER_PASSWORD)
        .await
        .unwrap();
    let admin = suite.admin().await;

    // A plain user is refused for who they are, whatever they sent.
    let status = suite
        .eligibility(Some(&user))
        .check_eligibility(eligibility_request(colliding_ids(100_000)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = suite
        .eligibility(Some(&user))
        .get_school_subscriptions(sub::GetSchoolSubscriptionsRequest {
            trust_id: demo::TRUST_ID.into(),
            school_ids: colliding_ids(100_000),
            at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // The trust's administrator is told the list is too long, once, not per id.
    let status = suite
        .eligibility(Some(&admin))
        .check_eligibility(eligibility_request(colliding_ids(100_000)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = portal_runtime::error::status_violations(&status);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].0, "school_ids");
    assert!(violations[0].1.contains("100000 entries"), "{violations:?}");

    // An honest question naming those ids, as many as a call may, is answered: schools the
    // service never heard of simply hold no subscription.
    let mut ids = colliding_ids(999);
    ids.push(school(0).to_string());
    let reply = suite
        .eligibility(Some(&admin))
        .check_eligibility(eligibility_request(ids))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.pairs.len(), 1_000);
}

#[tokio::test]
async fn a_refused_create_asks_identity_only_whether_the_caller_administers() {
    let suite = Suite::start(Backend::Sqlite).await;
    let user = suite
        .sign_in(staff(1).1, demo::EXISTING_USER_PASSWORD)
        .await
        .unwrap();
    let before = suite.identity_faults.calls().len();
    let subscription_before = suite.subscription_faults.calls().len();
    let status = suite
        .invitations(Some(&user))
        .create_invitation(create_request(
            staff(2).0,
            ("portal", "full-edit"),
            Some((&["websites-cms"], "writer", &[school(0), school(1)])),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        suite.subscription_faults.calls()[subscription_before..],
        Vec::<String>::new()
    );
    // The outbox worker follows identity's staff status changes in the background.
    let asked: Vec<String> = suite.identity_faults.calls()[before..]
        .iter()
        .filter(|call| !call.ends_with("/ListStaffStatusChanges"))
        .cloned()
        .collect();
    assert_eq!(
        asked,
        vec!["/portal.identity.v1.GrantService/CheckAdministrator".to_string()]
    );
}

/// A message whose field 1 is bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawBytes {
    #[prost(bytes = "vec", tag = "1")]
    value: Vec<u8>,
}

/// A message whose field 1 is a varint.
#[derive(Clone, PartialEq, prost::Message)]
struct RawNumber {
    #[prost(int64, tag = "1")]
    value: i64,
}

/// Sends `message` to `path` as if it were that method's request.
async fn send_as<M>(suite: &Suite, path: &'static str, message: M) -> tonic::Status
where
    M: prost::Message + Send + Sync + 'static,
{
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", suite.identity_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary::<M, id::SignInResponse, _>(
        tonic::Request::new(message),
        http::uri::PathAndQuery::from_static(path),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn a_request_that_is_not_a_valid_message_is_invalid_argument() {
    let suite = Suite::start(Backend::Sqlite).await;
    let sign_in = "/portal.identity.v1.AccountService/SignIn";
    // Field 1 (the email, a string) as bytes that are not UTF-8.
    let not_utf8 = RawBytes {
        value: vec![0xff, 0xfe, 0xfd],
    };
    // Field 1 as a varint where a string is expected.
    let wrong_wire_type = RawNumber { value: 7 };
    for status in [
        send_as(&suite, sign_in, not_utf8).await,
        send_as(&suite, sign_in, wrong_wire_type).await,
    ] {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let violations = portal_runtime::error::status_violations(&status);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].0, "request");
    }
}

#[tokio::test]
async fn a_call_cut_short_by_the_server_deadline_is_deadline_exceeded() {
    let suite = Suite::start_with(Backend::Sqlite, |config| {
        config.server.request_timeout = Duration::from_millis(300);
    })
    .await;
    let admin = suite.admin().await;
    suite.identity_faults.set_hang(true);
    let status = suite
        .invitations(Some(&admin))
        .create_invitation(create_request(staff(2).0, ("portal", "full-edit"), None))
        .await
        .unwrap_err();
    suite.identity_faults.heal();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[tokio::test]
async fn two_hundred_bad_school_ids_are_answered_in_trailers_every_client_reads() {
    let suite = Suite::start(Backend::Sqlite).await;
    let admin = suite.admin().await;
    let bad: Vec<String> = (0..200).map(|i| format!("not-a-school-{i:04}")).collect();
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let status = suite
        .invitations(Some(&admin))
        .create_invitation(create_request(
            staff(2).0,
            ("portal", "full-edit"),
            Some((&["websites-cms"], "writer", &bad)),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = portal_runtime::error::status_violations(&status);
    let named = violations.len() - 1;
    assert!((1..=50).contains(&named), "{named}");
    assert_eq!(violations[0].0, "school_access.school_ids[0]");
    assert_eq!(violations[named].0, "school_access.school_ids");
    assert_eq!(
        violations[named].1,
        format!("{} more invalid fields are not listed", 200 - named)
    );
    assert!(status.message().len() <= 1_024);
}

/// A well-formed link token that no invitation has.
fn unknown_token(n: usize) -> String {
    format!("{n:0>10}{}", "A".repeat(33))
}

#[tokio::test]
async fn an_address_presenting_unknown_links_is_slowed_then_refused() {
    let suite = Suite::start_with(Backend::Sqlite, |config| {
        config.link_free_failures = 3;
    })
    .await;
    let admin = suite.admin().await;
    let (staff_id, email, _) = staff(2);
    suite
        .invitations(Some(&admin))
        .create_invitation(create_request(staff_id, ("portal", "full-edit"), None))
        .await
        .unwrap();
    let token = suite.link_for(email, 1).await;
    let mut client = suite.invitations(None);
    let inspect = |token: String| inv::InspectInvitationLinkRequest { token };
    for n in 0..4 {
        let status = client
            .inspect_invitation_link(inspect(unknown_token(n)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    // Closed now: even a real link is refused, unread, with the time to wait; accepting too.
    let status = client
        .inspect_invitation_link(inspect(token.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        portal_runtime::error::status_reason(&status).as_deref(),
        Some("TOO_MANY_UNKNOWN_LINKS")
    );
    assert_eq!(
        portal_runtime::error::status_retry_after(&status),
        Some(Duration::from_secs(1))
    );
    let status = client
        .accept_invitation(inv::AcceptInvitationRequest {
            token: unknown_token(9),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    suite.clock.advance(chrono::Duration::seconds(1));
    client
        .inspect_invitation_link(inspect(token))
        .await
        .expect("the real link works once the delay has passed");
}

#[tokio::test]
async fn resends_are_limited_per_invitation_and_invitation_emails_per_trust() {
    let suite = Suite::start_with(Backend::Sqlite, |config| {
        config.resends_per_invitation = 2;
        config.emails_per_trust = 4;
    })
    .await;
    let admin = suite.admin().await;
    let mut client = suite.invitations(Some(&admin));
    let (staff_id, email, _) = staff(2);
    let invitation = client
        .create_invitation(create_request(staff_id, ("portal", "full-edit"), None))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    let resend = || inv::ResendInvitationRequest {
        invitation_id: invitation.id.clone(),
    };
    // Each resend's email goes out before the next resend (which would cancel it unsent).
    suite.wait_for_emails(email, 1).await;
    for sent in 2..=3 {
        client.resend_invitation(resend()).await.unwrap();
        suite.wait_for_emails(email, sent).await;
    }
    let status = client.resend_invitation(resend()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        portal_runtime::error::status_reason(&status).as_deref(),
        Some("TOO_MANY_RESENDS")
    );
    assert_eq!(
        portal_runtime::error::status_retry_after(&status),
        Some(Duration::from_secs(3_600))
    );
    suite.wait_for_emails(email, 3).await;

    // The trust's fourth email is its last this hour.
    client
        .create_invitation(create_request(staff(3).0, ("portal", "full-edit"), None))
        .await
        .unwrap();
    let status = client
        .create_invitation(create_request(staff(4).0, ("portal", "full-edit"), None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        portal_runtime::error::status_reason(&status).as_deref(),
        Some("TOO_MANY_TRUST_EMAILS")
    );
    assert!(portal_runtime::error::status_retry_after(&status).is_some());

    suite.clock.advance(chrono::Duration::hours(1));
    client
        .resend_invitation(resend())
        .await
        .expect("an hour later the invitation may be resent again");
    assert_eq!(suite.emails_to(staff(4).1).len(), 0);
}

#[tokio::test]
async fn a_request_id_reused_for_another_request_is_refused_and_invites_nobody_else() {
    let suite = Suite::start(Backend::Sqlite).await;
    let admin = suite.admin().await;
    let mut client = suite.invitations(Some(&admin));
    let with_id = |staff_id: &str| {
        let mut request = create_request(staff_id, ("portal", "full-edit"), None);
        request.request_id = "create-7".into();
        request
    };
    let first = client
        .create_invitation(with_id(staff(2).0))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    let replayed = client
        .create_invitation(with_id(staff(2).0))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(
        replayed.id, first.id,
        "the same request is answered as the first"
    );

    let status = client
        .create_invitation(with_id(staff(3).0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = portal_runtime::error::status_violations(&status);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].0, "request_id");
    assert!(
        violations[0].1.contains("different request"),
        "{violations:?}"
    );
    assert!(suite.emails_to(staff(3).1).is_empty());
}
