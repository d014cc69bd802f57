//! Every conversion between the proto messages and the domain: requests are parsed into
//! domain inputs (every bad field named at once), answers converted back.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use portal_proto::subscription::v1 as pb;
use portal_runtime::clock::{from_timestamp, to_timestamp};
use portal_runtime::limits::MAX_LIST_ENTRIES;
use portal_runtime::paging::PageRequest;
use portal_runtime::vocab::{
    Id, IdSet, OrgKind, ProductKey, RequestId, RoleKey, SchoolId, SubscriptionId, TrustId, truncate,
};
use portal_runtime::{ApiError, Violations};

use crate::domain::eligibility::{MAX_PRODUCTS_PER_REQUEST, MAX_SCHOOLS_PER_REQUEST, check_sizes};
use crate::domain::subscriptions::MAX_LIST_ORGANIZATIONS;
use crate::domain::{
    Answers, Cancellation, Catalog, Changes, Creation, InitialStatus, Layout, ListFilter,
    NewSubscription, OrganizationId, Product, ProductPage, Query, Reason, RoleEquivalence, RoleRef,
    RoleSelection, SchoolQuery, SchoolRef, SchoolSubscriptions, Scope, Status, Subscription,
    SubscriptionPage, UpdatableStatus, Update,
};

/// A list request's domain input, with the page it asks for: the next page's token is bound
/// to the request's filter (AIP-158).
#[derive(Debug)]
pub struct Paged<T> {
    pub input: T,
    page: PageRequest,
    filter: String,
}

impl<T> Paged<T> {
    /// Trims `rows` (fetched one beyond the page) to the page and returns the next page's
    /// token, empty on the last page.
    pub fn next_page_token<R>(&self, rows: &mut Vec<R>, key: impl Fn(&R) -> String) -> String {
        self.page.finish(rows, &self.filter, key)
    }
}

/// The key a page token carries, parsed as what the listing is ordered by.
fn page_after<K>(
    page: &PageRequest,
    parse: impl Fn(&str) -> Result<K, String>,
    violations: &mut Violations,
) -> Option<K> {
    let parsed = parse(page.after.as_deref()?);
    if parsed.is_err() {
        violations.add(
            "page_token",
            "is not a token returned by this query (the filter must not change between pages)",
        );
    }
    parsed.ok()
}

/// Parses an optional instant; `Err` names what is wrong.
fn instant(ts: Option<&prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>, String> {
    match ts {
        None => Ok(None),
        Some(ts) => from_timestamp(ts)
            .map(Some)
            .ok_or_else(|| "is not a valid timestamp".to_string()),
    }
}

/// Parses a required instant into `violations`.
fn required_instant(
    field: &str,
    ts: Option<&prost_types::Timestamp>,
    missing: &str,
    violations: &mut Violations,
) -> Option<DateTime<Utc>> {
    match instant(ts) {
        Ok(Some(t)) => Some(t),
        Ok(None) => {
            violations.add(field, missing);
            None
        }
        Err(e) => {
            violations.add(field, e);
            None
        }
    }
}

impl TryFrom<pb::ListProductsRequest> for Paged<ProductPage> {
    type Error = ApiError;

    fn try_from(request: pb::ListProductsRequest) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let scope = match pb::ProductScope::try_from(request.scope) {
            Ok(pb::ProductScope::Unspecified) => None,
            Ok(pb::ProductScope::Trust) => Some(Scope::Trust),
            Ok(pb::ProductScope::School) => Some(Scope::School),
            Err(_) => {
                violations.add("scope", format!("{} is not a product scope", request.scope));
                None
            }
        };
        let filter = format!("scope={}", request.scope);
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            &filter,
            &mut violations,
        );
        let after = page_after(&page, ProductKey::parse, &mut violations);
        violations.finish()?;
        Ok(Paged {
            input: ProductPage {
                scope,
                after,
                limit: page.fetch_limit() as usize,
            },
            page,
            filter,
        })
    }
}

impl TryFrom<pb::ListRoleEquivalencesRequest> for RoleSelection {
    type Error = ApiError;

    fn try_from(request: pb::ListRoleEquivalencesRequest) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let product = violations.take("product_key", ProductKey::parse(&request.product_key));
        let role = if request.role_key.trim().is_empty() {
            None
        } else {
            violations.take("role_key", RoleKey::parse(&request.role_key))
        };
        violations.finish()?;
        match product {
            Some(product) => Ok(RoleSelection { product, role }),
            None => Err(ApiError::invalid("product_key", "is required")),
        }
    }
}

/// A key the catalogue has, or a violation of `field`.
fn catalogue_product(
    catalog: &Catalog,
    field: impl Into<String>,
    raw: &str,
    violations: &mut Violations,
) -> Option<ProductKey> {
    let field = field.into();
    let key = violations.take(field.clone(), ProductKey::parse(raw))?;
    if catalog.product(key.as_str()).is_none() {
        violations.add(field, format!("`{key}` is not a catalogue product"));
        return None;
    }
    Some(key)
}

impl TryFrom<(pb::CreateSubscriptionRequest, &Catalog)> for Creation {
    type Error = ApiError;

    fn try_from(
        (request, catalog): (pb::CreateSubscriptionRequest, &Catalog),
    ) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let subscription =
            new_subscription(catalog, request.subscription.as_ref(), &mut violations);
        let request_id = violations
            .take("request_id", RequestId::parse_optional(&request.request_id))
            .flatten();
        violations.finish()?;
        match subscription {
            Some(subscription) => Ok(Creation {
                subscription,
                request_id,
            }),
            None => Err(ApiError::invalid("subscription", "is required")),
        }
    }
}

/// Parses the subscription of a create request, recording every bad field.
fn new_subscription(
    catalog: &Catalog,
    subscription: Option<&pb::Subscription>,
    violations: &mut Violations,
) -> Option<NewSubscription> {
    let Some(s) = subscription else {
        violations.add("subscription", "is required");
        return None;
    };
    let trust_id = violations.take("subscription.trust_id", TrustId::parse(&s.trust_id));
    let organization_id = violations.take(
        "subscription.organization_id",
        OrganizationId::parse(&s.organization_id),
    );
    let kind = violations.take(
        "subscription.organization_kind",
        OrgKind::from_proto(s.organization_kind),
    );
    let product = catalogue_product(
        catalog,
        "subscription.product_key",
        &s.product_key,
        violations,
    )
    .and_then(|key| catalog.product(key.as_str()));
    if let (Some(product), Some(kind)) = (product, kind)
        && product.scope.organization_kind() != kind
    {
        let holder = product.scope.organization_kind();
        violations.add(
            "subscription.organization_kind",
            format!(
                "product `{}` is {holder}-scoped: its subscriptions are held by a {holder}",
                product.key
            ),
        );
    }
    if let (Some(trust_id), Some(organization_id), Some(kind)) = (trust_id, organization_id, kind) {
        let names_the_trust = trust_id.cast() == organization_id;
        match kind {
            OrgKind::Trust if !names_the_trust => violations.add(
                "subscription.organization_id",
                "must equal trust_id for a trust subscription",
            ),
            OrgKind::School if names_the_trust => violations.add(
                "subscription.organization_id",
                "is the trust's id; a school subscription names a school",
            ),
            _ => {}
        }
    }
    let status = match pb::SubscriptionStatus::try_from(s.status) {
        Ok(pb::SubscriptionStatus::Unspecified | pb::SubscriptionStatus::Active) => {
            Some(InitialStatus::Active)
        }
        Ok(pb::SubscriptionStatus::Trial) => Some(InitialStatus::Trial),
        _ => {
            violations.add(
                "subscription.status",
                "a subscription is created ACTIVE or TRIAL",
            );
            None
        }
    };
    let start_time = required_instant(
        "subscription.start_time",
        s.start_time.as_ref(),
        "is required",
        violations,
    );
    let end_time = violations
        .take("subscription.end_time", instant(s.end_time.as_ref()))
        .flatten();
    if let (Some(start), Some(end)) = (start_time, end_time)
        && end <= start
    {
        violations.add("subscription.end_time", "must be after start_time");
    }
    Some(NewSubscription {
        trust_id: trust_id?,
        organization_kind: kind?,
        organization_id: organization_id?,
        product_key: product?.key.clone(),
        status: status?,
        start_time: start_time?,
        end_time,
    })
}

const UPDATABLE: [&str; 3] = ["status", "start_time", "end_time"];

/// An update (AIP-134): which fields change, and to what.
impl TryFrom<pb::UpdateSubscriptionRequest> for Update {
    type Error = ApiError;

    fn try_from(request: pb::UpdateSubscriptionRequest) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let Some(s) = &request.subscription else {
            return Err(ApiError::invalid("subscription", "is required"));
        };
        let id = violations.take("subscription.id", SubscriptionId::parse(&s.id));
        let paths: Vec<&str> = match &request.update_mask {
            Some(mask) if !mask.paths.is_empty() => {
                let mut paths = Vec::new();
                for (i, path) in mask.paths.iter().enumerate() {
                    match path.trim() {
                        "*" => paths.extend(UPDATABLE),
                        p if UPDATABLE.contains(&p) => paths.push(p),
                        p => violations.add(
                            format!("update_mask.paths[{i}]"),
                            format!(
                                "`{}` cannot be updated; updatable fields: status, start_time, \
                                 end_time",
                                truncate(p, 64)
                            ),
                        ),
                    }
                }
                paths
            }
            // No mask: the updatable fields that are set.
            _ => UPDATABLE
                .into_iter()
                .filter(|path| match *path {
                    "status" => s.status != pb::SubscriptionStatus::Unspecified as i32,
                    "start_time" => s.start_time.is_some(),
                    _ => s.end_time.is_some(),
                })
                .collect(),
        };
        let mut changes = Changes::default();
        for path in paths {
            match path {
                "status" => {
                    changes.status = match pb::SubscriptionStatus::try_from(s.status) {
                        Ok(pb::SubscriptionStatus::Active) => Some(UpdatableStatus::Active),
                        Ok(pb::SubscriptionStatus::Trial) => Some(UpdatableStatus::Trial),
                        Ok(pb::SubscriptionStatus::Expired) => Some(UpdatableStatus::Expired),
                        Ok(pb::SubscriptionStatus::Cancelled) => {
                            violations.add(
                                "subscription.status",
                                "CANCELLED is set only by CancelSubscription",
                            );
                            None
                        }
                        _ => {
                            violations.add(
                                "subscription.status",
                                "is required when updated: ACTIVE, TRIAL or EXPIRED",
                            );
                            None
                        }
                    }
                }
                "start_time" => {
                    changes.start_time = required_instant(
                        "subscription.start_time",
                        s.start_time.as_ref(),
                        "is required when updated",
                        &mut violations,
                    );
                }
                _ => {
                    changes.end_time =
                        violations.take("subscription.end_time", instant(s.end_time.as_ref()));
                }
            }
        }
        if violations.is_empty() && changes.is_empty() {
            violations.add(
                "update_mask",
                "names no field to update; set status, start_time or end_time",
            );
        }
        violations.finish()?;
        match id {
            Some(id) => Ok(Update { id, changes }),
            None => Err(ApiError::invalid("subscription.id", "is required")),
        }
    }
}

impl TryFrom<pb::CancelSubscriptionRequest> for Cancellation {
    type Error = ApiError;

    fn try_from(request: pb::CancelSubscriptionRequest) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let id = violations.take(
            "subscription_id",
            SubscriptionId::parse(&request.subscription_id),
        );
        let at = violations
            .take("cancel_time", instant(request.cancel_time.as_ref()))
            .flatten();
        violations.finish()?;
        match id {
            Some(id) => Ok(Cancellation { id, at }),
            None => Err(ApiError::invalid("subscription_id", "is required")),
        }
    }
}

impl TryFrom<pb::ListSubscriptionsRequest> for Paged<SubscriptionPage> {
    type Error = ApiError;

    fn try_from(request: pb::ListSubscriptionsRequest) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let trust_id = violations.take("trust_id", TrustId::parse(&request.trust_id));
        let mut seen = HashSet::new();
        let mut organization_ids = Vec::new();
        let raw_ids: &[String] = if too_long(
            "organization_ids",
            request.organization_ids.len(),
            &mut violations,
        ) {
            &[]
        } else {
            &request.organization_ids
        };
        for (i, raw) in raw_ids.iter().enumerate() {
            if let Some(id) =
                violations.take(format!("organization_ids[{i}]"), OrganizationId::parse(raw))
                && seen.insert(id)
            {
                organization_ids.push(id);
            }
        }
        if organization_ids.len() > MAX_LIST_ORGANIZATIONS {
            violations.add(
                "organization_ids",
                format!("has more than {MAX_LIST_ORGANIZATIONS} distinct ids"),
            );
        }
        let product_key = if request.product_key.trim().is_empty() {
            None
        } else {
            violations.take("product_key", ProductKey::parse(&request.product_key))
        };
        let organizations: Vec<String> = organization_ids.iter().map(|id| id.to_string()).collect();
        let filter = format!(
            "{}|{}|{}",
            request.trust_id,
            organizations.join(","),
            product_key
                .as_ref()
                .map(ProductKey::as_str)
                .unwrap_or_default()
        );
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            &filter,
            &mut violations,
        );
        let after = page_after(&page, SubscriptionId::parse, &mut violations);
        violations.finish()?;
        let Some(trust_id) = trust_id else {
            return Err(ApiError::invalid("trust_id", "is required"));
        };
        Ok(Paged {
            input: SubscriptionPage {
                filter: ListFilter {
                    trust_id,
                    organization_ids,
                    product_key,
                },
                after,
                limit: page.fetch_limit(),
            },
            page,
            filter,
        })
    }
}

/// Whether a repeated field has more entries, repeats included, than any call may send:
/// counted before one of them is parsed or hashed; a violation says so.
fn too_long(field: &str, raw: usize, violations: &mut Violations) -> bool {
    if raw > MAX_LIST_ENTRIES {
        violations.add(
            field,
            format!("has {raw} entries; at most {MAX_LIST_ENTRIES} per call: split the query"),
        );
    }
    raw > MAX_LIST_ENTRIES
}

/// Distinct, well-formed school ids in first-given order, each with its first index; none
/// when the list is longer than a call may name.
fn schools(raw: &[String], violations: &mut Violations) -> Vec<SchoolRef> {
    if too_long("school_ids", raw.len(), violations) {
        return Vec::new();
    }
    let mut seen = IdSet::with_capacity_and_hasher(raw.len(), Default::default());
    let mut schools = Vec::with_capacity(raw.len().min(MAX_SCHOOLS_PER_REQUEST + 1));
    for (index, id) in raw.iter().enumerate() {
        // The field name is only built for a violation: this runs for every school asked.
        match SchoolId::parse(id) {
            Ok(id) => {
                if seen.insert(id.as_u128()) {
                    schools.push(SchoolRef { id, index });
                }
            }
            Err(description) => violations.add(format!("school_ids[{index}]"), description),
        }
    }
    schools
}

/// A CheckEligibility request, checked against the catalogue.
impl TryFrom<(pb::CheckEligibilityRequest, &Catalog)> for Query {
    type Error = ApiError;

    fn try_from(
        (request, catalog): (pb::CheckEligibilityRequest, &Catalog),
    ) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let trust_id = violations.take("trust_id", TrustId::parse(&request.trust_id));
        let trust_product = if request.trust_product_key.trim().is_empty() {
            None
        } else {
            catalogue_product(
                catalog,
                "trust_product_key",
                &request.trust_product_key,
                &mut violations,
            )
        };
        let mut seen = HashSet::new();
        let mut school_products = Vec::new();
        let products_too_long = too_long(
            "school_product_keys",
            request.school_product_keys.len(),
            &mut violations,
        );
        let product_keys: &[String] = if products_too_long {
            &[]
        } else {
            &request.school_product_keys
        };
        for (i, raw) in product_keys.iter().enumerate() {
            if let Some(key) = catalogue_product(
                catalog,
                format!("school_product_keys[{i}]"),
                raw,
                &mut violations,
            ) && seen.insert(key.clone())
            {
                school_products.push(key);
            }
        }
        let schools = schools(&request.school_ids, &mut violations);
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
        let distinct_keys: HashSet<&str> = product_keys.iter().map(|k| k.trim()).collect();
        check_sizes(schools.len(), distinct_keys.len(), &mut violations);
        let at = violations
            .take("at", instant(request.at.as_ref()))
            .flatten();
        let layout = match pb::EligibilityView::try_from(request.view) {
            Ok(pb::EligibilityView::Compact) => Layout::Compact,
            Ok(_) => Layout::Full,
            Err(_) => {
                violations.add(
                    "view",
                    format!("{} is not an EligibilityView", request.view),
                );
                Layout::Full
            }
        };
        violations.finish()?;
        debug_assert!(school_products.len() <= MAX_PRODUCTS_PER_REQUEST);
        match trust_id {
            Some(trust_id) => Ok(Query {
                trust_id,
                trust_product,
                school_products,
                schools,
                at,
                layout,
            }),
            None => Err(ApiError::invalid("trust_id", "is required")),
        }
    }
}

impl TryFrom<pb::GetSchoolSubscriptionsRequest> for SchoolQuery {
    type Error = ApiError;

    fn try_from(request: pb::GetSchoolSubscriptionsRequest) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let trust_id = violations.take("trust_id", TrustId::parse(&request.trust_id));
        let schools = schools(&request.school_ids, &mut violations);
        if request.school_ids.is_empty() {
            violations.add("school_ids", "is empty; give at least one school");
        }
        check_sizes(schools.len(), 0, &mut violations);
        let at = violations
            .take("at", instant(request.at.as_ref()))
            .flatten();
        violations.finish()?;
        match trust_id {
            Some(trust_id) => Ok(SchoolQuery {
                trust_id,
                schools,
                at,
            }),
            None => Err(ApiError::invalid("trust_id", "is required")),
        }
    }
}

impl From<Scope> for pb::ProductScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Trust => pb::ProductScope::Trust,
            Scope::School => pb::ProductScope::School,
        }
    }
}

impl From<Status> for pb::SubscriptionStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Active => pb::SubscriptionStatus::Active,
            Status::Trial => pb::SubscriptionStatus::Trial,
            Status::Cancelled => pb::SubscriptionStatus::Cancelled,
            Status::Expired => pb::SubscriptionStatus::Expired,
        }
    }
}

impl From<Reason> for pb::IneligibilityReason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::NoSubscription => pb::IneligibilityReason::NoSubscription,
            Reason::NotStarted => pb::IneligibilityReason::NotStarted,
            Reason::Ended => pb::IneligibilityReason::Ended,
            Reason::Cancelled => pb::IneligibilityReason::Cancelled,
            Reason::Expired => pb::IneligibilityReason::Expired,
            Reason::ProductNotSchoolScoped => pb::IneligibilityReason::ProductNotSchoolScoped,
            Reason::ProductNotTrustScoped => pb::IneligibilityReason::ProductNotTrustScoped,
        }
    }
}

/// An id's canonical text, spelled directly rather than through `Display`: an answer spells
/// up to thousands.
fn text<K>(id: Id<K>) -> String {
    id.as_uuid()
        .hyphenated()
        .encode_lower(&mut [0; 36])
        .to_owned()
}

/// The proto value of an answer's reason: unspecified when eligible.
fn reason(reason: Option<Reason>) -> i32 {
    reason.map_or(pb::IneligibilityReason::Unspecified, Into::into) as i32
}

impl From<Product> for pb::Product {
    fn from(product: Product) -> Self {
        pb::Product {
            key: product.key.into_string(),
            name: product.name,
            scope: pb::ProductScope::from(product.scope) as i32,
            roles: product
                .roles
                .into_iter()
                .map(|role| pb::Role {
                    key: role.key.into_string(),
                    name: role.name,
                    description: role.description,
                })
                .collect(),
        }
    }
}

impl From<RoleRef> for pb::RoleRef {
    fn from(side: RoleRef) -> Self {
        pb::RoleRef {
            product_key: side.product_key.into_string(),
            role_key: side.role_key.into_string(),
        }
    }
}

impl From<RoleEquivalence> for pb::RoleEquivalence {
    fn from(equivalence: RoleEquivalence) -> Self {
        pb::RoleEquivalence {
            left: Some(equivalence.left.into()),
            right: Some(equivalence.right.into()),
            description: equivalence.description,
        }
    }
}

impl From<&Subscription> for pb::Subscription {
    fn from(s: &Subscription) -> Self {
        pb::Subscription {
            id: text(s.id),
            trust_id: text(s.trust_id),
            organization_kind: s.organization_kind.to_proto(),
            organization_id: text(s.organization_id),
            product_key: s.product_key.as_str().to_owned(),
            status: pb::SubscriptionStatus::from(s.status) as i32,
            start_time: Some(to_timestamp(s.start_time)),
            end_time: s.end_time.map(to_timestamp),
            cancel_time: s.cancel_time.map(to_timestamp),
            create_time: Some(to_timestamp(s.create_time)),
            update_time: Some(to_timestamp(s.update_time)),
        }
    }
}

impl From<Subscription> for pb::Subscription {
    fn from(s: Subscription) -> Self {
        pb::Subscription::from(&s)
    }
}

impl From<Answers> for pb::CheckEligibilityResponse {
    fn from(answers: Answers) -> Self {
        let evaluation = answers.evaluate();
        let query = &answers.query;
        let trust_product = match (&query.trust_product, evaluation.trust) {
            (Some(key), Some(verdict)) => Some(pb::TrustProductEligibility {
                product_key: key.as_str().to_owned(),
                eligible: verdict.eligible(),
                reason: reason(verdict.reason),
                subscription: verdict.subscription.map(Into::into),
            }),
            _ => None,
        };
        let mut response = pb::CheckEligibilityResponse {
            trust_product,
            evaluate_time: Some(to_timestamp(answers.at)),
            ..Default::default()
        };
        match query.layout {
            Layout::Compact => {
                let mut refused = pb::Refused::default();
                for refusal in evaluation.refused() {
                    refused.pairs.push(refusal.pair);
                    refused
                        .reasons
                        .push(pb::IneligibilityReason::from(refusal.reason) as i32);
                    refused
                        .effective_unix_micros
                        .push(refusal.effective_unix_micros);
                }
                response.refused = Some(refused);
            }
            Layout::Full => {
                response.pairs = query
                    .pairs()
                    .zip(&evaluation.pairs)
                    .map(|((school, product), verdict)| pb::PairEligibility {
                        school_id: text(school),
                        product_key: product.as_str().to_owned(),
                        eligible: verdict.eligible(),
                        reason: reason(verdict.reason),
                        subscription: verdict.subscription.map(Into::into),
                    })
                    .collect();
            }
        }
        drop(evaluation);
        response.school_product_keys = answers
            .query
            .school_products
            .into_iter()
            .map(ProductKey::into_string)
            .collect();
        response
    }
}

impl From<SchoolSubscriptions> for pb::GetSchoolSubscriptionsResponse {
    fn from(found: SchoolSubscriptions) -> Self {
        let school_subscriptions = found
            .schools()
            .map(|(school, held)| pb::SchoolSubscriptions {
                school_id: text(school),
                subscriptions: held
                    .map(|(subscription, active)| pb::SubscriptionState {
                        subscription: Some(subscription.into()),
                        active,
                    })
                    .collect(),
            })
            .collect();
        pb::GetSchoolSubscriptionsResponse {
            school_subscriptions,
            evaluate_time: Some(to_timestamp(found.at)),
        }
    }
}
