//! SubscriptionService through the real server.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use chrono::Duration;
use common::*;
use portal_proto::subscription::v1 as pb;
use portal_runtime::clock::{from_timestamp, to_timestamp};
use prost_types::FieldMask;
use tonic::Code;

fn create_request(spec: Spec, request_id: &str) -> pb::CreateSubscriptionRequest {
    pb::CreateSubscriptionRequest {
        subscription: Some(spec.into_proto()),
        request_id: request_id.into(),
    }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn a_year_at(school_n: u32, product: &str) -> Spec {
    Spec::school(
        &school(school_n),
        product,
        t0(),
        Some(t0() + Duration::days(365)),
    )
}

#[tokio::test]
async fn billing_creates_a_subscription_with_server_assigned_fields() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "websites-cms")).await;
    assert!(!created.id.is_empty());
    assert_eq!(created.trust_id, TRUST);
    assert_eq!(created.organization_id, school(1));
    assert_eq!(
        created.organization_kind,
        pb::OrganizationKind::School as i32
    );
    assert_eq!(created.status, pb::SubscriptionStatus::Active as i32);
    assert_eq!(created.start_time, Some(to_timestamp(t0())));
    assert_eq!(
        created.create_time,
        Some(to_timestamp(t0())),
        "time comes from the clock"
    );
    assert_eq!(created.cancel_time, None);
    let read = h
        .subscriptions(h.service("invitation"))
        .get_subscription(pb::GetSubscriptionRequest {
            subscription_id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(read, created);
}

#[tokio::test]
async fn only_the_billing_service_writes_subscriptions() {
    let h = Harness::start().await;
    let attempt = |token| {
        let mut client = h.subscriptions(token);
        async move {
            client
                .create_subscription(create_request(a_year_at(1, "sonar"), ""))
                .await
        }
    };
    assert_refused(
        attempt(h.service("invitation")).await,
        Code::PermissionDenied,
        "CALLER_NOT_ALLOWED",
    );
    assert_refused(
        attempt(h.user(ADMIN)).await,
        Code::PermissionDenied,
        "SERVICE_TOKEN_REQUIRED",
    );
    let status = attempt(None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let cancel = h
        .subscriptions(h.user(ADMIN))
        .cancel_subscription(pb::CancelSubscriptionRequest {
            subscription_id: school(1),
            cancel_time: None,
        })
        .await;
    assert_refused(cancel, Code::PermissionDenied, "SERVICE_TOKEN_REQUIRED");
    let update = h
        .subscriptions(h.service("invitation"))
        .update_subscription(pb::UpdateSubscriptionRequest::default())
        .await;
    assert_refused(update, Code::PermissionDenied, "CALLER_NOT_ALLOWED");
}

#[tokio::test]
async fn a_create_with_bad_fields_names_every_one() {
    let h = Harness::start().await;
    let bad = pb::Subscription {
        trust_id: String::new(),
        organization_kind: 0,
        organization_id: "not-a-uuid".into(),
        product_key: "no-such-product".into(),
        status: pb::SubscriptionStatus::Cancelled as i32,
        start_time: Some(to_timestamp(t0())),
        end_time: Some(to_timestamp(t0())),
        ..Default::default()
    };
    let result = h
        .billing()
        .create_subscription(pb::CreateSubscriptionRequest {
            subscription: Some(bad),
            request_id: "has spaces in it".into(),
        })
        .await;
    assert_invalid(
        result,
        &[
            "subscription.trust_id",
            "subscription.organization_id",
            "subscription.organization_kind",
            "subscription.product_key",
            "subscription.status",
            "subscription.end_time",
            "request_id",
        ],
    );
    let missing = h
        .billing()
        .create_subscription(pb::CreateSubscriptionRequest::default())
        .await;
    assert_invalid(missing, &["subscription"]);
    let mut no_start = a_year_at(1, "sonar").into_proto();
    no_start.start_time = None;
    no_start.end_time = None;
    let result = h
        .billing()
        .create_subscription(pb::CreateSubscriptionRequest {
            subscription: Some(no_start),
            request_id: String::new(),
        })
        .await;
    assert_invalid(result, &["subscription.start_time"]);
}

#[tokio::test]
async fn the_organisation_kind_must_match_the_product_scope() {
    let h = Harness::start().await;
    // A trust product held by a school.
    let result = h
        .billing()
        .create_subscription(create_request(a_year_at(1, "portal"), ""))
        .await;
    assert_invalid(result, &["subscription.organization_kind"]);
    // A school product held by the trust.
    let mut trust_holds_school_product = Spec::trust(TRUST, "sonar");
    trust_holds_school_product.kind = pb::OrganizationKind::Trust;
    let result = h
        .billing()
        .create_subscription(create_request(trust_holds_school_product, ""))
        .await;
    assert_invalid(result, &["subscription.organization_kind"]);
    // A trust subscription must name the trust itself.
    let mut elsewhere = Spec::trust(TRUST, "portal");
    elsewhere.org = school(1);
    let result = h
        .billing()
        .create_subscription(create_request(elsewhere, ""))
        .await;
    assert_invalid(result, &["subscription.organization_id"]);
}

#[tokio::test]
async fn a_retried_create_with_the_same_request_id_returns_the_first_answer() {
    let h = Harness::start().await;
    let first = h
        .billing()
        .create_subscription(create_request(a_year_at(1, "sonar"), "9a4f7f0e-retry"))
        .await
        .unwrap()
        .into_inner();
    h.clock.advance(Duration::seconds(5));
    let retry = h
        .billing()
        .create_subscription(create_request(a_year_at(1, "sonar"), "9a4f7f0e-retry"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, retry);
    let listed = h
        .billing()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            trust_id: TRUST.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.subscriptions.len(),
        1,
        "the retry created nothing more"
    );
}

#[tokio::test]
async fn creates_without_a_request_id_are_not_deduplicated() {
    let h = Harness::start().await;
    let a = h.create(a_year_at(1, "sonar")).await;
    let b = h.create(a_year_at(1, "sonar")).await;
    assert_ne!(a.id, b.id);
}

#[tokio::test]
async fn a_request_id_reused_for_a_different_subscription_is_refused() {
    let h = Harness::start().await;
    h.billing()
        .create_subscription(create_request(a_year_at(1, "sonar"), "req-42"))
        .await
        .unwrap();
    let reused = h
        .billing()
        .create_subscription(create_request(a_year_at(2, "sonar"), "req-42"))
        .await;
    assert_invalid(reused, &["request_id"]);
}

#[tokio::test]
async fn a_school_of_one_trust_cannot_be_subscribed_under_another() {
    let h = Harness::start().await;
    h.create(a_year_at(1, "sonar")).await;
    let result = h
        .billing()
        .create_subscription(create_request(
            a_year_at(1, "mis").in_trust(OTHER_TRUST),
            "",
        ))
        .await;
    assert_invalid(result, &["subscription.organization_id"]);
}

#[tokio::test]
async fn the_update_mask_changes_only_the_fields_it_names() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "sonar")).await;
    let new_end = t0() + Duration::days(730);
    h.clock.advance(Duration::hours(1));
    let updated = h
        .billing()
        .update_subscription(pb::UpdateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                id: created.id.clone(),
                status: pb::SubscriptionStatus::Expired as i32,
                start_time: Some(to_timestamp(t0() - Duration::days(3))),
                end_time: Some(to_timestamp(new_end)),
                ..Default::default()
            }),
            update_mask: mask(&["end_time"]),
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(updated.end_time, Some(to_timestamp(new_end)));
    assert_eq!(updated.status, created.status, "status was not in the mask");
    assert_eq!(
        updated.start_time, created.start_time,
        "start_time was not in the mask"
    );
    assert_eq!(
        updated.update_time,
        Some(to_timestamp(t0() + Duration::hours(1)))
    );
    assert_eq!(updated.create_time, created.create_time);
}

#[tokio::test]
async fn clearing_end_time_through_the_mask_makes_a_subscription_open_ended() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "sonar")).await;
    let updated = h
        .billing()
        .update_subscription(pb::UpdateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                id: created.id.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["end_time"]),
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(updated.end_time, None);
}

#[tokio::test]
async fn without_a_mask_the_fields_that_are_set_are_updated() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "sonar")).await;
    let updated = h
        .billing()
        .update_subscription(pb::UpdateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                id: created.id.clone(),
                status: pb::SubscriptionStatus::Trial as i32,
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(updated.status, pb::SubscriptionStatus::Trial as i32);
    assert_eq!(
        updated.end_time, created.end_time,
        "an unset end_time is left alone"
    );
}

#[tokio::test]
async fn bad_updates_are_refused_with_the_field_named() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "sonar")).await;
    let update = |subscription: pb::Subscription, paths: &[&str]| pb::UpdateSubscriptionRequest {
        subscription: Some(subscription),
        update_mask: mask(paths),
    };
    let id_only = pb::Subscription {
        id: created.id.clone(),
        ..Default::default()
    };
    let mut billing = h.billing();
    assert_invalid(
        billing
            .update_subscription(update(id_only.clone(), &["status", "product_key"]))
            .await,
        &["update_mask.paths[1]", "subscription.status"],
    );
    let cancelled = pb::Subscription {
        status: pb::SubscriptionStatus::Cancelled as i32,
        ..id_only.clone()
    };
    assert_invalid(
        billing
            .update_subscription(update(cancelled, &["status"]))
            .await,
        &["subscription.status"],
    );
    let end_before_start = pb::Subscription {
        end_time: Some(to_timestamp(t0() - Duration::days(1))),
        ..id_only.clone()
    };
    assert_invalid(
        billing
            .update_subscription(update(end_before_start, &["end_time"]))
            .await,
        &["subscription.end_time"],
    );
    assert_invalid(
        billing
            .update_subscription(update(id_only.clone(), &[]))
            .await,
        &["update_mask"],
    );
    let unknown = pb::Subscription {
        id: school(999),
        status: pb::SubscriptionStatus::Active as i32,
        ..Default::default()
    };
    let status = billing
        .update_subscription(update(unknown, &["status"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn a_star_mask_updates_all_three_fields() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "sonar")).await;
    let start = t0() + Duration::days(1);
    let updated = h
        .billing()
        .update_subscription(pb::UpdateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                id: created.id.clone(),
                status: pb::SubscriptionStatus::Trial as i32,
                start_time: Some(to_timestamp(start)),
                end_time: None,
                ..Default::default()
            }),
            update_mask: mask(&["*"]),
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(updated.status, pb::SubscriptionStatus::Trial as i32);
    assert_eq!(updated.start_time, Some(to_timestamp(start)));
    assert_eq!(updated.end_time, None);
}

#[tokio::test]
async fn cancelling_sets_the_cancel_time_once() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "sonar")).await;
    h.clock.advance(Duration::days(10));
    let cancelled = h
        .billing()
        .cancel_subscription(pb::CancelSubscriptionRequest {
            subscription_id: created.id.clone(),
            cancel_time: None,
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(cancelled.status, pb::SubscriptionStatus::Cancelled as i32);
    assert_eq!(
        cancelled.cancel_time,
        Some(to_timestamp(t0() + Duration::days(10))),
        "unset means now, from the clock"
    );
    h.clock.advance(Duration::days(1));
    let again = h
        .billing()
        .cancel_subscription(pb::CancelSubscriptionRequest {
            subscription_id: created.id.clone(),
            cancel_time: Some(to_timestamp(t0() + Duration::days(50))),
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(again, cancelled, "a second cancellation changes nothing");
}

#[tokio::test]
async fn a_future_cancellation_is_kept_as_given() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "sonar")).await;
    let at = t0() + Duration::days(90);
    let cancelled = h
        .billing()
        .cancel_subscription(pb::CancelSubscriptionRequest {
            subscription_id: created.id,
            cancel_time: Some(to_timestamp(at)),
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(
        cancelled.cancel_time.as_ref().and_then(from_timestamp),
        Some(at)
    );
}

#[tokio::test]
async fn an_expired_subscription_cannot_be_cancelled() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "sonar")).await;
    h.billing()
        .update_subscription(pb::UpdateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                id: created.id.clone(),
                status: pb::SubscriptionStatus::Expired as i32,
                ..Default::default()
            }),
            update_mask: mask(&["status"]),
        })
        .await
        .unwrap();
    let result = h
        .billing()
        .cancel_subscription(pb::CancelSubscriptionRequest {
            subscription_id: created.id,
            cancel_time: None,
        })
        .await;
    assert_refused(result, Code::FailedPrecondition, "SUBSCRIPTION_EXPIRED");
}

#[tokio::test]
async fn reactivating_a_cancelled_subscription_drops_the_cancellation() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "sonar")).await;
    h.billing()
        .cancel_subscription(pb::CancelSubscriptionRequest {
            subscription_id: created.id.clone(),
            cancel_time: None,
        })
        .await
        .unwrap();
    let back = h
        .billing()
        .update_subscription(pb::UpdateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                id: created.id,
                status: pb::SubscriptionStatus::Active as i32,
                ..Default::default()
            }),
            update_mask: mask(&["status"]),
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(back.status, pb::SubscriptionStatus::Active as i32);
    assert_eq!(back.cancel_time, None);
}

#[tokio::test]
async fn administrators_read_their_trust_and_nobody_else_sees_it() {
    let h = Harness::start().await;
    let created = h.create(a_year_at(1, "sonar")).await;
    let get = |token| {
        let mut client = h.subscriptions(token);
        let id = created.id.clone();
        async move {
            client
                .get_subscription(pb::GetSubscriptionRequest {
                    subscription_id: id,
                })
                .await
        }
    };
    assert_eq!(
        get(h.user(ADMIN))
            .await
            .unwrap()
            .into_inner()
            .subscription
            .unwrap(),
        created
    );
    for outsider in [NOBODY, SCHOOL_ADMIN, OTHER_ADMIN] {
        let status = get(h.user(outsider)).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{outsider} must not see it");
    }
    assert_refused(
        get(h.service("mailer")).await,
        Code::PermissionDenied,
        "CALLER_NOT_ALLOWED",
    );
    let missing = h
        .subscriptions(h.service("invitation"))
        .get_subscription(pb::GetSubscriptionRequest {
            subscription_id: String::new(),
        })
        .await;
    assert_invalid(missing, &["subscription_id"]);
}

#[tokio::test]
async fn listing_pages_through_a_trust_and_filters_by_organisation_and_product() {
    let h = Harness::start().await;
    let mut made = Vec::new();
    for n in 1..=3 {
        for product in ["sonar", "mis"] {
            made.push(h.create(a_year_at(n, product)).await.id);
        }
    }
    made.push(h.create(Spec::trust(TRUST, "portal")).await.id);
    h.create(Spec::trust(OTHER_TRUST, "portal")).await;
    made.sort();

    let mut client = h.subscriptions(h.user(ADMIN));
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_subscriptions(pb::ListSubscriptionsRequest {
                trust_id: TRUST.into(),
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.subscriptions.len() <= 2);
        listed.extend(page.subscriptions.into_iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        listed, made,
        "every subscription of the trust once, in a stable order"
    );

    let filtered = client
        .list_subscriptions(pb::ListSubscriptionsRequest {
            trust_id: TRUST.into(),
            organization_ids: vec![school(2), TRUST.into()],
            product_key: "mis".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].organization_id, school(2));
    assert_eq!(filtered[0].product_key, "mis");
}

#[tokio::test]
async fn a_list_page_token_is_bound_to_its_filter() {
    let h = Harness::start().await;
    for n in 1..=3 {
        h.create(a_year_at(n, "sonar")).await;
    }
    let mut client = h.subscriptions(h.service("invitation"));
    let first = client
        .list_subscriptions(pb::ListSubscriptionsRequest {
            trust_id: TRUST.into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let changed = client
        .list_subscriptions(pb::ListSubscriptionsRequest {
            trust_id: TRUST.into(),
            product_key: "sonar".into(),
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await;
    assert_invalid(changed, &["page_token"]);
    let bad = client
        .list_subscriptions(pb::ListSubscriptionsRequest {
            trust_id: String::new(),
            organization_ids: vec!["x".into()],
            product_key: "nope".into(),
            page_size: -5,
            ..Default::default()
        })
        .await;
    assert_invalid(bad, &["trust_id", "organization_ids[0]", "page_size"]);
    let unknown_product = client
        .list_subscriptions(pb::ListSubscriptionsRequest {
            trust_id: TRUST.into(),
            product_key: "nope".into(),
            ..Default::default()
        })
        .await;
    assert_invalid(unknown_product, &["product_key"]);
}

#[tokio::test]
async fn a_user_who_does_not_administer_the_trust_cannot_list_it() {
    let h = Harness::start().await;
    let list = |account| {
        let mut client = h.subscriptions(h.user(account));
        async move {
            client
                .list_subscriptions(pb::ListSubscriptionsRequest {
                    trust_id: TRUST.into(),
                    ..Default::default()
                })
                .await
        }
    };
    assert_refused(
        list(NOBODY).await,
        Code::PermissionDenied,
        "NOT_TRUST_ADMINISTRATOR",
    );
    assert_refused(
        list(SCHOOL_ADMIN).await,
        Code::PermissionDenied,
        "SCHOOL_LEVEL_ADMINISTRATOR",
    );
    assert_refused(
        list(OTHER_ADMIN).await,
        Code::PermissionDenied,
        "OTHER_TRUST_ADMINISTRATOR",
    );
    assert!(list(ADMIN).await.is_ok());
}
