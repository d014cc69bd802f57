//! SubscriptionService: billing writes subscriptions; the invitation service and the trust's
//! administrators read them.

use std::collections::HashSet;
use std::sync::Arc;

use portal_proto::subscription::v1 as pb;
use portal_proto::subscription::v1::subscription_service_server::SubscriptionService;
use portal_runtime::paging::PageRequest;
use portal_runtime::types::{new_id, parse_id, truncate};
use portal_runtime::{ApiError, Principal, Violations};
use tonic::{Request, Response, Status};

use super::{State, caller, parse_instant, subscription_to_proto};
use crate::access::READERS;
use crate::domain::{
    Cancelled, Catalog, Changes, InitialStatus, NewSubscription, OrgKind, ProductKey, Subscription,
    UpdatableStatus,
};
use crate::error::{Error, Result};
use crate::store::{CreateOutcome, ListFilter, RequestKey};

/// Attempts of a read-modify-write before giving up to a concurrent writer.
const WRITE_ATTEMPTS: usize = 5;
/// Longest AIP-155 request id accepted.
const MAX_REQUEST_ID_LEN: usize = 128;
/// Most organisation ids one list filter may name.
const MAX_LIST_ORGANIZATIONS: usize = 1_000;

pub struct Subscriptions {
    state: Arc<State>,
}

impl Subscriptions {
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    async fn create(
        &self,
        request: Request<pb::CreateSubscriptionRequest>,
    ) -> Result<pb::Subscription> {
        let principal = caller(&request)?;
        self.state.access.require_writer(&principal)?;
        let request = request.into_inner();
        let catalog = self.state.catalog().await?;
        let mut violations = Violations::new();
        let new = parse_new(&catalog, request.subscription.as_ref(), &mut violations);
        let request_id = parse_request_id(&request.request_id, &mut violations);
        violations.finish()?;
        let Some(new) = new else {
            return Err(ApiError::invalid("subscription", "is required").into());
        };
        let key = request_id.map(|request_id| RequestKey {
            caller: principal.service_name().unwrap_or_default().to_string(),
            request_id,
            fingerprint: new.fingerprint(),
        });
        let subscription = new.into_subscription(new_id(), self.state.clock.now());
        match self
            .state
            .store
            .create_subscription(&subscription, key.as_ref())
            .await?
        {
            CreateOutcome::Created(created) => {
                self.state.views.invalidate(&created.trust_id);
                tracing::info!(
                    subscription_id = %created.id,
                    trust_id = %created.trust_id,
                    organization_id = %created.organization_id,
                    product = %created.product_key,
                    "subscription created"
                );
                Ok(subscription_to_proto(&created))
            }
            CreateOutcome::Replayed(first) => Ok(subscription_to_proto(&first)),
            CreateOutcome::RequestIdReused => Err(ApiError::invalid(
                "request_id",
                "was already used for a different request; use a new request id",
            )
            .into()),
            CreateOutcome::OrganizationConflict(known) => {
                let description = if known.kind != subscription.organization_kind {
                    match known.kind {
                        OrgKind::Trust => "is a trust, not a school",
                        OrgKind::School => "is a school, not a trust",
                    }
                } else {
                    "already belongs to another trust"
                };
                Err(ApiError::invalid("subscription.organization_id", description).into())
            }
        }
    }

    async fn update(
        &self,
        request: Request<pb::UpdateSubscriptionRequest>,
    ) -> Result<pb::Subscription> {
        let principal = caller(&request)?;
        self.state.access.require_writer(&principal)?;
        let request = request.into_inner();
        let (id, changes) = parse_update(&request)?;
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.load(&id).await?;
            let mut next = current
                .apply(&changes, self.state.clock.now())
                .map_err(|field| {
                    ApiError::invalid(
                        format!("subscription.{field}"),
                        "would leave the period empty: end_time must be after start_time",
                    )
                })?;
            next.version = current.version + 1;
            if self.state.store.replace_subscription(&next).await? {
                self.state.views.invalidate(&next.trust_id);
                tracing::info!(subscription_id = %next.id, "subscription updated");
                return Ok(subscription_to_proto(&next));
            }
        }
        Err(Error::Contended(id))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelSubscriptionRequest>,
    ) -> Result<pb::Subscription> {
        let principal = caller(&request)?;
        self.state.access.require_writer(&principal)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = violations.take("subscription_id", parse_id(&request.subscription_id));
        let at = violations
            .take("cancel_time", parse_instant(request.cancel_time.as_ref()))
            .flatten();
        violations.finish()?;
        let Some(id) = id else {
            return Err(ApiError::invalid("subscription_id", "is required").into());
        };
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.load(&id).await?;
            let now = self.state.clock.now();
            match current.cancel(at.unwrap_or(now), now) {
                Err(_) => return Err(Error::SubscriptionExpired(id)),
                Ok(Cancelled::Unchanged) => return Ok(subscription_to_proto(&current)),
                Ok(Cancelled::Changed(mut next)) => {
                    next.version = current.version + 1;
                    if self.state.store.replace_subscription(&next).await? {
                        self.state.views.invalidate(&next.trust_id);
                        tracing::info!(subscription_id = %next.id, "subscription cancelled");
                        return Ok(subscription_to_proto(&next));
                    }
                }
            }
        }
        Err(Error::Contended(id))
    }

    async fn get(&self, request: Request<pb::GetSubscriptionRequest>) -> Result<pb::Subscription> {
        let principal = caller(&request)?;
        if let Principal::Service { .. } = principal {
            principal.require_service(READERS)?;
        }
        let id = parse_id(&request.get_ref().subscription_id)
            .map_err(|e| ApiError::invalid("subscription_id", e))?;
        let subscription = self.load(&id).await?;
        match self
            .state
            .access
            .require_reader(&principal, READERS, &subscription.trust_id)
            .await
        {
            Ok(()) => Ok(subscription_to_proto(&subscription)),
            // Nothing of a trust is visible to a user who does not administer it, not even
            // that the subscription exists.
            Err(Error::Api(ApiError::PermissionDenied { .. })) => {
                Err(Error::SubscriptionNotFound(id))
            }
            Err(error) => Err(error),
        }
    }

    async fn list(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<pb::ListSubscriptionsResponse> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let trust_id = violations.take("trust_id", parse_id(&request.trust_id));
        let mut seen = HashSet::new();
        let mut organization_ids = Vec::new();
        for (i, raw) in request.organization_ids.iter().enumerate() {
            if let Some(id) = violations.take(format!("organization_ids[{i}]"), parse_id(raw))
                && seen.insert(id.clone())
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
        let filter_text = format!(
            "{}|{}|{}",
            request.trust_id,
            organization_ids.join(","),
            product_key
                .as_ref()
                .map(ProductKey::as_str)
                .unwrap_or_default()
        );
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            &filter_text,
            &mut violations,
        );
        violations.finish()?;
        let Some(trust_id) = trust_id else {
            return Err(ApiError::invalid("trust_id", "is required").into());
        };
        self.state
            .access
            .require_reader(&principal, READERS, &trust_id)
            .await?;
        if let Some(key) = &product_key {
            let catalog = self.state.catalog().await?;
            if catalog.product(key.as_str()).is_none() {
                return Err(ApiError::invalid(
                    "product_key",
                    format!("`{key}` is not a catalogue product"),
                )
                .into());
            }
        }
        let filter = ListFilter {
            trust_id,
            organization_ids,
            product_key: product_key.map(|k| k.as_str().to_string()),
        };
        let mut rows = self
            .state
            .store
            .list_subscriptions(&filter, page.after.as_deref(), page.fetch_limit())
            .await?;
        let next_page_token = page.finish(&mut rows, &filter_text, |s| s.id.clone());
        Ok(pb::ListSubscriptionsResponse {
            subscriptions: rows.iter().map(subscription_to_proto).collect(),
            next_page_token,
        })
    }

    async fn load(&self, id: &str) -> Result<Subscription> {
        self.state
            .store
            .get_subscription(id)
            .await?
            .ok_or_else(|| Error::SubscriptionNotFound(id.to_string()))
    }
}

/// Parses the subscription of a create request, recording every bad field.
fn parse_new(
    catalog: &Catalog,
    subscription: Option<&pb::Subscription>,
    violations: &mut Violations,
) -> Option<NewSubscription> {
    let Some(s) = subscription else {
        violations.add("subscription", "is required");
        return None;
    };
    let trust_id = violations.take("subscription.trust_id", parse_id(&s.trust_id));
    let organization_id =
        violations.take("subscription.organization_id", parse_id(&s.organization_id));
    let kind = match pb::OrganizationKind::try_from(s.organization_kind) {
        Ok(pb::OrganizationKind::Trust) => Some(OrgKind::Trust),
        Ok(pb::OrganizationKind::School) => Some(OrgKind::School),
        _ => {
            violations.add(
                "subscription.organization_kind",
                "is required: ORGANIZATION_KIND_TRUST or ORGANIZATION_KIND_SCHOOL",
            );
            None
        }
    };
    let product = violations
        .take(
            "subscription.product_key",
            ProductKey::parse(&s.product_key),
        )
        .and_then(|key| match catalog.product(key.as_str()) {
            Some(product) => Some(product),
            None => {
                violations.add(
                    "subscription.product_key",
                    format!("`{key}` is not a catalogue product"),
                );
                None
            }
        });
    if let (Some(product), Some(kind)) = (product, kind)
        && product.scope.organization_kind() != kind
    {
        violations.add(
            "subscription.organization_kind",
            format!(
                "product `{}` is {}-scoped: its subscriptions are held by a {}",
                product.key,
                product.scope.as_db().to_lowercase(),
                product.scope.as_db().to_lowercase()
            ),
        );
    }
    if let (Some(trust_id), Some(organization_id), Some(kind)) = (&trust_id, &organization_id, kind)
    {
        match kind {
            OrgKind::Trust if trust_id != organization_id => violations.add(
                "subscription.organization_id",
                "must equal trust_id for a trust subscription",
            ),
            OrgKind::School if trust_id == organization_id => violations.add(
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
    let start_time = match parse_instant(s.start_time.as_ref()) {
        Ok(Some(start)) => Some(start),
        Ok(None) => {
            violations.add("subscription.start_time", "is required");
            None
        }
        Err(e) => {
            violations.add("subscription.start_time", e);
            None
        }
    };
    let end_time = violations
        .take("subscription.end_time", parse_instant(s.end_time.as_ref()))
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

fn parse_request_id(raw: &str, violations: &mut Violations) -> Option<String> {
    let id = raw.trim();
    if id.is_empty() {
        return None;
    }
    if id.len() > MAX_REQUEST_ID_LEN || !id.chars().all(|c| c.is_ascii_graphic()) {
        violations.add(
            "request_id",
            format!(
                "`{}` is not a request id (at most {MAX_REQUEST_ID_LEN} printable characters; a UUID is best)",
                truncate(id, 64)
            ),
        );
        return None;
    }
    Some(id.to_string())
}

const UPDATABLE: [&str; 3] = ["status", "start_time", "end_time"];

/// Parses an update (AIP-134): which fields change, and to what.
fn parse_update(request: &pb::UpdateSubscriptionRequest) -> Result<(String, Changes), ApiError> {
    let mut violations = Violations::new();
    let Some(s) = &request.subscription else {
        return Err(ApiError::invalid("subscription", "is required"));
    };
    let id = violations.take("subscription.id", parse_id(&s.id));
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
                            "`{}` cannot be updated; updatable fields: status, start_time, end_time",
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
                changes.start_time = match parse_instant(s.start_time.as_ref()) {
                    Ok(Some(start)) => Some(start),
                    Ok(None) => {
                        violations.add("subscription.start_time", "is required when updated");
                        None
                    }
                    Err(e) => {
                        violations.add("subscription.start_time", e);
                        None
                    }
                }
            }
            _ => {
                changes.end_time =
                    violations.take("subscription.end_time", parse_instant(s.end_time.as_ref()));
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
        Some(id) => Ok((id, changes)),
        None => Err(ApiError::invalid("subscription.id", "is required")),
    }
}

#[tonic::async_trait]
impl SubscriptionService for Subscriptions {
    async fn create_subscription(
        &self,
        request: Request<pb::CreateSubscriptionRequest>,
    ) -> Result<Response<pb::CreateSubscriptionResponse>, Status> {
        let subscription = self.create(request).await?;
        Ok(Response::new(pb::CreateSubscriptionResponse {
            subscription: Some(subscription),
        }))
    }

    async fn update_subscription(
        &self,
        request: Request<pb::UpdateSubscriptionRequest>,
    ) -> Result<Response<pb::UpdateSubscriptionResponse>, Status> {
        let subscription = self.update(request).await?;
        Ok(Response::new(pb::UpdateSubscriptionResponse {
            subscription: Some(subscription),
        }))
    }

    async fn cancel_subscription(
        &self,
        request: Request<pb::CancelSubscriptionRequest>,
    ) -> Result<Response<pb::CancelSubscriptionResponse>, Status> {
        let subscription = self.cancel(request).await?;
        Ok(Response::new(pb::CancelSubscriptionResponse {
            subscription: Some(subscription),
        }))
    }

    async fn get_subscription(
        &self,
        request: Request<pb::GetSubscriptionRequest>,
    ) -> Result<Response<pb::GetSubscriptionResponse>, Status> {
        let subscription = self.get(request).await?;
        Ok(Response::new(pb::GetSubscriptionResponse {
            subscription: Some(subscription),
        }))
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        Ok(Response::new(self.list(request).await?))
    }
}
