//! EligibilityService: rule R5 for the invitation service, and a school's information icon.

use std::collections::HashSet;
use std::sync::Arc;

use portal_proto::subscription::v1 as pb;
use portal_proto::subscription::v1::eligibility_service_server::EligibilityService;
use portal_runtime::clock::to_timestamp;
use portal_runtime::types::{IdSet, parse_id, parse_id_key};
use portal_runtime::{ApiError, Violations};
use tonic::{Request, Response, Status};

use super::{State, caller, parse_instant, reason_to_proto, subscription_to_proto};
use crate::access::ELIGIBILITY_READERS;
use crate::domain::{Catalog, ProductKey};
use crate::eligibility::{self, MAX_PRODUCTS, MAX_SCHOOLS, Query, SchoolRef, check_sizes};
use crate::error::Result;

pub struct Eligibility {
    state: Arc<State>,
}

impl Eligibility {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    async fn check(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<pb::CheckEligibilityResponse> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let catalog = self.state.catalog().await?;
        let query = parse_check(&request, &catalog, self.state.clock.now())?;
        let compact = request.view == pb::EligibilityView::Compact as i32;
        self.state
            .access
            .require_reader(&principal, ELIGIBILITY_READERS, &query.trust_id)
            .await?;
        let view = eligibility::load(&self.state.views, self.state.store.as_ref(), &query).await?;
        let answers = eligibility::evaluate(&view, &catalog, &query);
        let trust_product = match (&query.trust_product, answers.trust) {
            (Some(key), Some(verdict)) => Some(pb::TrustProductEligibility {
                product_key: key.clone(),
                eligible: verdict.eligible(),
                reason: reason_to_proto(verdict.reason) as i32,
                subscription: verdict.subscription.map(subscription_to_proto),
            }),
            _ => None,
        };
        let products = query.school_products.len();
        let mut response = pb::CheckEligibilityResponse {
            trust_product,
            evaluate_time: Some(to_timestamp(query.at)),
            ..Default::default()
        };
        if compact {
            let mut refused = pb::Refused::default();
            for (pair, verdict) in answers.pairs.iter().enumerate() {
                if verdict.eligible() {
                    continue;
                }
                // A call holds at most MAX_SCHOOLS x MAX_PRODUCTS pairs.
                refused.pairs.push(pair as u32);
                refused.reasons.push(reason_to_proto(verdict.reason) as i32);
                refused
                    .effective_unix_micros
                    .push(verdict.effective_time().map_or(0, |t| t.timestamp_micros()));
            }
            response.refused = Some(refused);
        } else {
            response.pairs = answers
                .pairs
                .iter()
                .enumerate()
                .map(|(i, verdict)| pb::PairEligibility {
                    school_id: query.schools[i / products].id(),
                    product_key: query.school_products[i % products].clone(),
                    eligible: verdict.eligible(),
                    reason: reason_to_proto(verdict.reason) as i32,
                    subscription: verdict.subscription.map(subscription_to_proto),
                })
                .collect();
        }
        response.school_product_keys = query.school_products;
        Ok(response)
    }

    async fn schools(
        &self,
        request: Request<pb::GetSchoolSubscriptionsRequest>,
    ) -> Result<pb::GetSchoolSubscriptionsResponse> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let trust_id = violations.take("trust_id", parse_id(&request.trust_id));
        let schools = parse_schools(&request.school_ids, &mut violations);
        if request.school_ids.is_empty() {
            violations.add("school_ids", "is empty; give at least one school");
        }
        check_sizes(schools.len(), 0, &mut violations);
        let at = violations
            .take("at", parse_instant(request.at.as_ref()))
            .flatten();
        violations.finish()?;
        let Some(trust_id) = trust_id else {
            return Err(ApiError::invalid("trust_id", "is required").into());
        };
        let at = at.unwrap_or_else(|| self.state.clock.now());
        self.state
            .access
            .require_reader(&principal, ELIGIBILITY_READERS, &trust_id)
            .await?;
        let view = self.state.views.trust(&trust_id).await?;
        eligibility::check_organizations(self.state.store.as_ref(), &view, &schools).await?;
        let school_subscriptions = schools
            .iter()
            .map(|school| pb::SchoolSubscriptions {
                school_id: school.id(),
                // The view orders them by product key then start time.
                subscriptions: view
                    .of_key(school.key)
                    .iter()
                    .map(|s| pb::SubscriptionState {
                        subscription: Some(subscription_to_proto(s)),
                        active: s.in_force_at(at),
                    })
                    .collect(),
            })
            .collect();
        Ok(pb::GetSchoolSubscriptionsResponse {
            school_subscriptions,
            evaluate_time: Some(to_timestamp(at)),
        })
    }
}

/// Distinct, well-formed school ids in first-given order, each with its first index.
fn parse_schools(raw: &[String], violations: &mut Violations) -> Vec<SchoolRef> {
    let mut seen = IdSet::with_capacity_and_hasher(raw.len(), Default::default());
    let mut schools = Vec::with_capacity(raw.len().min(MAX_SCHOOLS + 1));
    for (index, id) in raw.iter().enumerate() {
        // The field name is only built for a violation: this runs for every school asked.
        match parse_id_key(id) {
            Ok(key) => {
                if seen.insert(key) {
                    schools.push(SchoolRef { key, index });
                }
            }
            Err(description) => violations.add(format!("school_ids[{index}]"), description),
        }
    }
    schools
}

/// Parses a CheckEligibility request against the catalogue.
fn parse_check(
    request: &pb::CheckEligibilityRequest,
    catalog: &Catalog,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Query, ApiError> {
    let mut violations = Violations::new();
    let trust_id = violations.take("trust_id", parse_id(&request.trust_id));
    let known = |field: String, raw: &str, violations: &mut Violations| -> Option<String> {
        let key = violations.take(field.clone(), ProductKey::parse(raw))?;
        if catalog.product(key.as_str()).is_none() {
            violations.add(field, format!("`{key}` is not a catalogue product"));
            return None;
        }
        Some(key.as_str().to_string())
    };
    let trust_product = if request.trust_product_key.trim().is_empty() {
        None
    } else {
        known(
            "trust_product_key".into(),
            &request.trust_product_key,
            &mut violations,
        )
    };
    let mut seen = HashSet::new();
    let mut school_products = Vec::new();
    for (i, raw) in request.school_product_keys.iter().enumerate() {
        if let Some(key) = known(format!("school_product_keys[{i}]"), raw, &mut violations)
            && seen.insert(key.clone())
        {
            school_products.push(key);
        }
    }
    let schools = parse_schools(&request.school_ids, &mut violations);
    match (
        request.school_ids.is_empty(),
        request.school_product_keys.is_empty(),
    ) {
        (true, true) if request.trust_product_key.trim().is_empty() => {
            violations.add(
                "school_ids",
                "is empty; give schools and school products, or a trust product",
            );
            violations.add(
                "school_product_keys",
                "is empty; give schools and school products, or a trust product",
            );
        }
        (true, false) => violations.add(
            "school_ids",
            "is empty; give the schools to check the school products at",
        ),
        (false, true) => violations.add(
            "school_product_keys",
            "is empty; give the school products to check at the schools",
        ),
        _ => {}
    }
    // The product limit counts the keys asked, known or not, so the hint to split shows.
    let distinct_keys: HashSet<&str> = request
        .school_product_keys
        .iter()
        .map(|k| k.trim())
        .collect();
    check_sizes(schools.len(), distinct_keys.len(), &mut violations);
    let at = violations
        .take("at", parse_instant(request.at.as_ref()))
        .flatten();
    if pb::EligibilityView::try_from(request.view).is_err() {
        violations.add(
            "view",
            format!("{} is not an EligibilityView", request.view),
        );
    }
    violations.finish()?;
    debug_assert!(school_products.len() <= MAX_PRODUCTS);
    match trust_id {
        Some(trust_id) => Ok(Query {
            trust_id,
            trust_product,
            school_products,
            schools,
            at: at.unwrap_or(now),
        }),
        None => Err(ApiError::invalid("trust_id", "is required")),
    }
}

#[tonic::async_trait]
impl EligibilityService for Eligibility {
    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        Ok(Response::new(self.check(request).await?))
    }

    async fn get_school_subscriptions(
        &self,
        request: Request<pb::GetSchoolSubscriptionsRequest>,
    ) -> Result<Response<pb::GetSchoolSubscriptionsResponse>, Status> {
        Ok(Response::new(self.schools(request).await?))
    }
}
