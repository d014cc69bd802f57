//! Callers who mean harm at the account edge: sign-in floods cost bounded memory.

#![allow(clippy::unwrap_used)]

mod common;

use common::start_configured;
use portal_proto::identity::v1 as pb;
use portal_runtime::demo::ADMIN_EMAIL;
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
