//! EligibilityService: rule R5 for the invitation service, and a school's information icon.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use portal_proto::subscription::v1 as pb;
use portal_proto::subscription::v1::eligibility_service_server::EligibilityService;
use portal_runtime::clock::to_timestamp;
use portal_runtime::types::parse_id;
use portal_runtime::{ApiError, Violations};
use tonic::{Request, Response, Status};

use super::{State, caller, parse_instant, reason_to_proto, subscription_to_proto};
use crate::access::ELIGIBILITY_READERS;
use crate::domain::{Catalog, ProductKey, Subscription};
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
        self.state
            .access
            .require_reader(&principal, ELIGIBILITY_READERS, &query.trust_id)
            .await?;
        let candidates = eligibility::load(self.state.store.as_ref(), &catalog, &query).await?;
        let answers = eligibility::evaluate(&candidates, &catalog, &query);
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
        let pairs = answers
            .pairs
            .iter()
            .enumerate()
            .map(|(i, verdict)| pb::PairEligibility {
                school_id: query.schools[i / products].id.clone(),
                product_key: query.school_products[i % products].clone(),
                eligible: verdict.eligible(),
                reason: reason_to_proto(verdict.reason) as i32,
                subscription: verdict.subscription.map(subscription_to_proto),
            })
            .collect();
        Ok(pb::CheckEligibilityResponse {
            trust_product,
            pairs,
            evaluate_time: Some(to_timestamp(query.at)),
        })
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
        let store = self.state.store.as_ref();
        let ids: Vec<String> = schools.iter().map(|s| s.id.clone()).collect();
        let (checked, subscriptions) = tokio::join!(
            eligibility::check_organizations(store, &trust_id, &schools),
            store.subscriptions_of(&trust_id, &ids, None)
        );
        checked?;
        let mut subscriptions = subscriptions?;
        subscriptions.sort_by(|a, b| {
            (&a.product_key, a.start_time, &a.id).cmp(&(&b.product_key, b.start_time, &b.id))
        });
        let mut by_school: HashMap<&str, Vec<&Subscription>> = HashMap::new();
        for subscription in &subscriptions {
            by_school
                .entry(&subscription.organization_id)
                .or_default()
                .push(subscription);
        }
        let school_subscriptions = schools
            .iter()
            .map(|school| pb::SchoolSubscriptions {
                school_id: school.id.clone(),
                subscriptions: by_school
                    .get(school.id.as_str())
                    .map(|subs| {
                        subs.iter()
                            .map(|s| pb::SubscriptionState {
                                subscription: Some(subscription_to_proto(s)),
                                active: s.in_force_at(at),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
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
    let mut seen = HashSet::with_capacity(raw.len());
    let mut schools = Vec::with_capacity(raw.len().min(MAX_SCHOOLS + 1));
    for (index, id) in raw.iter().enumerate() {
        if let Some(id) = violations.take(format!("school_ids[{index}]"), parse_id(id))
            && seen.insert(id.clone())
        {
            schools.push(SchoolRef { id, index });
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
