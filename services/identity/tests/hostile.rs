//! Callers who mean harm at the account edge: sign-in floods cost bounded memory, and
//! password guessing is slowed, then refused, without locking the owner out.

#![allow(clippy::unwrap_used)]

mod common;

use common::start_configured;
use portal_proto::identity::v1 as pb;
use std::time::Duration;

use portal_runtime::demo::{ADMIN_EMAIL, ADMIN_PASSWORD};
use portal_runtime::error::{status_reason, status_retry_after};
use tonic::Code;

#[tokio::test]
async fn sign_ins_beyond_the_hashing_slots_and_queue_are_refused_at_once_with_a_retry_delay() {
    let server = start_configured(true, |config| {
        config.sign_in.password_hash_concurrency = 1;
        config.sign_in.password_hash_queue = 1;
    })
    .await;
    let calls = (0..64).map(|i| {
        let mut client = server.accounts(None);
        async move {
            client
                .sign_in(pb::SignInRequest {
                    email: ADMIN_EMAIL.into(),
                    password: format!("wrong password {i}"),
                })
                .await
                .unwrap_err()
        }
    });
    let answers = futures::future::join_all(calls).await;
    let busy: Vec<&tonic::Status> = answers
        .iter()
        .filter(|s| s.code() == Code::Unavailable)
        .collect();
    assert!(!busy.is_empty(), "no sign-in was refused");
    for status in &busy {
        assert_eq!(
            status_reason(status).as_deref(),
            Some("PASSWORD_CHECKS_BUSY")
        );
        assert!(status_retry_after(status).is_some(), "{status:?}");
    }
    // The others were checked, and refused for their password.
    assert!(
        answers
            .iter()
            .all(|s| matches!(s.code(), Code::Unavailable | Code::Unauthenticated))
    );
    assert!(answers.iter().any(|s| s.code() == Code::Unauthenticated));
}

fn sign_in(email: &str, password: &str) -> pb::SignInRequest {
    pb::SignInRequest {
        email: email.into(),
        password: password.into(),
    }
}

#[tokio::test]
async fn repeated_wrong_passwords_are_slowed_then_refused_until_the_delay_passes() {
    let server = start_configured(true, |_| {}).await;
    let mut client = server.accounts(None);
    for _ in 0..5 {
        let status = client.sign_in(sign_in(ADMIN_EMAIL, "wrong password")).await;
        assert_eq!(status.unwrap_err().code(), Code::Unauthenticated);
    }
    // The sixth failure closes the account for this address; now even the right password
    // is refused, unchecked, with the time to wait.
    let status = client
        .sign_in(sign_in(ADMIN_EMAIL, "wrong password"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = client
        .sign_in(sign_in(ADMIN_EMAIL, ADMIN_PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status_reason(&status).as_deref(),
        Some("TOO_MANY_FAILED_SIGN_INS")
    );
    let wait = status_retry_after(&status).expect("RetryInfo");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );

    // Each further failure doubles the wait.
    server.clock.advance(chrono::Duration::seconds(1));
    client
        .sign_in(sign_in(ADMIN_EMAIL, "wrong password"))
        .await
        .unwrap_err();
    let status = client
        .sign_in(sign_in(ADMIN_EMAIL, ADMIN_PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status_retry_after(&status), Some(Duration::from_secs(2)));

    // Once the delay has passed, the right password works and clears the record.
    server.clock.advance(chrono::Duration::seconds(2));
    client
        .sign_in(sign_in(ADMIN_EMAIL, ADMIN_PASSWORD))
        .await
        .expect("the owner signs in once the delay has passed");
    let status = client
        .sign_in(sign_in(ADMIN_EMAIL, "wrong password"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "counted afresh");
}

#[tokio::test]
async fn an_account_under_attack_still_lets_its_owner_in_from_an_address_that_has_not_failed() {
    let server = start_configured(true, |config| {
        // Every address of the attack may fail a few times before it is closed.
        config.sign_in.sign_in_free_failures = 100;
        config.sign_in.sign_in_account_free_failures = 3;
    })
    .await;
    let mut attacker = server.accounts(None);
    for _ in 0..4 {
        attacker
            .sign_in(sign_in(ADMIN_EMAIL, "a guess"))
            .await
            .unwrap_err();
    }
    let status = attacker
        .sign_in(sign_in(ADMIN_EMAIL, "another guess"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // The owner, from another address, is let through.
    let mut owner = server.accounts_from("127.0.0.2".parse().unwrap()).await;
    owner
        .sign_in(sign_in(ADMIN_EMAIL, ADMIN_PASSWORD))
        .await
        .expect("the owner's address has not failed for the account");
}

#[tokio::test]
async fn an_address_guessing_across_accounts_is_closed_too() {
    let server = start_configured(true, |config| {
        config.sign_in.sign_in_source_free_failures = 3;
    })
    .await;
    let mut client = server.accounts(None);
    for i in 0..4 {
        client
            .sign_in(sign_in(&format!("someone{i}@example.org"), "a guess"))
            .await
            .unwrap_err();
    }
    let status = client
        .sign_in(sign_in(ADMIN_EMAIL, ADMIN_PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}
