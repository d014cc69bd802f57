//! EligibilityService through the real server: every status and period edge, the reason and
//! the subscription behind every answer, bad input, and the demo data.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use portal_proto::subscription::v1 as pb;
use portal_runtime::clock::to_timestamp;
use tonic::Code;

use pb::IneligibilityReason as R;

fn ask(
    schools: &[String],
    products: &[&str],
    at: Option<DateTime<Utc>>,
) -> pb::CheckEligibilityRequest {
    pb::CheckEligibilityRequest {
        trust_id: TRUST.into(),
        trust_product_key: String::new(),
        school_product_keys: products.iter().map(|p| p.to_string()).collect(),
        school_ids: schools.to_vec(),
        at: at.map(to_timestamp),
        view: pb::EligibilityView::Unspecified as i32,
    }
}

/// (eligible, reason, id of the subscription behind the answer) per pair.
fn answers(response: &pb::CheckEligibilityResponse) -> Vec<(bool, R, Option<String>)> {
    response
        .pairs
        .iter()
        .map(|p| {
            (
                p.eligible,
                R::try_from(p.reason).unwrap(),
                p.subscription.as_ref().map(|s| s.id.clone()),
            )
        })
        .collect()
}

/// One school per situation, all subscribed to `sonar`.
struct Edges {
    schools: Vec<String>,
    starts_now: String,
    ended_now: String,
    trial: String,
    cancelled_now: String,
    future: String,
    open_ended: String,
    expired: String,
}

async fn edges(h: &Harness) -> Edges {
    let year = Duration::days(365);
    let mut schools = Vec::new();
    let mut make = |n: u32| {
        schools.push(school(n));
        school(n)
    };
    let (s1, s2, s3, s4, s5, s6, s7, s8) = (
        make(1),
        make(2),
        make(3),
        make(4),
        make(5),
        make(6),
        make(7),
        make(8),
    );
    let starts_now = h
        .create(Spec::school(&s1, "sonar", t0(), Some(t0() + year)))
        .await
        .id;
    let ended_now = h
        .create(Spec::school(&s2, "sonar", t0() - year, Some(t0())))
        .await
        .id;
    let trial = h
        .create(
            Spec::school(
                &s3,
                "sonar",
                t0() - Duration::days(10),
                Some(t0() + Duration::days(20)),
            )
            .status(pb::SubscriptionStatus::Trial),
        )
        .await
        .id;
    let cancelled_now = h
        .create(Spec::school(
            &s4,
            "sonar",
            t0() - Duration::days(30),
            Some(t0() + Duration::days(300)),
        ))
        .await
        .id;
    h.billing()
        .cancel_subscription(pb::CancelSubscriptionRequest {
            subscription_id: cancelled_now.clone(),
            cancel_time: Some(to_timestamp(t0())),
        })
        .await
        .unwrap();
    let future = h
        .create(Spec::school(&s5, "sonar", t0() + Duration::days(1), None))
        .await
        .id;
    let open_ended = h
        .create(Spec::school(&s6, "sonar", t0() - year * 5, None))
        .await
        .id;
    let expired = h
        .create(Spec::school(&s7, "sonar", t0() - year, None))
        .await
        .id;
    h.billing()
        .update_subscription(pb::UpdateSubscriptionRequest {
            subscription: Some(pb::Subscription {
                id: expired.clone(),
                status: pb::SubscriptionStatus::Expired as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["status".into()],
            }),
        })
        .await
        .unwrap();
    let _ = s8; // never subscribed
    Edges {
        schools,
        starts_now,
        ended_now,
        trial,
        cancelled_now,
        future,
        open_ended,
        expired,
    }
}

#[tokio::test]
async fn every_status_and_period_edge_is_answered_with_its_reason_and_subscription() {
    let h = Harness::start().await;
    let e = edges(&h).await;
    let response = h
        .invitation()
        .check_eligibility(ask(&e.schools, &["sonar"], Some(t0())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.evaluate_time, Some(to_timestamp(t0())));
    assert_eq!(
        answers(&response),
        [
            (true, R::Unspecified, Some(e.starts_now.clone())),
            (false, R::Ended, Some(e.ended_now.clone())),
            (true, R::Unspecified, Some(e.trial.clone())),
            (false, R::Cancelled, Some(e.cancelled_now.clone())),
            (false, R::NotStarted, Some(e.future.clone())),
            (true, R::Unspecified, Some(e.open_ended.clone())),
            (false, R::Expired, Some(e.expired.clone())),
            (false, R::NoSubscription, None),
        ]
    );
    let ids: Vec<_> = response.pairs.iter().map(|p| p.school_id.clone()).collect();
    assert_eq!(ids, e.schools);
}

#[tokio::test]
async fn the_compact_view_lists_exactly_the_refused_pairs_with_their_reasons_and_instants() {
    let h = Harness::start().await;
    let e = edges(&h).await;
    let mut client = h.invitation();
    let products = ["sonar", "mis"];
    let full = client
        .check_eligibility(ask(&e.schools, &products, Some(t0())))
        .await
        .unwrap()
        .into_inner();
    let compact = client
        .check_eligibility(pb::CheckEligibilityRequest {
            view: pb::EligibilityView::Compact as i32,
            ..ask(&e.schools, &products, Some(t0()))
        })
        .await
        .unwrap()
        .into_inner();
    assert!(compact.pairs.is_empty());
    assert!(full.refused.is_none());
    assert_eq!(compact.school_product_keys, products);
    assert_eq!(full.school_product_keys, products);
    let micros = |t: Option<prost_types::Timestamp>| {
        t.map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000)
    };
    let effective = |p: &pb::PairEligibility| {
        let Some(s) = p.subscription.clone() else {
            return 0;
        };
        micros(match pb::IneligibilityReason::try_from(p.reason).unwrap() {
            pb::IneligibilityReason::NotStarted => s.start_time,
            pb::IneligibilityReason::Ended | pb::IneligibilityReason::Expired => s.end_time,
            pb::IneligibilityReason::Cancelled => s.cancel_time,
            other => panic!("{other:?} has no subscription behind it"),
        })
    };
    // School-major, as FULL orders its pairs; the eligible pairs are left out.
    let expected: Vec<(u32, i32, i64)> = full
        .pairs
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.eligible)
        .map(|(i, p)| (i as u32, p.reason, effective(p)))
        .collect();
    let refused = compact.refused.unwrap();
    assert_eq!(refused.pairs.len(), refused.reasons.len());
    assert_eq!(refused.pairs.len(), refused.effective_unix_micros.len());
    let given: Vec<(u32, i32, i64)> = (0..refused.pairs.len())
        .map(|i| {
            (
                refused.pairs[i],
                refused.reasons[i],
                refused.effective_unix_micros[i],
            )
        })
        .collect();
    assert_eq!(given, expected);
    // The edges hold one of each refusal that has a subscription, and eligible pairs too.
    let from_subscriptions = full
        .pairs
        .iter()
        .filter(|p| !p.eligible && p.subscription.is_some())
        .count();
    assert_eq!(from_subscriptions, 4);
    assert!(given.iter().any(|g| g.2 != 0));
    assert!(given.len() < full.pairs.len());
}

#[tokio::test]
async fn a_change_is_answered_by_the_very_next_eligibility_call() {
    let h = Harness::start().await;
    let s = school(1);
    let mut client = h.invitation();
    let eligible = |r: &pb::CheckEligibilityResponse| r.pairs[0].eligible;
    let before = client
        .check_eligibility(ask(std::slice::from_ref(&s), &["sonar"], Some(t0())))
        .await
        .unwrap()
        .into_inner();
    assert!(!eligible(&before));
    let created = h.create(Spec::school(&s, "sonar", t0(), None)).await;
    let after = client
        .check_eligibility(ask(std::slice::from_ref(&s), &["sonar"], Some(t0())))
        .await
        .unwrap()
        .into_inner();
    assert!(eligible(&after), "the trust's copy in memory was dropped");
    h.billing()
        .cancel_subscription(pb::CancelSubscriptionRequest {
            subscription_id: created.id,
            cancel_time: Some(to_timestamp(t0())),
        })
        .await
        .unwrap();
    let cancelled = client
        .check_eligibility(ask(std::slice::from_ref(&s), &["sonar"], Some(t0())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.pairs[0].reason, R::Cancelled as i32);
}

#[tokio::test]
async fn one_microsecond_earlier_the_edges_fall_the_other_way() {
    let h = Harness::start().await;
    let e = edges(&h).await;
    let before = t0() - Duration::microseconds(1);
    let response = h
        .invitation()
        .check_eligibility(ask(&e.schools, &["sonar"], Some(before)))
        .await
        .unwrap()
        .into_inner();
    let got: Vec<(bool, R)> = answers(&response)
        .into_iter()
        .map(|(e, r, _)| (e, r))
        .collect();
    assert_eq!(
        got,
        [
            (false, R::NotStarted),
            (true, R::Unspecified),
            (true, R::Unspecified),
            (true, R::Unspecified),
            (false, R::NotStarted),
            (true, R::Unspecified),
            (false, R::Expired),
            (false, R::NoSubscription),
        ]
    );
}

#[tokio::test]
async fn an_open_ended_subscription_stays_in_force_a_century_later_and_a_future_one_starts() {
    let h = Harness::start().await;
    let e = edges(&h).await;
    let later = t0() + Duration::days(365 * 100);
    let response = h
        .invitation()
        .check_eligibility(ask(&e.schools[4..6], &["sonar"], Some(later)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answers(&response),
        [
            (true, R::Unspecified, Some(e.future.clone())),
            (true, R::Unspecified, Some(e.open_ended.clone())),
        ]
    );
}

#[tokio::test]
async fn without_an_instant_the_answer_holds_for_the_server_clock() {
    let h = Harness::start().await;
    let e = edges(&h).await;
    h.clock.advance(Duration::days(2));
    let response = h
        .invitation()
        .check_eligibility(ask(&e.schools[4..5], &["sonar"], None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.evaluate_time,
        Some(to_timestamp(t0() + Duration::days(2)))
    );
    assert!(
        response.pairs[0].eligible,
        "the future subscription started yesterday"
    );
}

#[tokio::test]
async fn a_renewal_that_has_not_started_explains_a_lapse_better_than_the_period_before_it() {
    let h = Harness::start().await;
    let s = school(1);
    h.create(Spec::school(
        &s,
        "mis",
        t0() - Duration::days(400),
        Some(t0() - Duration::days(35)),
    ))
    .await;
    let renewal = h
        .create(Spec::school(&s, "mis", t0() + Duration::days(5), None))
        .await;
    let response = h
        .invitation()
        .check_eligibility(ask(std::slice::from_ref(&s), &["mis"], Some(t0())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answers(&response),
        [(false, R::NotStarted, Some(renewal.id))]
    );
}

#[tokio::test]
async fn any_subscription_in_force_makes_the_pair_eligible() {
    let h = Harness::start().await;
    let s = school(1);
    h.create(Spec::school(
        &s,
        "mis",
        t0() - Duration::days(400),
        Some(t0() - Duration::days(35)),
    ))
    .await;
    let current = h
        .create(Spec::school(&s, "mis", t0() - Duration::days(35), None))
        .await;
    h.create(Spec::school(&s, "mis", t0() + Duration::days(300), None))
        .await;
    let response = h
        .invitation()
        .check_eligibility(ask(std::slice::from_ref(&s), &["mis"], Some(t0())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answers(&response),
        [(true, R::Unspecified, Some(current.id))]
    );
}

#[tokio::test]
async fn the_trust_product_is_checked_for_the_trust_itself() {
    let h = Harness::start().await;
    let portal = h.create(Spec::trust(TRUST, "portal")).await;
    let mut request = ask(&[school(1)], &["sonar"], None);
    request.trust_product_key = "portal".into();
    let response = h
        .invitation()
        .check_eligibility(request.clone())
        .await
        .unwrap()
        .into_inner();
    let trust = response.trust_product.unwrap();
    assert_eq!(trust.product_key, "portal");
    assert!(trust.eligible);
    assert_eq!(trust.subscription.unwrap().id, portal.id);

    request.trust_product_key = "trust-mis".into();
    let trust = h
        .invitation()
        .check_eligibility(request.clone())
        .await
        .unwrap()
        .into_inner()
        .trust_product
        .unwrap();
    assert!(!trust.eligible);
    assert_eq!(trust.reason, R::NoSubscription as i32);
    assert_eq!(trust.subscription, None);

    request.trust_product_key = String::new();
    let response = h
        .invitation()
        .check_eligibility(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.trust_product, None,
        "no trust product asked, none answered"
    );
}

#[tokio::test]
async fn a_product_of_the_wrong_scope_is_answered_with_a_scope_reason() {
    let h = Harness::start().await;
    // Even a trust that holds it: the scope decides before any subscription.
    h.create(Spec::trust(TRUST, "portal")).await;
    let mut request = ask(&[school(1)], &["portal", "sonar"], None);
    request.trust_product_key = "websites-cms".into();
    let response = h
        .invitation()
        .check_eligibility(request)
        .await
        .unwrap()
        .into_inner();
    let trust = response.trust_product.clone().unwrap();
    assert_eq!(
        (trust.eligible, trust.reason),
        (false, R::ProductNotTrustScoped as i32)
    );
    assert_eq!(
        answers(&response),
        [
            (false, R::ProductNotSchoolScoped, None),
            (false, R::NoSubscription, None)
        ]
    );
}

#[tokio::test]
async fn pairs_come_schools_first_in_request_order_without_duplicates() {
    let h = Harness::start().await;
    let sonar = h
        .create(Spec::school(&school(2), "sonar", t0(), None))
        .await;
    let request = ask(
        &[school(2), school(1), school(2)],
        &["websites-cms", "sonar", "websites-cms"],
        None,
    );
    let response = h
        .invitation()
        .check_eligibility(request)
        .await
        .unwrap()
        .into_inner();
    let pairs: Vec<(String, String, bool)> = response
        .pairs
        .iter()
        .map(|p| (p.school_id.clone(), p.product_key.clone(), p.eligible))
        .collect();
    assert_eq!(
        pairs,
        [
            (school(2), "websites-cms".to_string(), false),
            (school(2), "sonar".to_string(), true),
            (school(1), "websites-cms".to_string(), false),
            (school(1), "sonar".to_string(), false),
        ]
    );
    assert_eq!(response.pairs[1].subscription.as_ref().unwrap(), &sonar);
}

#[tokio::test]
async fn unknown_products_and_bad_ids_are_named_field_by_field() {
    let h = Harness::start().await;
    let request = pb::CheckEligibilityRequest {
        trust_id: String::new(),
        trust_product_key: "potral".into(),
        school_product_keys: vec!["sonar".into(), "website".into(), "Bad Key".into()],
        school_ids: vec![school(1), school(2), "nope".into()],
        at: Some(prost_types::Timestamp {
            seconds: 0,
            nanos: -5,
        }),
        view: 9,
    };
    let result = h.invitation().check_eligibility(request).await;
    assert_invalid(
        result,
        &[
            "trust_id",
            "trust_product_key",
            "school_product_keys[1]",
            "school_product_keys[2]",
            "school_ids[2]",
            "at",
            "view",
        ],
    );
}

#[tokio::test]
async fn empty_sets_are_refused_but_a_trust_only_check_is_fine() {
    let h = Harness::start().await;
    let mut client = h.invitation();
    assert_invalid(
        client.check_eligibility(ask(&[], &[], None)).await,
        &["school_ids", "school_product_keys"],
    );
    assert_invalid(
        client.check_eligibility(ask(&[school(1)], &[], None)).await,
        &["school_product_keys"],
    );
    assert_invalid(
        client.check_eligibility(ask(&[], &["sonar"], None)).await,
        &["school_ids"],
    );
    let mut trust_only = ask(&[], &[], None);
    trust_only.trust_product_key = "portal".into();
    let response = client
        .check_eligibility(trust_only)
        .await
        .unwrap()
        .into_inner();
    assert!(response.pairs.is_empty());
    assert!(response.trust_product.is_some());
}

#[tokio::test]
async fn oversize_sets_are_refused_with_a_hint_to_split() {
    let h = Harness::start().await;
    let schools: Vec<String> = (1..=1_001).map(school).collect();
    let status = h
        .invitation()
        .check_eligibility(ask(&schools, &["sonar"], None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = portal_runtime::error::status_violations(&status);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].0, "school_ids");
    assert!(violations[0].1.contains("split"), "{}", violations[0].1);

    let products: Vec<String> = (0..21).map(|i| format!("product-{i}")).collect();
    let products: Vec<&str> = products.iter().map(String::as_str).collect();
    let status = h
        .invitation()
        .check_eligibility(ask(&[school(1)], &products, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(violated_fields(&status).contains(&"school_product_keys".to_string()));
}

#[tokio::test]
async fn duplicates_do_not_count_towards_the_limits() {
    let h = Harness::start().await;
    let mut schools: Vec<String> = (1..=1_000).map(school).collect();
    schools.extend((1..=500).map(school));
    let response = h
        .invitation()
        .check_eligibility(ask(&schools, &["sonar"], None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.pairs.len(), 1_000);
}

#[tokio::test]
async fn a_school_of_another_trust_is_refused_by_its_position() {
    let h = Harness::start().await;
    let theirs = school(77);
    h.create(Spec::school(&theirs, "sonar", t0(), None).in_trust(OTHER_TRUST))
        .await;
    let request = ask(
        &[school(1), school(2), school(3), theirs.clone()],
        &["sonar"],
        None,
    );
    let status = h.invitation().check_eligibility(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = portal_runtime::error::status_violations(&status);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].0, "school_ids[3]");
    assert!(
        !violations[0].1.contains(OTHER_TRUST),
        "the other trust is not revealed"
    );

    let mut trust_as_school = ask(&[TRUST.to_string()], &["sonar"], None);
    h.create(Spec::trust(TRUST, "portal")).await;
    trust_as_school.school_ids = vec![school(1), TRUST.to_string()];
    let result = h.invitation().check_eligibility(trust_as_school).await;
    assert_invalid(result, &["school_ids[1]"]);
}

#[tokio::test]
async fn a_school_never_heard_of_simply_has_no_subscription() {
    let h = Harness::start().await;
    let response = h
        .invitation()
        .check_eligibility(ask(&[school(404)], &["sonar", "mis"], None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answers(&response),
        [
            (false, R::NoSubscription, None),
            (false, R::NoSubscription, None)
        ]
    );
}

#[tokio::test]
async fn a_thousand_schools_are_answered_in_one_call() {
    let h = Harness::start().await;
    for n in (1..=1_000).step_by(100) {
        h.create(Spec::school(&school(n), "mis", t0(), None)).await;
    }
    let schools: Vec<String> = (1..=1_000).map(school).collect();
    let products = ["websites-cms", "comms-hub", "sonar", "mis"];
    let response = h
        .invitation()
        .check_eligibility(ask(&schools, &products, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.pairs.len(), 4_000);
    let eligible = response.pairs.iter().filter(|p| p.eligible).count();
    assert_eq!(eligible, 10);
    assert!(
        response
            .pairs
            .iter()
            .filter(|p| p.eligible)
            .all(|p| p.product_key == "mis")
    );
}

#[tokio::test]
async fn the_information_icon_lists_every_subscription_of_each_school_with_whether_it_is_in_force()
{
    let h = Harness::start().await;
    let e = edges(&h).await;
    let extra = h.create(Spec::school(&school(2), "mis", t0(), None)).await;
    let response = h
        .invitation()
        .get_school_subscriptions(pb::GetSchoolSubscriptionsRequest {
            trust_id: TRUST.into(),
            school_ids: vec![school(2), school(8), school(4), school(2)],
            at: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.evaluate_time, Some(to_timestamp(t0())));
    let summary: Vec<(String, Vec<(String, bool)>)> = response
        .school_subscriptions
        .iter()
        .map(|s| {
            (
                s.school_id.clone(),
                s.subscriptions
                    .iter()
                    .map(|st| (st.subscription.as_ref().unwrap().id.clone(), st.active))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                school(2),
                vec![(extra.id.clone(), true), (e.ended_now.clone(), false)]
            ),
            (school(8), vec![]),
            (school(4), vec![(e.cancelled_now.clone(), false)]),
        ]
    );
}

#[tokio::test]
async fn the_information_icon_refuses_bad_input() {
    let h = Harness::start().await;
    let mut client = h.invitation();
    let result = client
        .get_school_subscriptions(pb::GetSchoolSubscriptionsRequest {
            trust_id: "x".into(),
            school_ids: vec![],
            at: None,
        })
        .await;
    assert_invalid(result, &["trust_id", "school_ids"]);
    let too_many = client
        .get_school_subscriptions(pb::GetSchoolSubscriptionsRequest {
            trust_id: TRUST.into(),
            school_ids: (1..=1_001).map(school).collect(),
            at: None,
        })
        .await;
    assert_invalid(too_many, &["school_ids"]);
}

#[tokio::test]
async fn the_demo_trust_answers_as_the_seed_describes() {
    use portal_runtime::demo::{OTHER_SCHOOL, SCHOOLS, TRUST_ID};
    let h = Harness::start().await;
    portal_subscription::seed_demo(&h.database).await.unwrap();
    portal_subscription::seed_demo(&h.database).await.unwrap();
    let schools: Vec<String> = SCHOOLS.iter().map(|s| s.0.to_string()).collect();
    let request = pb::CheckEligibilityRequest {
        trust_id: TRUST_ID.into(),
        trust_product_key: "portal".into(),
        school_product_keys: vec!["websites-cms".into(), "comms-hub".into(), "sonar".into()],
        school_ids: schools.clone(),
        at: None,
        view: pb::EligibilityView::Full as i32,
    };
    let response = h
        .invitation()
        .check_eligibility(request)
        .await
        .unwrap()
        .into_inner();
    assert!(response.trust_product.as_ref().unwrap().eligible);
    let got: Vec<(bool, R)> = answers(&response)
        .into_iter()
        .map(|(e, r, _)| (e, r))
        .collect();
    let yes = (true, R::Unspecified);
    let none = (false, R::NoSubscription);
    assert_eq!(
        got,
        [
            yes,
            yes,
            yes, // SCHOOLS[0]
            yes,
            yes,
            yes, // SCHOOLS[1]
            yes,
            none,
            none, // SCHOOLS[2]: no comms-hub
            yes,
            yes,
            none, // SCHOOLS[3]: websites-cms on trial
            yes,
            (false, R::Cancelled),
            none, // SCHOOLS[4]: comms-hub cancelled
        ]
    );
    let trial = response.pairs[9].subscription.as_ref().unwrap();
    assert_eq!(trial.status, pb::SubscriptionStatus::Trial as i32);
    assert_eq!(trial.id, portal_subscription::demo::SCHOOL_WEBSITES_CMS[3]);

    let status = h
        .invitation()
        .check_eligibility(pb::CheckEligibilityRequest {
            trust_id: TRUST_ID.into(),
            trust_product_key: String::new(),
            school_product_keys: vec!["websites-cms".into()],
            school_ids: vec![schools[0].clone(), OTHER_SCHOOL.0.into()],
            at: None,
            view: pb::EligibilityView::Compact as i32,
        })
        .await;
    assert_invalid(status, &["school_ids[1]"]);
}
