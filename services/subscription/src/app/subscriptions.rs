//! Subscriptions: billing creates, updates and cancels them; the invitation service and the
//! trust's administrators read them. Every write drops the trust's copy in memory.

use chrono::{DateTime, Utc};
use portal_runtime::Principal;
use portal_runtime::vocab::SubscriptionId;

use super::{App, Billing, SubscriptionReader};
use crate::domain::access::READERS;
use crate::domain::{
    Cancellation, Cancelled, CreateOutcome, Creation, RequestKey, Subscription, SubscriptionPage,
    Update,
};
use crate::error::{Error, Result};

/// Attempts of a read-modify-write before giving up to a concurrent writer.
const WRITE_ATTEMPTS: usize = 5;

impl App {
    pub async fn create_subscription(
        &self,
        billing: &Billing,
        creation: Creation,
    ) -> Result<Subscription> {
        let new = creation.subscription;
        let request = creation.request_id.map(|request_id| RequestKey {
            caller: billing.caller.clone(),
            request_id,
            fingerprint: new.fingerprint(),
        });
        let asked = new.organization_kind;
        let subscription = new.into_subscription(SubscriptionId::generate(), self.clock.now());
        match self
            .store
            .create_subscription(&subscription, request.as_ref())
            .await?
        {
            CreateOutcome::Created(created) => {
                self.views.invalidate(created.trust_id);
                tracing::info!(
                    subscription_id = %created.id,
                    trust_id = %created.trust_id,
                    organization_id = %created.organization_id,
                    product = %created.product_key,
                    "subscription created"
                );
                Ok(created)
            }
            CreateOutcome::Replayed(first) => Ok(first),
            CreateOutcome::RequestIdReused => Err(Error::RequestIdReused),
            CreateOutcome::OrganizationConflict(known) => {
                Err(Error::OrganizationTaken { known, asked })
            }
        }
    }

    /// Changes status and period (AIP-134).
    pub async fn update_subscription(
        &self,
        _billing: &Billing,
        update: Update,
    ) -> Result<Subscription> {
        self.rewrite(update.id, "updated", |current, now| {
            current
                .apply(&update.changes, now)
                .map(Some)
                .map_err(Error::EmptyPeriod)
        })
        .await
    }

    /// Cancels with effect at the given instant, or now; cancelling twice changes nothing.
    pub async fn cancel_subscription(
        &self,
        _billing: &Billing,
        cancellation: Cancellation,
    ) -> Result<Subscription> {
        let id = cancellation.id;
        self.rewrite(id, "cancelled", |current, now| {
            match current.cancel(cancellation.at.unwrap_or(now), now) {
                Ok(Cancelled::Changed(next)) => Ok(Some(next)),
                Ok(Cancelled::Unchanged) => Ok(None),
                Err(_) => Err(Error::SubscriptionExpired(id)),
            }
        })
        .await
    }

    /// A subscription, for a reader of its trust. Who may not read the trust is told it does
    /// not exist.
    pub async fn get_subscription(
        &self,
        reader: &SubscriptionReader,
        id: SubscriptionId,
    ) -> Result<Subscription> {
        let subscription = self.subscription(id).await?;
        match self
            .require_reader(&reader.0, READERS, subscription.trust_id)
            .await
        {
            Ok(()) => Ok(subscription),
            Err(error) if error.is_permission_denied() => Err(Error::SubscriptionNotFound(id)),
            Err(error) => Err(error),
        }
    }

    /// One page of a trust's subscriptions, in id order.
    pub async fn list_subscriptions(
        &self,
        principal: &Principal,
        page: &SubscriptionPage,
    ) -> Result<Vec<Subscription>> {
        self.require_reader(principal, READERS, page.filter.trust_id)
            .await?;
        if let Some(key) = &page.filter.product_key
            && self.catalog().await?.product(key.as_str()).is_none()
        {
            return Err(Error::UnknownProductFilter(key.clone()));
        }
        self.store.list_subscriptions(page).await
    }

    async fn subscription(&self, id: SubscriptionId) -> Result<Subscription> {
        self.store
            .get_subscription(id)
            .await?
            .ok_or(Error::SubscriptionNotFound(id))
    }

    /// Reads a subscription, decides its next state (`None`: unchanged) and stores it if
    /// nobody changed it meanwhile, reading it again otherwise (optimistic concurrency).
    async fn rewrite(
        &self,
        id: SubscriptionId,
        done: &'static str,
        next: impl Fn(&Subscription, DateTime<Utc>) -> Result<Option<Subscription>>,
    ) -> Result<Subscription> {
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.subscription(id).await?;
            let Some(next) = next(&current, self.clock.now())? else {
                return Ok(current);
            };
            if self.store.replace_subscription(&next).await? {
                self.views.invalidate(next.trust_id);
                tracing::info!(subscription_id = %next.id, "subscription {done}");
                return Ok(next);
            }
        }
        Err(Error::Contended(id))
    }
}
